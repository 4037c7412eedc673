"""Empirical variance of every fan-based initializer against its formula.

Tolerances are 4 standard errors of the sample variance of ``n`` i.i.d.
mean-zero draws, ``SE = sqrt((mu4 - sigma^4) / n)`` with the fourth moment
``mu4`` of the distribution drawn from (normal: ``3 sigma^4``; uniform on
``[-l, l]``: ``l^4 / 5``; normal truncated at 2 standard deviations:
computed below by quadrature).
"""

import math

import keras
import numpy as np
import pytest

import kerasinit
from kerasinit import initializers as ki

DENSE = (1024, 1024)
CONV = (3, 3, 256, 256)


def _truncated_moments():
    # Moments of N(0, 1) restricted to [-2, 2], by a fine Simpson rule.
    z = np.linspace(-2.0, 2.0, 200001)
    pdf = np.exp(-0.5 * z * z)
    weights = np.ones_like(z)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    mass = np.sum(weights * pdf)
    m2 = np.sum(weights * pdf * z**2) / mass
    m4 = np.sum(weights * pdf * z**4) / mass
    return m2, m4


def _kurtosis(distribution):
    """mu4 / sigma^4 of the distribution initializers draw from."""
    if distribution == "normal":
        return 3.0
    if distribution == "uniform":
        return 9.0 / 5.0
    m2, m4 = _truncated_moments()
    return m4 / m2**2


def _check_variance(values, expected, distribution):
    values = np.asarray(values, dtype=np.float64).ravel()
    n = values.size
    se = expected * math.sqrt((_kurtosis(distribution) - 1.0) / n)
    measured = float(np.mean(values**2))
    assert abs(measured - expected) < 4 * se, (measured, expected, se)
    assert abs(float(np.mean(values))) < 4 * math.sqrt(expected / n)


def _fans(shape):
    rf = math.prod(shape[:-2])
    return shape[-2] * rf, shape[-1] * rf


CASES = [
    (lambda d: ki.Glorot(d, seed=1), lambda fi, fo: 2.0 / (fi + fo)),
    (
        lambda d: ki.Glorot(d, gain=5.0 / 3.0, seed=2),
        lambda fi, fo: (25.0 / 9.0) * 2.0 / (fi + fo),
    ),
    (lambda d: ki.He(distribution=d, seed=3), lambda fi, fo: 2.0 / fi),
    (
        lambda d: ki.He(
            "leaky_relu",
            negative_slope=0.1,
            mode="fan_out",
            distribution=d,
            seed=4,
        ),
        lambda fi, fo: 2.0 / (1.0 + 0.01) / fo,
    ),
    (lambda d: ki.LeCun(d, seed=5), lambda fi, fo: 1.0 / fi),
    (
        lambda d: ki.Kumar("sigmoid", distribution=d, seed=6),
        lambda fi, fo: 12.8 / fi,
    ),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_variance_matches_formula(case):
    make, variance = CASES[case]
    for distribution in ("normal", "uniform", "truncated_normal"):
        init = make(distribution)
        for shape in (DENSE, CONV):
            values = keras.ops.convert_to_numpy(init(shape))
            assert values.shape == shape
            _check_variance(values, variance(*_fans(shape)), distribution)


@pytest.mark.parametrize(
    "init, limit",
    [
        (ki.Glorot(seed=7), math.sqrt(6.0 / 2048)),
        (ki.Glorot(gain=2.0, seed=7), 2.0 * math.sqrt(6.0 / 2048)),
        (
            ki.He(distribution="uniform", seed=8),
            math.sqrt(2.0) * math.sqrt(3.0 / 1024),
        ),
        (ki.LeCun("uniform", seed=9), math.sqrt(3.0 / 1024)),
    ],
)
def test_uniform_limit_is_exact(init, limit):
    values = keras.ops.convert_to_numpy(init(DENSE)).astype(np.float64)
    # float32 rounding of the limit itself is the only slack.
    assert np.max(np.abs(values)) <= limit * (1 + 1e-6)
    # Among 2^20 uniform draws the largest |w| is within limit * 1e-4 of the
    # limit with probability 1 - (1 - 1e-4)^(2^20), i.e. certainly.
    assert np.max(np.abs(values)) >= limit * (1 - 1e-4)


def test_truncated_normal_is_truncated_at_two_target_stddevs():
    init = ki.He(distribution="truncated_normal", seed=10)
    values = keras.ops.convert_to_numpy(init(DENSE))
    bound = 2.0 * math.sqrt(2.0 / 1024) / 0.87962566103423978
    assert np.max(np.abs(values)) <= bound * (1 + 1e-6)


def test_fans_override_replaces_shape_fans():
    init = ki.He(fans=(9, 18), seed=11)
    values = keras.ops.convert_to_numpy(init((3, 3, 64, 2)))
    # 1152 values only: check the variance with its own standard error.
    _check_variance(values, 2.0 / 9.0, "normal")
    glorot = ki.Glorot(distribution="normal", fans=(100, 300), seed=12)
    values = keras.ops.convert_to_numpy(glorot(DENSE))
    _check_variance(values, 2.0 / 400, "normal")


def test_he_uses_table_gain_for_any_activation():
    for name in ("gelu", "silu", "mish", "elu", "tanh", "selu"):
        init = ki.He(name, seed=13)
        assert init.gain == kerasinit.gain(name)
        values = keras.ops.convert_to_numpy(init(DENSE))
        _check_variance(values, kerasinit.gain(name) ** 2 / 1024, "normal")
    assert ki.He("elu", param=0.5).gain == kerasinit.gain("elu", 0.5)


def test_he_leaky_relu_gain():
    init = ki.He("leaky_relu", negative_slope=0.1)
    assert init.gain == pytest.approx(math.sqrt(2.0 / 1.01), rel=1e-12)
    assert ki.He("leaky_relu").gain == pytest.approx(
        math.sqrt(2.0 / (1 + 0.01**2)), rel=1e-12
    )


def test_kumar_factors():
    assert ki.Kumar("sigmoid").variance(100, 7) == pytest.approx(
        12.8 / 100, rel=1e-6
    )
    assert ki.Kumar("tanh").variance(100, 7) == pytest.approx(
        1.0 / 100, rel=1e-6
    )


def test_kumar_relu_raises_pointing_to_he():
    with pytest.raises(ValueError, match=r"He\('relu'\)"):
        ki.Kumar("relu")


def test_scaled_normal_stddev():
    init = ki.ScaledNormal(stddev=0.02, num_layers=12, seed=14)
    assert init.scaled_stddev == pytest.approx(0.02 / math.sqrt(24))
    values = keras.ops.convert_to_numpy(init(DENSE))
    _check_variance(values, 0.02**2 / 24, "normal")


def _float64_available():
    # JAX represents float64 only with its x64 mode on; otherwise it draws
    # float32 for any float64 request (and says so), whatever the caller.
    if keras.backend.backend() != "jax":
        return True
    import jax

    return bool(jax.config.jax_enable_x64)


def test_float_dtypes():
    inits = [
        ki.He(seed=15),
        ki.Glorot(seed=15),
        ki.Orthogonal(seed=15),
        ki.DeltaOrthogonal(seed=15),
        ki.ScaledNormal(seed=15),
        ki.ForActivation("sigmoid", seed=15),
    ]
    dtypes = ["float16", "bfloat16"]
    if _float64_available():
        dtypes.append("float64")
    for init in inits:
        reference = keras.ops.convert_to_numpy(init((3, 16, 32)))
        for dtype in dtypes:
            values = init((3, 16, 32), dtype=dtype)
            assert keras.backend.standardize_dtype(values.dtype) == dtype
            values = keras.ops.convert_to_numpy(
                keras.ops.cast(values, "float64")
            )
            if dtype == "float64":
                # Drawn in float64 directly: another random stream.
                assert np.all(np.isfinite(values))
                continue
            # Drawn in float32 and cast: the same values up to the rounding
            # of the narrower type.
            np.testing.assert_allclose(
                values,
                reference,
                rtol=1e-2,
                atol=1e-2 * np.abs(reference).max(),
            )


def test_integer_dtype_rejected():
    with pytest.raises(ValueError, match="dtype"):
        ki.He()((4, 4), dtype="int32")
