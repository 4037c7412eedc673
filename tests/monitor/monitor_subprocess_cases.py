"""Cases that change process-wide TensorFlow state, run in a subprocess.

``python monitor_subprocess_cases.py <case> <log_dir>`` prints ``OK`` on
success. Op determinism and logical devices must be configured before
TensorFlow initializes, and they would leak into every other test.
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def determinism(log_dir):
    import keras
    import numpy as np
    import tensorflow as tf

    from kerasinit.callbacks import HealthMonitor

    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 10)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")

    def train(callbacks):
        keras.backend.clear_session()
        keras.utils.set_random_seed(42)
        model = keras.Sequential(
            [
                keras.Input((10,)),
                keras.layers.Dense(16, activation="relu"),
                keras.layers.BatchNormalization(),
                keras.layers.Dropout(0.3),
                keras.layers.Dense(16, activation="tanh"),
                keras.layers.Dropout(0.2),
                keras.layers.Dense(2),
            ]
        )
        model.compile(
            keras.optimizers.Adam(1e-2),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.fit(
            x,
            y,
            batch_size=16,
            epochs=2,
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
        )
        return [v.numpy() for v in model.variables], model

    plain, _ = train([])
    monitor = HealthMonitor(log_dir, (x[:32], y[:32]), every_n_steps=2)
    monitored, model = train([monitor])
    assert len(monitor.findings) >= 0 and monitor.last_result is not None
    assert len(plain) == len(monitored)
    for a, b in zip(plain, monitored):
        if not np.array_equal(a, b):
            raise SystemExit("weights differ with the monitor on")
    # The dropout seed state and BatchNorm statistics are among the compared
    # variables: make sure they are there and moved during training.
    names = [v.path for v in model.variables]
    if not any("moving_mean" in n for n in names):
        raise SystemExit("no BatchNorm statistics compared")
    if not any("seed_generator" in n for n in names):
        raise SystemExit("no dropout seed state compared")


def mirrored(log_dir):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu,
        [tf.config.LogicalDeviceConfiguration()] * 2,
    )
    import keras
    import numpy as np

    from kerasinit.callbacks import HealthMonitor

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    if strategy.num_replicas_in_sync != 2:
        raise SystemExit("expected two replicas")
    with strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((6,)),
                keras.layers.Dense(16, activation="relu", name="d1"),
                keras.layers.BatchNormalization(name="bn"),
                keras.layers.Dense(8, activation="tanh", name="d2"),
                keras.layers.Dense(2, name="head"),
            ]
        )
        model.compile(
            "adam",
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    monitor = HealthMonitor(log_dir, ds)
    model.fit(ds, epochs=2, verbose=0, callbacks=[monitor])
    stats = monitor.last_result.layers
    if sorted(stats) != ["d1", "d2"]:
        raise SystemExit(f"unexpected layers {sorted(stats)}")
    if not stats["d1"]["grad_norm"] > 0:
        raise SystemExit("no gradient statistics")
    if int(model.optimizer.iterations.numpy()) != 8:
        raise SystemExit("training steps changed")


def nonfinite(log_dir):
    """A run that diverges to inf and NaN, measured every step, compiled."""
    import keras
    import numpy as np

    from kerasinit.callbacks import HealthMonitor

    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = x[:, :1] * 3.0
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu", name="d1"),
            keras.layers.Dense(16, activation="tanh", name="d2"),
            keras.layers.Dense(1, name="head"),
        ]
    )
    model.compile(keras.optimizers.SGD(1e5), "mse")
    monitor = HealthMonitor(
        log_dir, (x[:32], y[:32]), every_n_steps=1, compile=True, warn=False
    )
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[monitor])
    if np.isfinite(model.get_layer("d1").kernel.numpy()).all():
        raise SystemExit("the run did not diverge")
    if monitor.compiled_probe is None:
        raise SystemExit("the probe was not compiled")
    if monitor.skipped_events:
        raise SystemExit(f"{monitor.skipped_events} events skipped")


if __name__ == "__main__":
    case, log_dir = sys.argv[1], sys.argv[2]
    cases = {"determinism": determinism, "mirrored": mirrored}
    cases["nonfinite"] = nonfinite
    cases[case](log_dir)
    print("OK")
