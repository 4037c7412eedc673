"""`kerasinit.pair`: finding each kernel's activation and re-initializing it.

Expected variances are computed here from the formulas (He: gain^2/fan_in,
Glorot: gain^2 * 2/(fan_in+fan_out), LeCun: 1/fan_in, Kumar:
factor/fan_in), with fans counted by hand, not through the code under test.
The sample second moment of n independent N(0, v) draws has standard error
v * sqrt(2/n); every variance check allows 5 of those.
"""

import math

import keras
import numpy as np
import pytest

import kerasinit as ki
from kerasinit import gains

L = keras.layers


def _second_moment(variable):
    values = keras.ops.convert_to_numpy(variable).astype(np.float64)
    return float(np.mean(values * values)), values.size


def assert_variance(variable, expected):
    measured, n = _second_moment(variable)
    tolerance = 5.0 * expected * math.sqrt(2.0 / n)
    assert abs(measured - expected) <= tolerance, (measured, expected)


def he(fan_in, slope=0.0):
    return 2.0 / (1.0 + slope * slope) / fan_in


# ---------------------------------------------------------------------------
# Where the activation is found


def _placements():
    def fused():
        return keras.Sequential(
            [keras.Input((128,)), L.Dense(256, activation="relu", name="k")]
        )

    def next_layer():
        return keras.Sequential(
            [keras.Input((128,)), L.Dense(256, name="k"), L.ReLU()]
        )

    def after_bn_dropout():
        return keras.Sequential(
            [
                keras.Input((128,)),
                L.Dense(256, name="k"),
                L.BatchNormalization(),
                L.Dropout(0.2),
                L.Activation("relu"),
            ]
        )

    def kerasinit_layer():
        inp = keras.Input((128,))
        out = ki.layers.ReLU()(L.Dense(256, name="k")(inp))
        return keras.Model(inp, out)

    def through_reshape():
        inp = keras.Input((128,))
        h = L.Dense(256, name="k")(inp)
        h = L.Reshape((16, 16))(h)
        return keras.Model(inp, L.ReLU()(L.Flatten()(h)))

    def into_nested():
        inner = keras.Sequential(
            [keras.Input((256,)), L.ReLU(), L.Dense(4)], name="inner"
        )
        inp = keras.Input((128,))
        return keras.Model(inp, inner(L.Dense(256, name="k")(inp)))

    def out_of_nested():
        inner = keras.Sequential(
            [keras.Input((128,)), L.Dense(256, name="k")], name="inner"
        )
        inp = keras.Input((128,))
        return keras.Model(inp, L.ReLU()(inner(inp)))

    return {
        "fused": (fused, "k", "fused"),
        "next_layer": (next_layer, "k", "ReLU"),
        "after_bn_dropout": (after_bn_dropout, "k", "BatchNormalization"),
        "kerasinit_layer": (kerasinit_layer, "k", "ReLU"),
        "through_reshape": (through_reshape, "k", "Reshape"),
        "into_nested": (into_nested, "k", "ReLU"),
        "out_of_nested": (out_of_nested, "inner/k", "ReLU"),
    }


@pytest.mark.parametrize("placement", sorted(_placements()))
def test_activation_found_wherever_it_is_placed(placement):
    build, path, where = _placements()[placement]
    model = build()
    report = ki.pair(model, seed=0)
    row = report[path]
    assert row.activation == "relu"
    assert where in row.found
    layer = model.get_layer("k") if "/" not in path else None
    if layer is None:
        layer = model.get_layer("inner").get_layer("k")
    assert_variance(layer.kernel, he(128))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.bias), 0)


@pytest.mark.parametrize(
    "activation, expected",
    [
        ("relu", lambda fi, fo: 2.0 / fi),
        ("tanh", lambda fi, fo: (5.0 / 3.0) ** 2 * 2.0 / (fi + fo)),
        ("sigmoid", lambda fi, fo: gains.kumar_variance_factor("sigmoid") / fi),
        ("selu", lambda fi, fo: 1.0 / fi),
        ("elu", lambda fi, fo: gains.gain("elu") ** 2 / fi),
        ("gelu", lambda fi, fo: gains.gain("gelu") ** 2 / fi),
        (None, lambda fi, fo: 2.0 / (fi + fo)),
    ],
)
def test_family_and_variance_per_activation(activation, expected):
    model = keras.Sequential(
        [keras.Input((200,)), L.Dense(300, activation=activation, name="k")]
    )
    row = ki.pair(model, seed=1)["k"]
    assert row.activation.split("(")[0] == (activation or "linear")
    assert_variance(model.get_layer("k").kernel, expected(200, 300))


def test_uniform_distribution_keeps_the_variance():
    model = keras.Sequential(
        [keras.Input((200,)), L.Dense(300, activation="relu", name="k")]
    )
    ki.pair(model, distribution="uniform", seed=1)
    kernel = model.get_layer("k").kernel
    # U(-l, l) with l = sqrt(3 * 2 / fan_in) has He's variance 2 / fan_in;
    # the uniform mean square has relative standard error sqrt(0.8 / n).
    limit = math.sqrt(3 * 2.0 / 200)
    values = keras.ops.convert_to_numpy(kernel)
    assert np.abs(values).max() <= limit * (1 + 1e-6)  # float32 rounding
    assert np.abs(values).max() > 0.99 * limit
    assert_variance(kernel, 2.0 / 200)
    with pytest.raises(ValueError, match="`distribution`"):
        ki.pair(model, distribution="laplace")


def test_sigmoid_variance_matches_kumar_number():
    # Kumar (2017): sigmoid needs Var(W) = 12.8 / N (std ~= 3.6/sqrt(N)).
    assert gains.kumar_variance_factor("sigmoid") == pytest.approx(12.8, 1e-4)


def test_slopes_are_read_from_the_layers():
    inp = keras.Input((256,))
    a = L.LeakyReLU()(L.Dense(256, name="layer_slope")(inp))
    b = L.Dense(256, activation="leaky_relu", name="function_slope")(a)
    c = L.LeakyReLU(negative_slope=0.1)(L.Dense(256, name="explicit")(b))
    model = keras.Model(inp, c)
    report = ki.pair(model, seed=2)
    assert report["layer_slope"].activation == "leaky_relu(0.3)"
    assert report["function_slope"].activation == "leaky_relu(0.2)"
    assert report["explicit"].activation == "leaky_relu(0.1)"
    for name, slope in (
        ("layer_slope", 0.3),
        ("function_slope", 0.2),
        ("explicit", 0.1),
    ):
        assert_variance(model.get_layer(name).kernel, he(256, slope))


def test_linear_when_output_reaches_next_kernel_or_model_output():
    model = keras.Sequential(
        [keras.Input((64,)), L.Dense(128, name="a"), L.Dense(128, name="b")]
    )
    report = ki.pair(model, seed=3)
    assert report["a"].activation == "linear"
    assert "Dense 'b'" in report["a"].found
    assert report["b"].found == "model output"
    assert_variance(model.get_layer("a").kernel, 2.0 / (64 + 128))


# ---------------------------------------------------------------------------
# True fans


def test_depthwise_kernel_uses_window_fans():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 64)),
            L.DepthwiseConv2D(3, depth_multiplier=4, name="dw"),
            L.ReLU(),
        ]
    )
    row = ki.pair(model, seed=4)["dw"]
    # Each output sums over one channel's 3x3 window: fan_in = 9, not 9*64.
    assert row.fans == (9, 36)
    assert_variance(model.get_layer("dw").kernel, 2.0 / 9)


def test_transposed_conv_uses_swapped_fans():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 96)),
            L.Conv2DTranspose(32, 3, activation="relu", name="up"),
        ]
    )
    row = ki.pair(model, seed=5)["up"]
    # Kernel stored as (3, 3, 32, 96): the true fan_in is 9 * 96 inputs.
    assert row.fans == (9 * 96, 9 * 32)
    assert_variance(model.get_layer("up").kernel, 2.0 / (9 * 96))


def test_separable_conv_pairs_both_kernels():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 32)),
            L.SeparableConv2D(64, 3, depth_multiplier=2, name="sep"),
            L.ReLU(),
        ]
    )
    report = ki.pair(model, seed=6)
    rows = {row.kernel: row for row in report if row.layer == "sep"}
    assert rows["pointwise_kernel"].activation == "relu"
    assert rows["depthwise_kernel"].activation == "linear"
    layer = model.get_layer("sep")
    assert_variance(layer.pointwise_kernel, 2.0 / 64)
    assert_variance(layer.depthwise_kernel, 2.0 / (9 + 18))


def test_einsum_dense_uses_equation_fans():
    inp = keras.Input((10, 64))
    out = L.EinsumDense(
        "btd,dnh->btnh",
        output_shape=(None, 4, 32),
        activation="relu",
        name="proj",
    )(inp)
    model = keras.Model(inp, out)
    row = ki.pair(model, seed=7)["proj"]
    assert row.fans == (64, 128)
    assert_variance(model.get_layer("proj").kernel, 2.0 / 64)


# ---------------------------------------------------------------------------
# Residual scaling


def _residual_model(blocks=2, width=64):
    inp = keras.Input((width,))
    h = inp
    for i in range(blocks):
        z = L.LayerNormalization()(h)
        z = L.Dense(4 * width, activation="gelu", name=f"up{i}")(z)
        z = L.Dense(width, name=f"down{i}")(z)
        h = L.Add()([h, z])
    return keras.Model(inp, L.Dense(10, name="head")(h))


def test_residual_projections_scaled_by_number_of_branches():
    model = _residual_model(blocks=2)
    report = ki.pair(model, residual_scaling=True, seed=8)
    assert report["down0"].residual and report["down1"].residual
    assert not report["up0"].residual
    # Two residual branches: N = 1 block, variance / (2 * 1).
    paired = 2.0 / (256 + 64)
    for name in ("down0", "down1"):
        assert "ScaledNormal" in report[name].after
        assert_variance(model.get_layer(name).kernel, paired / 2.0)
    assert_variance(model.get_layer("up0").kernel, gains.gain("gelu") ** 2 / 64)


def test_residual_scaling_with_explicit_block_count():
    model = _residual_model(blocks=2)
    ki.pair(model, residual_scaling=True, num_residual_blocks=6, seed=9)
    assert_variance(model.get_layer("down1").kernel, 2.0 / (256 + 64) / 12.0)


def test_residual_projection_feeding_attention_through_layer_norm():
    # Pre-LN transformer: the MLP's down projection reaches the next block's
    # MultiHeadAttention through Add and LayerNormalization; attention
    # starts with linear projections, so the kernel is a linear, residual
    # one.
    width = 32
    inp = keras.Input((8, width))
    h = inp
    for i in range(2):
        z = L.LayerNormalization()(h)
        z = L.MultiHeadAttention(2, width // 2, name=f"attn{i}")(z, z)
        h = L.Add()([h, z])
        z = L.LayerNormalization()(h)
        z = L.Dense(4 * width, activation="gelu", name=f"up{i}")(z)
        z = L.Dense(width, name=f"down{i}")(z)
        h = L.Add()([h, z])
    model = keras.Model(inp, L.Dense(4, name="head")(h))
    report = ki.pair(model, residual_scaling=True, seed=12)
    assert report["down0"].activation == "linear"
    assert "MultiHeadAttention" in report["down0"].found
    assert report["down0"].residual and report["down1"].residual
    assert "ScaledNormal" in report["down0"].after
    assert not report.undetermined


def test_no_residual_scaling_by_default():
    model = _residual_model(blocks=2)
    report = ki.pair(model, seed=10)
    assert "ScaledNormal" not in report["down0"].after
    assert_variance(model.get_layer("down0").kernel, 2.0 / (256 + 64))


# ---------------------------------------------------------------------------
# Report, determinism, biases, errors


def test_report_rows_table_and_dicts():
    model = keras.Sequential(
        [
            keras.Input((16,)),
            L.Dense(32, name="hidden"),
            L.LeakyReLU(0.3),
            L.Dense(3, name="logits"),
        ]
    )
    report = ki.pair(model, seed=11)
    assert len(report) == 2
    hidden = report["hidden"]
    assert hidden.before == "GlorotUniform"
    assert hidden.after.startswith("He(leaky_relu)")
    assert hidden.fans == (16, 32)
    table = str(report)
    lines = table.splitlines()
    assert lines[0].split() == [
        "layer",
        "activation",
        "found",
        "before",
        "after",
    ]
    assert any(
        line.startswith("hidden") and "leaky_relu(0.3)" in line
        for line in lines
    )
    as_dicts = report.to_list()
    assert as_dicts[1]["layer"] == "logits"
    assert as_dicts[1]["activation"] == "linear"
    assert as_dicts[0]["fans"] == [16, 32]
    # The layer now records the initializer it was drawn from.
    config = keras.initializers.serialize(
        model.get_layer("hidden").kernel_initializer
    )
    assert config["class_name"] == "ForActivation"


def test_deterministic_with_seed_and_distinct_per_layer():
    def build():
        return keras.Sequential(
            [keras.Input((32,))]
            + [L.Dense(32, activation="relu") for _ in range(3)]
        )

    a, b, c = build(), build(), build()
    ki.pair(a, seed=42)
    ki.pair(b, seed=42)
    ki.pair(c, seed=43)
    for wa, wb, wc in zip(a.get_weights(), b.get_weights(), c.get_weights()):
        np.testing.assert_array_equal(wa, wb)
        if wa.ndim == 2:
            assert not np.array_equal(wa, wc)
    kernels = [w for w in a.get_weights() if w.ndim == 2]
    assert not np.array_equal(kernels[1], kernels[2])


def test_bias_options():
    def build():
        return keras.Sequential(
            [
                keras.Input((8,)),
                L.Dense(
                    8, activation="relu", bias_initializer="ones", name="k"
                ),
            ]
        )

    model = build()
    ki.pair(model, bias=0.01, seed=0)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.get_layer("k").bias), 0.01
    )
    model = build()
    ki.pair(model, bias=None, seed=0)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.get_layer("k").bias), 1.0
    )
    with pytest.raises(ValueError, match="`bias`"):
        ki.pair(model, bias="ones")


def test_unbuilt_model_raises():
    model = keras.Sequential([L.Dense(4, activation="relu")])
    with pytest.raises(ValueError, match="built"):
        ki.pair(model)
    with pytest.raises(TypeError, match="`model`"):
        ki.pair(L.Dense(3))


def test_undetermined_activation_left_unchanged():
    inp = keras.Input((16,))
    out = L.Lambda(lambda t: t * t, name="square")(L.Dense(8, name="k")(inp))
    model = keras.Model(inp, out)
    before = keras.ops.convert_to_numpy(model.get_layer("k").kernel)
    report = ki.pair(model, seed=0)
    assert report["k"].activation is None
    assert "Lambda 'square'" in report["k"].found
    assert report["k"].after == "unchanged"
    assert report.undetermined == [report["k"]]
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.get_layer("k").kernel), before
    )


@pytest.mark.parametrize("placement", ["fused", "layer", "activation"])
def test_softmax_logits_pair_as_linear(placement):
    inp = keras.Input((64,))
    if placement == "fused":
        out = L.Dense(32, activation="softmax", name="k")(inp)
    elif placement == "layer":
        out = L.Softmax()(L.Dense(32, name="k")(inp))
    else:
        out = L.Activation("softmax")(L.Dense(32, name="k")(inp))
    model = keras.Model(inp, out)
    row = ki.pair(model, seed=0)["k"]
    assert row.activation == "linear"
    assert "softmax" in row.found.lower()
    assert_variance(model.get_layer("k").kernel, 2.0 / (64 + 32))


def test_branches_that_disagree_are_undetermined():
    inp = keras.Input((16,))
    h = L.Dense(16, name="k")(inp)
    out = L.Concatenate()([L.ReLU()(h), L.Activation("tanh")(h)])
    model = keras.Model(inp, out)
    row = ki.pair(model, seed=0)["k"]
    assert row.activation is None
    assert "disagree" in row.found


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = L.Dense(64, activation="relu")
        self.plain = L.Dense(64)
        self.act = L.ReLU()

    def call(self, x):
        return self.act(self.plain(self.hidden(x)))


def test_subclassed_model_uses_fused_activations_only():
    model = _Subclassed()
    model(np.zeros((1, 64), "float32"))
    plain_before = keras.ops.convert_to_numpy(model.plain.kernel)
    report = ki.pair(model, seed=0)
    rows = {row.layer: row for row in report}
    assert rows[model.hidden.name].activation == "relu"
    assert_variance(model.hidden.kernel, 2.0 / 64)
    undetermined = rows[model.plain.name]
    assert undetermined.activation is None
    assert "subclassed" in undetermined.found
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.plain.kernel), plain_before
    )


@pytest.mark.parametrize(
    "cls, gate", [("SwiGLU", "silu"), ("GEGLU", "gelu"), ("ReGLU", "relu")]
)
def test_gated_layers_pair_both_kernels(cls, gate):
    inp = keras.Input((96,))
    h = L.Dense(96, name="k")(inp)
    h = getattr(ki.layers, cls)(128, kernel_initializer="zeros", name="glu")(h)
    model = keras.Model(inp, L.Dense(4)(h))
    report = ki.pair(model, seed=0)
    rows = {(row.layer, row.kernel): row for row in report}
    assert rows[("k", "kernel")].activation == "linear"
    assert rows[("glu", "gate_kernel")].activation.startswith(gate)
    assert rows[("glu", "value_kernel")].activation == "linear"
    layer = model.get_layer("glu")
    # Gate: the gate activation's He gain over fan_in; value: linear Glorot.
    assert_variance(layer.gate_kernel, gains.gain(gate) ** 2 / 96)
    assert_variance(layer.value_kernel, 2.0 / (96 + 128))
    gate_values = keras.ops.convert_to_numpy(layer.gate_kernel)
    value_values = keras.ops.convert_to_numpy(layer.value_kernel)
    assert not np.allclose(gate_values, value_values)
    # The layer's own default (None) now records what was drawn.
    assert layer.kernel_initializer is None


# ---------------------------------------------------------------------------
# Any spelling of an activation


def _relu_spellings():
    return [
        ("string", "relu", None),
        ("keras.activations", keras.activations.relu, None),
        ("keras.ops", keras.ops.relu, None),
        ("ReLU layer", None, lambda: L.ReLU()),
        ("Activation layer", None, lambda: L.Activation("relu")),
        ("Activation(ops)", None, lambda: L.Activation(keras.ops.relu)),
        ("kerasinit layer", None, lambda: ki.layers.ReLU()),
    ]


@pytest.mark.parametrize(
    "fused, layer", [s[1:] for s in _relu_spellings()], ids=lambda v: str(v)
)
def test_every_relu_spelling_pairs_with_he(fused, layer):
    stack = [keras.Input((256,)), L.Dense(256, activation=fused, name="k")]
    if layer is not None:
        stack.append(layer())
    model = keras.Sequential(stack + [L.Dense(4)])
    report = ki.pair(model, seed=0)
    assert report["k"].activation == "relu"
    assert_variance(model.get_layer("k").kernel, he(256))


def test_keras_ops_spellings_keep_their_own_defaults():
    # keras.ops.gelu defaults to the tanh approximation and
    # keras.ops.leaky_relu to slope 0.2; both are read from the function.
    model = keras.Sequential(
        [
            keras.Input((64,)),
            L.Dense(64, activation=keras.ops.gelu, name="g"),
            L.Dense(64, activation=keras.ops.leaky_relu, name="l"),
            L.Dense(2),
        ]
    )
    report = ki.pair(model, seed=0)
    assert report["g"].activation == "gelu_tanh"
    assert report["l"].activation == "leaky_relu(0.2)"


def test_custom_activation_is_paired_by_its_moment_gain():
    calls = []

    def bent(x):
        if isinstance(x, np.ndarray):
            calls.append(x.size)
        return keras.ops.relu(x) + 0.1 * x

    model = keras.Sequential(
        [
            keras.Input((512,)),
            L.Dense(512, activation=bent, kernel_initializer="zeros", name="a"),
            L.Dense(512, activation=bent, kernel_initializer="zeros", name="b"),
            L.Dense(2),
        ]
    )
    report = ki.pair(model, seed=0)
    # E[f(z)^2] for f(z) = relu(z) + 0.1 z: 1.1^2/2 + 0.1^2/2 = 0.61.
    gain = 1.0 / math.sqrt(0.61)
    assert report["a"].activation.startswith("bent (custom, moment gain")
    assert "second-moment" in report["a"].found
    assert_variance(model.get_layer("a").kernel, gain**2 / 512)
    assert_variance(model.get_layer("b").kernel, gain**2 / 512)
    evaluated = len(calls)
    assert evaluated > 0
    ki.pair(model, seed=1)
    ki.check(model, probe=False)
    assert len(calls) == evaluated  # computed once per callable


# ---------------------------------------------------------------------------
# Attention, embeddings and recurrent kernels


def test_attention_projections_have_rows_with_equation_fans():
    inp = keras.Input((10, 64))
    a = L.MultiHeadAttention(4, 16, name="attn")(inp, inp)
    h = L.ReLU()(L.Add()([inp, a]))
    model = keras.Model(inp, L.Dense(2)(h))
    report = ki.pair(model, seed=0)
    rows = {row.kernel: row for row in report if row.layer == "attn"}
    assert set(rows) == {
        "query_dense.kernel",
        "key_dense.kernel",
        "value_dense.kernel",
        "output_dense.kernel",
    }
    # q/k/v: kernel (64, 4, 16), summing over the 64 model dimensions and
    # producing 4 * 16; output: (4, 16, 64), the reverse.
    for name in ("query_dense", "key_dense", "value_dense", "output_dense"):
        assert rows[f"{name}.kernel"].fans == (64, 64)
    layer = model.get_layer("attn")
    for name in ("query_dense", "key_dense", "value_dense"):
        assert rows[f"{name}.kernel"].activation == "linear"
        assert_variance(getattr(layer, name).kernel, 2.0 / (64 + 64))
    # The output projection feeds a residual Add, then ReLU: He.
    assert_variance(layer.output_dense.kernel, he(64))
    assert rows["output_dense.kernel"].activation == "relu"
    assert rows["output_dense.kernel"].residual


def test_embeddings_are_drawn_at_gpt2_scale():
    inp = keras.Input((8,), dtype="int32")
    h = L.Flatten()(L.Embedding(2000, 64, name="emb")(inp))
    model = keras.Model(inp, L.Dense(2)(h))
    report = ki.pair(model, seed=0)
    assert report["emb"].activation == "embedding"
    assert_variance(model.get_layer("emb").embeddings, 0.02**2)


@pytest.mark.parametrize("cls, gates", [("LSTM", 4), ("GRU", 3)])
def test_recurrent_kernels(cls, gates):
    units, features = 64, 48
    inp = keras.Input((12, features))
    rnn = getattr(L, cls)(
        units, kernel_initializer="zeros", bias_initializer="ones", name="rnn"
    )
    if cls == "LSTM":
        rnn = L.LSTM(
            units,
            kernel_initializer="zeros",
            bias_initializer="ones",
            unit_forget_bias=False,
            name="rnn",
        )
    model = keras.Model(inp, L.Dense(2)(rnn(inp)))
    report = ki.pair(model, seed=0)
    rows = {row.kernel: row for row in report if row.layer == "rnn"}
    assert rows["cell.kernel"].fans == (features, units)
    cell = model.get_layer("rnn").cell
    # Input kernel: Glorot with one gate's fans, for every gate block.
    assert_variance(cell.kernel, 2.0 / (features + units))
    # Recurrent kernel: each gate's (units, units) block is orthogonal.
    recurrent = keras.ops.convert_to_numpy(cell.recurrent_kernel)
    for gate in range(gates):
        block = recurrent[:, gate * units : (gate + 1) * units]
        np.testing.assert_allclose(block.T @ block, np.eye(units), atol=1e-5)
    bias = keras.ops.convert_to_numpy(cell.bias)
    expected = np.zeros_like(bias)
    if cls == "LSTM":
        expected[units : 2 * units] = 1.0  # forget gate open
    np.testing.assert_array_equal(bias, expected)
    assert ki.check(model, probe=False) == []


def test_bidirectional_and_simple_rnn_cells_each_get_rows():
    inp = keras.Input((10, 8))
    h = L.Bidirectional(L.LSTM(16, return_sequences=True), name="bi")(inp)
    h = L.SimpleRNN(16, recurrent_initializer="zeros", name="simple")(h)
    model = keras.Model(inp, L.Dense(2, activation="softmax")(h))
    assert [(f.kind, f.layer) for f in ki.check(model, probe=False)] == [
        ("symmetric_weights", "simple")
    ]
    report = ki.pair(model, seed=0)
    assert [(row.layer, row.kernel) for row in report][:5] == [
        ("bi", "forward_layer.cell.kernel"),
        ("bi", "forward_layer.cell.recurrent_kernel"),
        ("bi", "backward_layer.cell.kernel"),
        ("bi", "backward_layer.cell.recurrent_kernel"),
        ("simple", "cell.kernel"),
    ]
    # Input of the SimpleRNN: both directions concatenated, 32 features.
    assert report[4].fans == (32, 16)
    recurrent = keras.ops.convert_to_numpy(
        model.get_layer("simple").cell.recurrent_kernel
    )
    np.testing.assert_allclose(recurrent.T @ recurrent, np.eye(16), atol=1e-5)
    assert ki.check(model) == []
