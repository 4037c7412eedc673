"""The activation table: gains, quadrature, resolution, health rules."""

import math

import keras
import numpy as np
import pytest
from scipy.special import ndtri

from kerasinit import gains

# Values of torch.nn.init.calculate_gain, written out by hand.
PYTORCH_GAINS = [
    ("linear", None, 1.0),
    ("conv1d", None, 1.0),
    ("conv2d", None, 1.0),
    ("conv3d", None, 1.0),
    ("conv_transpose2d", None, 1.0),
    ("sigmoid", None, 1.0),
    ("tanh", None, 5.0 / 3.0),
    ("relu", None, math.sqrt(2.0)),
    ("leaky_relu", None, math.sqrt(2.0 / (1.0 + 0.01**2))),
    ("leaky_relu", 0.2, math.sqrt(2.0 / (1.0 + 0.2**2))),
    ("selu", None, 0.75),
]


@pytest.mark.parametrize("name,param,expected", PYTORCH_GAINS)
def test_pytorch_defined_names_give_pytorch_values(name, param, expected):
    assert gains.gain(name, param) == pytest.approx(expected, rel=1e-12)
    assert gains.info(name).gain_rule == "pytorch"


def _stratified_normal(n, rng):
    # One draw per equal-probability stratum: far less variance than plain
    # sampling, still an unbiased Monte-Carlo estimate.
    u = (np.arange(n) + rng.random(n)) / n
    return ndtri(u)


@pytest.mark.parametrize("name", gains.names())
def test_quadrature_second_moment_matches_monte_carlo(name):
    entry = gains.info(name)
    rng = np.random.default_rng(7)
    replicates = [
        np.mean(entry(_stratified_normal(400_000, rng)) ** 2) for _ in range(8)
    ]
    mc = float(np.mean(replicates))
    se = float(np.std(replicates, ddof=1) / math.sqrt(len(replicates)))
    quad = gains.second_moment(name)
    # The estimate must be precise enough for a 1e-3 comparison to mean
    # something, and agree with quadrature within it.
    assert se < 2.5e-4
    assert abs(1.0 / math.sqrt(mc) - 1.0 / math.sqrt(quad)) < 1e-3
    assert abs(mc - quad) < max(4 * se, 1e-6)


@pytest.mark.parametrize("name", gains.names())
def test_second_moment_rule_is_used_off_the_pytorch_list(name):
    entry = gains.info(name)
    if entry.gain_rule == "second_moment":
        assert entry.gain() == pytest.approx(
            1.0 / math.sqrt(gains.second_moment(name)), rel=1e-12
        )


def test_known_closed_forms():
    # E[relu(z)^2] = 1/2, E[selu(z)^2] = 1 (self-normalizing), relu6 equals
    # relu up to the 6-sigma tail.
    assert gains.second_moment("relu") == pytest.approx(0.5, abs=1e-12)
    assert gains.second_moment("selu") == pytest.approx(1.0, abs=1e-6)
    assert gains.second_moment("leaky_relu", 0.3) == pytest.approx(
        (1 + 0.09) / 2, abs=1e-12
    )
    # The second-moment rule reproduces the PyTorch value where both apply.
    assert gains.gain("prelu", 0.2) == pytest.approx(
        gains.gain("leaky_relu", 0.2), rel=1e-10
    )


def test_callable_gain_uses_quadrature():
    assert gains.gain(lambda z: np.maximum(z, 0.0)) == pytest.approx(
        math.sqrt(2.0), rel=1e-9
    )
    assert gains.gain(lambda z: 2.0 * z) == pytest.approx(0.5, rel=1e-9)
    # A Keras activation function is recognised by identity, not integrated.
    assert gains.gain(keras.activations.tanh) == pytest.approx(5.0 / 3.0)
    # A custom Keras-tensor callable is integrated after conversion.
    assert gains.gain(lambda z: keras.ops.abs(z)) == pytest.approx(1.0)


def test_param_rejected_for_parameterless_activation():
    with pytest.raises(ValueError, match="takes no parameter"):
        gains.gain("relu", 0.1)
    with pytest.raises(ValueError, match="param"):
        gains.gain(lambda z: z, 0.1)


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as err:
        gains.gain("relux")
    message = str(err.value)
    assert "relux" in message
    for name in gains.names():
        assert name in message


def test_non_string_non_callable_rejected():
    with pytest.raises(TypeError, match="activation"):
        gains.info(3)
    with pytest.raises(TypeError, match="activation"):
        gains.gain(3)


def test_aliases_and_spelling():
    assert gains.info("swish") is gains.info("silu")
    assert gains.info("Leaky-ReLU") is gains.info("leaky_relu")
    assert gains.info("hard_silu") is gains.info("hard_swish")
    assert gains.info("gelu_approximate") is gains.info("gelu_tanh")


def test_every_entry_has_a_known_family():
    for name in gains.names():
        assert gains.info(name).family in gains.FAMILIES


def test_kumar_factor():
    assert gains.kumar_variance_factor("sigmoid") == pytest.approx(12.8)
    assert gains.kumar_variance_factor("tanh") == pytest.approx(1.0)
    # hard sigmoid: g'(0) = 1/6, g(0) = 1/2 -> 36 / 1.25.
    assert gains.kumar_variance_factor("hard_sigmoid") == pytest.approx(28.8)
    with pytest.raises(ValueError, match="He"):
        gains.kumar_variance_factor("relu")


@pytest.mark.parametrize(
    "obj,name,param",
    [
        (None, "linear", None),
        (keras.activations.relu, "relu", None),
        (keras.activations.leaky_relu, "leaky_relu", 0.2),
        (keras.activations.elu, "elu", 1.0),
        (keras.activations.gelu, "gelu", None),
        (keras.activations.swish, "silu", 1.0),
        (keras.activations.hard_silu, "hard_swish", None),
        (keras.layers.LeakyReLU(), "leaky_relu", 0.3),
        (keras.layers.LeakyReLU(negative_slope=0.05), "leaky_relu", 0.05),
        (keras.layers.ReLU(), "relu", None),
        (keras.layers.ReLU(max_value=6.0), "relu6", None),
        (keras.layers.ReLU(negative_slope=0.1), "leaky_relu", 0.1),
        (keras.layers.ELU(alpha=0.5), "elu", 0.5),
        (keras.layers.PReLU(), "prelu", 0.0),
        (keras.layers.Activation("tanh"), "tanh", None),
    ],
)
def test_resolve_reads_parameters_from_the_object(obj, name, param):
    entry, found = gains.resolve(obj)
    assert entry.name == name
    assert found == param


def test_resolve_dense_fused_activation_and_unknowns():
    dense = keras.layers.Dense(3, activation="sigmoid")
    assert gains.resolve(dense.activation)[0].name == "sigmoid"
    assert gains.resolve(keras.activations.softmax) is None
    assert gains.resolve(keras.layers.Dense(3)) is None
    assert gains.resolve(keras.layers.ReLU(threshold=0.5)) is None


def test_resolve_built_prelu_reads_its_slope():
    layer = keras.layers.PReLU(
        alpha_initializer=keras.initializers.Constant(0.4)
    )
    layer.build((None, 4))
    assert gains.resolve(layer) == (gains.info("prelu"), pytest.approx(0.4))


def _numeric_derivative(entry, x, param):
    h = 1e-6
    return (entry(x + h, param) - entry(x - h, param)) / (2 * h)


@pytest.mark.parametrize(
    "name", [n for n in gains.names() if gains.info(n).saturation is not None]
)
def test_saturation_rule_is_the_derivative_written_in_the_output(name):
    entry = gains.info(name)
    param = entry.param_or_default(None)
    # Avoid the kinks, where the derivative is one-sided.
    x = np.linspace(-7.9, 7.9, 317)
    x = x[
        np.min(np.abs(x[:, None] - np.array(entry.kinks or (99.0,))), 1) > 1e-3
    ]
    y = entry(x, param)
    if entry.dead_value is not None:
        # The dead region is the dead rule's, not the saturation rule's.
        x, y = x[y != entry.dead_value], y[y != entry.dead_value]
    rule = entry.saturation.derivative(y, param, np)
    np.testing.assert_allclose(
        rule, _numeric_derivative(entry, x, param), rtol=1e-4, atol=1e-6
    )
    peak = entry.saturation.peak(param)
    assert np.max(rule) <= peak + 1e-9


def test_saturation_rules_run_on_keras_tensors():
    entry = gains.info("tanh")
    y = keras.ops.convert_to_tensor(np.array([0.0, 0.5, 0.999], "float32"))
    d = entry.saturation.derivative(y, None, keras.ops)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(d), [1.0, 0.75, 1 - 0.999**2], rtol=1e-3
    )


def test_dead_rules():
    assert gains.info("relu").can_die()
    assert gains.info("relu6").can_die()
    assert gains.info("hard_swish").can_die()
    assert gains.info("leaky_relu").can_die(0.0)
    assert not gains.info("leaky_relu").can_die(0.1)
    for name in ("sigmoid", "tanh", "gelu", "silu", "elu", "selu", "prelu"):
        assert not gains.info(name).can_die(), name
