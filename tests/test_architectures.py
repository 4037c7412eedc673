"""`pair` and `check` on the architectures people build.

Five models as a user would write them with Keras' defaults: a ResNet with
``Add`` skips and a softmax head, a U-Net with strided transposed
convolutions and a sigmoid head, a transformer with attention, SwiGLU and a
classifier head, an Embedding + LSTM text model, and a stack with a custom
Python activation.

* Before `pair`, `check` names the real problems only: each expected
  finding is derived here from the variance rule (Glorot's
  ``2 / (fan_in + fan_out)`` where the paired scheme wants more), and a
  model without one gets none.
* After `pair`, `check` is clean, and each paired layer passes the second
  moment of its input on to its activation's output: its *RMS gain*,
  ``sqrt(E[a^2] / E[x^2])`` on N(0, 1) inputs, is 1 in expectation for the
  He family (``E[f(z)^2] = E[x^2]`` when ``Var(W) = gain^2 / fan_in``). One
  draw of a narrow layer fluctuates around that, so the gain is averaged
  over four draws (`pair` seeds 0 to 3). The band is the one
  ``docs/pairing.md`` documents: within a factor 1.25 either way, the RMS
  counterpart of `check`'s variance factor of 1.5; a kernel drawn for the
  wrong activation or with a stride-blind fan falls outside it (Glorot
  before ReLU: ``1 / sqrt(2)``; a stride-2 transposed convolution with the
  fans of its kernel shape: ``1 / 2``).
"""

import keras
import numpy as np
import pytest

import kerasinit as ki
from kerasinit import _graph, _kernels, _signal_probe

L = keras.layers
BAND = (0.8, 1.25)


def resnet():
    inp = keras.Input((32, 32, 3))
    h = L.Conv2D(32, 3, padding="same", use_bias=False)(inp)
    h = L.ReLU()(L.BatchNormalization()(h))
    for filters, stride in ((32, 1), (64, 2), (64, 1)):
        skip = h
        b = L.Conv2D(filters, 3, strides=stride, padding="same")(h)
        b = L.ReLU()(L.BatchNormalization()(b))
        b = L.Conv2D(filters, 3, padding="same")(b)
        b = L.BatchNormalization()(b)
        if stride != 1:
            skip = L.Conv2D(filters, 1, strides=stride)(skip)
            skip = L.BatchNormalization()(skip)
        h = L.ReLU()(L.Add()([skip, b]))
    h = L.GlobalAveragePooling2D()(h)
    return keras.Model(inp, L.Dense(100, activation="softmax")(h))


def unet():
    inp = keras.Input((64, 64, 3))
    e1 = L.Conv2D(16, 3, padding="same", activation="relu", name="e1")(inp)
    e2 = L.MaxPooling2D()(e1)
    e2 = L.Conv2D(32, 3, padding="same", activation="relu", name="e2")(e2)
    e3 = L.MaxPooling2D()(e2)
    e3 = L.Conv2D(64, 3, padding="same", activation="relu", name="e3")(e3)
    h = L.MaxPooling2D()(e3)
    h = L.Conv2D(128, 3, padding="same", activation="relu", name="mid")(h)
    for skip, filters in ((e3, 64), (e2, 32), (e1, 16)):
        h = L.Conv2DTranspose(
            filters,
            3,
            strides=2,
            padding="same",
            activation="relu",
            name=f"up{filters}",
        )(h)
        h = L.Concatenate()([h, skip])
        h = L.Conv2D(
            filters, 3, padding="same", activation="relu", name=f"d{filters}"
        )(h)
    return keras.Model(inp, L.Conv2D(1, 1, activation="sigmoid")(h))


def transformer(first_glu_init=None):
    inp = keras.Input((16,), dtype="int32")
    h = L.Embedding(1000, 64, name="tokens")(inp)
    for i in range(2):
        a = L.LayerNormalization()(h)
        a = L.MultiHeadAttention(4, 16, name=f"attn{i}")(a, a)
        h = L.Add()([h, a])
        f = L.LayerNormalization()(h)
        f = ki.layers.SwiGLU(
            128,
            kernel_initializer=first_glu_init if i == 0 else None,
            name=f"swiglu{i}",
        )(f)
        h = L.Add()([h, L.Dense(64, name=f"down{i}")(f)])
    h = L.GlobalAveragePooling1D()(L.LayerNormalization()(h))
    return keras.Model(inp, L.Dense(10, activation="softmax")(h))


def text_lstm():
    inp = keras.Input((20,), dtype="int32")
    h = L.Embedding(5000, 64)(inp)
    h = L.LSTM(64, return_sequences=True)(h)
    h = L.LSTM(64)(h)
    h = L.Dense(64, activation="relu", name="hidden")(h)
    return keras.Model(inp, L.Dense(1, activation="sigmoid")(h))


def bent(x):
    # Positively homogeneous, so the second-moment gain is exact at every
    # scale: E[f(z)^2] = (1.1^2 + 0.1^2) / 2 = 0.61 for z ~ N(0, 1).
    return keras.ops.relu(x) + 0.1 * x


def custom():
    stack = [keras.Input((128,))]
    stack += [L.Dense(128, activation=bent, name=f"b{i}") for i in range(6)]
    return keras.Sequential(stack + [L.Dense(3, activation="softmax")])


def _glorot_over_he(fan_in, fan_out, gain_squared=2.0):
    # Keras' glorot_uniform against the He-family pairing gain^2 / fan_in.
    return (2.0 / (fan_in + fan_out)) / (gain_squared / fan_in)


EXPECTED_BEFORE = {
    # With normalization after every convolution, their scale is divided
    # out; the skip projections and the head are linear and Glorot.
    "resnet": {},
    # Glorot before ReLU everywhere. Fans of a 3x3 convolution: 9 * in and
    # 9 * out; of a stride-2 transposed one: in * 1.5^2 and 9 * out.
    "unet": {
        "e1": _glorot_over_he(27, 144),
        "e2": _glorot_over_he(144, 288),
        "e3": _glorot_over_he(288, 576),
        "mid": _glorot_over_he(576, 1152),
        # Keras reads (9 * 64, 9 * 128) off the kernel shape.
        "up64": (2.0 / (9 * 64 + 9 * 128)) / (2.0 / (128 * 2.25)),
        "d64": _glorot_over_he(9 * 128, 9 * 64),
        "up32": (2.0 / (9 * 32 + 9 * 64)) / (2.0 / (64 * 2.25)),
        "d32": _glorot_over_he(9 * 64, 9 * 32),
        "up16": (2.0 / (9 * 16 + 9 * 32)) / (2.0 / (32 * 2.25)),
        "d16": _glorot_over_he(9 * 32, 9 * 16),
    },
    # Attention, SwiGLU's own defaults, residual projections, embeddings and
    # the softmax head are all within the rule.
    "transformer": {},
    # The recurrent kernels use Keras' fused-gate defaults (accepted); the
    # ReLU layer after them is Glorot.
    "text_lstm": {"hidden": _glorot_over_he(64, 64)},
    "custom": {f"b{i}": _glorot_over_he(128, 128, 1 / 0.61) for i in range(6)},
}

BUILDERS = {
    "resnet": resnet,
    "unet": unet,
    "transformer": transformer,
    "text_lstm": text_lstm,
    "custom": custom,
}


def _build(name):
    keras.utils.set_random_seed(0)
    return BUILDERS[name]()


@pytest.mark.parametrize("name", list(BUILDERS))
def test_check_before_pair_names_the_real_problems_only(name):
    findings = ki.check(_build(name))
    expected = EXPECTED_BEFORE[name]
    assert {f.layer for f in findings} == set(expected)
    for finding in findings:
        assert finding.kind == "init_mismatch", str(finding)
        assert finding.value == pytest.approx(expected[finding.layer])
        assert "pair(model)" in finding.advice


def test_zero_swiglu_in_a_transformer_is_named_at_both_kernels():
    findings = ki.check(transformer(first_glu_init="zeros"))
    assert sorted((f.kind, f.layer, f.severity) for f in findings) == [
        ("symmetric_weights", "swiglu0", "error"),
        ("symmetric_weights", "swiglu0", "error"),
    ]
    assert {f.message.split("`")[1] for f in findings} == {
        "gate_kernel",
        "value_kernel",
    }


def _rms_gain_function(model):
    """``x -> {path: RMS gain}`` for each paired layer, in one pass."""
    paths, tensors = [], []
    for kernel in _kernels.analyse(model):
        if (
            kernel.role not in ("kernel", "gate")
            or kernel.head
            or kernel.residual
            or kernel.activation.linear
        ):
            continue
        walk = kernel.walk
        end = kernel.layer if walk is None or walk.at is None else walk.at[1]
        paths.append(kernel.path)
        tensors += [kernel.layer.input, end.output]
    # The sub-model shares the model's layers, so it sees every re-draw.
    forward = _graph.tensor_function((model,), tensors)

    def gains(x):
        values = [
            keras.ops.convert_to_numpy(v).astype(np.float64) for v in forward(x)
        ]
        return {
            path: float(np.sqrt(np.mean(b * b) / np.mean(a * a)))
            for path, a, b in zip(paths, values[::2], values[1::2])
        }

    return gains


@pytest.mark.parametrize("name", list(BUILDERS))
def test_after_pair_check_is_clean_and_every_layer_keeps_the_signal(name):
    model = _build(name)
    x = _signal_probe.probe_inputs(model, 64, 0)[0]
    rms_gains = _rms_gain_function(model)
    draws = []
    for seed in range(4):
        ki.pair(model, seed=seed)
        assert ki.check(model, probe_batch=64) == [], seed
        draws.append(rms_gains(x))
    assert draws[0], "no paired layer measured"
    for path in draws[0]:
        gain = np.mean([d[path] for d in draws])
        assert BAND[0] <= gain <= BAND[1], (path, gain)


def test_the_band_catches_what_pair_fixes():
    # The same U-Net before pair: Keras' Glorot before ReLU and the
    # stride-blind transposed fans put layers outside the band.
    model = _build("unet")
    gains = _rms_gain_function(model)(
        _signal_probe.probe_inputs(model, 64, 0)[0]
    )
    outside = {p for p, g in gains.items() if not BAND[0] <= g <= BAND[1]}
    assert {"up64", "up32", "up16"} <= outside
