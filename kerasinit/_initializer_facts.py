"""What an initializer object draws, read back from the object itself.

`kerasinit.check` compares a kernel's initializer with the variance its
activation pairs with, and `pair` and the monitor name initializers in
their messages: both need to recognise Keras's and kerasinit's
initializers (the variance one draws for a shape, whether it is LeCun's,
a short name) and to make a plain one of a given standard deviation.
"""

from __future__ import annotations

import math
from typing import Any

import keras

__all__ = [
    "describe_initializer",
    "implied_variance",
    "is_lecun",
    "std_initializer",
]


def std_initializer(
    stddev: float, distribution: str, seed: int | None
) -> keras.initializers.Initializer:
    """A Keras initializer drawing zero-mean values of std `stddev`."""
    from kerasinit.initializers._base import TRUNCATED_NORMAL_STDDEV

    if distribution == "uniform":
        limit = stddev * math.sqrt(3.0)
        return keras.initializers.RandomUniform(-limit, limit, seed=seed)
    if distribution == "truncated_normal":
        return keras.initializers.TruncatedNormal(
            stddev=stddev / TRUNCATED_NORMAL_STDDEV, seed=seed
        )
    return keras.initializers.RandomNormal(stddev=stddev, seed=seed)


def implied_variance(
    init: Any, shape: tuple[int, ...]
) -> tuple[float, str] | None:
    """The variance a recognised initializer draws for `shape`."""
    from kerasinit.initializers import ForActivation, ScaledNormal, compute_fans
    from kerasinit.initializers._base import (
        TRUNCATED_NORMAL_STDDEV,
        FanInitializer,
    )

    if isinstance(init, ForActivation):
        init = init.delegate
    if isinstance(init, FanInitializer):
        fan_in, fan_out = init.fans_for(shape)
        return init.variance(max(1, fan_in), max(1, fan_out)), "fan"
    if isinstance(init, ScaledNormal):
        return init.scaled_stddev**2, "scaled"
    ki = keras.initializers
    fan_in, fan_out = compute_fans(shape)
    if isinstance(init, ki.VarianceScaling):
        fan = {
            "fan_in": fan_in,
            "fan_out": fan_out,
            "fan_avg": (fan_in + fan_out) / 2.0,
        }[init.mode]
        return init.scale / max(1.0, fan), "variance_scaling"
    if isinstance(init, ki.RandomNormal):
        return init.stddev**2, "normal"
    if isinstance(init, ki.TruncatedNormal):
        # Keras truncates at two standard deviations without rescaling.
        return init.stddev**2 * TRUNCATED_NORMAL_STDDEV**2, "normal"
    if isinstance(init, ki.RandomUniform):
        return (init.maxval - init.minval) ** 2 / 12.0, "uniform"
    return None


def describe_initializer(init: Any) -> str:
    """A short name of `init` for messages (its std where known)."""
    if init is None:
        return "None"
    if isinstance(init, keras.initializers.VarianceScaling):
        # Keras' named schemes are VarianceScaling subclasses; the class
        # name says which one.
        name = type(init).__name__
        if name == "VarianceScaling":
            return (
                f"VarianceScaling(scale={init.scale:g}, mode={init.mode!r}, "
                f"distribution={init.distribution!r})"
            )
        return name
    from kerasinit.initializers import ForActivation, ScaledNormal
    from kerasinit.initializers._base import FanInitializer

    if isinstance(init, ForActivation):
        d = init.delegate
        fans = d.fans if d.fans is not None else None
        std = "" if fans is None else f" std={math.sqrt(d.variance(*fans)):.3g}"
        return f"{type(d).__name__}({init.activation}){std}"
    if isinstance(init, ScaledNormal):
        return f"ScaledNormal(N={init.num_layers}) std={init.scaled_stddev:.3g}"
    if isinstance(init, FanInitializer) and init.fans is not None:
        std = math.sqrt(init.variance(*init.fans))
        return f"{type(init).__name__} std={std:.3g}"
    ki = keras.initializers
    if isinstance(init, (ki.RandomNormal, ki.TruncatedNormal)):
        return f"{type(init).__name__}(stddev={init.stddev:.3g})"
    if isinstance(init, ki.RandomUniform):
        return f"RandomUniform({init.minval:.3g}, {init.maxval:.3g})"
    text = repr(init)
    if text.startswith("<"):
        return type(init).__name__
    return text


def is_lecun(init: Any) -> bool | None:
    """True/False for a recognised initializer, `None` when unknown."""
    from kerasinit.initializers import ForActivation, LeCun
    from kerasinit.initializers._base import FanInitializer

    if isinstance(init, ForActivation):
        init = init.delegate
    if isinstance(init, LeCun):
        return True
    if isinstance(init, FanInitializer):
        return False
    if isinstance(init, keras.initializers.VarianceScaling):
        return init.mode == "fan_in" and abs(init.scale - 1.0) < 1e-9
    if isinstance(
        init,
        (
            keras.initializers.RandomNormal,
            keras.initializers.RandomUniform,
            keras.initializers.TruncatedNormal,
            keras.initializers.Orthogonal,
        ),
    ):
        return False
    return None
