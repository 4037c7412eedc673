"""Where a training-batch event's cost goes, and the ratio it cannot beat.

Run::

    python benchmarks/in_step_floor.py
    python benchmarks/in_step_floor.py --backend tensorflow,jax,torch
    python benchmarks/in_step_floor.py --rounds 5 --samples 8192

``benchmarks/overhead.py --in-step`` measures what ``source="batch"``
costs a whole `fit`. This splits one measured step into its parts, each as
the median process CPU time of one call of the train function, waited for
until its results exist (JAX dispatches asynchronously; without waiting, a
call's time would be its dispatch only):

- **plain**: the train function of a `fit` without the monitor;
- **no statistics**: a `fit` with ``HealthMonitor(source="batch",
  every_n_steps=1)`` whose statistics are replaced by zeros of the same
  size: the capture of layer outputs, the weight copies, the conditionals
  and the transfer, with no arithmetic of the statistics;
- **measured**: the same monitor with its statistics;
- **economy**: the same with ``statistics="economy"``;
- **host**: the monitor's work on the host per event (reading the vector,
  the diagnosis rules, writing the event), from the measured `fit`.

From these: the **statistics** alone (measured - no statistics), the
**machinery** (no statistics - plain) and the ratio to a plain step that a
due step cannot go below, every step and every 10 steps, were every cost
outside the statistics' arithmetic zero: ``1 + statistics / plain`` and
``1 + statistics / (10 * plain)``. A target below that bound needs fewer
or cheaper statistics, or a device on which they are cheap next to the
step, not less overhead around them. The **due step** columns are what a
due step really adds, everything included: ``1 + (measured - plain +
host) / plain`` every step, a tenth of the excess every 10 steps (the
steps in between run the plain function). Each statistics configuration
(``"full"``, ``"economy"``) has a row of its own.

Each configuration runs in its own process (same seed, same data), the
rounds interleaved; the table gives the median over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from overhead import _child, _data, _model  # noqa: E402

VARIANTS = ("plain", "no_statistics", "measured", "economy")


def _zero_statistics() -> None:
    """Replace every statistic the train step sends by zeros of its size.

    The vector's last value is the flag that every value was finite (1):
    kept, so that no step is measured a second time with masks.
    """
    import keras

    from kerasinit.monitor import backends

    outbox = backends.current().Outbox
    send = outbox.send

    def zeros_send(self, name, due, step, size, measure, args):
        def zeros(*args, masked):
            return keras.ops.concatenate(
                [keras.ops.zeros([size - 1]), keras.ops.ones([1])]
            )

        return send(self, name, due, step, size, zeros, args)

    outbox.send = zeros_send


def _wait(out) -> None:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        jax.block_until_ready(out)


def run_one(workload: str, variant: str, samples: int) -> dict:
    """Median CPU ms of one train-function call (and one host event)."""
    import keras

    from kerasinit.callbacks import HealthMonitor

    if variant == "no_statistics":
        _zero_statistics()
    keras.utils.set_random_seed(0)
    n = samples if workload == "mlp" else max(samples // 4, 128)
    x, y = _data(workload, n)
    model = _model(workload)
    calls, host = [], []

    class Timer(keras.callbacks.Callback):
        # After the monitor's `on_train_begin`: it wraps the function the
        # monitor installed.
        def on_train_begin(self, logs=None):
            function = self.model.train_function

            def timed(*args, **kwargs):
                start = time.process_time()
                out = function(*args, **kwargs)
                _wait(out)
                calls.append(time.process_time() - start)
                return out

            object.__setattr__(self.model, "train_function", timed)

    callbacks = [Timer()]
    if variant != "plain":
        monitor = HealthMonitor(
            tempfile.mkdtemp(prefix="kerasinit-floor-"),
            (x[:512], y[:512]),
            every_n_epochs=None,
            every_n_steps=1,
            source="batch",
            statistics="economy" if variant == "economy" else "full",
            warn=False,
        )
        batch_log = monitor._batch_log

        def timed_log():
            start = time.process_time()
            batch_log()
            host.append(time.process_time() - start)

        monitor._batch_log = timed_log
        callbacks.insert(0, monitor)
    # The first epoch traces and compiles; the second is the steady state.
    marks = {}

    class Steady(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                marks["calls"], marks["host"] = len(calls), len(host)

    model.fit(
        x,
        y,
        batch_size=128,
        epochs=2,
        verbose=0,
        callbacks=[*callbacks, Steady()],
    )
    steady_calls = calls[marks["calls"] :]
    steady_host = host[marks["host"] :]
    return {
        "call_ms": statistics.median(steady_calls) * 1e3,
        "host_ms": statistics.median(steady_host) * 1e3 if steady_host else 0,
        "calls": len(steady_calls),
    }


def _run(backend: str, workload: str, variant: str, samples: int) -> dict:
    return _child(
        ["--one", workload, variant, "--samples", str(samples)],
        backend=backend,
        script=__file__,
    )


def _table(backend: str, rounds: int, samples: int) -> None:
    print(f"\n## KERAS_BACKEND={backend} ({rounds} interleaved rounds)")
    print(
        "| workload | statistics | plain | no statistics | measured "
        "| host per event | machinery | statistics "
        "| bound every step | bound every 10 "
        "| due step every step | due step every 10 |"
    )
    print("|---|---|" + "---:|" * 10)
    for workload in ("mlp", "cnn"):
        got = [
            {v: _run(backend, workload, v, samples) for v in VARIANTS}
            for _ in range(rounds)
        ]

        def median(variant, key="call_ms", got=got):
            return statistics.median(r[variant][key] for r in got)

        plain = median("plain")
        bare = median("no_statistics")
        for variant, name in (("measured", "full"), ("economy", "economy")):
            measured = median(variant)
            host = median(variant, "host_ms")
            stats_ms = statistics.median(
                r[variant]["call_ms"] - r["no_statistics"]["call_ms"]
                for r in got
            )
            # What a due step adds, everything included, per plain step.
            added = (measured - plain + host) / plain
            print(
                f"| {workload} | {name} | {plain:.2f} | {bare:.2f} "
                f"| {measured:.2f} | {host:.2f} | {bare - plain:+.2f} "
                f"| {stats_ms:.2f} | {1 + stats_ms / plain:.2f} "
                f"| {1 + stats_ms / (10 * plain):.3f} "
                f"| {1 + added:.2f} | {1 + added / 10:.3f} |"
            )
    print(
        "\nCPU ms per call of the train function (medians). Bounds: the "
        "ratio to plain fit with only the statistics' arithmetic added. "
        "Due step: the ratio with everything a due step adds (measured "
        "call and host work against a plain call), at every step and "
        "every 10 steps."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend",
        default=os.environ.get("KERAS_BACKEND", "tensorflow"),
        help="Keras backends, comma-separated (tensorflow, jax, torch)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--samples",
        type=int,
        default=8192,
        help="the MLP's training samples, a quarter of it the CNN's",
    )
    parser.add_argument("--one", nargs=2, metavar=("WORKLOAD", "VARIANT"))
    args = parser.parse_args()
    if args.one:
        workload, variant = args.one
        if variant not in VARIANTS:
            parser.error(
                f"`VARIANT` must be one of {VARIANTS}. "
                f"Received: VARIANT={variant!r}"
            )
        print(json.dumps(run_one(workload, variant, args.samples)))
        return
    if args.rounds < 1:
        parser.error(f"`--rounds` must be at least 1. Received: {args.rounds}")
    print(
        f"# training-batch event floor: {os.cpu_count()} CPUs, "
        f"{args.samples} MLP samples, batch 128"
    )
    for backend in args.backend.split(","):
        _table(backend, args.rounds, args.samples)


if __name__ == "__main__":
    main()
