"""`kerasinit.lsuv`: unit output variance per layer, training, no mutation on
error.

Each layer's output variance is recomputed here independently of the code
under test: the kernel layers carry no fused activation, so a sub-model to
``layer.output`` gives exactly the pre-activation output LSUV normalizes.
"""

import math

import keras
import numpy as np
import pytest

import kerasinit as ki

L = keras.layers


def _variances(model, x, names):
    out = {}
    for name in names:
        probe = keras.Model(model.inputs[0], model.get_layer(name).output)
        value = keras.ops.convert_to_numpy(probe(x, training=False))
        out[name] = float(np.var(value.astype(np.float64)))
    return out


def _snapshot(model):
    return [keras.ops.convert_to_numpy(v).copy() for v in model.variables]


def _assert_unchanged(model, before):
    for old, new in zip(before, _snapshot(model)):
        np.testing.assert_array_equal(old, new)


def _cnn():
    inp = keras.Input((16, 16, 3))
    h = L.Conv2D(8, 3, padding="same", name="c1")(inp)
    h = L.ReLU()(h)
    h = L.DepthwiseConv2D(3, padding="same", name="dw")(h)
    h = L.Activation("tanh")(h)
    h = L.Conv2D(16, 3, strides=2, name="c2")(h)
    h = L.BatchNormalization()(h)
    h = L.ReLU()(h)
    h = L.Flatten()(h)
    h = L.Dense(32, name="d1")(h)
    h = L.LeakyReLU()(h)
    return keras.Model(inp, L.Dense(5, name="d2")(h))


@pytest.mark.parametrize("tol", [0.1, 0.02])
def test_every_layer_has_unit_variance_on_the_batch(tol):
    model = _cnn()
    x = np.random.default_rng(0).uniform(0, 255, (64, 16, 16, 3))
    x = x.astype("float32")
    report = ki.lsuv(model, x, tol=tol, seed=0)
    names = ["c1", "dw", "c2", "d1", "d2"]
    assert [row.layer for row in report] == names
    measured = _variances(model, x, names)
    for name in names:
        assert abs(measured[name] - 1.0) < tol, (name, measured[name])
        assert report[name].variance_after == pytest.approx(
            measured[name], rel=1e-4
        )
    # The raw pixel scale makes the first layer's variance far from 1.
    assert report["c1"].variance_before > 100
    assert report["c1"].scale < 0.1


def test_transposed_separable_and_einsum_layers():
    inp = keras.Input((8, 8, 4))
    h = L.Conv2DTranspose(6, 3, strides=2, name="up")(inp)
    h = L.ReLU()(h)
    h = L.SeparableConv2D(8, 3, depth_multiplier=2, name="sep")(h)
    h = L.Reshape((-1, 8))(h)
    h = L.EinsumDense("btd,dh->bth", output_shape=(None, 12), name="ein")(h)
    model = keras.Model(inp, h)
    x = 3 * np.random.default_rng(6).standard_normal((32, 8, 8, 4))
    x = x.astype("float32")
    ki.lsuv(model, x, seed=0)
    measured = _variances(model, x, ["up", "sep", "ein"])
    for name, value in measured.items():
        assert abs(value - 1.0) < 0.1, (name, value)


def test_fused_activations_are_left_out_of_the_variance():
    model = keras.Sequential(
        [keras.Input((20,))]
        + [L.Dense(24, activation="tanh", name=f"t{i}") for i in range(3)]
    )
    x = np.random.default_rng(1).standard_normal((128, 20)).astype("float32")
    report = ki.lsuv(model, x, seed=0)
    # Recompute t2's pre-activation from its input, in NumPy.
    layer = model.get_layer("t2")
    feed = keras.Model(model.inputs[0], layer.input)
    inputs = keras.ops.convert_to_numpy(feed(x)).astype(np.float64)
    kernel = keras.ops.convert_to_numpy(layer.kernel).astype(np.float64)
    bias = keras.ops.convert_to_numpy(layer.bias).astype(np.float64)
    pre = inputs @ kernel + bias
    assert abs(np.var(pre) - 1.0) < 0.1
    assert report["t2"].variance_after == pytest.approx(np.var(pre), 1e-4)


def test_nested_model_layers():
    inner = keras.Sequential(
        [keras.Input((16,)), L.Dense(16, name="inner_dense"), L.ReLU()],
        name="block",
    )
    inp = keras.Input((8,))
    h = L.Dense(16, name="outer")(inp)
    out = L.Dense(3, name="head")(inner(h))
    model = keras.Model(inp, out)
    x = 5.0 * np.random.default_rng(2).standard_normal((128, 8))
    report = ki.lsuv(model, x.astype("float32"), seed=0)
    assert [r.layer for r in report] == ["outer", "block/inner_dense", "head"]
    probe = keras.Model(inner.inputs[0], inner.get_layer("inner_dense").output)
    feed = keras.Model(model.inputs[0], model.get_layer("outer").output)
    value = keras.ops.convert_to_numpy(probe(feed(x.astype("float32"))))
    assert abs(np.var(value) - 1.0) < 0.1


def test_kernels_start_orthonormal():
    model = keras.Sequential(
        [keras.Input((32,)), L.Dense(16, name="a"), L.Dense(16, name="b")]
    )
    x = np.random.default_rng(3).standard_normal((256, 32)).astype("float32")
    report = ki.lsuv(model, x, seed=0)
    kernel = keras.ops.convert_to_numpy(model.get_layer("b").kernel)
    # Orthonormal columns, times the one scale LSUV applied.
    gram = kernel.T @ kernel / report["b"].scale ** 2
    np.testing.assert_allclose(gram, np.eye(16), atol=1e-4)


def _tanh_mlp():
    init = keras.initializers.RandomNormal(stddev=0.01, seed=0)
    return keras.Sequential(
        [keras.Input((16,))]
        + [
            L.Dense(32, activation="tanh", kernel_initializer=init)
            for _ in range(20)
        ]
        + [L.Dense(2, activation="softmax")]
    )


@pytest.mark.slow
def test_deep_tanh_mlp_trains_only_after_lsuv():
    # A linearly separable two-class problem: chance is loss ln(2) and
    # accuracy 1/2. "Trains" = after 2 epochs the loss has dropped by at
    # least 0.2 nats below ln(2) and the accuracy is at least 0.75.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 16)).astype("float32")
    y = (x @ rng.standard_normal(16) > 0).astype("int32")
    results = {}
    for use_lsuv in (False, True):
        keras.utils.set_random_seed(0)
        model = _tanh_mlp()
        if use_lsuv:
            ki.lsuv(model, x[:256], seed=0)
        model.compile(
            keras.optimizers.Adam(3e-3),
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=False,
        )
        history = model.fit(x, y, epochs=2, batch_size=64, verbose=0)
        results[use_lsuv] = (
            history.history["loss"][-1],
            history.history["accuracy"][-1],
        )
    chance = math.log(2.0)
    base_loss, base_acc = results[False]
    lsuv_loss, lsuv_acc = results[True]
    assert base_loss > chance - 0.2 and base_acc < 0.75, results
    assert lsuv_loss < chance - 0.2 and lsuv_acc >= 0.75, results


def test_no_mutation_when_a_layer_is_dead():
    model = keras.Sequential(
        [
            keras.Input((8,)),
            L.Dense(8, name="a"),
            L.ReLU(),
            L.Dense(8, name="b"),
        ]
    )
    # All-negative pre-activations: ReLU outputs zero, `b` sees no signal.
    x = -np.ones((32, 8), "float32")
    model.get_layer("a").bias.assign(-100 * np.ones(8, "float32"))
    before = _snapshot(model)
    with pytest.raises(ValueError, match="'b'"):
        ki.lsuv(model, x, seed=0)
    _assert_unchanged(model, before)


def test_no_mutation_when_not_converged():
    model = keras.Sequential([keras.Input((8,)), L.Dense(8, name="a")])
    # One rescaling step lands within float32 rounding (~1e-7) of 1, which
    # is not within tol=1e-9, and max_iter=1 allows no second step.
    x = 10 * np.random.default_rng(4).standard_normal((64, 8))
    before = _snapshot(model)
    with pytest.raises(RuntimeError, match="max_iter"):
        ki.lsuv(model, x.astype("float32"), max_iter=1, tol=1e-9, seed=0)
    _assert_unchanged(model, before)


def test_no_mutation_when_x_does_not_fit():
    model = keras.Sequential(
        [keras.Input((8,)), L.Dense(8, name="a"), L.Dense(4, name="b")]
    )
    before = _snapshot(model)
    with pytest.raises(Exception):  # noqa: B017 - Keras's own shape error
        ki.lsuv(model, np.ones((4, 5), "float32"), seed=0)
    _assert_unchanged(model, before)


def test_report_table_and_dicts():
    model = keras.Sequential(
        [keras.Input((8,)), L.Dense(8, name="a"), L.Dense(4, name="b")]
    )
    x = np.random.default_rng(5).standard_normal((64, 8)).astype("float32")
    report = ki.lsuv(model, x, seed=0)
    lines = str(report).splitlines()
    assert lines[0].split()[:1] == ["layer"]
    assert [line.split()[0] for line in lines[2:]] == ["a", "b"]
    rows = report.to_list()
    assert set(rows[0]) == {
        "layer",
        "variance_before",
        "variance_after",
        "scale",
        "iterations",
    }


def test_argument_errors():
    model = keras.Sequential([keras.Input((4,)), L.Dense(2)])
    x = np.ones((8, 4), "float32")
    with pytest.raises(ValueError, match="`tol`"):
        ki.lsuv(model, x, tol=0)
    with pytest.raises(ValueError, match="`max_iter`"):
        ki.lsuv(model, x, max_iter=0)
    with pytest.raises(ValueError, match="built"):
        ki.lsuv(keras.Sequential([L.Dense(2)]), x)

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = L.Dense(2)

        def call(self, inputs):
            return self.d(inputs)

    sub = Sub()
    sub(x)
    with pytest.raises(ValueError, match="subclassed"):
        ki.lsuv(sub, x)
