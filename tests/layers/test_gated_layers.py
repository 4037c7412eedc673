"""Correctness and behaviour of the gated layers (SwiGLU, GEGLU, ReGLU)."""

import inspect
import math

import keras
import numpy as np
import pytest

from kerasinit import gains
from kerasinit.layers import GEGLU, ReGLU, SwiGLU


def _erf(z):
    return np.vectorize(math.erf)(z)


# Independent float64 gate references.
GATES = [
    (SwiGLU, {}, lambda z: z / (1.0 + np.exp(-z)), ("silu", None)),
    (
        GEGLU,
        {},
        lambda z: 0.5 * z * (1.0 + _erf(z / np.sqrt(2.0))),
        ("gelu", None),
    ),
    (
        GEGLU,
        {"approximate": True},
        lambda z: (
            0.5
            * z
            * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (z + 0.044715 * z**3)))
        ),
        ("gelu_tanh", None),
    ),
    (ReGLU, {}, lambda z: np.maximum(z, 0.0), ("relu", None)),
]


def _id(cls, kwargs):
    return f"{cls.__name__}({kwargs})"


def test_matches_numpy_reference():
    rng = np.random.default_rng(0)
    # Scaled so that pre-activations cover both signs and |z| up to ~15.
    x = (3.0 * rng.normal(size=(4, 3, 6))).astype("float32")
    for cls, kwargs, gate, _ in GATES:
        for use_bias in (False, True):
            layer = cls(5, use_bias=use_bias, **kwargs)
            layer.build(x.shape)
            wg, wv = (rng.normal(size=(6, 5)).astype("float32") for _ in "gv")
            layer.gate_kernel.assign(wg)
            layer.value_kernel.assign(wv)
            zg, zv = x.astype(np.float64) @ wg, x.astype(np.float64) @ wv
            if use_bias:
                b, c = (rng.normal(size=(5,)).astype("float32") for _ in "bc")
                layer.gate_bias.assign(b)
                layer.value_bias.assign(c)
                zg, zv = zg + b, zv + c
            else:
                assert layer.gate_bias is None and len(layer.weights) == 2
            out = keras.ops.convert_to_numpy(layer(x))
            assert out.shape == (4, 3, 5)
            # float32 matmuls over 6 terms of size ~10: a relative error of
            # a few float32 ulps of the largest term.
            scale = np.abs(gate(zg) * zv).max()
            np.testing.assert_allclose(
                out,
                gate(zg) * zv,
                rtol=1e-5,
                atol=64 * np.finfo(np.float32).eps * scale,
                err_msg=_id(cls, kwargs),
            )


def test_shapes():
    for cls, kwargs, _, _ in GATES:
        layer = cls(7, **kwargs)
        assert tuple(layer(np.ones((2, 3))).shape) == (2, 7)
        assert layer.compute_output_shape((None, 4, 3)) == (None, 4, 7)
        assert {w.name for w in layer.weights} == {
            "gate_kernel",
            "value_kernel",
        }
        assert tuple(layer.gate_kernel.shape) == (3, 7)


@pytest.mark.parametrize(
    "cls", [SwiGLU, GEGLU, ReGLU], ids=lambda c: c.__name__
)
def test_trains_one_step(cls):
    model = keras.Sequential(
        [keras.Input((6,)), cls(8, use_bias=True), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(0.01), "mse", run_eagerly=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    glu = model.layers[0]
    before = [keras.ops.convert_to_numpy(w.value).copy() for w in glu.weights]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    after = [keras.ops.convert_to_numpy(w.value) for w in glu.weights]
    # Both kernels and both biases receive gradients.
    for w, b, a in zip(glu.weights, before, after):
        assert not np.array_equal(b, a), w.name


def test_facts_are_the_gates():
    for cls, kwargs, _, spec in GATES:
        layer = cls(4, **kwargs)
        name, param = spec
        assert layer.gated is True
        assert cls.gated is True
        assert layer.kerasinit_activation == spec
        assert layer.gain == gains.gain(name, param)
        assert layer.activation_info is gains.info(name)
        assert gains.resolve(layer)[0] is gains.info(name)


def _relative_variance_tolerance(n):
    # Var of a sample variance of n normal draws is 2 sigma^4 / (n - 1);
    # comparing two independent estimates doubles it. Five standard errors.
    return 5.0 * math.sqrt(2.0 * 2.0 / (n - 1))


def test_default_kernels_take_the_paired_initializers():
    from kerasinit.initializers import ForActivation

    fan_in, units = 256, 192
    n = fan_in * units
    tol = _relative_variance_tolerance(n)
    for cls, kwargs, _, (name, param) in GATES:
        layer = cls(units, **kwargs)
        layer.build((None, fan_in))
        for kernel, reference in (
            (layer.gate_kernel, ForActivation(name, param, seed=1)),
            (layer.value_kernel, ForActivation("linear", seed=2)),
        ):
            got = np.var(keras.ops.convert_to_numpy(kernel.value))
            want = np.var(
                keras.ops.convert_to_numpy(reference((fan_in, units)))
            )
            assert abs(got / want - 1.0) < tol, (cls.__name__, kernel.name)


def test_explicit_initializer_gives_two_different_kernels():
    for init in (
        keras.initializers.GlorotNormal(seed=3),
        keras.initializers.GlorotNormal(),
        keras.initializers.GlorotNormal(seed=keras.random.SeedGenerator(3)),
    ):
        layer = SwiGLU(16, kernel_initializer=init)
        layer.build((None, 8))
        gate = keras.ops.convert_to_numpy(layer.gate_kernel.value)
        value = keras.ops.convert_to_numpy(layer.value_kernel.value)
        assert not np.allclose(gate, value)
    # The same seed gives the same layer.
    first, second = (
        SwiGLU(16, kernel_initializer=keras.initializers.GlorotNormal(seed=3))
        for _ in range(2)
    )
    for layer in (first, second):
        layer.build((None, 8))
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a.value),
            keras.ops.convert_to_numpy(b.value),
        )


class _NoArguments(keras.layers.Layer):
    def get_config(self):
        return super().get_config()


def test_get_config_is_exactly_the_constructor_arguments():
    base = set(_NoArguments(name="base").get_config())
    for cls, kwargs, _, _ in GATES:
        arguments = {
            p
            for p in inspect.signature(cls.__init__).parameters
            if p not in ("self", "kwargs")
        }
        config = cls(3, use_bias=True, name="g", **kwargs).get_config()
        assert set(config) == base | arguments
        assert config["kernel_initializer"] is None
        assert cls.from_config(config).get_config() == config


BAD_ARGUMENTS = [
    ({"units": 0}, ValueError, "positive int"),
    ({"units": -3}, ValueError, "positive int"),
    ({"units": 2.0}, TypeError, "positive int"),
    ({"units": "8"}, TypeError, "positive int"),
    ({"units": True}, TypeError, "positive int"),
    ({"units": 4, "use_bias": "yes"}, TypeError, "bool"),
]


def test_bad_arguments_raise_at_construction():
    for cls in (SwiGLU, GEGLU, ReGLU):
        for kwargs, error, message in BAD_ARGUMENTS:
            name, value = list(kwargs.items())[-1]
            with pytest.raises(error, match=message) as info:
                cls(**kwargs)
            text = str(info.value)
            assert f"`{name}`" in text, text
            assert text.endswith(f"Received: {name}={value!r}"), text
    with pytest.raises(TypeError, match="`approximate`"):
        GEGLU(4, approximate="tanh")


def test_unknown_input_width_is_rejected_at_build():
    with pytest.raises(ValueError, match="last input axis"):
        SwiGLU(4).build((None, None))
