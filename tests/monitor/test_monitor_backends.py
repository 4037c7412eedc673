"""The monitor end to end on the running Keras backend.

Collected by the TensorFlow, JAX and PyTorch test processes alike
(`conftest.ALL_BACKENDS`); in the JAX and PyTorch ones TensorFlow is
blocked, so a monitor that imported it would fail every test here.
"""

import math
import os

import keras
import numpy as np
import pytest
from keras import ops

import kerasinit as ki
from kerasinit.monitor import backends, event_files
from kerasinit.monitor.probe import Probe
from kerasinit.monitor.selection import monitored_layers
from kerasinit_tensorboard import schema


def _data(n=256, features=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (x[:, :3].sum(axis=1) > 0).astype("int32")
    return x, y


def _model():
    keras.utils.set_random_seed(11)
    model = keras.Sequential(
        [
            keras.Input((12,)),
            keras.layers.Dense(32, activation="relu", name="hidden"),
            keras.layers.BatchNormalization(name="norm"),
            keras.layers.Dropout(0.2, name="drop"),
            keras.layers.Dense(16, name="pre"),
            ki.layers.Tanh(name="tanh"),
            keras.layers.Dense(2, name="out"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _fit(model, monitor=None, epochs=2):
    x, y = _data()
    model.fit(
        x,
        y,
        batch_size=32,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[monitor] if monitor else [],
    )


def test_events_are_written_and_match_a_numpy_reference(tmp_path):
    model = _model()
    x, y = _data()
    probe_x = x[:64]
    kernel, bias = (ops.convert_to_numpy(w) for w in model.layers[0].weights)
    monitor = ki.callbacks.HealthMonitor(
        str(tmp_path), probe=(probe_x, y[:64]), every_n_steps=4, warn=False
    )
    _fit(model, monitor)
    records = event_files.records(tmp_path / schema.RUN_SUBDIR)
    assert records[0]["phase"] == "preflight"
    # 8 steps per epoch, an event every 4 steps, and the pre-flight.
    assert [r["step"] for r in records] == [0, 4, 8, 12, 16]
    assert [r["skipped_events"] for r in records] == [0] * len(records)
    # The pre-flight measures the initial weights: the first layer's
    # outputs recomputed here.
    hidden = np.maximum(probe_x.astype(np.float64) @ kernel + bias, 0.0)
    first = records[0]["stats"]["hidden"]
    np.testing.assert_allclose(first["act_mean"], hidden.mean(), rtol=1e-5)
    np.testing.assert_allclose(
        first["act_rms"], np.sqrt(np.mean(hidden**2)), rtol=1e-5
    )
    np.testing.assert_allclose(
        first["zero_fraction"], np.mean(hidden == 0.0), rtol=1e-6
    )
    # The update size is unknown at the first event, then measured.
    assert first["update_ratio"] is None
    assert records[-1]["stats"]["hidden"]["update_ratio"] > 0.0
    # Every layer with gradients reports finite gradient norms.
    for layer in ("hidden", "tanh"):
        assert records[-1]["stats"][layer]["grad_norm"] > 0.0
    tags = {v.tag for v in event_files.read_run(tmp_path / "kerasinit")}
    assert schema.scalar_tag("act_rms", "tanh") in tags
    assert (
        schema.histogram_tag(schema.ACTIVATION_HISTOGRAM_PREFIX, "hidden")
        in tags
    )
    # The inputs' cosine, recomputed over every pair of distinct examples.
    unit = probe_x / np.linalg.norm(probe_x, axis=1, keepdims=True)
    gram = unit.astype(np.float64) @ unit.T.astype(np.float64)
    expected = (gram.sum() - np.trace(gram)) / (64 * 63)
    np.testing.assert_allclose(
        monitor.last_result.input_cosine, expected, rtol=1e-4, atol=1e-6
    )


def test_the_monitor_never_changes_training(tmp_path):
    plain = _model()
    _fit(plain)
    monitored = _model()
    x, y = _data()
    _fit(
        monitored,
        ki.callbacks.HealthMonitor(
            str(tmp_path), probe=(x[:64], y[:64]), every_n_steps=2, warn=False
        ),
    )
    # Bit-identical on each backend's CPU: the probe is stateless, reads no
    # random state and never trains.
    for a, b in zip(plain.weights, monitored.weights):
        np.testing.assert_array_equal(
            ops.convert_to_numpy(a), ops.convert_to_numpy(b), err_msg=a.path
        )


def test_compiled_probe_gives_the_eager_statistics():
    model = _model()
    x, y = _data()
    probe = Probe(model, monitored_layers(model))
    probe.build(ops.convert_to_tensor(x[:64]), ops.convert_to_tensor(y[:64]))
    eager = probe()
    probe.start_compiling()
    probe.wait()
    assert (probe.compiled is not None) == backends.current().COMPILES
    compiled = probe()
    assert list(compiled.layers) == list(eager.layers)
    for path, values in eager.layers.items():
        for metric, value in values.items():
            if metric == "update_ratio":
                # No update in between: exactly zero once known.
                assert math.isnan(value) and compiled.layers[path][metric] == 0
                continue
            np.testing.assert_allclose(
                compiled.layers[path][metric],
                value,
                rtol=2e-5,
                atol=1e-7,
                err_msg=f"{path} {metric}",
            )


def test_an_unsupported_backend_is_named(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "numpy")
    with pytest.raises(NotImplementedError, match="Received: backend=numpy"):
        backends.current()


def test_event_files_of_a_run_are_read_without_tensorflow(tmp_path):
    # The writer's files hold every event, in order, under the run subdir.
    model = _model()
    x, y = _data()
    _fit(
        model,
        ki.callbacks.HealthMonitor(
            str(tmp_path), probe=(x[:32], y[:32]), warn=False
        ),
        epochs=1,
    )
    run = os.path.join(tmp_path, schema.RUN_SUBDIR)
    assert [r["phase"] for r in event_files.records(run)] == [
        "preflight",
        "epoch",
    ]
