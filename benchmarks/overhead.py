"""What HealthMonitor costs: fit time, probe time and memory, side by side.

Run::

    python benchmarks/overhead.py              # the reference workloads
    python benchmarks/overhead.py --repeat 5   # more repetitions
    python benchmarks/overhead.py --smoke      # seconds, to check it runs
    python benchmarks/overhead.py --smoke --samples 4096
                                  # fit times at 4,096 samples, the rest
                                  # at the smoke sizes
    python benchmarks/overhead.py --stats --against REV
                                  # the statistics alone, against REV's
    python benchmarks/overhead.py --backend tensorflow,jax,torch
                                  # the same ratios per Keras backend,
                                  # side by side
    python benchmarks/overhead.py --in-step --backend tensorflow,jax,torch
                                  # the training-batch source
                                  # (source="batch") every step and every
                                  # 10 steps, against plain fit

Every configuration runs in its own process (same seed, same data), so the
times include what a user pays once per run (tracing the train function, and
for the monitor the probe function) and the peak resident memory is that
configuration's own. Wall-clock times on a shared machine drift by several
per cent from run to run, more than the differences measured here, so the
configurations run interleaved, `--repeat` rounds of them, each ratio is
taken within its round, and the table shows the median ratio with the
smallest and largest.

Workloads: an 8 x 256 ReLU MLP on 20,000 synthetic 784-feature samples,
batch 128, 3 epochs; a small CNN (two 3x3 conv + BatchNorm + ReLU blocks) on
synthetic 28 x 28 images. Configurations: plain `fit`;
`keras.callbacks.TensorBoard(histogram_freq=1)`; `HealthMonitor` with
defaults (pre-flight plus one event per epoch); `HealthMonitor` with
``every_n_steps=50``. Then the probe call's time per sample against a
training step's, and a depth sweep of ReLU MLPs (10, 50, 200 layers).
Last, what compiling the probe on a background thread adds to the training
steps, depending on when it starts (`HealthMonitor` waits for the end of the
first step, in which Keras traces its own training function).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CONFIGS = ("plain", "tensorboard", "monitor", "monitor_50_steps")


def _sizes(smoke: bool, samples: int | None = None) -> dict:
    if smoke:
        sizes = {"n": 512, "epochs": 1, "cnn_n": 256, "depths": (3, 6)}
    else:
        sizes = {
            "n": 20000,
            "epochs": 3,
            "cnn_n": 5000,
            "depths": (10, 50, 200),
        }
    if samples is not None:
        # The CNN's step costs about four times the MLP's per sample.
        sizes.update(n=samples, cnn_n=max(samples // 4, 128))
    return sizes


def _model(workload: str, depth: int = 8):
    import keras

    if workload == "mlp":
        layers = [keras.Input((784,))]
        layers += [
            keras.layers.Dense(256, activation="relu") for _ in range(depth)
        ]
        layers.append(keras.layers.Dense(10))
    else:
        layers = [keras.Input((28, 28, 1))]
        for filters in (16, 32):
            layers += [
                keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
                keras.layers.BatchNormalization(),
                keras.layers.ReLU(),
                keras.layers.MaxPooling2D(),
            ]
        layers += [keras.layers.Flatten(), keras.layers.Dense(10)]
    model = keras.Sequential(layers)
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _data(workload: str, n: int):
    import numpy as np

    rng = np.random.default_rng(0)
    shape = (n, 784) if workload == "mlp" else (n, 28, 28, 1)
    return (
        rng.normal(size=shape).astype("float32"),
        rng.integers(0, 10, n).astype("int32"),
    )


def _time_hooks(monitor, total: dict) -> None:
    """Add the wall time spent inside the monitor's hooks to ``total``.

    Unlike a difference of two fit times, this does not drift with the
    machine's load; it leaves out only what the monitor costs outside its
    hooks (its compiling thread competing for the CPU, which the fit ratio
    includes).
    """
    for name in (
        "on_train_begin",
        "on_epoch_begin",
        "on_train_batch_begin",
        "on_epoch_end",
        "on_train_end",
    ):
        hook = getattr(monitor, name)

        def timed(*args, _hook=hook, _name=name, **kwargs):
            t = time.perf_counter()
            try:
                return _hook(*args, **kwargs)
            finally:
                spent = time.perf_counter() - t
                total["s"] += spent
                total[_name] = total.get(_name, 0.0) + spent

        setattr(monitor, name, timed)


def _median_seconds(call, n: int = 5) -> float:
    """The median wall time of `n` calls of `call`."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_one(
    workload: str, config: str, smoke: bool, samples: int | None = None
) -> dict:
    """One configuration in this process; returns its measurements."""
    import keras

    from kerasinit.callbacks import HealthMonitor

    sizes = _sizes(smoke, samples)
    n = sizes["n"] if workload == "mlp" else sizes["cnn_n"]
    keras.utils.set_random_seed(0)
    x, y = _data(workload, n)
    model = _model(workload)
    log_dir = tempfile.mkdtemp(prefix="kerasinit-bench-")
    probe = (x[:512], y[:512])
    callbacks = {
        "plain": [],
        "tensorboard": [keras.callbacks.TensorBoard(log_dir, histogram_freq=1)],
        "monitor": [HealthMonitor(log_dir, probe, warn=False)],
        "monitor_50_steps": [
            HealthMonitor(log_dir, probe, every_n_steps=50, warn=False)
        ],
    }[config]
    hooks = {"s": 0.0}
    for cb in callbacks:
        if isinstance(cb, HealthMonitor):
            _time_hooks(cb, hooks)
    start = time.perf_counter()
    cpu_start = time.process_time()
    model.fit(
        x,
        y,
        batch_size=128,
        epochs=sizes["epochs"],
        verbose=0,
        callbacks=callbacks,
    )
    fit_s = time.perf_counter() - start
    out = {
        "fit_s": fit_s,
        # Every thread of the process: steadier than wall time on a shared
        # machine, and it counts a background compile the wall hides.
        "fit_cpu_s": time.process_time() - cpu_start,
        "hooks_s": hooks["s"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        / 1024,
        "train_s_per_sample": fit_s / (sizes["epochs"] * n),
    }
    if config.startswith("monitor"):
        out["preflight_s"] = hooks["on_train_begin"]
        out["events"] = callbacks[0]._event
    if config == "monitor":
        monitor = callbacks[0]
        out["compiled_in_fit"] = monitor.compiled_probe is not None

        from kerasinit.monitor.probe import Probe
        from kerasinit.monitor.selection import monitored_layers

        # A probe of its own, not yet compiled: a later eager call, as the
        # events before compiling run (the first one also creates every
        # kernel once).
        p = Probe(model, monitored_layers(model))
        p.build(
            keras.ops.convert_to_tensor(probe[0]),
            keras.ops.convert_to_tensor(probe[1]),
        )
        eager_s = _median_seconds(p)
        out["eager_s_per_sample"] = eager_s / len(probe[0])
        p.start_compiling()
        p.wait()
        out["probe_s"] = _median_seconds(p)
        out["probe_s_per_sample"] = out["probe_s"] / len(probe[0])
        # Steady-state training step per sample, without tracing.
        batch = (x[:128], y[:128])
        model.train_on_batch(*batch)
        t = time.perf_counter()
        for _ in range(20):
            model.train_on_batch(*batch)
        out["step_s_per_sample"] = (time.perf_counter() - t) / (20 * 128)
    return out


# The training-batch source against plain `fit` and the probe at the same
# cadence. Without per-epoch probe events, so that the steady epochs show
# what measuring inside the train step costs.
IN_STEP_CONFIGS = (
    "plain",
    "batch_1",
    "batch_1_h100",
    "batch_1_economy",
    "batch_10",
    "batch_10_h100",
    "batch_10_economy",
    "probe_10",
)


def run_in_step(
    workload: str, config: str, samples: int | None, epochs: int
) -> dict:
    """One fit of `config`, its epochs after the first timed apart.

    The first epoch holds what is paid once (tracing Keras's train
    function, the pre-flight probe); the later ones are the steady state
    that the ratio per step measures. Wall and process CPU time of both.
    """
    import keras

    from kerasinit.callbacks import HealthMonitor
    from kerasinit.monitor import in_step

    n = samples or 20000
    if workload == "cnn":
        n = max(n // 4, 128)
    # Process CPU time of each call of the train function, by kind, and of
    # each training-batch event on the host: where a due step's cost goes.
    calls = {"plain": [], "measuring": [], "host": []}
    dispatcher = in_step.InStep._dispatcher

    def timed_dispatcher(self, plain, measuring):
        def timed(kind, fn):
            def call(*args, **kwargs):
                start = time.process_time()
                try:
                    return fn(*args, **kwargs)
                finally:
                    calls[kind].append(time.process_time() - start)

            return call

        return dispatcher(
            self, timed("plain", plain), timed("measuring", measuring)
        )

    in_step.InStep._dispatcher = timed_dispatcher
    keras.utils.set_random_seed(0)
    x, y = _data(workload, n)
    model = _model(workload)
    log_dir = tempfile.mkdtemp(prefix="kerasinit-bench-")
    probe = (x[:512], y[:512])
    monitor = None
    if config != "plain":
        # "batch_1_h100": the training batch every step, its histograms
        # every 100; "batch_1_economy": every step, statistics="economy".
        source, every, *extra = config.split("_")
        monitor = HealthMonitor(
            log_dir,
            probe,
            every_n_epochs=None,
            every_n_steps=int(every),
            source="batch" if source == "batch" else "probe",
            histogram_every_n_steps=(
                int(extra[0][1:]) if extra and extra[0][0] == "h" else None
            ),
            statistics="economy" if extra == ["economy"] else "full",
            warn=False,
        )
    marks = {}
    if monitor is not None:
        batch_log = monitor._batch_log

        def timed_log():
            start = time.process_time()
            batch_log()
            calls["host"].append(time.process_time() - start)

        monitor._batch_log = timed_log

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                marks["steady"] = (time.perf_counter(), time.process_time())
                for times in calls.values():
                    times.clear()

    start = time.perf_counter(), time.process_time()
    model.fit(
        x,
        y,
        batch_size=128,
        epochs=epochs,
        verbose=0,
        callbacks=([monitor] if monitor else []) + [Timer()],
    )
    end = time.perf_counter(), time.process_time()
    out = {
        "fit_s": end[0] - start[0],
        "fit_cpu_s": end[1] - start[1],
        "steady_s": end[0] - marks["steady"][0],
        "steady_cpu_s": end[1] - marks["steady"][1],
        "steps": (epochs - 1) * math.ceil(n / 128),
    }
    for kind, times in calls.items():
        if times:
            out[f"{kind}_cpu_ms"] = statistics.median(times) * 1e3
    if monitor is not None:
        out["skipped_events"] = monitor.skipped_events
        out["batch_events"] = monitor._batch.events if monitor._batch else 0
        out["probe_events"] = monitor._event
    return out


def _run_in_step_backend(backend: str, args) -> dict:
    """The training-batch source's table for one backend; its ratios."""
    child = functools.partial(_child, backend=backend)
    epochs = 2 if args.smoke else 3
    samples = args.samples or (2048 if args.smoke else None)
    extra = ["--samples", str(samples)] if samples else []
    summary = {}
    print(f"\n# KERAS_BACKEND={backend}: training-batch source")
    for workload in ("mlp", "cnn"):
        rounds = [
            {
                c: child(["--in-step-one", workload, c, str(epochs), *extra])
                for c in IN_STEP_CONFIGS
            }
            for _ in range(args.repeat)
        ]
        plain = rounds[0]["plain"]
        print(
            f"\n## {workload}: {plain['steps']} steady steps "
            f"({args.repeat} interleaved rounds; ratios to plain fit "
            "within each round, median and range)"
        )
        print(
            "| configuration | steady wall | steady CPU | whole fit wall "
            "| whole fit CPU | events (batch, probe) |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for c in IN_STEP_CONFIGS:
            cells = []
            for key in ("steady_s", "steady_cpu_s", "fit_s", "fit_cpu_s"):
                ratios = sorted(r[c][key] / r["plain"][key] for r in rounds)
                median = statistics.median(ratios)
                summary[workload, c, key] = median
                cells.append(f"{median:.3f} ({ratios[0]:.2f}-{ratios[-1]:.2f})")
            last = rounds[-1][c]
            events = (
                f"{last['batch_events']}, {last['probe_events']}"
                if "batch_events" in last
                else "-"
            )
            print(f"| {c} | " + " | ".join(cells) + f" | {events} |")
        print(
            "\nper call of the train function, process CPU ms (medians of "
            "the steady epochs, last round): plain step, measuring step, "
            "host work per training-batch event"
        )
        for c in IN_STEP_CONFIGS[1:-1]:
            r = rounds[-1][c]
            cells = [
                f"{r[k]:.2f}" if k in r else "-"
                for k in ("plain_cpu_ms", "measuring_cpu_ms", "host_cpu_ms")
            ]
            print(f"{c}: " + ", ".join(cells))
    return summary


def _print_in_step_side_by_side(summary: dict) -> None:
    backends_ = list(summary)
    print(
        "\n## training-batch source, side by side: steady-state ratio to "
        "plain fit (wall, CPU)"
    )
    print("| workload | configuration | " + " | ".join(backends_) + " |")
    print("|---|---|" + "---:|" * len(backends_))
    for workload in ("mlp", "cnn"):
        for c in IN_STEP_CONFIGS[1:]:
            cells = [
                f"{summary[b][workload, c, 'steady_s']:.2f}, "
                f"{summary[b][workload, c, 'steady_cpu_s']:.2f}"
                for b in backends_
            ]
            print(f"| {workload} | {c} | " + " | ".join(cells) + " |")


def run_depth(depth: int, smoke: bool) -> dict:
    """Probe build and call time of a depth-`depth` ReLU MLP."""
    import keras

    from kerasinit.monitor.probe import Probe
    from kerasinit.monitor.selection import monitored_layers

    keras.utils.set_random_seed(0)
    model = _model("mlp", depth=depth)
    x, y = _data("mlp", 128)
    p = Probe(model, monitored_layers(model))
    t = time.perf_counter()
    p.build(
        keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y), None
    )
    p()
    first_s = time.perf_counter() - t
    eager_s = _median_seconds(p, n=3)
    t = time.perf_counter()
    p.start_compiling()
    p.wait()
    compile_s = time.perf_counter() - t
    probe_s = _median_seconds(p)
    model.train_on_batch(x, y)
    step_s = _median_seconds(lambda: model.train_on_batch(x, y))
    return {
        "depth": depth,
        "first_s": first_s,
        "eager_s": eager_s,
        "compile_s": compile_s,
        "probe_s": probe_s,
        "step_s": step_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        / 1024,
    }


def run_compile_timing(workload: str, when: str, smoke: bool) -> dict:
    """What compiling the probe in the background costs training, by when.

    ``when`` is ``"none"`` (no probe), ``"begin"`` (compiling starts in
    `on_train_begin`, while Keras traces its training function during the
    first step) or ``"after_first_step"`` (what `HealthMonitor` does).
    Returns the first step's time and the time from the second step to the
    end of `fit`.
    """
    import keras

    from kerasinit.monitor.probe import Probe
    from kerasinit.monitor.selection import monitored_layers

    steps = 12 if smoke else 60
    keras.utils.set_random_seed(0)
    x, y = _data(workload, steps * 128)
    model = _model(workload)
    marks = {}

    class Timer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if when != "none":
                self.probe = Probe(model, monitored_layers(model))
                self.probe.build(
                    keras.ops.convert_to_tensor(x[:512]),
                    keras.ops.convert_to_tensor(y[:512]),
                )
                if when == "begin":
                    self.probe.start_compiling()
            marks["begin"] = time.perf_counter()

        def on_train_batch_begin(self, batch, logs=None):
            if batch == 1 and when == "after_first_step":
                self.probe.start_compiling()
            marks[batch] = time.perf_counter()

        def on_train_end(self, logs=None):
            # A compilation that outlasts the steps is waited for and
            # counted.
            if when != "none":
                self.probe.wait()
            marks["end"] = time.perf_counter()

    model.fit(x, y, batch_size=128, epochs=1, verbose=0, callbacks=[Timer()])
    return {
        "first_step_s": marks[1] - marks["begin"],
        "later_steps_s": marks["end"] - marks[1],
    }


# The statistics modules, and the modules they import, since they were split
# out of one `stats.py`.
_STATS_MODULES = ("activation_stats", "gradient_stats", "rows", "histograms")


def _stats_at(revision: str):
    """The statistics functions as they were at a git revision."""
    import importlib.util
    import re
    import types

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    listed = subprocess.run(
        ["git", "ls-tree", "--name-only", revision, "kerasinit/monitor/"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if "kerasinit/monitor/activation_stats.py" in listed:
        # A package of their own, importing one another under its name, so
        # they load beside the working tree's.
        package = os.path.join(tempfile.mkdtemp(), "kerasinit_at_revision")
        os.makedirs(package)
        open(os.path.join(package, "__init__.py"), "w").close()
        names = [f"{name}.py" for name in _STATS_MODULES]
        # The per-backend operations (bucket counting among them), where
        # the revision has them, are the revision's own too.
        backends_dir = subprocess.run(
            [
                "git",
                "ls-tree",
                "--name-only",
                revision,
                "kerasinit/monitor/backends/",
            ],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        if backends_dir:
            os.makedirs(os.path.join(package, "backends"))
            names += [
                path[len("kerasinit/monitor/") :]
                for path in backends_dir
                if path.endswith(".py")
            ]
        for name in names:
            source = subprocess.run(
                ["git", "show", f"{revision}:kerasinit/monitor/{name}"],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            source = re.sub(
                r"kerasinit\.monitor(?=[ .])", "kerasinit_at_revision", source
            )
            with open(os.path.join(package, name), "w") as f:
                f.write(source)
        sys.path.insert(0, os.path.dirname(package))
        import importlib

        act = importlib.import_module("kerasinit_at_revision.activation_stats")
        grad = importlib.import_module("kerasinit_at_revision.gradient_stats")
        return types.SimpleNamespace(
            activation_stats_many=act.activation_stats_many,
            gradient_stats_many=grad.gradient_stats_many,
        )
    source = subprocess.run(
        ["git", "show", f"{revision}:kerasinit/monitor/stats.py"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = os.path.join(tempfile.mkdtemp(), "stats_at_revision.py")
    with open(path, "w") as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location("stats_at_revision", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if hasattr(module, "ACTIVATION_SCALARS"):
        # The single statistics module of earlier revisions reads its
        # columns from the working tree's schema, which now names metrics
        # it does not compute: it computes the first eight and four.
        module.ACTIVATION_SCALARS = module.ACTIVATION_SCALARS[:8]
        module.GRADIENT_SCALARS = module.GRADIENT_SCALARS[:4]
    return module


def _working_tree_stats():
    """The working tree's statistics functions, as one namespace."""
    import types

    from kerasinit.monitor import activation_stats, gradient_stats

    return types.SimpleNamespace(
        activation_stats_many=activation_stats.activation_stats_many,
        gradient_stats_many=gradient_stats.gradient_stats_many,
    )


def _named(module, result: dict, kind: str) -> dict:
    """A statistics result as ``{name: array}``, whatever its revision."""
    import numpy as np
    from keras import ops

    if "columns" in result:
        out = {k: ops.convert_to_numpy(v) for k, v in result["columns"].items()}
    else:
        names = getattr(module, f"{kind}_SCALARS")
        out = dict(zip(names, np.asarray(result["scalars"]).T))
    for key in ("counts", "range"):
        if key in result:
            out[key] = np.asarray(ops.convert_to_numpy(result[key]))
    return out


def _bound(fn, module):
    """``fn(module)`` as a function of no arguments, to compile."""

    def call():
        return fn(module)

    return call


def run_stats(against: str | None, repeat: int) -> None:
    """Time the statistics alone on the reference workloads' shapes.

    ReLU outputs and gradients of the shapes the MLP and the CNN give the
    probe (512 examples), measured eagerly and compiled. With `against`, the
    statistics module of that git revision runs too, interleaved with the
    working tree's, and the table says whether both give the same numbers.
    """
    import keras
    import numpy as np

    from kerasinit.monitor import backends

    backend = backends.current()
    constant = keras.ops.convert_to_tensor
    modules = {"working tree": _working_tree_stats()}
    if against:
        modules[against] = _stats_at(against)
    rng = np.random.default_rng(0)
    workloads = {
        "mlp": (
            [(512, 256)] * 8,
            [[(784, 256), (256,)]] + [[(256, 256), (256,)]] * 7,
        ),
        # The ReLUs' statistics; their gradients are those of the
        # BatchNormalization before them, and the output layer's.
        "cnn": (
            [(512, 28, 28, 16), (512, 14, 14, 32)],
            [[(16,), (16,)], [(32,), (32,)], [(1568, 10), (10,)]],
        ),
    }
    print(f"\n## statistics alone ({repeat} interleaved calls, medians)")
    print(
        "| workload | statistics | stats module | eager (ms) | compiled (ms) "
        "| same numbers as the working tree |"
    )
    print("|---|---|---|---:|---:|---|")
    for workload, (act_shapes, layers) in workloads.items():
        outputs = [
            constant(np.maximum(rng.normal(size=s), 0.0).astype("f4"))
            for s in act_shapes
        ]
        groups = [
            (
                [constant(rng.normal(size=s).astype("f4")) for s in layer],
                [constant(rng.normal(size=s).astype("f4")) for s in layer],
            )
            for layer in layers
        ]

        def activations(m, outputs=outputs):
            return m.activation_stats_many(
                outputs,
                dead_values=[0.0] * len(outputs),
                saturation=[None] * len(outputs),
                masked=False,
            )

        def gradients(m, groups=groups):
            return m.gradient_stats_many(groups, masked=False)

        def one_read(m, tensors):
            # The floor of any statistic: every value read once (a sum).
            return {"sum": keras.ops.stack([keras.ops.sum(t) for t in tensors])}

        gradient_tensors = [t for gs, ws in groups for t in gs + ws]
        for name, fn, kind in (
            ("activations", activations, "ACTIVATION"),
            (
                "activations: one read",
                functools.partial(one_read, tensors=outputs),
                None,
            ),
            ("gradients", gradients, "GRADIENT"),
            (
                "gradients and weights: one read",
                functools.partial(one_read, tensors=gradient_tensors),
                None,
            ),
        ):
            calls = {}
            for label, m in modules.items():
                calls[label, "eager"] = functools.partial(fn, m)
                calls[label, "compiled"] = backend.compile(_bound(fn, m), ())
            results = {k: c() for k, c in calls.items()}
            times = {k: [] for k in calls}
            for _ in range(repeat):
                for k, c in calls.items():
                    t = time.perf_counter()
                    keras.tree.map_structure(keras.ops.convert_to_numpy, c())
                    times[k].append(time.perf_counter() - t)
            if kind is not None:
                reference = _named(
                    modules["working tree"],
                    results["working tree", "eager"],
                    kind,
                )
            for label, m in modules.items():
                verdict = "-"
                if kind is not None:
                    # Every statistic both revisions compute; where one
                    # differs, by how much (largest relative difference).
                    named = _named(m, results[label, "eager"], kind)
                    differ = []
                    for key in sorted(named.keys() & reference.keys()):
                        a = np.asarray(named[key], np.float64)
                        b = np.asarray(reference[key], np.float64)
                        if np.array_equal(a, b, equal_nan=True):
                            continue
                        scale = np.maximum(np.abs(b), np.finfo(np.float32).tiny)
                        relative = np.nanmax(np.abs(a - b) / scale)
                        differ.append(f"{key} by {relative:.1e}")
                    verdict = "no: " + ", ".join(differ) if differ else "yes"
                eager = statistics.median(times[label, "eager"]) * 1e3
                compiled = statistics.median(times[label, "compiled"]) * 1e3
                print(
                    f"| {workload} | {name} | {label} | {eager:.1f} | "
                    f"{compiled:.1f} | {verdict} |"
                )


def run_probe_cpu(workload: str) -> dict:
    """Process CPU time of one compiled probe event, median of 15 calls.

    CPU time, unlike wall time, barely moves with the load of other
    processes, so two revisions' per-event costs can be compared run by
    run: run this under each (``git archive REV | tar -x -C DIR``, then
    ``PYTHONPATH=DIR python DIR/benchmarks/overhead.py --probe-cpu mlp``).
    """
    try:
        from kerasinit.monitor.selection import monitored_layers
    except ImportError:  # revisions before the selection module
        from kerasinit.monitor.probe import monitored_layers
    import keras

    from kerasinit.monitor.probe import Probe

    keras.utils.set_random_seed(0)
    model = _model(workload)
    x, y = _data(workload, 512)
    p = Probe(model, monitored_layers(model))
    p.build(keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y))
    p()
    p.start_compiling()
    p.wait()
    p()
    times = []
    for _ in range(15):
        start = time.process_time()
        p()
        times.append(time.process_time() - start)
    return {"workload": workload, "cpu_ms": statistics.median(times) * 1e3}


def _child(
    args: list[str], backend: str | None = None, script: str = __file__
) -> dict:
    """Run `script` (this one by default) with `args`; its last JSON line."""
    env = dict(os.environ)
    if backend is not None:
        env["KERAS_BACKEND"] = backend
    proc = subprocess.run(
        [sys.executable, os.path.abspath(script), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument(
        "--samples",
        type=int,
        help="the MLP's training samples, a quarter of it the CNN's "
        "(default 20,000, or 512 with --smoke)",
    )
    parser.add_argument("--one", nargs=2, metavar=("WORKLOAD", "CONFIG"))
    parser.add_argument("--depth", type=int)
    parser.add_argument(
        "--in-step",
        action="store_true",
        help="the training-batch source's table, and nothing else",
    )
    parser.add_argument(
        "--in-step-one",
        nargs=3,
        metavar=("WORKLOAD", "CONFIG", "EPOCHS"),
    )
    parser.add_argument(
        "--compile-timing", nargs=2, metavar=("WORKLOAD", "WHEN")
    )
    parser.add_argument(
        "--probe-cpu",
        metavar="WORKLOAD",
        help="CPU time of one compiled probe event (mlp or cnn)",
    )
    parser.add_argument(
        "--stats",
        action="store_true",
        help="time the statistics alone, and nothing else",
    )
    parser.add_argument(
        "--against",
        metavar="REVISION",
        help="with --stats: also the statistics of this git revision",
    )
    parser.add_argument(
        "--backend",
        default=os.environ["KERAS_BACKEND"],
        help="Keras backends to measure, comma-separated "
        "(tensorflow, jax, torch); default: KERAS_BACKEND or tensorflow",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="rounds of the fit-time configurations (default 5)",
    )
    args = parser.parse_args()
    if args.one:
        print(
            json.dumps(
                run_one(*args.one, smoke=args.smoke, samples=args.samples)
            )
        )
        return
    if args.depth:
        print(json.dumps(run_depth(args.depth, smoke=args.smoke)))
        return
    if args.in_step_one:
        workload, config, epochs = args.in_step_one
        print(
            json.dumps(run_in_step(workload, config, args.samples, int(epochs)))
        )
        return
    if args.compile_timing:
        print(json.dumps(run_compile_timing(*args.compile_timing, args.smoke)))
        return
    if args.probe_cpu:
        print(json.dumps(run_probe_cpu(args.probe_cpu)))
        return
    if args.stats:
        run_stats(args.against, repeat=3 if args.smoke else 15)
        return
    import platform

    print(
        f"# {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, smoke={args.smoke}, samples={args.samples}"
    )
    chosen = args.backend.split(",")
    if args.in_step:
        summary = {b: _run_in_step_backend(b, args) for b in chosen}
        if len(chosen) > 1:
            _print_in_step_side_by_side(summary)
        return
    summary = {backend: _run_backend(backend, args) for backend in chosen}
    if len(chosen) > 1:
        _print_side_by_side(summary)


def _run_backend(backend: str, args) -> dict:
    """Every table for one Keras backend; returns its ratios."""
    smoke = ["--smoke"] if args.smoke else []
    samples = [] if args.samples is None else ["--samples", str(args.samples)]
    child = functools.partial(_child, backend=backend)
    summary = {}
    print(f"\n# KERAS_BACKEND={backend}")
    for workload in ("mlp", "cnn"):
        rounds = [
            {
                c: child(["--one", workload, c, *smoke, *samples])
                for c in CONFIGS
            }
            for _ in range(args.repeat)
        ]
        print(f"\n## {workload}: fit time ({args.repeat} rounds)")
        print(
            "| configuration | fit (s), median | ratio to plain, median "
            "| ratio range | best fit / best plain fit "
            "| in monitor hooks / plain fit | peak RSS (MiB) |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        best_plain = min(r["plain"]["fit_s"] for r in rounds)
        for c in CONFIGS:
            fits = [r[c]["fit_s"] for r in rounds]
            ratios = sorted(r[c]["fit_s"] / r["plain"]["fit_s"] for r in rounds)
            hooks = "-"
            if c.startswith("monitor"):
                shares = [r[c]["hooks_s"] / r["plain"]["fit_s"] for r in rounds]
                hooks = f"{statistics.median(shares):.3f}"
            print(
                f"| {c} | {statistics.median(fits):.2f} | "
                f"{statistics.median(ratios):.3f} | "
                f"{ratios[0]:.3f} - {ratios[-1]:.3f} | "
                f"{min(fits) / best_plain:.3f} | "
                f"{hooks} | "
                f"{max(r[c]['peak_rss_mb'] for r in rounds):.0f} |"
            )
        for c in CONFIGS:
            summary[workload, c] = tuple(
                statistics.median(r[c][key] / r["plain"][key] for r in rounds)
                for key in ("fit_s", "fit_cpu_s")
            )
        m = [r["monitor"] for r in rounds]
        _print_floor(rounds)
        probe = statistics.median(x["probe_s_per_sample"] for x in m)
        step = statistics.median(x["step_s_per_sample"] for x in m)
        print(
            f"\ncompiled probe call: {probe * 512 * 1e3:.1f} ms for 512 "
            f"samples = {probe * 1e6:.1f} us/sample; training step: "
            f"{step * 1e6:.1f} us/sample; ratio {probe / step:.2f} (medians)"
        )
        summary[workload, "probe / step"] = (probe / step, math.nan)
        e = statistics.median(x["eager_s_per_sample"] for x in m)
        print(
            f"eager probe call: {e * 512 * 1e3:.1f} ms for 512 samples; "
            f"ratio to a training step {e / step:.2f}; compiled in fit in "
            f"{sum(x['compiled_in_fit'] for x in m)} of {len(m)} rounds"
        )
    print("\n## depth sweep (ReLU MLP, width 256, probe batch 128)")
    print(
        "| layers | first call, eager (s) | later eager call (s) | "
        "compiling (s) | compiled call (ms) | train step (ms) | "
        "compiled call / step | peak RSS (MiB) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for depth in _sizes(args.smoke)["depths"]:
        r = child(["--depth", str(depth), *smoke])
        print(
            f"| {depth} | {r['first_s']:.2f} | {r['eager_s']:.2f} | "
            f"{r['compile_s']:.2f} | "
            f"{r['probe_s'] * 1e3:.1f} | "
            f"{r['step_s'] * 1e3:.1f} | {r['probe_s'] / r['step_s']:.2f} | "
            f"{r['peak_rss_mb']:.0f} |"
        )

    _print_compile_timing(args, child)
    return summary


def _print_side_by_side(summary: dict) -> None:
    """The fit-time ratios of every backend, wall and CPU time each."""
    backends = list(summary)
    print("\n## side by side: time / plain fit's, medians (wall, CPU)")
    print("| workload | configuration | " + " | ".join(backends) + " |")
    print("|---|---|" + "---:|" * len(backends))
    for key in summary[backends[0]]:
        cells = " | ".join(
            ", ".join(
                "-" if math.isnan(v) else f"{v:.3f}"
                for v in summary[b].get(key, (math.nan,) * 2)
            )
            for b in backends
        )
        print(f"| {key[0]} | {key[1]} | {cells} |")


def _print_floor(rounds: list[dict]) -> None:
    """What the monitor would cost if nothing but its probe calls did.

    The pre-flight runs before the first update, so before anything could
    have been compiled in the background: its cost is taken as measured
    (the `on_train_begin` hook). Every later event is counted at the cost
    of one compiled call, and compiling as free.
    """
    call = statistics.median(r["monitor"]["probe_s"] for r in rounds)
    print(
        "\n| configuration | events | pre-flight (s) | floor: pre-flight + "
        "later events at one compiled call each, compiling free / plain "
        "fit |"
    )
    print("|---|---:|---:|---:|")
    for c in CONFIGS:
        if not c.startswith("monitor"):
            continue
        events = statistics.median(r[c]["events"] for r in rounds)
        pre = statistics.median(r[c]["preflight_s"] for r in rounds)
        floor = statistics.median(
            (r[c]["preflight_s"] + (r[c]["events"] - 1) * call)
            / r["plain"]["fit_s"]
            for r in rounds
        )
        print(f"| {c} | {events:.0f} | {pre:.2f} | {floor:.3f} |")


def _print_compile_timing(args, child) -> None:
    whens = ("none", "begin", "after_first_step")
    print(
        "\n## compiling in the background: what it adds to training "
        f"({args.repeat} rounds, medians)"
    )
    print(
        "| workload | compiling starts | first step (s) | later steps (s) "
        "| added to training (s) | rounds where it adds less than the "
        "other start |"
    )
    print("|---|---|---:|---:|---:|---:|")
    other = {"begin": "after_first_step", "after_first_step": "begin"}
    smoke = ["--smoke"] if args.smoke else []
    for workload in ("mlp", "cnn"):
        rounds = [
            {w: child(["--compile-timing", workload, w, *smoke]) for w in whens}
            for _ in range(args.repeat)
        ]
        # Each round's own difference to its run without compiling: the
        # machine's drift between rounds cancels.
        added = [
            {w: sum(r[w].values()) - sum(r["none"].values()) for w in whens}
            for r in rounds
        ]
        for w in whens:
            wins = (
                f"{sum(a[w] < a[other[w]] for a in added)} of {len(added)}"
                if w in other
                else "-"
            )
            first = statistics.median(r[w]["first_step_s"] for r in rounds)
            later = statistics.median(r[w]["later_steps_s"] for r in rounds)
            total = statistics.median(a[w] for a in added)
            print(
                f"| {workload} | {w} | {first:.2f} | {later:.2f} | "
                f"{total:+.2f} | {wins} |"
            )


if __name__ == "__main__":
    main()
