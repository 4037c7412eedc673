"""Correctness and behaviour of the element-wise activation layers."""

import inspect
import math

import keras
import numpy as np
import pytest

import kerasinit
from kerasinit import gains
from kerasinit.layers import (
    ELU,
    GELU,
    SELU,
    HardSigmoid,
    HardSwish,
    LeakyReLU,
    Mish,
    PReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softplus,
    Softsign,
    Swish,
    Tanh,
)

# Negative, zero, the kinks of every piecewise activation (-3, 0, 3, 6) and
# magnitudes where exp overflows float32 (|x| = 100).
X = np.array(
    [
        [-100.0, -20.0, -6.0, -3.5, -3.0, -1.0, -0.25],
        [0.0, 0.25, 1.0, 2.9, 3.0, 6.0, 100.0],
    ],
    dtype="float32",
)

_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717


def _erf(z):
    return np.vectorize(math.erf)(z)


def _logistic(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


# Independent float64 references: none of them calls kerasinit.gains.
REFERENCES = [
    (ReLU, {}, lambda x: np.where(x > 0, x, 0.0)),
    (LeakyReLU, {}, lambda x: np.where(x > 0, x, 0.3 * x)),
    (
        LeakyReLU,
        {"negative_slope": 0.01},
        lambda x: np.where(x > 0, x, x / 100),
    ),
    (LeakyReLU, {"negative_slope": 0.0}, lambda x: np.where(x > 0, x, 0.0)),
    (PReLU, {}, lambda x: np.where(x > 0, x, 0.25 * x)),
    (ELU, {}, lambda x: np.where(x > 0, x, np.exp(x) - 1.0)),
    (ELU, {"alpha": 0.5}, lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    (
        SELU,
        {},
        lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(x)),
    ),
    (GELU, {}, lambda x: 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))),
    (
        GELU,
        {"approximate": True},
        lambda x: (
            0.5
            * x
            * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))
        ),
    ),
    (SiLU, {}, lambda x: x * _logistic(x)),
    (SiLU, {"beta": 1.5}, lambda x: x * _logistic(1.5 * x)),
    (
        SiLU,
        {"beta": 0.5, "trainable_beta": True},
        lambda x: x * _logistic(x / 2),
    ),
    (Swish, {}, lambda x: x * _logistic(x)),
    (Mish, {}, lambda x: x * np.tanh(np.log1p(np.exp(x)))),
    (Sigmoid, {}, _logistic),
    (Tanh, {}, np.tanh),
    (Softplus, {}, lambda x: np.maximum(x, 0.0) + np.log1p(np.exp(-abs(x)))),
    (HardSwish, {}, lambda x: x * np.minimum(np.maximum(x + 3, 0), 6) / 6),
    (HardSigmoid, {}, lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0)),
    (ReLU6, {}, lambda x: np.minimum(np.maximum(x, 0.0), 6.0)),
    (Softsign, {}, lambda x: x / (1.0 + np.abs(x))),
]

ALL_ELEMENTWISE = sorted(
    {cls for cls, _, _ in REFERENCES}, key=lambda cls: cls.__name__
)


def _case_id(case):
    cls, kwargs, _ = case
    args = ",".join(f"{k}={v}" for k, v in kwargs.items())
    return f"{cls.__name__}({args})"


# float32 arithmetic: a few ulps relative error, and an absolute floor for
# outputs that cancel to ~0 (e.g. 1 - e^-x near 0).
RTOL = 8 * np.finfo(np.float32).eps
ATOL = 8 * np.finfo(np.float32).eps


def test_matches_numpy_reference():
    # One test over every case: per-test Keras session setup would cost more
    # than all the cases together.
    for case in REFERENCES:
        cls, kwargs, reference = case
        out = keras.ops.convert_to_numpy(cls(**kwargs)(X))
        assert out.dtype == np.float32, _case_id(case)
        expected = reference(X.astype(np.float64))
        np.testing.assert_allclose(
            out, expected, rtol=RTOL, atol=ATOL, err_msg=_case_id(case)
        )


def test_prelu_learns_one_slope_per_channel_by_default():
    layer = PReLU()
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 3)).astype("float32")
    layer.build(x.shape)
    assert tuple(layer.alpha.shape) == (1, 1, 3)
    slopes = np.array([0.1, 0.5, 2.0], dtype="float32")
    layer.alpha.assign(slopes.reshape(1, 1, 3))
    out = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(
        out, np.where(x > 0, x, slopes * x), rtol=RTOL, atol=ATOL
    )


@pytest.mark.parametrize(
    "shared_axes, alpha_shape",
    [
        ([1, 2], (1, 1, 3)),
        ([1], (1, 5, 3)),
        (-1, (5, 5, 1)),
        ([1, 2, 3], (1, 1, 1)),
    ],
)
def test_prelu_shared_axes(shared_axes, alpha_shape):
    layer = PReLU(shared_axes=shared_axes)
    out = layer(np.ones((2, 5, 5, 3), dtype="float32"))
    assert tuple(layer.alpha.shape) == alpha_shape
    assert tuple(out.shape) == (2, 5, 5, 3)


def test_shape_is_preserved():
    for cls in ALL_ELEMENTWISE:
        for shape in [(3, 4), (2, 3, 4, 5)]:
            layer = cls()
            out = layer(np.zeros(shape, dtype="float32"))
            assert tuple(out.shape) == shape, cls.__name__
            assert layer.compute_output_shape(shape) == shape, cls.__name__


def test_trains_one_step():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    for cls in ALL_ELEMENTWISE:
        model = keras.Sequential(
            [
                keras.Input((6,)),
                keras.layers.Dense(8),
                cls(),
                keras.layers.Dense(1),
            ]
        )
        model.compile(keras.optimizers.SGD(0.01), "mse", run_eagerly=True)
        kernel = model.layers[0].kernel
        before = keras.ops.convert_to_numpy(kernel.value).copy()
        loss = model.train_on_batch(x, y)
        assert np.isfinite(loss), cls.__name__
        after = keras.ops.convert_to_numpy(kernel.value)
        # The gradient reached the kernel through the activation.
        assert not np.array_equal(before, after), cls.__name__


def _grad(layer, x, weight):
    """d sum(layer(x)) / d weight, taken the way the running backend does."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            out = keras.ops.sum(layer(x))
        grad = tape.gradient(out, weight.value)
    elif backend == "jax":
        import jax

        index = [id(v) for v in layer.trainable_variables].index(id(weight))

        def total(trainable):
            out, _ = layer.stateless_call(
                trainable, [v.value for v in layer.non_trainable_variables], x
            )
            return keras.ops.sum(out)

        grads = jax.grad(total)([v.value for v in layer.trainable_variables])
        grad = grads[index]
    elif backend == "torch":
        weight.value.grad = None
        keras.ops.sum(layer(x)).backward()
        grad = weight.value.grad
    else:
        raise NotImplementedError(f"No gradient for backend {backend!r}.")
    return keras.ops.convert_to_numpy(grad)


def test_prelu_alpha_gets_its_gradient():
    layer = PReLU()
    x = X.astype("float32")
    layer.build(x.shape)
    # d/d alpha_c of sum(f(x)) is the sum of the non-positive inputs of
    # channel c.
    expected = np.where(X > 0, 0.0, X).sum(axis=0)
    np.testing.assert_allclose(
        _grad(layer, x, layer.alpha), expected, rtol=1e-6
    )
    assert layer.alpha.trainable


def test_silu_trainable_beta_gets_its_gradient():
    layer = SiLU(beta=1.5, trainable_beta=True)
    x = np.linspace(-4.0, 4.0, 17, dtype="float32")[None, :]
    layer.build(x.shape)
    assert [w.name for w in layer.trainable_weights] == ["beta"]
    # d/d beta of x * sigmoid(beta x) is x^2 s (1 - s), s = sigmoid(beta x).
    x64 = x.astype(np.float64)
    s = _logistic(1.5 * x64)
    expected = np.sum(x64**2 * s * (1.0 - s))
    np.testing.assert_allclose(
        _grad(layer, x, layer.beta_weight), expected, rtol=1e-5
    )


def test_silu_fixed_beta_has_no_weights():
    layer = SiLU(beta=2.0)
    layer(X)
    assert layer.weights == []


def test_learned_parameters_are_reported_to_the_table():
    prelu = PReLU()
    prelu.build((None, 3))
    prelu.alpha.assign(np.array([0.1, 0.2, 0.6], dtype="float32"))
    name, slope = prelu.kerasinit_activation
    assert name == "prelu"
    assert slope == pytest.approx(0.3)
    assert prelu.gain == gains.gain("prelu", slope)

    silu = SiLU(trainable_beta=True)
    silu.build((None, 3))
    silu.beta_weight.assign(2.5)
    assert silu.kerasinit_activation == ("silu", 2.5)
    assert silu.gain == gains.gain("silu", 2.5)
    # get_config keeps the constructor argument; the weight carries the
    # learned value.
    assert silu.get_config()["beta"] == 1.0


EXPECTED_ACTIVATION = [
    (ReLU(), ("relu", None)),
    (LeakyReLU(), ("leaky_relu", 0.3)),
    (LeakyReLU(0.2), ("leaky_relu", 0.2)),
    (PReLU(), ("prelu", 0.25)),
    (PReLU(alpha_initializer="zeros"), ("prelu", 0.0)),
    (PReLU(alpha_initializer="glorot_uniform"), ("prelu", None)),
    (ELU(), ("elu", 1.0)),
    (ELU(0.7), ("elu", 0.7)),
    (SELU(), ("selu", None)),
    (GELU(), ("gelu", None)),
    (GELU(approximate=True), ("gelu_tanh", None)),
    (SiLU(), ("silu", 1.0)),
    (SiLU(beta=1.7), ("silu", 1.7)),
    (Swish(), ("silu", 1.0)),
    (Mish(), ("mish", None)),
    (Sigmoid(), ("sigmoid", None)),
    (Tanh(), ("tanh", None)),
    (Softplus(), ("softplus", None)),
    (HardSwish(), ("hard_swish", None)),
    (HardSigmoid(), ("hard_sigmoid", None)),
    (ReLU6(), ("relu6", None)),
    (Softsign(), ("softsign", None)),
]


def _layer_id(layer_and_spec):
    return f"{type(layer_and_spec[0]).__name__}-{layer_and_spec[1]}"


def test_facts_come_from_the_table():
    for case in EXPECTED_ACTIVATION:
        layer, spec = case
        name, param = spec
        msg = _layer_id(case)
        assert layer.kerasinit_activation == spec, msg
        assert layer.gain == gains.gain(name, param), msg
        assert layer.activation_info is gains.info(name), msg
        assert layer.gated is False, msg
        # The rest of the library sees the layer through `resolve`.
        entry, resolved_param = gains.resolve(layer)
        assert entry is gains.info(name), msg
        assert resolved_param == entry.param_or_default(param), msg
        assert kerasinit.gain(layer) == gains.gain(name, param), msg


def test_paired_initializer_is_for_activation():
    for_activation = getattr(kerasinit.initializers, "ForActivation", None)
    if for_activation is None:
        pytest.skip("kerasinit.initializers.ForActivation is not available")
    for case in EXPECTED_ACTIVATION:
        layer, (name, param) = case
        paired = layer.paired_initializer(seed=7)
        expected = for_activation(name, param, seed=7)
        assert type(paired) is for_activation, _layer_id(case)
        assert paired.get_config() == expected.get_config(), _layer_id(case)
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(paired((64, 32))),
            keras.ops.convert_to_numpy(expected((64, 32))),
            err_msg=_layer_id(case),
        )


def test_dead_and_saturation_rules_come_from_the_table():
    assert ReLU().activation_info.dead_value == 0.0
    assert ReLU().activation_info.can_die()
    assert not LeakyReLU().activation_info.can_die(0.3)
    assert Sigmoid().activation_info.saturation is not None
    assert Tanh().activation_info.saturation is gains.info("tanh").saturation
    assert GELU().activation_info.dead_value is None


class _NoArguments(keras.layers.Layer):
    def get_config(self):
        return super().get_config()


_BASE_CONFIG_KEYS = set(_NoArguments(name="base").get_config())


def test_get_config_is_exactly_the_constructor_arguments():
    for cls in ALL_ELEMENTWISE:
        arguments = {
            p
            for p in inspect.signature(cls.__init__).parameters
            if p not in ("self", "kwargs")
        }
        config = cls(name="x").get_config()
        assert set(config) == _BASE_CONFIG_KEYS | arguments, cls.__name__
        assert cls.from_config(config).get_config() == config, cls.__name__


BAD_ARGUMENTS = [
    (LeakyReLU, {"negative_slope": -0.1}, ValueError, r">= 0\. "),
    (LeakyReLU, {"negative_slope": float("nan")}, ValueError, "finite"),
    (LeakyReLU, {"negative_slope": float("inf")}, ValueError, "finite"),
    (LeakyReLU, {"negative_slope": "0.1"}, TypeError, "real number"),
    (LeakyReLU, {"negative_slope": None}, TypeError, "real number"),
    (LeakyReLU, {"negative_slope": True}, TypeError, "real number"),
    (ELU, {"alpha": 0}, ValueError, r"> 0\. "),
    (ELU, {"alpha": -1.0}, ValueError, r"> 0\. "),
    (ELU, {"alpha": float("nan")}, ValueError, "finite"),
    (SiLU, {"beta": float("inf")}, ValueError, "finite"),
    (SiLU, {"beta": float("nan")}, ValueError, "finite"),
    (SiLU, {"beta": [1.0]}, TypeError, "real number"),
    (SiLU, {"trainable_beta": 1}, TypeError, "bool"),
    (Swish, {"beta": float("-inf")}, ValueError, "finite"),
    (GELU, {"approximate": "tanh"}, TypeError, "bool"),
    (PReLU, {"shared_axes": [0, 1]}, ValueError, "batch axis"),
    (PReLU, {"shared_axes": [1, 1]}, ValueError, "repeated"),
    (PReLU, {"shared_axes": "1"}, TypeError, "int"),
    (PReLU, {"shared_axes": [1.0]}, TypeError, "int"),
]


def test_bad_arguments_raise_at_construction():
    for cls, kwargs, error, message in BAD_ARGUMENTS:
        ((name, value),) = kwargs.items()
        with pytest.raises(error, match=message) as info:
            cls(**kwargs)
        text = str(info.value)
        assert f"`{name}`" in text, text
        assert text.endswith(f"Received: {name}={value!r}"), text


def test_prelu_rejects_shared_axes_outside_the_input_at_build():
    layer = PReLU(shared_axes=[3])
    with pytest.raises(ValueError, match="`shared_axes` must name axes"):
        layer(np.ones((2, 4, 5), dtype="float32"))


def test_swish_is_a_silu():
    assert issubclass(Swish, SiLU)
    assert keras.saving.get_registered_name(Swish) == "kerasinit>Swish"
    assert keras.saving.get_registered_name(SiLU) == "kerasinit>SiLU"
