"""Signal propagation through a 50-layer MLP (width 512, batch 256).

Expected values come from the mean-field recursion
``q_{l+1} = sigma_w^2 E[f(sqrt(q_l) z)^2]`` (infinite width), computed by
quadrature, independently of the simulation. Tolerances on ratios are in
log space: over 10 seeds (``python benchmarks/signal_propagation.py
--seeds 10``, table in docs/initializers.md) the standard deviation of
``log(std_l / std_1)`` was 0.036 for tanh-Glorot at depth 50, at most
0.106 at depth 10 and 0.271 to 0.283 at depth 50 for the He-family
activations (finite-width fluctuations compound with depth as
``sqrt(depth / width)``); the tests allow 5 of those standard deviations
(rounded to 0.11 and 0.28), which the other paired activations, with
smaller spreads, also satisfy.
"""

import math

import keras
import numpy as np
import pytest

from kerasinit import initializers as ki
from kerasinit.initializers._propagation import forward_stds, mean_field_stds

WIDTH = 512


def _ratio(stds, depth):
    return stds[depth - 1] / stds[0]


def test_naive_normal_explodes_or_vanishes():
    def naive(stddev):
        return forward_stds(
            "relu",
            lambda s: keras.initializers.RandomNormal(stddev=stddev, seed=s),
        )

    # N(0, 1): x sqrt(512 / 2) = 16 per layer, 1e12 by layer 10, then
    # float32 overflow.
    exploding = naive(1.0)
    assert _ratio(exploding, 10) > 1e10
    assert not np.isfinite(exploding[-1])
    # N(0, 0.001^2): x 0.016 per layer, underflow to exactly 0.
    vanishing = naive(1e-3)
    assert _ratio(vanishing, 10) < 1e-15
    assert vanishing[-1] == 0.0


@pytest.mark.parametrize(
    "activation", ["relu", "leaky_relu", "tanh", "elu", "selu", "sigmoid"]
)
def test_paired_initializer_keeps_the_signal(activation):
    stds = forward_stds(
        activation, lambda s: ki.ForActivation(activation, seed=s), seed=1
    )
    ratio = _ratio(stds, 50)
    assert 0.25 < ratio < 4.0, ratio
    sigma2 = ki.ForActivation(activation).delegate.variance(WIDTH, WIDTH)
    expected = mean_field_stds(activation, sigma2 * WIDTH)
    assert abs(math.log(ratio / _ratio(expected, 50))) < 5 * 0.28


def test_plain_glorot_with_tanh_decays():
    stds = forward_stds(
        "tanh", lambda s: ki.Glorot(distribution="normal", seed=s), seed=1
    )
    expected = mean_field_stds("tanh", 1.0)
    # Mean field: q_l ~ 1 / (2 l) for tanh at sigma_w = 1, a ~6.2x decay
    # from layer 1 to layer 50.
    assert 5.5 < 1.0 / _ratio(expected, 50) < 7.0
    assert abs(math.log(_ratio(stds, 50) / _ratio(expected, 50))) < 5 * 0.036
    assert 1.0 / _ratio(stds, 50) > 4.0


@pytest.mark.parametrize(
    "activation, growth_at_50",
    [("gelu", (20, 80)), ("silu", (1000, 5000)), ("mish", (5, 15))],
)
def test_second_moment_gain_drifts_for_smooth_activations(
    activation, growth_at_50
):
    # The second-moment gain makes q = 1 a fixed point of the variance map,
    # but an unstable one (slope > 1), and the first layer starts at
    # q = gain^2 > 1: the signal grows with depth.
    sigma2 = ki.ForActivation(activation).delegate.gain ** 2
    expected = mean_field_stds(activation, sigma2)
    low, high = growth_at_50
    assert low < _ratio(expected, 50) < high
    assert _ratio(expected, 10) > 1.2
    stds = forward_stds(
        activation, lambda s: ki.ForActivation(activation, seed=s), seed=1
    )
    for depth, sd_log in ((10, 0.11), (50, 0.28)):
        measured, predicted = _ratio(stds, depth), _ratio(expected, depth)
        assert abs(math.log(measured / predicted)) < 5 * sd_log, depth
