"""Acceptance tests of HealthMonitor: findings on known-bad and healthy models,
and the exact tag set, read back from the event files."""

import math
import warnings

import keras
import numpy as np
import pytest
from monitor_events import records, scalars, tags

import kerasinit
from kerasinit.callbacks import HealthMonitor, HealthWarning
from kerasinit_tensorboard import schema


def _mlp(depth, width, activation, init, in_dim=32, out=10):
    layers = [keras.Input((in_dim,))]
    for i in range(depth - 1):
        layers.append(
            keras.layers.Dense(
                width,
                activation=activation,
                kernel_initializer=init,
                name=f"hidden_{i}",
            )
        )
    layers.append(keras.layers.Dense(out, kernel_initializer=init, name="out"))
    model = keras.Sequential(layers)
    model.compile(
        keras.optimizers.SGD(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _data(n, in_dim, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, in_dim)).astype("float32")
    y = rng.integers(0, classes, n)
    return x, y


def _preflight(model, x, y, log_dir, **kwargs):
    """Run fit for one step; return the monitor and its pre-flight kinds."""
    monitor = HealthMonitor(log_dir, (x, y), warn=False, **kwargs)
    model.fit(x, y, batch_size=len(x), epochs=1, verbose=0, callbacks=[monitor])
    pre = {f.kind for f in monitor.findings if f.step == 0}
    return monitor, pre


def test_three_layer_model_writes_exactly_the_documented_tags(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu", name="d1"),
            keras.layers.Dense(16, activation="tanh", name="d2"),
            keras.layers.Dense(3, name="head"),
        ]
    )
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = _data(64, 6, classes=3)
    monitor = HealthMonitor(tmp_path, (x, y))
    model.fit(x, y, epochs=2, verbose=0, callbacks=[monitor])
    assert monitor.findings == []
    expected = {"custom_scalars__config__", schema.RECORD_TAG}
    for layer in ("d1", "d2"):
        for metric in schema.ACTIVATION_METRICS + schema.GRADIENT_METRICS:
            expected.add(f"{metric}/{layer}")
        expected.add(f"activations/{layer}")
        expected.add(f"gradients/{layer}")
    assert tags(tmp_path) == expected
    recs = records(tmp_path)
    # Pre-flight at step 0, then one event per epoch (2 steps each).
    assert [(r["phase"], r["step"], r["event"]) for r in recs] == [
        ("preflight", 0, 0),
        ("epoch", 2, 1),
        ("epoch", 4, 2),
    ]
    assert [lyr["name"] for lyr in recs[-1]["layers"]] == ["d1", "d2"]
    assert recs[-1]["layers"][1]["activation"] == "tanh"
    assert set(recs[-1]["stats"]["d1"]) == set(
        schema.ACTIVATION_METRICS + schema.GRADIENT_METRICS
    )
    assert [s for s, _ in scalars(tmp_path, "dead_fraction/d1")] == [0, 2, 4]


def test_record_and_histogram_metadata(tmp_path):
    from monitor_events import read_events

    model = _mlp(3, 8, "relu", "he_normal", in_dim=4)
    x, y = _data(32, 4)
    model.fit(
        x, y, epochs=1, verbose=0, callbacks=[HealthMonitor(tmp_path, (x, y))]
    )
    events = read_events(tmp_path)
    plugins = {tag: plugin for _, tag, _, plugin in events}
    assert plugins[schema.RECORD_TAG] == schema.PLUGIN_NAME
    assert plugins["activations/hidden_0"] == "histograms"
    assert plugins["gradients/hidden_1"] == "histograms"
    hist = [v for _, t, v, _ in events if t == "activations/hidden_0"][0]
    assert hist.shape == (30, 3)
    # Every probe activation is counted exactly once.
    assert hist[:, 2].sum() == 32 * 8
    assert np.all(hist[:, 1] >= hist[:, 0])


@pytest.fixture(scope="module")
def deep_relu_data():
    return _data(128, 32)


@pytest.mark.parametrize(
    "stddev, expected",
    [
        (1.0, {"exploding_gradients", "nonfinite"}),
        (1e-3, {"vanishing_gradients"}),
    ],
)
def test_deep_relu_mlp_bad_init_is_caught_at_preflight(
    tmp_path, deep_relu_data, stddev, expected
):
    x, y = deep_relu_data
    init = keras.initializers.RandomNormal(stddev=stddev)
    model = _mlp(50, 256, "relu", init)
    monitor, pre = _preflight(model, x, y, tmp_path, histograms=False)
    assert pre & expected
    first = records(tmp_path)[0]
    assert first["phase"] == "preflight" and first["step"] == 0
    assert {f["kind"] for f in first["findings"]} & expected


def test_deep_relu_mlp_he_init_has_no_gradient_findings(
    tmp_path, deep_relu_data
):
    x, y = deep_relu_data
    model = _mlp(50, 256, "relu", "he_normal")
    monitor, pre = _preflight(model, x, y, tmp_path, histograms=False)
    kinds = {f.kind for f in monitor.findings}
    assert not kinds & {
        "vanishing_gradients",
        "exploding_gradients",
        "nonfinite",
    }
    ratios = [
        s["grad_norm"] / monitor.last_result.reference_grad_norm
        for s in monitor.last_result.layers.values()
    ]
    assert all(math.isfinite(r) and 1e-3 < r < 1e3 for r in ratios)


@pytest.mark.parametrize(
    "init, saturates",
    # N(0, 1) against Kumar's init for sigmoid (variance 12.8 / fan_in).
    [("normal_1", True), ("kumar", False)],
)
def test_sigmoid_mlp_saturation(tmp_path, init, saturates):
    x, y = _data(128, 256, seed=1)
    if init == "kumar":
        init = kerasinit.initializers.Kumar("sigmoid")
    else:
        init = keras.initializers.RandomNormal(stddev=1.0)
    model = _mlp(10, 256, "sigmoid", init, in_dim=256)
    monitor, pre = _preflight(model, x, y, tmp_path)
    assert ("saturation" in pre) is saturates
    if saturates:
        sat = [f for f in monitor.findings if f.kind == "saturation"]
        assert all(f.value > f.threshold for f in sat)


def test_healthy_cnn_with_batchnorm_has_zero_findings(tmp_path):
    rng = np.random.default_rng(3)
    n = 256
    # Two classes told apart by the sign of a smooth pattern in the image.
    pattern = np.sin(np.linspace(0, 3 * np.pi, 16))[None, :, None, None]
    pattern = (
        pattern * np.cos(np.linspace(0, 2 * np.pi, 16))[None, None, :, None]
    )
    y = rng.integers(0, 2, n)
    x = (
        rng.normal(size=(n, 16, 16, 1))
        + (2 * y - 1)[:, None, None, None] * pattern
    )
    x = x.astype("float32")
    conv = dict(kernel_initializer="he_normal", padding="same", use_bias=False)
    model = keras.Sequential(
        [
            keras.Input((16, 16, 1)),
            keras.layers.Conv2D(8, 3, **conv, name="c1"),
            keras.layers.BatchNormalization(name="bn1"),
            keras.layers.ReLU(name="r1"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(16, 3, **conv, name="c2"),
            keras.layers.BatchNormalization(name="bn2"),
            keras.layers.ReLU(name="r2"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, name="head"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    monitor = HealthMonitor(tmp_path, (x[:64], y[:64]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", HealthWarning)
        model.fit(x, y, batch_size=32, epochs=3, verbose=0, callbacks=[monitor])
    assert monitor.findings == []
    recs = records(tmp_path)
    assert len(recs) == 4 and recs[-1]["findings"] == []
    assert [lyr["name"] for lyr in recs[-1]["layers"]] == ["r1", "r2"]
