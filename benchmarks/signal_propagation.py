"""Activation std through a deep MLP, per activation and initializer.

Reproduces the depth measurements quoted in docs/initializers.md: a
50-layer, width-512, bias-free MLP fed a batch of 256 unit Gaussian inputs;
for each configuration it prints the ratio of the activation standard
deviation at layers 10 and 50 to the one at layer 1 (mean, min and max over
seeds, and the standard deviation of its logarithm), next to the
infinite-width mean-field prediction.

Usage::

    python benchmarks/signal_propagation.py [--seeds 10] [--depth 50]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasinit import initializers as ki  # noqa: E402
from kerasinit.initializers._propagation import (  # noqa: E402
    forward_stds,
    mean_field_stds,
)

WIDTH = 512


def configurations():
    """(label, activation, make_initializer, fan_in * Var(W))."""
    yield (
        "relu, N(0, 1) (fan_in Var(W) = 512)",
        "relu",
        lambda s: keras.initializers.RandomNormal(stddev=1.0, seed=s),
        float(WIDTH),
    )
    yield (
        "relu, N(0, 0.001^2) (fan_in Var(W) = 5.12e-4)",
        "relu",
        lambda s: keras.initializers.RandomNormal(stddev=1e-3, seed=s),
        WIDTH * 1e-6,
    )
    yield (
        "tanh, Glorot(gain=1) (fan_in Var(W) = 1)",
        "tanh",
        lambda s: ki.Glorot(distribution="normal", seed=s),
        1.0,
    )
    for name in (
        "relu",
        "leaky_relu",
        "tanh",
        "elu",
        "selu",
        "sigmoid",
        "gelu",
        "silu",
        "mish",
    ):
        paired = ki.ForActivation(name).delegate
        yield (
            f"{name}, ForActivation -> {type(paired).__name__} "
            f"(fan_in Var(W) = {paired.variance(WIDTH, WIDTH) * WIDTH:.4g})",
            name,
            lambda s, name=name: ki.ForActivation(name, seed=s),
            paired.variance(WIDTH, WIDTH) * WIDTH,
        )


def fixed_point_slope(activation: str, h: float = 1e-4) -> float:
    """Slope at q = 1 of the variance map under the second-moment gain.

    With ``sigma_w^2 = gain^2 = 1 / E[f(z)^2]`` the map
    ``q -> sigma_w^2 E[f(sqrt(q) z)^2]`` fixes q = 1; the fixed point
    attracts when the slope is below 1 and repels above it.
    """
    from kerasinit import gains

    entry = gains.info(activation)
    z, w = np.polynomial.hermite_e.hermegauss(201)
    w = w / w.sum()

    def moment(q):
        return float(w @ entry(np.sqrt(q) * z) ** 2)

    return (moment(1 + h) - moment(1 - h)) / (2 * h) / moment(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument(
        "--fixed-points",
        action="store_true",
        help="only print the slope of the variance map at its fixed point",
    )
    args = parser.parse_args()
    if args.fixed_points:
        print("| activation | slope of the variance map at q = 1 |")
        print("|---|---|")
        for name in ("relu", "elu", "gelu", "silu", "mish", "softplus"):
            print(f"| {name} | {fixed_point_slope(name):.4f} |")
        return
    mid = min(10, args.depth)
    print(
        f"| configuration | mean field {mid} | measured {mid} "
        f"| mean field {args.depth} | measured {args.depth} "
        f"(min..max) | sd log {mid} | sd log {args.depth} |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, activation, make, sigma2 in configurations():
        expected = mean_field_stds(activation, sigma2, depth=args.depth)
        ratios = []
        with np.errstate(all="ignore"):
            for seed in range(args.seeds):
                stds = forward_stds(
                    activation, make, depth=args.depth, width=WIDTH, seed=seed
                )
                ratios.append((stds[mid - 1] / stds[0], stds[-1] / stds[0]))
            ratios = np.array(ratios)
            mf = (expected[mid - 1] / expected[0], expected[-1] / expected[0])
            sd_log = np.std(np.log(ratios), axis=0, ddof=1)
        print(
            f"| {label} | {mf[0]:.3g} | {np.mean(ratios[:, 0]):.3g} "
            f"| {mf[1]:.3g} | {np.mean(ratios[:, 1]):.3g} "
            f"({np.min(ratios[:, 1]):.3g}..{np.max(ratios[:, 1]):.3g}) "
            f"| {sd_log[0]:.3g} | {sd_log[1]:.3g} |"
        )


if __name__ == "__main__":
    main()
