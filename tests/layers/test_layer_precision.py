"""Every layer under the mixed-precision policies."""

import keras
import numpy as np
import pytest

import kerasinit


def _layers():
    out = []
    for name in kerasinit.layers.__all__:
        cls = getattr(kerasinit.layers, name)
        kwargs = {"units": 8} if getattr(cls, "gated", False) else {}
        out.append(cls(**kwargs))
    out.append(kerasinit.layers.SiLU(beta=1.5, trainable_beta=True))
    out.append(kerasinit.layers.GEGLU(8, use_bias=True, approximate=True))
    return out


@pytest.fixture
def policy(request):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(request.param)
    yield keras.config.dtype_policy()
    keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize(
    "policy", ["mixed_float16", "mixed_bfloat16"], indirect=True
)
def test_mixed_precision_forward_and_training_step(policy):
    rng = np.random.default_rng(0)
    # Magnitudes up to ~30 after the first Dense: exp() of that overflows
    # float16, which the layers must survive.
    x = (10.0 * rng.normal(size=(16, 6))).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    for layer in _layers():
        name = type(layer).__name__
        assert layer.compute_dtype == policy.compute_dtype, name
        model = keras.Sequential(
            [
                keras.Input((6,)),
                keras.layers.Dense(8),
                layer,
                keras.layers.Dense(1, dtype="float32"),
            ]
        )
        hidden = model.layers[0](x)
        out = layer(hidden)
        assert keras.backend.standardize_dtype(out.dtype) == (
            policy.compute_dtype
        ), name
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(out))), name
        # Weights stay float32 under the mixed policies.
        for weight in layer.weights:
            assert weight.dtype == "float32", (name, weight.name)
        model.compile(keras.optimizers.SGD(0.01), "mse", run_eagerly=True)
        loss = model.train_on_batch(x, y)
        assert np.isfinite(loss), name
