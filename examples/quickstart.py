"""Quickstart: train an MLP with kerasinit's health monitor on.

Builds a small ReLU MLP with He-initialized kernels, trains it on generated
spiral data with `kerasinit.callbacks.HealthMonitor`, prints what the monitor
found, and tells you how to open the run in TensorBoard.

    python examples/quickstart.py            # about 20 seconds on a CPU
    python examples/quickstart.py --fast     # a few seconds, for testing
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import kerasinit as ki  # noqa: E402
from kerasinit import datasets  # noqa: E402


def main(fast: bool, logdir: str) -> None:
    n = 512 if fast else 4096
    x, y = datasets.spirals(n + 256, n_classes=3, turns=0.5, seed=0)
    x_train, y_train = x[:n], y[:n]
    x_val, y_val = x[n:], y[n:]

    he = ki.initializers.He("relu", seed=1)
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(64, kernel_initializer=he),
            ki.layers.ReLU(),
            keras.layers.Dense(64, kernel_initializer=he),
            ki.layers.ReLU(),
            keras.layers.Dense(3),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    # The probe is a fixed held-out batch the monitor measures every epoch;
    # with targets it also measures gradients.
    monitor = ki.callbacks.HealthMonitor(log_dir=logdir, probe=(x_val, y_val))
    model.fit(
        x_train,
        y_train,
        epochs=2 if fast else 10,
        batch_size=32,
        callbacks=[monitor],
        verbose=0 if fast else 2,
    )
    loss, accuracy = model.evaluate(x_val, y_val, verbose=0)
    print(f"held-out accuracy {accuracy:.3f}, loss {loss:.3f}")
    print(f"the monitor reported {len(monitor.findings)} finding(s)")
    for finding in monitor.findings:
        print(f"  {finding}")
    print(f"view it:  tensorboard --logdir {logdir}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true")
    parser.add_argument(
        "--logdir", default=os.path.join("runs", "examples", "quickstart")
    )
    args = parser.parse_args()
    fast = args.fast or os.environ.get("KERASINIT_EXAMPLE_FAST") == "1"
    main(fast, args.logdir)
