"""Training the demo's runs, in this process or a pool of them.

Why runs share a compiled model: tracing a Keras train step costs seconds
per model on a CPU, which times fifty runs is most of the demo. The runs of
one experiment have the same architecture, so one compiled model is
re-initialized in place for each run (every weight restored, the kernels
re-drawn, the optimizer state zeroed), which gives the same result as
building a fresh model with that initializer.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

import numpy as np

from kerasinit._seed import derive
from kerasinit.demo.experiments import (
    DemoConfig,
    Experiment,
    experiments,
    make_initializer,
    monitored_layers,
    run_name,
)
from kerasinit.demo.report import fmt, print_summary, verdicts_text
from kerasinit_cli import demo_worker

__all__ = ["Reinit", "RunResult", "default_jobs", "run_demo", "verdicts"]


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
        verdicts: the monitor's diagnoses, one ``"kind@first_layer"`` per
            problem in the order reported (see `verdicts`).
        seconds: wall time of the run.
        error: why the run failed, or ``None``.
    """

    experiment: str
    activation: str
    initializer: str
    log_dir: str
    accuracy: float = float("nan")
    loss: float = float("nan")
    verdicts: tuple[str, ...] = ()
    seconds: float = 0.0
    error: str | None = None

    @property
    def name(self) -> str:
        return os.path.basename(self.log_dir)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def verdicts(monitor) -> tuple[str, ...]:
    """What a run's monitor concluded: one ``"kind@first_layer"`` per problem.

    The one place that reads a finished run's monitor for the summary: the
    `RunResult.verdicts` field, the progress line and the table's
    "verdicts" column all come from here. Diagnoses, not per-layer
    findings: a problem that spans forty layers is one verdict, named where
    it starts (e.g. ``"exploding_signal@dense"``).
    """
    return tuple(
        f"{d.kind}@{d.first_layer}" if d.first_layer else d.kind
        for d in monitor.diagnoses
    )


class Reinit:
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

    def reset(self, make: Callable[[int], object]) -> None:
        """Restore every weight, then draw each kernel afresh.

        Args:
            make: `index -> initializer` for the index-th kernel. A seeded
                initializer draws the same values on every call, so each
                kernel gets its own seed; one shared instance would give
                every same-shaped layer the same matrix.
        """
        self.model.set_weights(self.weights)
        for v, value in zip(self.model.optimizer.variables, self.opt_state):
            v.assign(value)
        index = 0
        for layer in self.model.layers:
            kernel = getattr(layer, "kernel", None)
            if kernel is None:
                continue
            initializer = make(index)
            index += 1
            kernel.assign(initializer(tuple(kernel.shape), dtype=kernel.dtype))
            # Keep the config truthful: a model saved after the run reports
            # the initializer it actually started from.
            layer.kernel_initializer = initializer


def _train_run(
    reinit: Reinit,
    result: RunResult,
    experiment: Experiment,
    config: DemoConfig,
    seed: int,
) -> None:
    import keras

    from kerasinit import lsuv
    from kerasinit.callbacks import HealthMonitor

    data = experiment.data
    keras.utils.set_random_seed(seed)
    reinit.reset(
        lambda index: make_initializer(
            result.initializer, result.activation, derive(seed, index)
        )
    )
    if result.initializer == "lsuv":
        lsuv(reinit.model, data.x[: config.n_probe], seed=seed)
    monitor = HealthMonitor(
        log_dir=result.log_dir,
        probe=(data.x_probe, data.y_probe),
        layers=monitored_layers(experiment, config),
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
        data.x,
        data.y,
        epochs=config.epochs,
        batch_size=config.batch_size,
        callbacks=callbacks,
        verbose=0,
    )
    # One direct forward pass: `evaluate` would build a data pipeline per
    # run, which costs more than these held-out sets take to compute.
    logits = reinit.model(data.x_val, training=False)
    loss = reinit.model.loss(data.y_val, logits)
    predicted = np.argmax(keras.ops.convert_to_numpy(logits), axis=-1)
    result.loss = float(keras.ops.convert_to_numpy(loss))
    result.accuracy = float(np.mean(predicted == np.asarray(data.y_val)))
    result.verdicts = verdicts(monitor)


def _run_experiment(
    experiment: Experiment, config: DemoConfig, seed: int, logdir: str
) -> Iterator[RunResult]:
    """Yield the `RunResult` of each run of one experiment, as it ends."""
    import keras

    keras.utils.set_random_seed(seed)
    reinit = Reinit(
        experiment.build(), experiment.learning_rate * config.lr_factor
    )
    for init in experiment.initializers:
        result = RunResult(
            experiment=experiment.name,
            activation=experiment.activation,
            initializer=init,
            log_dir=os.path.join(
                logdir, experiment.name, run_name(experiment, init)
            ),
        )
        run_start = time.perf_counter()
        try:
            _train_run(reinit, result, experiment, config, seed)
        except Exception as exc:  # noqa: BLE001 - report, keep going
            text = str(exc).strip().splitlines()
            result.error = f"failed: {type(exc).__name__}: " + (
                text[0][:120] if text else ""
            )
        result.seconds = time.perf_counter() - run_start
        yield result
    keras.backend.clear_session()


def _plan(
    config: DemoConfig, seed: int, chosen: list[tuple[str, ...]] | None
) -> list[Experiment]:
    """The experiments, each narrowed to the initializers in `chosen[i]`."""
    plan = experiments(config, seed)
    if chosen is None:
        return plan
    return [
        dataclasses.replace(experiment, initializers=inits)
        for experiment, inits in zip(plan, chosen)
    ]


def default_jobs() -> int:
    """One process per CPU core without a GPU, else one."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return 1
    return max(1, os.cpu_count() or 1)


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


def _worker(tasks, results, config, seed, logdir, chosen) -> None:
    """A demo process: run experiments from `tasks` until the sentinel.

    `config` comes as a dict: unpickling a `DemoConfig` would import this
    package, and TensorFlow with it, before the worker could quiet it.
    """
    logging.getLogger("kerasinit.monitor").setLevel(logging.ERROR)
    config = DemoConfig(**config)
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
    chosen = [
        tuple(
            i
            for i in experiment.initializers
            if only is None or only(experiment.name, experiment.activation, i)
        )
        for experiment in experiments(config, seed)
    ]
    plan = _plan(config, seed, chosen)
    names = [
        (experiment.name, name)
        for experiment in plan
        for name in experiment.run_names()
    ]
    total = len(names)
    busy = [i for i, experiment in enumerate(plan) if experiment.initializers]
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
                f"acc {fmt(result.accuracy, 2):>5}  "
                f"loss {fmt(result.loss, 3):>6}  "
                f"{verdicts_text(result.verdicts)}"
                + (f"  {result.error}" if result.error else "")
                + f"  ({result.seconds:.1f}s)",
                file=out,
                flush=True,
            )

    order = sorted(busy, key=lambda i: -plan[i].cost)
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
    print_summary(results, logdir, out)
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
    # The workers import TensorFlow quietly (its start-up lines would
    # interleave with the progress), from a module that does not import it.
    workers = [
        context.Process(
            target=demo_worker,
            args=(
                tasks,
                results,
                dataclasses.asdict(config),
                seed,
                logdir,
                chosen,
            ),
            daemon=True,
        )
        for _ in range(jobs - 1)
    ]
    for worker in workers:
        worker.start()

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
