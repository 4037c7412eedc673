"""Peak memory and fit time of HealthMonitor against the probe's size.

Run::

    python benchmarks/probe_memory.py            # the reference cases
    python benchmarks/probe_memory.py --smoke    # seconds, to check it runs

The probe holds every monitored layer's activations and gradients for all
of its examples at once, so its memory grows with the number of examples.
`HealthMonitor` keeps at most ``max_probe_examples`` of them (default
`kerasinit.monitor.probe_data.MAX_PROBE_EXAMPLES`), evenly spaced. This
prints, for a small CNN, the peak resident memory (``ru_maxrss``) and the
wall and process CPU time of one `fit` with probes of several sizes: with
the cap (the default) and without it (``max_probe_examples=None``).

Every case runs in a process of its own, so each peak is that case's alone;
a case without any monitor gives the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (probe examples or 0 for no monitor, max_probe_examples: "default" or
# None for no cap)
CASES = (
    (0, "default"),
    (512, "default"),
    (20000, "default"),
    (1024, None),
    (2048, None),
)
SMOKE_CASES = ((0, "default"), (64, "default"), (600, "default"))


def _cnn():
    import keras

    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def run_case(examples: int, cap, train: int, epochs: int) -> dict:
    """One `fit` in this process; the measurements as a dict."""
    import keras
    import numpy as np

    from kerasinit.callbacks import HealthMonitor

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n = max(train, examples)
    x = rng.normal(size=(n, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, size=n).astype("int32")
    model = _cnn()
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    callbacks = []
    kept = 0
    with tempfile.TemporaryDirectory() as log_dir:
        if examples:
            kwargs = {} if cap == "default" else {"max_probe_examples": cap}
            monitor = HealthMonitor(
                log_dir, (x[:examples], y[:examples]), **kwargs
            )
            kept = monitor.probe_examples
            callbacks.append(monitor)
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(
            x[:train],
            y[:train],
            batch_size=64,
            epochs=epochs,
            verbose=0,
            callbacks=callbacks,
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    # Linux reports kilobytes.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {
        "examples": examples,
        "cap": cap,
        "kept": kept,
        "peak_gb": peak,
        "wall_s": wall,
        "cpu_s": cpu,
    }


def _in_subprocess(examples: int, cap, train: int, epochs: int) -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--case",
            json.dumps([examples, cap, train, epochs]),
        ],
        capture_output=True,
        text=True,
        check=False,
        # This checkout's package, not an installed one.
        env=dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(
                filter(None, (ROOT, os.environ.get("PYTHONPATH")))
            ),
        ),
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(*json.loads(args.case))))
        return
    cases = SMOKE_CASES if args.smoke else CASES
    train, epochs = (256, 1) if args.smoke else (2048, 2)
    print(
        f"small CNN (3 conv + 2 dense, 28x28x1), fit on {train} examples, "
        f"batch 64, {epochs} epochs; pre-flight + one event per epoch"
    )
    print(
        f"{'probe':>8} {'cap':>8} {'kept':>6} {'peak RSS':>9} "
        f"{'fit wall':>9} {'fit CPU':>8}"
    )
    rows = []
    for examples, cap in cases:
        row = _in_subprocess(examples, cap, train, epochs)
        rows.append(row)
        cap_text = "none" if cap is None else "default"
        print(
            f"{examples or '-':>8} {cap_text if examples else '-':>8} "
            f"{row['kept'] or '-':>6} {row['peak_gb']:>7.2f}GB "
            f"{row['wall_s']:>8.1f}s {row['cpu_s']:>7.1f}s",
            flush=True,
        )
    by_size = {(r["examples"], r["cap"]): r for r in rows}
    small = by_size.get((512, "default")) or by_size.get((64, "default"))
    large = by_size.get((20000, "default")) or by_size.get((600, "default"))
    if small and large:
        print(
            f"{large['examples']} examples against {small['examples']}: "
            f"peak memory x{large['peak_gb'] / small['peak_gb']:.2f}, "
            f"fit wall time x{large['wall_s'] / small['wall_s']:.2f}, "
            f"fit CPU time x{large['cpu_s'] / small['cpu_s']:.2f}"
        )


if __name__ == "__main__":
    main()
