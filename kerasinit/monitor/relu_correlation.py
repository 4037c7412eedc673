"""What a random ReLU layer does to examples that are alike.

Pure functions of a correlation, used by the collapse rules: a random
layer cannot make its examples much more alike than they arrive, and
examples that are alike switch the same units off. The derivations are in
``docs/diagnosis.md``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["expected_dead_fraction", "relu_cosine", "relu_input_cosine"]


def relu_cosine(rho: float) -> float:
    """The cosine of two ReLU outputs whose pre-activations correlate at `rho`.

    The arc-cosine map of Cho & Saul (2009): for jointly Gaussian
    pre-activations with correlation ``rho`` (a random zero-bias layer
    gives them the cosine of its inputs),
    ``E[relu(u) relu(v)] / E[relu(u)^2]`` is
    ``(sqrt(1 - rho^2) + (pi - arccos(rho)) rho) / pi``.

    Args:
        rho: the pre-activations' correlation, in ``[-1, 1]``.

    Returns:
        The outputs' cosine, in ``[0, 1]``.
    """
    rho = min(max(float(rho), -1.0), 1.0)
    return (
        math.sqrt(1.0 - rho * rho) + (math.pi - math.acos(rho)) * rho
    ) / math.pi


def relu_input_cosine(cosine: float) -> float:
    """The inverse of `relu_cosine`: the correlation behind an output cosine.

    Args:
        cosine: the mean cosine of a ReLU layer's outputs.

    Returns:
        The pre-activations' correlation, in ``[-1, 1]``.
    """
    cosine = min(max(float(cosine), 0.0), 1.0)
    lo, hi = -1.0, 1.0
    # The map is increasing: 60 halvings reach float64 resolution.
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if relu_cosine(mid) < cosine:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def expected_dead_fraction(cosine: float, examples: int) -> float:
    """Fraction of healthy ReLU units off for every example, by correlation.

    A unit's pre-activations ``w . x_i`` over random weights are Gaussian
    with the correlation of the inputs ``x_i``; with equicorrelation ``rho``
    they are ``sqrt(rho) t + sqrt(1 - rho) e_i``, so the chance that all
    ``n`` are negative is ``E_t[Phi(-sqrt(rho / (1 - rho)) t) ** n]``.
    Examples that have become alike (``rho -> 1``) switch units off
    together: up to half of the units look dead without any being broken.

    Args:
        cosine: the mean cosine similarity of the layer's inputs.
        examples: the number of probe examples.

    Returns:
        The expected dead fraction, in ``[2 ** -examples, 0.5]``.
    """
    rho = min(max(float(cosine), 0.0), 1.0)
    if rho >= 1.0:
        return 0.5
    a = math.sqrt(rho / (1.0 - rho))
    t = np.linspace(-9.0, 9.0, 3601)
    phi = np.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)
    cdf = 0.5 * np.vectorize(math.erfc)(a * t / math.sqrt(2.0))
    return float(np.trapezoid(phi * cdf**examples, t))
