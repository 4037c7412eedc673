"""Training under JAX's `keras.distribution.DataParallel` with the monitor.

Keras 3's own distribution API: on JAX, `DataParallel` replicates the
weights on every device of a mesh and splits each batch between them. The
monitor measures the whole probe batch (split between the devices like a
training batch when its size allows) in one compiled call, writes one set
of events, and its statistics are those of a single-device run. With several
processes (`jax.distributed.initialize`), only process 0 writes.

To run on any machine this script asks XLA for two CPU devices before JAX
starts; on a machine with several accelerators drop that line and the mesh
spans them.

    python examples/jax_data_parallel.py [--fast]
"""

import argparse
import os

os.environ["KERAS_BACKEND"] = "jax"
# Must happen before JAX initializes its devices.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import keras  # noqa: E402

import kerasinit as ki  # noqa: E402
from kerasinit import datasets  # noqa: E402


def main(fast: bool, logdir: str) -> None:
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=devices)
    )
    print(f"devices: {len(devices)}")

    n = 512 if fast else 4096
    x, y = datasets.spirals(n + 256, turns=0.5, seed=0)
    x_train, y_train, x_val, y_val = x[:n], y[:n], x[n:], y[n:]

    # Under a distribution, variables are created laid out on the mesh.
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(64),
            ki.layers.GELU(),
            keras.layers.Dense(64),
            ki.layers.GELU(),
            keras.layers.Dense(3),
        ]
    )
    print(ki.pair(model, seed=0))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    monitor = ki.callbacks.HealthMonitor(log_dir=logdir, probe=(x_val, y_val))
    # The global batch is split between the devices.
    model.fit(
        x_train,
        y_train,
        epochs=2 if fast else 10,
        batch_size=32 * len(devices),
        callbacks=[monitor],
        verbose=0,
    )
    loss, accuracy = model.evaluate(x_val, y_val, verbose=0)
    print(f"held-out accuracy {accuracy:.3f}, loss {loss:.3f}")
    print(f"findings: {len(monitor.findings)}")
    for finding in monitor.findings:
        print(f"  {finding}")
    print(f"view it:  tensorboard --logdir {logdir}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true")
    parser.add_argument(
        "--logdir", default=os.path.join("runs", "examples", "data_parallel")
    )
    args = parser.parse_args()
    fast = args.fast or os.environ.get("KERASINIT_EXAMPLE_FAST") == "1"
    main(fast, args.logdir)
