"""`kerasinit demo`: the classic initialization experiments, monitored.

Three experiments, each a set of runs that differ only in how the weights
start, all trained with `kerasinit.callbacks.HealthMonitor` on generated data
(`kerasinit.datasets`), so that nothing is downloaded:

* ``mlp``: an MLP on `kerasinit.datasets.spirals` for every activation in
  `ACTIVATIONS` x every initializer in `INITIALIZERS` (the grid of the
  initialization papers: zeros never breaks symmetry, N(0, 1) saturates
  sigmoid/tanh and blows up ReLU, N(0, 0.001) starves the signal, the
  variance-preserving schemes train).
* ``mlp50``: a 50-layer ReLU MLP, where only a scheme that preserves the
  variance through depth (He, LSUV) keeps a signal at the top.
* ``cnn_bn``: a small CNN with BatchNormalization on
  `kerasinit.datasets.shapes`, where normalization makes the scale of the
  initial weights matter far less.

Every run lands in ``logdir/<experiment>/<run>/``: the monitor's records
under ``kerasinit/`` and Keras's loss curves under ``train/``, so TensorBoard
shows each as its own run.

Why runs share a compiled model: tracing a Keras train step costs seconds
per model on a CPU, which times fifty runs is most of the demo. The runs of
one experiment and activation have the same architecture, so one compiled
model is re-initialized in place for each run (every weight restored, the
kernels re-drawn, the optimizer state zeroed), which gives the same result
as building a fresh model with that initializer.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "DemoConfig",
    "RunResult",
    "default_jobs",
    "run_demo",
]

#: Activations of the ``mlp`` grid, as Keras activation names.
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "selu", "gelu")
#: Initializers of the ``mlp`` grid, in display order.
INITIALIZERS = (
    "zeros",
    "normal_1",
    "normal_0.001",
    "glorot",
    "he",
    "lecun_kumar",
    "lsuv",
)
_INIT_LABELS = {
    "zeros": "zeros",
    "normal_1": "N(0,1)",
    "normal_0.001": "N(0,.001)",
    "glorot": "Glorot",
    "he": "He",
    "lecun_kumar": "LeCun/Kumar",
    "lsuv": "LSUV",
}
# keras.activations.leaky_relu's slope; He must be told it (the Keras layer
# default is 0.3, PyTorch's 0.01: never assume one).
_LEAKY_SLOPE = 0.2


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Sizes of one demo run; `quick` and full differ only in these.

    Attributes:
        epochs: epochs per run.
        n_train: training examples per experiment.
        n_val: held-out examples the summary's accuracy and loss come from.
        n_probe: examples in the health monitor's probe batch.
        width: units per hidden layer of the MLPs.
        depth: hidden layers of the ``mlp`` grid.
        deep_depth: hidden layers of ``mlp50``.
        deep_width: units per hidden layer of ``mlp50``.
        image_size: side of the ``cnn_bn`` images.
        batch_size: examples per training step.
        histograms: whether the monitor writes histograms.
        monitor_every: epochs between the monitor's logging events (it
            always also logs once before training).
        deep_monitor_stride: the monitor watches every n-th hidden layer of
            ``mlp50`` (and its last); its cost grows with the layer count.
        curves: whether Keras's TensorBoard callback also writes loss and
            accuracy curves under ``<run>/train/``.
        lr_factor: multiplies every experiment's learning rate; larger
            batches take larger steps.
    """

    epochs: int
    n_train: int
    n_val: int
    n_probe: int
    width: int
    depth: int
    deep_depth: int
    deep_width: int
    image_size: int
    batch_size: int
    histograms: bool = True
    monitor_every: int = 1
    deep_monitor_stride: int = 1
    curves: bool = True
    lr_factor: float = 1.0

    @classmethod
    def full(cls, epochs: int | None = None) -> DemoConfig:
        return cls(
            epochs=epochs or 6,
            n_train=2048,
            n_val=512,
            n_probe=256,
            width=64,
            depth=5,
            deep_depth=50,
            deep_width=64,
            image_size=16,
            batch_size=64,
            lr_factor=2.0,
            monitor_every=2,
            deep_monitor_stride=5,
        )

    @classmethod
    def quick(cls, epochs: int | None = None) -> DemoConfig:
        return cls(
            epochs=epochs or 4,
            n_train=1024,
            n_val=256,
            n_probe=128,
            width=32,
            depth=4,
            deep_depth=50,
            deep_width=32,
            image_size=12,
            batch_size=64,
            lr_factor=2.0,
            # Each logging event, each monitored layer and each extra writer
            # costs about as much as an epoch of these small runs.
            histograms=False,
            monitor_every=epochs or 4,
            deep_monitor_stride=5,
            curves=False,
        )


@dataclasses.dataclass
class RunResult:
    """The outcome of one run.

    Attributes:
        experiment: ``"mlp"``, ``"mlp50"`` or ``"cnn_bn"``.
        activation: the hidden layers' activation.
        initializer: key in `INITIALIZERS`.
        log_dir: where the run was written.
        accuracy: held-out accuracy after training (NaN if the run failed).
        loss: held-out loss after training (NaN if diverged or failed).
        findings: finding kind -> how many the monitor reported.
        seconds: wall time of the run.
        error: why the run failed, or ``None``.
    """

    experiment: str
    activation: str
    initializer: str
    log_dir: str
    accuracy: float = float("nan")
    loss: float = float("nan")
    findings: dict[str, int] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    @property
    def name(self) -> str:
        return os.path.basename(self.log_dir)


def _make_initializer(key: str, activation: str, seed: int):
    import keras

    from kerasinit import initializers as ki_init

    if key == "zeros":
        return keras.initializers.Zeros()
    if key == "normal_1":
        return keras.initializers.RandomNormal(stddev=1.0, seed=seed)
    if key == "normal_0.001":
        return keras.initializers.RandomNormal(stddev=0.001, seed=seed)
    if key == "glorot":
        return ki_init.Glorot(seed=seed)
    if key == "he":
        slope = _LEAKY_SLOPE if activation == "leaky_relu" else None
        return ki_init.He(activation, negative_slope=slope, seed=seed)
    if key in ("lecun_kumar", "lsuv"):
        # Kumar's rule needs an activation differentiable at 0; for the
        # kinked ones (ReLU family, SELU) LeCun is the classic choice.
        # LSUV starts from the same draw and then rescales on data.
        try:
            return ki_init.Kumar(activation, seed=seed)
        except ValueError:
            return ki_init.LeCun(seed=seed)
    raise ValueError(
        f"Expected `initializer` to be one of {INITIALIZERS}. "
        f"Received: initializer={key!r}"
    )


def _kernel_seed(seed: int, index: int) -> int:
    return seed * 1000 + index


def _mlp(n_features, n_classes, width, depth, activation, name):
    import keras

    layers = [keras.Input((n_features,))]
    for i in range(depth):
        layers.append(
            keras.layers.Dense(width, activation=activation, name=f"dense_{i}")
        )
    layers.append(keras.layers.Dense(n_classes, name="logits"))
    return keras.Sequential(layers, name=name)


def _cnn(size, n_classes, name):
    import keras

    L = keras.layers
    # momentum 0.9 so the moving statistics used at evaluation catch up
    # within the few hundred steps of a demo run.
    return keras.Sequential(
        [
            keras.Input((size, size, 1)),
            L.Conv2D(8, 3, padding="same", use_bias=False, name="conv_0"),
            L.BatchNormalization(momentum=0.9, name="bn_0"),
            L.ReLU(name="relu_0"),
            L.MaxPooling2D(name="pool_0"),
            L.Conv2D(16, 3, padding="same", use_bias=False, name="conv_1"),
            L.BatchNormalization(momentum=0.9, name="bn_1"),
            L.ReLU(name="relu_1"),
            L.GlobalAveragePooling2D(name="gap"),
            L.Dense(n_classes, name="logits"),
        ],
        name=name,
    )


class _Reinit:
    """A compiled model that can be put back to a fresh state per run."""

    def __init__(self, model, learning_rate: float):
        import keras

        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            # XLA compilation costs more than it saves on runs this short.
            jit_compile=False,
        )
        model.optimizer.build(model.trainable_variables)
        self.model = model
        self.weights = model.get_weights()
        self.opt_state = [
            np.asarray(v.numpy()) for v in model.optimizer.variables
        ]

    def reset(self, make_initializer: Callable[[int], object]) -> None:
        """Restore every weight, then draw each kernel afresh.

        Args:
            make_initializer: `index -> initializer` for the index-th kernel.
                A seeded initializer draws the same values on every call,
                so each kernel gets its own seed; one shared instance would
                give every same-shaped layer the same matrix.
        """
        self.model.set_weights(self.weights)
        for v, value in zip(self.model.optimizer.variables, self.opt_state):
            v.assign(value)
        index = 0
        for layer in self.model.layers:
            kernel = getattr(layer, "kernel", None)
            if kernel is None:
                continue
            initializer = make_initializer(index)
            index += 1
            kernel.assign(initializer(tuple(kernel.shape), dtype=kernel.dtype))
            # Keep the config truthful: a model saved after the run reports
            # the initializer it actually started from.
            layer.kernel_initializer = initializer


def _monitored(experiment: str, config: DemoConfig):
    if experiment != "mlp50" or config.deep_monitor_stride == 1:
        return None
    last = config.deep_depth - 1
    names = {
        f"dense_{i}"
        for i in range(0, config.deep_depth, config.deep_monitor_stride)
    } | {f"dense_{last}"}
    return sorted(names)


def _count(findings) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.kind] = counts.get(finding.kind, 0) + 1
    return counts


def _fmt(value: float, digits: int = 3) -> str:
    if value is None or not np.isfinite(value):
        return "nan"
    return f"{value:.{digits}f}"


def _train_run(
    reinit: _Reinit,
    result: RunResult,
    data,
    config: DemoConfig,
    seed: int,
) -> None:
    import keras

    from kerasinit import lsuv
    from kerasinit.callbacks import HealthMonitor

    (x, y), (x_val, y_val), (x_probe, y_probe) = data
    keras.utils.set_random_seed(seed)
    reinit.reset(
        lambda index: _make_initializer(
            result.initializer, result.activation, _kernel_seed(seed, index)
        )
    )
    if result.initializer == "lsuv":
        lsuv(reinit.model, x[: config.n_probe], seed=seed)
    monitor = HealthMonitor(
        log_dir=result.log_dir,
        probe=(x_probe, y_probe),
        layers=_monitored(result.experiment, config),
        every_n_epochs=config.monitor_every,
        histograms=config.histograms,
        # Counted into the summary table instead of one warning each.
        warn=False,
        # Every run of an architecture re-initializes the same model, and the
        # compiled probe is kept on the model: compiled once, it serves all
        # of that architecture's runs.
        compile=True,
    )
    callbacks = [monitor]
    if config.curves:
        callbacks.append(
            keras.callbacks.TensorBoard(
                log_dir=result.log_dir,
                write_graph=False,
                histogram_freq=0,
                profile_batch=0,
            )
        )
    reinit.model.fit(
        x,
        y,
        epochs=config.epochs,
        batch_size=config.batch_size,
        callbacks=callbacks,
        verbose=0,
    )
    # One direct forward pass: `evaluate` would build a data pipeline per
    # run, which costs more than these held-out sets take to compute.
    logits = reinit.model(x_val, training=False)
    loss = reinit.model.loss(y_val, logits)
    predicted = np.argmax(keras.ops.convert_to_numpy(logits), axis=-1)
    result.loss = float(keras.ops.convert_to_numpy(loss))
    result.accuracy = float(np.mean(predicted == np.asarray(y_val)))
    result.findings = _count(monitor.findings)


def _experiments(config: DemoConfig, seed: int):
    """Yields (experiment, activation, model builder, lr, inits, data)."""
    from kerasinit import datasets

    n = config.n_train + config.n_val
    # Half a turn per arm: a well-initialized MLP separates the arms within
    # a few epochs, one that does not train stays at chance.
    x, y = datasets.spirals(n, n_classes=3, n_features=16, turns=0.5, seed=seed)
    spiral = (
        (x[: config.n_train], y[: config.n_train]),
        (x[config.n_train :], y[config.n_train :]),
        (
            x[config.n_train :][: config.n_probe],
            y[config.n_train :][: config.n_probe],
        ),
    )
    for activation in ACTIVATIONS:
        yield (
            "mlp",
            activation,
            lambda a=activation: _mlp(
                16, 3, config.width, config.depth, a, f"mlp_{a}"
            ),
            5e-3,
            INITIALIZERS,
            spiral,
        )
    yield (
        "mlp50",
        "relu",
        lambda: _mlp(
            16,
            3,
            config.deep_width,
            config.deep_depth,
            "relu",
            "mlp50_relu",
        ),
        1e-3,
        ("normal_1", "glorot", "he", "lsuv"),
        spiral,
    )
    xi, yi = datasets.shapes(n, size=config.image_size, seed=seed)
    images = (
        (xi[: config.n_train], yi[: config.n_train]),
        (xi[config.n_train :], yi[config.n_train :]),
        (
            xi[config.n_train :][: config.n_probe],
            yi[config.n_train :][: config.n_probe],
        ),
    )
    yield (
        "cnn_bn",
        "relu",
        lambda: _cnn(config.image_size, 4, "cnn_bn"),
        1e-2,
        ("normal_1", "normal_0.001", "glorot", "he"),
        images,
    )


def _findings_text(counts: dict[str, int]) -> str:
    if not counts:
        return "-"
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))


def _print_table(rows: list[list[str]], header: list[str], out) -> None:
    widths = [
        max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))
    ]

    def line(cells):
        return "  ".join(
            str(c).ljust(w) if i in (0, len(cells) - 1) else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    print(line(header), file=out)
    print("  ".join("-" * w for w in widths).rstrip(), file=out)
    for row in rows:
        print(line(row), file=out)


def _print_summary(results: list[RunResult], logdir: str, out) -> None:
    print("", file=out)
    grid = [r for r in results if r.experiment == "mlp"]
    if grid:
        print(
            "mlp: held-out accuracy, activation x initializer "
            "(3 classes: chance is 0.33)",
            file=out,
        )
        by_key = {(r.activation, r.initializer): r for r in grid}
        inits = [
            i for i in INITIALIZERS if any(r.initializer == i for r in grid)
        ]
        rows = []
        for activation in ACTIVATIONS:
            row = [activation]
            for init in inits:
                r = by_key.get((activation, init))
                row.append("" if r is None else _fmt(r.accuracy, 2))
            rows.append(row + [""])
        _print_table(rows, ["", *(_INIT_LABELS[i] for i in inits), ""], out)
        print("", file=out)
    print("All runs (accuracy and loss on held-out data):", file=out)
    rows = []
    for r in results:
        status = r.error if r.error else _findings_text(r.findings)
        rows.append(
            [
                f"{r.experiment}/{r.name}",
                _fmt(r.accuracy, 3),
                _fmt(r.loss, 3),
                str(sum(r.findings.values())),
                status,
            ]
        )
    _print_table(rows, ["run", "accuracy", "loss", "findings", "by kind"], out)
    print("", file=out)
    print("View the runs in TensorBoard (Scalars, Histograms and the", file=out)
    print("kerasinit dashboard):", file=out)
    print("", file=out)
    print(f"    tensorboard --logdir {_shell_quote(logdir)}", file=out)
    print("", file=out)


def _shell_quote(path: str) -> str:
    import shlex

    return shlex.quote(path)


def run_demo(
    logdir: str = os.path.join("runs", "kerasinit-demo"),
    epochs: int | None = None,
    quick: bool = False,
    seed: int = 0,
    out: TextIO | None = None,
    config: DemoConfig | None = None,
    only: Callable[[str, str, str], bool] | None = None,
    jobs: int | None = None,
) -> list[RunResult]:
    """Run the demo experiments and print progress and a summary.

    Args:
        logdir: directory the runs are written under, one subdirectory per
            experiment and run. Defaults to `"runs/kerasinit-demo"`.
        epochs: epochs per run, or `None` for the mode's default.
            Defaults to `None`.
        quick: smaller data and networks, about a third of the time.
            Defaults to `False`.
        seed: seed for the data, the initializers and training.
            Defaults to `0`.
        out: stream for progress and summary. Defaults to `None`
            (`sys.stdout`).
        config: explicit sizes, overriding `quick` and `epochs`.
            Defaults to `None`.
        only: `(experiment, activation, initializer) -> bool` selecting a
            subset of the runs. Defaults to `None` (all runs).
        jobs: processes to train in. The runs are small, so one process
            keeps one CPU core busy; with more, each takes the next model
            from a shared queue. `None` means one per CPU core on a machine
            without a GPU, else 1 (processes would compete for the GPU's
            memory). Every run is seeded on its own, so the results do not
            depend on `jobs`. Defaults to `None`.

    Returns:
        One `RunResult` per run, in plan order (the order of the summary).

    Raises:
        ValueError: `jobs` is not a positive integer.
    """
    if jobs is not None and (
        isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1
    ):
        raise ValueError(
            f"Expected `jobs` to be a positive integer or None. "
            f"Received: jobs={jobs!r}"
        )
    # The monitor logs every finding; the summary table reports them, and a
    # line per finding would bury the progress lines.
    monitor_logger = logging.getLogger("kerasinit.monitor")
    level = monitor_logger.level
    monitor_logger.setLevel(logging.ERROR)
    try:
        return _run_demo(logdir, epochs, quick, seed, out, config, only, jobs)
    finally:
        monitor_logger.setLevel(level)


def default_jobs() -> int:
    """One process per CPU core without a GPU, else one."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return 1
    return max(1, os.cpu_count() or 1)


def _plan(config: DemoConfig, seed: int, chosen: list[list[str]] | None):
    """The experiments, each with the initializers to run (`chosen[i]`)."""
    plan = []
    for i, (experiment, activation, build, lr, inits, data) in enumerate(
        _experiments(config, seed)
    ):
        inits = list(inits) if chosen is None else chosen[i]
        plan.append((experiment, activation, build, lr, inits, data))
    return plan


def _run_name(experiment: str, activation: str, init: str) -> str:
    return init if experiment == "cnn_bn" else f"{activation}-{init}"


def _run_experiment(entry, config: DemoConfig, seed: int, logdir: str):
    """Yield the `RunResult` of each run of one experiment, as it ends."""
    import keras

    experiment, activation, build, lr, inits, data = entry
    keras.utils.set_random_seed(seed)
    reinit = _Reinit(build(), lr * config.lr_factor)
    for init in inits:
        result = RunResult(
            experiment=experiment,
            activation=activation,
            initializer=init,
            log_dir=os.path.join(
                logdir, experiment, _run_name(experiment, activation, init)
            ),
        )
        run_start = time.perf_counter()
        try:
            _train_run(reinit, result, data, config, seed)
        except Exception as exc:  # noqa: BLE001 - report, keep going
            text = str(exc).strip().splitlines()
            result.error = f"failed: {type(exc).__name__}: " + (
                text[0][:120] if text else ""
            )
        result.seconds = time.perf_counter() - run_start
        yield result
    keras.backend.clear_session()


def _cost(entry, config: DemoConfig) -> int:
    """Relative cost of an experiment, to hand out the largest first."""
    experiment, _, _, _, inits, _ = entry
    layers = {"mlp": config.depth, "mlp50": config.deep_depth}.get(
        experiment, 10
    )
    return len(inits) * layers


def _worker(tasks, results, config, seed, logdir, chosen) -> None:
    """A demo process: run experiments from `tasks` until the sentinel."""
    logging.getLogger("kerasinit.monitor").setLevel(logging.ERROR)
    plan = _plan(config, seed, chosen)
    for index in iter(tasks.get, None):
        for result in _run_experiment(plan[index], config, seed, logdir):
            results.put(result)
    results.put(None)


def _run_demo(logdir, epochs, quick, seed, out, config, only, jobs):
    out = sys.stdout if out is None else out
    if config is None:
        config = (DemoConfig.quick if quick else DemoConfig.full)(epochs)
    logdir = os.path.abspath(logdir)
    os.makedirs(logdir, exist_ok=True)

    # The data is generated once here; other processes regenerate the plan
    # from `chosen`, since builders and arrays do not travel between them.
    plan = [
        (
            experiment,
            activation,
            build,
            lr,
            [
                i
                for i in inits
                if only is None or only(experiment, activation, i)
            ],
            data,
        )
        for experiment, activation, build, lr, inits, data in _plan(
            config, seed, None
        )
    ]
    chosen = [entry[4] for entry in plan]
    names = [
        (entry[0], _run_name(entry[0], entry[1], init))
        for entry in plan
        for init in entry[4]
    ]
    total = len(names)
    busy = [i for i, entry in enumerate(plan) if entry[4]]
    jobs = min(default_jobs() if jobs is None else jobs, max(1, len(busy)))
    print(
        f"kerasinit demo: {total} runs, {config.epochs} epochs each, "
        f"{jobs} process{'es' if jobs > 1 else ''}, writing to {logdir}",
        file=out,
        flush=True,
    )
    done: list[RunResult] = []
    lock = threading.Lock()
    start = time.perf_counter()

    def report(result: RunResult) -> None:
        with lock:
            done.append(result)
            print(
                f"[{len(done):>{len(str(total))}}/{total}] "
                f"{result.experiment + '/' + result.name:<26} "
                f"acc {_fmt(result.accuracy, 2):>5}  "
                f"loss {_fmt(result.loss, 3):>6}  "
                f"findings {sum(result.findings.values()):>3}"
                + (f"  {result.error}" if result.error else "")
                + f"  ({result.seconds:.1f}s)",
                file=out,
                flush=True,
            )

    order = sorted(busy, key=lambda i: -_cost(plan[i], config))
    if jobs == 1:
        for index in order:
            for result in _run_experiment(plan[index], config, seed, logdir):
                report(result)
    else:
        _run_parallel(plan, order, jobs, config, seed, logdir, chosen, report)
    by_name = {(r.experiment, r.name): r for r in done}
    results = []
    for experiment, name in names:
        result = by_name.get((experiment, name))
        if result is None:
            # A demo process that died took its runs with it.
            result = RunResult(
                experiment=experiment,
                activation="",
                initializer=name,
                log_dir=os.path.join(logdir, experiment, name),
                error="failed: its demo process exited early",
            )
        results.append(result)
    _print_summary(results, logdir, out)
    print(f"Done in {time.perf_counter() - start:.0f}s.", file=out, flush=True)
    return results


def _run_parallel(plan, order, jobs, config, seed, logdir, chosen, report):
    """This process and `jobs - 1` spawned ones share the experiments.

    This process, which has TensorFlow loaded already, works too; the
    others start fresh ("spawn": a forked TensorFlow is not safe) and load
    it while the first experiments run here.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    tasks = context.Queue()
    results = context.Queue()
    for index in order:
        tasks.put(index)
    for _ in range(jobs):
        tasks.put(None)
    # TensorFlow's start-up lines would interleave with the progress.
    env_key = "TF_CPP_MIN_LOG_LEVEL"
    previous = os.environ.get(env_key)
    os.environ.setdefault(env_key, "2")
    workers = [
        context.Process(
            target=_worker,
            args=(tasks, results, config, seed, logdir, chosen),
            daemon=True,
        )
        for _ in range(jobs - 1)
    ]
    try:
        for worker in workers:
            worker.start()
    finally:
        if previous is None:
            os.environ.pop(env_key, None)

    def collect() -> None:
        finished = 0
        while finished < len(workers):
            try:
                result = results.get(timeout=0.5)
            except queue.Empty:
                if all(not w.is_alive() for w in workers) and results.empty():
                    return
                continue
            if result is None:
                finished += 1
            else:
                report(result)

    collector = threading.Thread(target=collect, daemon=True)
    collector.start()
    try:
        for index in iter(tasks.get, None):
            for result in _run_experiment(plan[index], config, seed, logdir):
                report(result)
        collector.join()
    finally:
        for worker in workers:
            if worker.is_alive() and not collector.is_alive():
                worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()
