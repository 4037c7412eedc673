"""`kerasinit.check`: each finding on a model built for it, none on a sound
model, and the model left exactly as it was."""

import keras
import numpy as np
import pytest

import kerasinit as ki

L = keras.layers


def _kinds(findings):
    return {f.kind for f in findings}


def _mlp(activation, depth, width=64, init="glorot_uniform", norm=False):
    layers = [keras.Input((width,))]
    for _ in range(depth):
        layers.append(
            L.Dense(width, activation=activation, kernel_initializer=init)
        )
        if norm:
            layers.append(L.BatchNormalization())
    layers.append(L.Dense(4))
    return keras.Sequential(layers)


def _snapshot(model):
    return [keras.ops.convert_to_numpy(v).copy() for v in model.variables]


def test_glorot_before_relu_in_deep_stack_is_a_mismatch():
    model = _mlp("relu", depth=6)
    findings = [
        f for f in ki.check(model, probe=False) if f.kind == "init_mismatch"
    ]
    assert len(findings) == 6  # every hidden layer; the linear head is fine
    first = findings[0]
    assert first.severity == "warning"
    # Glorot on a square layer is half of He's 2/fan_in.
    assert first.value == pytest.approx(0.5)
    assert first.threshold == pytest.approx(1 / 1.5)
    assert "GlorotUniform" in first.message and "relu" in first.message
    assert "ForActivation('relu')" in first.advice


def test_no_mismatch_when_normalization_precedes_the_activation():
    layers = [keras.Input((64,))]
    for _ in range(6):
        layers += [L.Dense(64), L.BatchNormalization(), L.ReLU()]
    model = keras.Sequential(layers + [L.Dense(2)])
    assert "init_mismatch" not in _kinds(ki.check(model, probe=False))


def test_normalization_after_a_residual_add_does_not_exempt_the_branch():
    # The branch's scale relative to the skip path survives the Add, so a
    # LayerNormalization after it does not make the branch scale-free.
    inp = keras.Input((64,))
    branch = L.Dense(64, kernel_initializer="he_normal", name="proj")(inp)
    h = L.LayerNormalization()(L.Add()([inp, branch]))
    model = keras.Model(inp, L.Dense(2)(h))
    findings = ki.check(model, probe=False)
    assert [f.layer for f in findings if f.kind == "init_mismatch"] == ["proj"]


def test_shallow_mismatch_is_only_info():
    model = _mlp("relu", depth=2)
    findings = [
        f for f in ki.check(model, probe=False) if f.kind == "init_mismatch"
    ]
    assert findings and {f.severity for f in findings} == {"info"}


def test_he_before_sigmoid_is_a_mismatch():
    model = _mlp("sigmoid", depth=3, init="he_normal")
    findings = [
        f for f in ki.check(model, probe=False) if f.kind == "init_mismatch"
    ]
    assert len(findings) == 3
    # He's 2/n against the nearest accepted target, Glorot's 1/n.
    assert findings[0].value == pytest.approx(2.0)


def test_unknown_initializer_is_measured():
    values = np.random.default_rng(0).normal(0, 0.05, (64, 64))
    model = _mlp("relu", depth=4, init=keras.initializers.Constant(0.0))
    for layer in model.layers[:-1]:
        layer.kernel.assign(values.astype("float32"))
        layer.kernel_initializer = keras.initializers.Identity()
    findings = [
        f for f in ki.check(model, probe=False) if f.kind == "init_mismatch"
    ]
    assert len(findings) == 4
    measured = float(np.mean(values**2))
    assert findings[0].value == pytest.approx(measured / (2 / 64))
    assert "measured" in findings[0].message


def test_selu_without_lecun():
    model = _mlp("selu", depth=3, init="glorot_uniform")
    findings = [
        f for f in ki.check(model, probe=False) if f.kind == "init_mismatch"
    ]
    assert len(findings) == 3
    assert "LeCun" in findings[0].message
    assert "lecun_normal" in findings[0].advice
    assert not ki.check(_mlp("selu", depth=3, init="lecun_normal"), probe=False)


def test_zero_and_constant_kernels():
    model = keras.Sequential(
        [
            keras.Input((16,)),
            L.Dense(
                16, activation="relu", kernel_initializer="zeros", name="z"
            ),
            L.Dense(
                16,
                activation="relu",
                kernel_initializer=keras.initializers.Constant(0.3),
                name="c",
            ),
            L.Dense(2, name="ok"),
        ]
    )
    findings = [
        f for f in ki.check(model, probe=False) if f.kind == "symmetric_weights"
    ]
    assert [(f.layer, f.value, f.severity) for f in findings] == [
        ("z", 0.0, "error"),
        ("c", pytest.approx(0.3), "error"),
    ]
    assert "pair" in findings[0].advice


def test_deep_saturating_stack():
    findings = ki.check(_mlp("tanh", depth=6), probe=False)
    stacks = [f for f in findings if f.kind == "deep_saturating_stack"]
    assert len(stacks) == 1
    assert stacks[0].value == 6.0 and stacks[0].threshold == 5.0
    assert "Normalization" in stacks[0].advice
    # Four in a row is below the limit; normalization breaks the run.
    assert "deep_saturating_stack" not in _kinds(
        ki.check(_mlp("tanh", depth=4), probe=False)
    )
    assert "deep_saturating_stack" not in _kinds(
        ki.check(_mlp("sigmoid", depth=8, norm=True), probe=False)
    )
    # A sigmoid head after four tanh layers does not make it five.
    model = keras.Sequential(
        [keras.Input((64,))]
        + [L.Dense(64, activation="tanh") for _ in range(4)]
        + [L.Dense(1, activation="sigmoid")]
    )
    assert "deep_saturating_stack" not in _kinds(ki.check(model, probe=False))


def test_probe_reports_vanishing_signal():
    model = _mlp(
        "tanh", depth=8, init=keras.initializers.RandomNormal(stddev=0.01)
    )
    findings = [f for f in ki.check(model) if f.kind.endswith("_signal")]
    assert [f.kind for f in findings] == ["vanishing_signal"]
    assert findings[0].value < 0.1
    assert findings[0].threshold == pytest.approx(0.1)


def test_probe_reports_exploding_signal():
    model = _mlp(
        "relu", depth=8, init=keras.initializers.RandomNormal(stddev=0.5)
    )
    findings = [f for f in ki.check(model) if f.kind.endswith("_signal")]
    assert [f.kind for f in findings] == ["exploding_signal"]
    assert findings[0].value > 10.0


def test_probe_handles_integer_inputs():
    inp = keras.Input((12,), dtype="int32")
    h = L.Embedding(50, 32)(inp)
    h = L.Flatten()(h)
    for _ in range(3):
        h = L.Dense(32, activation="relu")(h)
    model = keras.Model(inp, L.Dense(2)(h))
    ki.pair(model, seed=0)
    assert ki.check(model) == []


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "selu"])
def test_paired_model_has_no_findings(activation):
    model = _mlp(activation, depth=4)
    ki.pair(model, seed=0)
    assert ki.check(model) == []


def test_check_changes_nothing():
    inp = keras.Input((32,))
    h = L.Dense(32, kernel_initializer="zeros")(inp)
    h = L.BatchNormalization()(h)
    h = L.Activation("sigmoid")(h)
    for _ in range(6):
        h = L.Dense(32, activation="tanh", kernel_initializer="he_normal")(h)
    model = keras.Model(inp, L.Dense(2)(h))
    before = _snapshot(model)
    init_before = [
        keras.initializers.serialize(layer.kernel_initializer)
        for layer in model.layers
        if hasattr(layer, "kernel_initializer")
    ]
    findings = ki.check(model)
    assert {"symmetric_weights", "deep_saturating_stack"} <= _kinds(findings)
    for old, new in zip(before, _snapshot(model)):
        np.testing.assert_array_equal(old, new)
    assert init_before == [
        keras.initializers.serialize(layer.kernel_initializer)
        for layer in model.layers
        if hasattr(layer, "kernel_initializer")
    ]


def test_every_finding_is_actionable():
    model = _mlp("tanh", depth=6, init="zeros")
    for finding in ki.check(model):
        assert finding.step is None
        assert finding.advice
        assert str(finding).endswith(finding.advice)


def test_argument_errors():
    model = _mlp("relu", depth=1)
    with pytest.raises(ValueError, match="`probe_batch`"):
        ki.check(model, probe_batch=0)
    with pytest.raises(ValueError, match="`signal_factor`"):
        ki.check(model, signal_factor=1.0)
    with pytest.raises(ValueError, match="built"):
        ki.check(keras.Sequential([L.Dense(2)]))


def test_nested_model_is_probed_and_checked():
    block = keras.Sequential(
        [keras.Input((32,))]
        + [L.Dense(32, activation="relu", name=f"in{i}") for i in range(4)],
        name="block",
    )
    inp = keras.Input((32,))
    h = L.Dense(32, activation="relu", name="first")(inp)
    model = keras.Model(inp, L.Dense(2)(block(h)))
    findings = ki.check(model)
    # Every Glorot kernel before ReLU, inside the nested model too.
    assert {f.layer for f in findings if f.kind == "init_mismatch"} == {
        "first",
        "block/in0",
        "block/in1",
        "block/in2",
        "block/in3",
    }
    ki.pair(model, seed=0)
    assert ki.check(model) == []


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = [L.Dense(32, activation="relu") for _ in range(4)]
        self.head = L.Dense(2)

    def call(self, x):
        for layer in self.hidden:
            x = layer(x)
        return self.head(x)


def test_subclassed_model_checks_fused_activations_only():
    model = _Subclassed()
    model(np.zeros((1, 32), "float32"))
    findings = ki.check(model)
    assert _kinds(findings) == {"init_mismatch"}
    assert {f.layer for f in findings} == {d.name for d in model.hidden}


@pytest.mark.parametrize(
    "initializer",
    [
        "glorot_uniform",
        "he_normal",
        "lecun_uniform",
        keras.initializers.VarianceScaling(3.0, "fan_out", "truncated_normal"),
        keras.initializers.RandomNormal(stddev=0.05),
        keras.initializers.TruncatedNormal(stddev=0.05),
        keras.initializers.RandomUniform(-0.1, 0.3),
        ki.initializers.He("leaky_relu", 0.2),
        ki.initializers.ScaledNormal(0.02, num_layers=6),
    ],
    ids=str,
)
def test_variance_read_from_initializer_matches_its_draws(initializer):
    # check() compares the variance an initializer *draws*; verify it
    # against a large draw (relative standard error of the sample variance
    # <= sqrt(2/n) for these distributions; 5 of them allowed).
    from kerasinit._initializer_facts import (
        implied_variance as _implied_variance,
    )

    init = keras.initializers.get(initializer)
    shape = (3, 3, 64, 128)
    values = keras.ops.convert_to_numpy(init(shape)).astype(np.float64)
    implied, _ = _implied_variance(init, shape)
    tolerance = 5 * implied * np.sqrt(2 / values.size)
    assert abs(float(np.var(values)) - implied) <= tolerance


# ---------------------------------------------------------------------------
# Output heads


@pytest.mark.parametrize("classes", [10, 100, 200, 1000])
@pytest.mark.parametrize("separate", [False, True])
def test_he_relu_classifier_with_softmax_head_is_clean(classes, separate):
    stack = [keras.Input((160,))]
    for _ in range(3):
        stack.append(
            L.Dense(160, activation="relu", kernel_initializer="he_normal")
        )
    if separate:
        stack += [L.Dense(classes), L.Softmax()]
    else:
        stack.append(L.Dense(classes, activation="softmax"))
    assert ki.check(keras.Sequential(stack)) == []


def test_he_cnn_with_softmax_and_sigmoid_heads_is_clean():
    inp = keras.Input((16, 16, 3))
    h = inp
    for filters in (32, 64, 64):
        h = L.Conv2D(
            filters, 3, activation="relu", kernel_initializer="he_normal"
        )(h)
    h = L.GlobalAveragePooling2D()(h)
    classes = L.Dense(100, activation="softmax", name="classes")(h)
    flag = L.Dense(1, activation="sigmoid", name="flag")(h)
    assert ki.check(keras.Model(inp, [classes, flag])) == []


def test_an_overconfident_head_is_still_flagged():
    # A head is held to the upper bound only: logits far larger than the
    # paired scale saturate softmax from the first step.
    model = keras.Sequential(
        [
            keras.Input((64,)),
            L.Dense(64, activation="relu", kernel_initializer="he_normal"),
            L.Dense(
                10,
                activation="softmax",
                kernel_initializer=keras.initializers.RandomNormal(stddev=1.0),
                name="head",
            ),
        ]
    )
    findings = ki.check(model, probe=False)
    assert [(f.kind, f.layer) for f in findings] == [("init_mismatch", "head")]
    # Var 1 against the linear Glorot pairing 2 / (64 + 10).
    assert findings[0].value == pytest.approx(1.0 / (2 / 74))
    assert "output head" in findings[0].message


def test_zero_kernel_pair_cannot_reach_gets_no_pair_advice():
    inp = keras.Input((16,))
    h = L.Dense(16, kernel_initializer="zeros", name="z")(inp)
    h = L.Lambda(lambda t: t[:, ::-1], output_shape=(16,))(h)
    model = keras.Model(inp, L.Dense(2)(keras.layers.ReLU()(h)))
    (finding,) = [f for f in ki.check(model, probe=False) if f.layer == "z"]
    assert finding.kind == "symmetric_weights"
    assert "cannot pair" in finding.advice
    assert "run `kerasinit.pair" not in finding.advice
    # And indeed pair leaves it alone.
    ki.pair(model, seed=0)
    assert not np.any(keras.ops.convert_to_numpy(model.get_layer("z").kernel))


def test_kernel_scales_compare_with_the_pairing():
    from kerasinit.checking import kernel_scales

    model = _mlp("relu", depth=2, width=128, init="glorot_uniform")
    scales = kernel_scales(model)
    assert [(s.layer, s.kernel) for s in scales] == [
        (layer.name, "kernel") for layer in model.layers
    ]
    first = scales[0]
    values = keras.ops.convert_to_numpy(model.layers[0].kernel)
    std = float(np.sqrt(np.mean(values.astype(np.float64) ** 2)))
    assert first.std == pytest.approx(std)
    assert first.paired_std == pytest.approx(np.sqrt(2 / 128))
    assert first.ratio == pytest.approx(std / np.sqrt(2 / 128))
    assert first.activation == "relu" and not first.head
    assert first.gain == pytest.approx(np.sqrt(2.0))
    assert scales[-1].head and scales[-1].activation == "linear"
    ki.pair(model, seed=0)
    for scale in kernel_scales(model):
        n = scale.fans[0] * scale.fans[1]
        assert scale.ratio == pytest.approx(1.0, abs=5 * np.sqrt(0.5 / n))


def _lstm_model(unit_forget_bias: bool) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((7, 5)),
            keras.layers.LSTM(
                12, unit_forget_bias=unit_forget_bias, name="lstm"
            ),
            keras.layers.Dense(3),
        ]
    )


def test_check_reports_an_lstm_forget_gate_bias_left_at_zero():
    closed = ki.check(_lstm_model(unit_forget_bias=False), probe=False)
    [finding] = [f for f in closed if "forget-gate" in f.message]
    assert (finding.kind, finding.layer) == ("init_mismatch", "lstm")
    assert "unit_forget_bias=True" in finding.advice
    # Keras's default opens the gate; `pair` does the same.
    assert not [
        f
        for f in ki.check(_lstm_model(unit_forget_bias=True), probe=False)
        if "forget-gate" in f.message
    ]
    model = _lstm_model(unit_forget_bias=False)
    ki.pair(model, seed=0)
    assert not [
        f for f in ki.check(model, probe=False) if "forget-gate" in f.message
    ]
    bias = keras.ops.convert_to_numpy(model.get_layer("lstm").cell.bias)
    np.testing.assert_array_equal(bias[12:24], 1.0)
