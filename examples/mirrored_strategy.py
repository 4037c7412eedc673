"""Training under `tf.distribute.MirroredStrategy` with the health monitor.

Data-parallel training replicates the model on every device; the monitor
still measures one copy of the weights on its own probe batch, so it needs
nothing distribution-specific. To run on any machine this script splits
the CPU into two logical devices before TensorFlow starts, so the strategy
has two replicas; on a multi-GPU machine drop that block and the strategy
uses the GPUs.

Everything that creates variables (the model, `kerasinit.pair`, `compile`)
goes inside `strategy.scope()`.

    python examples/mirrored_strategy.py [--fast]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402

# Must happen before anything initializes the devices.
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu,
    [tf.config.LogicalDeviceConfiguration()] * 2,
)

import keras  # noqa: E402

import kerasinit as ki  # noqa: E402
from kerasinit import datasets  # noqa: E402


def main(fast: bool, logdir: str) -> None:
    strategy = tf.distribute.MirroredStrategy(
        [d.name for d in tf.config.list_logical_devices("CPU")]
    )
    print(f"replicas in sync: {strategy.num_replicas_in_sync}")

    n = 512 if fast else 4096
    x, y = datasets.spirals(n + 256, turns=0.5, seed=0)
    x_train, y_train, x_val, y_val = x[:n], y[:n], x[n:], y[n:]

    with strategy.scope():
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
    # The global batch is split between the replicas.
    model.fit(
        x_train,
        y_train,
        epochs=2 if fast else 10,
        batch_size=32 * strategy.num_replicas_in_sync,
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
        "--logdir", default=os.path.join("runs", "examples", "mirrored")
    )
    args = parser.parse_args()
    fast = args.fast or os.environ.get("KERASINIT_EXAMPLE_FAST") == "1"
    main(fast, args.logdir)
