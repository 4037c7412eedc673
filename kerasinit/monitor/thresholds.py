"""`Thresholds`: when a statistic becomes a finding, one named number each.

The reasoning behind every default is in ``docs/diagnosis.md``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["Thresholds"]


class Thresholds:
    """When a statistic becomes a finding.

    Every threshold is explicit and documented, so a user who disagrees with a
    default can change exactly that one.

    Args:
        dead_fraction: report dead units when more than this fraction of a
            layer's units output their dead value for every probe example.
            Defaults to `0.25`.
        dead_min_examples: below this many probe examples the dead rule is
            not applied, since a healthy ReLU unit is zero on all of `n`
            examples with probability about ``2**-n``. Defaults to `16`.
        saturation_derivative: an output is saturated where the
            activation's derivative is below this fraction of its peak
            derivative. Defaults to `0.05`.
        saturation_fraction: report saturation when more than this fraction
            of a layer's outputs are saturated. Defaults to `0.25`.
        vanishing_ratio: report vanishing gradients when a layer's gradient
            norm is below this multiple of the output layer's.
            Defaults to `1e-3`.
        exploding_ratio: report exploding gradients when a layer's gradient
            norm is above this multiple of the output layer's.
            Defaults to `1e3`.
        signal_high: report an exploding signal when a layer's output RMS
            is above this (inputs and a matched initialization keep it near
            1). Defaults to `10.0`.
        signal_low: report a vanishing signal when a layer's output RMS is
            below this. Defaults to `1e-2`.
        signal_gain: a layer whose RMS gain over its input is above this
            (or below its inverse) is part of an exploding (vanishing) span.
            Defaults to `2.0`.
        collapse_cosine: report representation collapse when the mean
            cosine similarity of a layer's outputs across probe examples is
            above this. Defaults to `0.95`.
        duplicate_fraction: report symmetric weights when more than this
            fraction of a layer's units compute another unit's output.
            Defaults to `0.5`.
        update_ratio_high: report a learning rate too high when a layer's
            weights move by more than this fraction of their norm per step.
            Defaults to `1e-2`.
        update_ratio_low: report a learning rate too low when the layers'
            median per-step move is below this fraction of their norm.
            Defaults to `1e-6`.
        persistence: during training, a condition that passes its threshold
            by the margin but is not extreme is reported after this many
            consecutive events. Defaults to `2`.

    Example:

    >>> t = kerasinit.callbacks.Thresholds(dead_fraction=0.5)
    >>> t.dead_fraction
    0.5
    """

    def __init__(
        self,
        dead_fraction: float = 0.25,
        dead_min_examples: int = 16,
        saturation_derivative: float = 0.05,
        saturation_fraction: float = 0.25,
        vanishing_ratio: float = 1e-3,
        exploding_ratio: float = 1e3,
        signal_high: float = 10.0,
        signal_low: float = 1e-2,
        signal_gain: float = 2.0,
        collapse_cosine: float = 0.95,
        duplicate_fraction: float = 0.5,
        update_ratio_high: float = 1e-2,
        update_ratio_low: float = 1e-6,
        persistence: int = 2,
    ):
        for name, value in (
            ("dead_fraction", dead_fraction),
            ("saturation_derivative", saturation_derivative),
            ("saturation_fraction", saturation_fraction),
            ("signal_low", signal_low),
            ("collapse_cosine", collapse_cosine),
            ("duplicate_fraction", duplicate_fraction),
            ("update_ratio_high", update_ratio_high),
            ("update_ratio_low", update_ratio_low),
        ):
            if not _is_real(value) or not 0.0 < value < 1.0:
                raise ValueError(
                    f"Expected `{name}` to be a number strictly between 0 "
                    f"and 1. Received: {name}={value!r}"
                )
        dead_min_examples = _positive_int(
            "dead_min_examples", dead_min_examples
        )
        if not _is_real(vanishing_ratio) or not 0.0 < vanishing_ratio < 1.0:
            raise ValueError(
                "Expected `vanishing_ratio` to be a number strictly between "
                f"0 and 1. Received: vanishing_ratio={vanishing_ratio!r}"
            )
        if (
            not _is_real(exploding_ratio)
            or not 1.0 < exploding_ratio < math.inf
        ):
            raise ValueError(
                "Expected `exploding_ratio` to be a finite number greater "
                f"than 1. Received: exploding_ratio={exploding_ratio!r}"
            )
        for name, value in (
            ("signal_high", signal_high),
            ("signal_gain", signal_gain),
        ):
            if not _is_real(value) or value <= 1.0:
                raise ValueError(
                    f"Expected `{name}` to be a finite number greater than 1. "
                    f"Received: {name}={value!r}"
                )
        persistence = _positive_int("persistence", persistence)
        if update_ratio_low >= update_ratio_high:
            raise ValueError(
                "Expected `update_ratio_low` to be below `update_ratio_high`. "
                f"Received: update_ratio_low={update_ratio_low!r}"
            )
        self.signal_high = float(signal_high)
        self.signal_low = float(signal_low)
        self.signal_gain = float(signal_gain)
        self.collapse_cosine = float(collapse_cosine)
        self.duplicate_fraction = float(duplicate_fraction)
        self.update_ratio_high = float(update_ratio_high)
        self.update_ratio_low = float(update_ratio_low)
        self.persistence = persistence
        self.dead_fraction = float(dead_fraction)
        self.dead_min_examples = dead_min_examples
        self.saturation_derivative = float(saturation_derivative)
        self.saturation_fraction = float(saturation_fraction)
        self.vanishing_ratio = float(vanishing_ratio)
        self.exploding_ratio = float(exploding_ratio)

    def get_config(self) -> dict[str, Any]:
        return {
            "dead_fraction": self.dead_fraction,
            "dead_min_examples": self.dead_min_examples,
            "saturation_derivative": self.saturation_derivative,
            "saturation_fraction": self.saturation_fraction,
            "vanishing_ratio": self.vanishing_ratio,
            "exploding_ratio": self.exploding_ratio,
            "signal_high": self.signal_high,
            "signal_low": self.signal_low,
            "signal_gain": self.signal_gain,
            "collapse_cosine": self.collapse_cosine,
            "duplicate_fraction": self.duplicate_fraction,
            "update_ratio_high": self.update_ratio_high,
            "update_ratio_low": self.update_ratio_low,
            "persistence": self.persistence,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"Thresholds({args})"


def _is_real(value) -> bool:
    # NumPy scalars count: a threshold often comes out of an array.
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, np.bool_))
        and math.isfinite(value)
    )


def _positive_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, numbers.Integral
    ):
        value_ok = False
    else:
        value_ok = value >= 1
    if not value_ok:
        raise ValueError(
            f"Expected `{name}` to be a positive integer. "
            f"Received: {name}={value!r}"
        )
    return int(value)
