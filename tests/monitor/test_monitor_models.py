"""HealthMonitor on every kind of model it must support."""

import keras
import numpy as np
import pytest
from monitor_events import records, tags

import kerasinit
from kerasinit.callbacks import HealthMonitor


def _fit(model, x, y, log_dir, epochs=1, **kwargs):
    monitor = HealthMonitor(log_dir, (x, y), warn=False, **kwargs)
    model.fit(
        x, y, batch_size=16, epochs=epochs, verbose=0, callbacks=[monitor]
    )
    return monitor


def _assert_measured(monitor, log_dir, layers, with_grads=True):
    rec = records(log_dir)[-1]
    assert [lyr["name"] for lyr in rec["layers"]] == layers
    for layer in layers:
        stats = rec["stats"][layer]
        assert stats["act_std"] is not None and stats["act_std"] > 0
        if with_grads:
            assert stats["grad_norm"] is not None and stats["grad_norm"] > 0
    return rec


def test_nested_functional_and_activation_layers(tmp_path):
    inner = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, name="proj"),
            keras.layers.LeakyReLU(0.2, name="leaky"),
            keras.layers.Dense(16, activation="elu", name="elu_dense"),
        ],
        name="encoder",
    )
    inp = keras.Input((8,))
    h = inner(inp)
    h = keras.layers.Dense(16, name="pre")(h)
    h = keras.layers.PReLU(name="prelu")(h)
    h = keras.layers.Activation("tanh", name="act")(h)
    h = kerasinit.layers.ReLU(name="ki_relu")(
        keras.layers.Dense(16, name="d")(h)
    )
    out = keras.layers.Dense(2, name="head")(h)
    model = keras.Model(inp, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
    y = np.arange(32) % 2
    monitor = _fit(model, x, y, tmp_path)
    rec = _assert_measured(
        monitor,
        tmp_path,
        ["encoder/leaky", "encoder/elu_dense", "prelu", "act", "ki_relu"],
    )
    classes = {lyr["name"]: lyr["activation"] for lyr in rec["layers"]}
    assert classes["encoder/leaky"] == "leaky_relu"
    assert classes["ki_relu"] == "relu"
    assert "activations/encoder/leaky" in tags(tmp_path)
    # A weightless activation layer is credited with the layer before it.
    leaky = monitor.last_result.layers["encoder/leaky"]
    weights = np.concatenate(
        [w.numpy().ravel() for w in inner.get_layer("proj").trainable_weights]
    )
    np.testing.assert_allclose(
        leaky["weight_norm"], np.linalg.norm(weights), rtol=1e-5
    )


class SubclassedNet(keras.Model):
    def __init__(self):
        super().__init__()
        self.d1 = keras.layers.Dense(16, activation="relu", name="sub_d1")
        self.bn = keras.layers.BatchNormalization(name="sub_bn")
        self.drop = keras.layers.Dropout(0.5)
        self.d2 = keras.layers.Dense(16, activation="sigmoid", name="sub_d2")
        self.out = keras.layers.Dense(3, name="sub_out")

    def call(self, x, training=False):
        h = self.bn(self.d1(x), training=training)
        return self.out(self.d2(self.drop(h, training=training)))


def test_subclassed_model_with_batchnorm_and_dropout(tmp_path):
    model = SubclassedNet()
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(1).normal(size=(32, 5)).astype("float32")
    y = np.arange(32) % 3
    model.fit(x, y, epochs=1, verbose=0)
    moving = model.bn.moving_mean.numpy().copy()
    monitor = HealthMonitor(tmp_path, (x, y), warn=False)
    monitor.set_model(model)
    monitor.on_train_begin()
    # The probe ran in training mode but left BatchNorm's statistics alone.
    np.testing.assert_array_equal(model.bn.moving_mean.numpy(), moving)
    # After the first training step the probe is compiled on another
    # thread, wrapping each monitored layer's `call` while it traces; once
    # done, no wrapper is left.
    monitor.on_epoch_begin(0)
    for batch in range(2):
        monitor.on_train_batch_begin(batch)
    monitor.on_train_end()
    assert "call" not in vars(model.d1)
    assert monitor.compiled_probe is not None
    _assert_measured(monitor, tmp_path, ["sub_d1", "sub_d2"])


def test_conv1d_and_recurrent_layers(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((12, 4)),
            keras.layers.Conv1D(8, 3, activation="relu", name="conv"),
            keras.layers.LSTM(8, return_sequences=True, name="lstm"),
            keras.layers.GRU(6, name="gru"),
            keras.layers.Dense(1, name="head"),
        ]
    )
    model.compile("adam", "mse")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(32, 12, 4)).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")
    monitor = _fit(model, x, y, tmp_path)
    rec = _assert_measured(monitor, tmp_path, ["conv", "lstm", "gru"])
    # Gated recurrent outputs are not the activation's output: no
    # saturation rule applies to them.
    assert rec["stats"]["lstm"]["saturation_fraction"] == 0.0


def test_transformer_block_with_swiglu(tmp_path):
    tokens = keras.Input((10,), dtype="int32")
    h = keras.layers.Embedding(50, 16, name="embed")(tokens)
    attn = keras.layers.MultiHeadAttention(2, 8, name="mha")(h, h)
    h = keras.layers.LayerNormalization(name="ln")(h + attn)
    ff = kerasinit.layers.SwiGLU(32, name="swiglu")(h)
    h = h + keras.layers.Dense(16, name="ff_out")(ff)
    out = keras.layers.Dense(50, name="lm_head")(h)
    model = keras.Model(tokens, out)
    model.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    rng = np.random.default_rng(3)
    x = rng.integers(0, 50, (32, 10)).astype("int32")
    y = np.roll(x, -1, axis=1)
    monitor = _fit(model, x, y, tmp_path)
    rec = _assert_measured(monitor, tmp_path, ["swiglu"])
    assert rec["layers"][0]["activation"] == "silu"


def test_multiple_inputs_and_outputs_with_sample_weights(tmp_path):
    a = keras.Input((4,), name="a")
    b = keras.Input((6,), name="b")
    h = keras.layers.Concatenate()(
        [
            keras.layers.Dense(8, activation="relu", name="da")(a),
            keras.layers.Dense(8, activation="tanh", name="db")(b),
        ]
    )
    o1 = keras.layers.Dense(1, name="reg")(h)
    o2 = keras.layers.Dense(3, activation="softmax", name="cls")(h)
    model = keras.Model({"a": a, "b": b}, {"reg": o1, "cls": o2})
    model.compile(
        "adam", {"reg": "mse", "cls": "sparse_categorical_crossentropy"}
    )
    rng = np.random.default_rng(4)
    x = {
        "a": rng.normal(size=(32, 4)).astype("float32"),
        "b": rng.normal(size=(32, 6)).astype("float32"),
    }
    y = {
        "reg": rng.normal(size=(32, 1)).astype("float32"),
        "cls": np.arange(32) % 3,
    }
    w = np.linspace(0.5, 1.5, 32).astype("float32")
    monitor = HealthMonitor(tmp_path, (x, y, w), warn=False)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[monitor])
    # softmax is a non-linearity the table does not describe: measured, with
    # no dead or saturation rule.
    _assert_measured(monitor, tmp_path, ["da", "db", "cls"])


@pytest.fixture
def mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_mixed_precision(tmp_path, mixed_precision):
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu", name="d1"),
            keras.layers.Dense(2, dtype="float32", name="head"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(5).normal(size=(32, 8)).astype("float32")
    y = np.arange(32) % 2
    monitor = _fit(model, x, y, tmp_path)
    _assert_measured(monitor, tmp_path, ["d1"])


def test_steps_per_execution_and_step_cadence(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu", name="d1"),
            keras.layers.Dense(1, name="head"),
        ]
    )
    model.compile("sgd", "mse", steps_per_execution=3)
    x = np.random.default_rng(6).normal(size=(96, 4)).astype("float32")
    y = x[:, :1]
    monitor = HealthMonitor(
        tmp_path, (x, y), every_n_steps=4, every_n_epochs=None
    )
    # The step events run between updates, in the batch-begin hook; no
    # batch-end hook is overridden, so Keras keeps its asynchronous
    # batch-end dispatch for the other callbacks.
    for hook in ("on_batch_end", "on_train_batch_end"):
        assert getattr(HealthMonitor, hook) is getattr(
            keras.callbacks.Callback, hook
        )
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[monitor])
    steps = [r["step"] for r in records(tmp_path)]
    # 12 steps per epoch run 3 at a time: the hook sees 3, 6, 9 updates done
    # (then 12 at the epoch's end, ...) and logs whenever a multiple of 4 has
    # been reached since the last look (none in 13..15).
    assert steps == [0, 6, 9, 12, 18, 21, 24]
    assert int(model.optimizer.iterations.numpy()) == 24


def test_resume_with_initial_epoch_continues_steps(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu", name="d1"),
            keras.layers.Dense(1, name="head"),
        ]
    )
    model.compile("sgd", "mse")
    x = np.random.default_rng(7).normal(size=(32, 4)).astype("float32")
    y = x[:, :1]
    monitor = HealthMonitor(tmp_path, (x, y))
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[monitor])
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=4,
        initial_epoch=2,
        verbose=0,
        callbacks=[monitor],
    )
    fresh = HealthMonitor(tmp_path, (x, y))
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=5,
        initial_epoch=4,
        verbose=0,
        callbacks=[fresh],
    )
    recs = records(tmp_path)
    assert [(r["phase"], r["step"], r["epoch"]) for r in recs] == [
        ("preflight", 0, None),
        ("epoch", 2, 0),
        ("epoch", 4, 1),
        ("epoch", 6, 2),
        ("epoch", 8, 3),
        ("preflight", 8, None),
        ("epoch", 10, 4),
    ]
    # The event counter continues, also for a new monitor on the same run.
    assert [r["event"] for r in recs] == [0, 1, 2, 3, 4, 5, 6]
    run = tmp_path / "kerasinit"
    assert len(list(run.glob("events.out.tfevents*"))) == 3
