"""What every kerasinit initializer shares: seeds, argument checks, sampling.

Kept private: the public classes are the families built on top of it.
"""

from __future__ import annotations

import math
import numbers
import random as python_random
from collections.abc import Sequence
from typing import Any

import keras

from kerasinit.initializers.fans import compute_fans

#: Distributions a fan-based initializer can draw from.
DISTRIBUTIONS = ("normal", "uniform", "truncated_normal")

# Standard deviation of N(0, 1) truncated to [-2, 2], which is where
# `keras.random.truncated_normal` truncates. Dividing the requested stddev by
# it makes the *truncated* samples have the requested variance, as Keras's
# VarianceScaling does.
TRUNCATED_NORMAL_STDDEV = 0.87962566103423978


def config_repr(initializer: keras.initializers.Initializer) -> str:
    """``Name(arg=value, ...)`` from the config, seeds left out for brevity."""
    args = ", ".join(
        f"{key}={value!r}"
        for key, value in initializer.get_config().items()
        if key != "seed"
    )
    return f"{type(initializer).__name__}({args})"


def check_seed(seed: Any) -> Any:
    """Validate a seed and turn a serialized SeedGenerator back into one."""
    if isinstance(seed, dict):
        seed = keras.saving.deserialize_keras_object(seed)
    if seed is None or isinstance(seed, keras.random.SeedGenerator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            "Expected `seed` to be an integer, `None` or a "
            "`keras.random.SeedGenerator`. "
            f"Received: seed={seed!r}"
        )
    return int(seed)


def runtime_seed(seed: Any) -> Any:
    """The seed handed to `keras.random` at call time.

    Matches Keras's random initializers: an integer, or `None` (for which a
    seed is drawn once, at construction, from Python's global RNG so that
    `keras.utils.set_random_seed` makes it reproducible), gives the same
    values on every call; a `SeedGenerator` advances on every call.
    """
    if seed is None:
        return python_random.randint(1, int(1e9))
    return seed


def check_real(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"Expected `{name}` to be a number or `None`. "
            f"Received: {name}={value!r}"
        )
    if not math.isfinite(value):
        raise ValueError(
            f"Expected `{name}` to be finite. Received: {name}={value!r}"
        )
    return float(value)


def check_positive(name: str, value: Any) -> float:
    """A finite, strictly positive real number, else a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"Expected `{name}` to be a positive number. "
            f"Received: {name}={value!r}"
        )
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"Expected `{name}` to be a finite number > 0. "
            f"Received: {name}={value!r}"
        )
    return value


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"Expected `{name}` to be one of {', '.join(map(repr, choices))}. "
            f"Received: {name}={value!r}"
        )
    return value


def check_fans(fans: Any) -> tuple[int, int] | None:
    """`None`, or a pair of positive integers ``(fan_in, fan_out)``."""
    if fans is None:
        return None
    if isinstance(fans, (str, bytes)) or not isinstance(fans, Sequence):
        raise TypeError(
            "Expected `fans` to be `None` or a pair of positive integers "
            f"(fan_in, fan_out). Received: fans={fans!r}"
        )
    if len(fans) != 2 or not all(
        isinstance(f, numbers.Integral) and not isinstance(f, bool) and f > 0
        for f in fans
    ):
        raise ValueError(
            "Expected `fans` to be a pair of positive integers "
            f"(fan_in, fan_out). Received: fans={fans!r}"
        )
    return int(fans[0]), int(fans[1])


def float_dtype(dtype: Any) -> str:
    dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
    if not keras.backend.is_float_dtype(dtype):
        raise ValueError(
            "Expected `dtype` to be a floating point type. "
            f"Received: dtype={dtype!r}"
        )
    return dtype


def sample_dtype(dtype: str) -> str:
    # Low-precision dtypes are sampled in float32 and cast, so that the
    # variance is the one asked for and truncation happens at full precision.
    return "float64" if dtype == "float64" else "float32"


class FanInitializer(keras.initializers.Initializer):
    """Base for initializers whose variance is a function of the fans.

    Subclasses implement `variance(fan_in, fan_out)`; this class resolves the
    fans (from the shape, or from the `fans` override), draws from the chosen
    distribution with that variance, and casts to the requested dtype.
    """

    def __init__(
        self,
        distribution: str = "normal",
        fans: Sequence[int] | None = None,
        seed: int | keras.random.SeedGenerator | None = None,
    ) -> None:
        self.distribution = check_choice(
            "distribution", distribution, DISTRIBUTIONS
        )
        self.fans = check_fans(fans)
        self.seed = check_seed(seed)
        self._seed = runtime_seed(self.seed)

    def __repr__(self) -> str:
        return config_repr(self)

    def variance(self, fan_in: int, fan_out: int) -> float:
        """Var(W) for the given fans."""
        raise NotImplementedError

    def fans_for(self, shape: Sequence[int]) -> tuple[int, int]:
        """The fans for `shape`: the override if given, else the shape's."""
        if self.fans is not None:
            return self.fans
        return compute_fans(shape)

    def stddev_for(self, shape: Sequence[int]) -> float:
        """Standard deviation of the values drawn for `shape`."""
        fan_in, fan_out = self.fans_for(shape)
        return math.sqrt(self.variance(max(1, fan_in), max(1, fan_out)))

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        dtype = float_dtype(dtype)
        draw = sample_dtype(dtype)
        return keras.ops.cast(
            sample(
                shape,
                self.stddev_for(shape),
                self.distribution,
                self._seed,
                draw,
            ),
            dtype,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "distribution": self.distribution,
            "fans": None if self.fans is None else list(self.fans),
            "seed": keras.saving.serialize_keras_object(self.seed),
        }


def sample(
    shape: tuple[int, ...],
    stddev: float,
    distribution: str,
    seed: Any,
    dtype: str,
):
    """Mean-zero values with standard deviation `stddev`."""
    if distribution == "normal":
        return keras.random.normal(shape, stddev=stddev, dtype=dtype, seed=seed)
    if distribution == "truncated_normal":
        if keras.backend.backend() == "torch":
            return _truncated_normal_by_inverse_cdf(
                shape, stddev / TRUNCATED_NORMAL_STDDEV, dtype, seed
            )
        return keras.random.truncated_normal(
            shape,
            stddev=stddev / TRUNCATED_NORMAL_STDDEV,
            dtype=dtype,
            seed=seed,
        )
    # U(-l, l) has variance l^2 / 3.
    limit = math.sqrt(3.0) * stddev
    return keras.random.uniform(
        shape, minval=-limit, maxval=limit, dtype=dtype, seed=seed
    )


# erf(2 / sqrt(2)): the mass of N(0, 1) inside [-2, 2].
_ERF_TWO_STDDEVS = math.erf(math.sqrt(2.0))


def _truncated_normal_by_inverse_cdf(
    shape: tuple[int, ...], stddev: float, dtype: str, seed: Any
):
    """N(0, stddev^2) truncated to two standard deviations, exactly.

    Keras's PyTorch backend draws four normal candidates per value and keeps
    the first inside the bounds; about 4 values in a million have none and
    come back untruncated. Mapping a uniform draw through the normal
    quantile function, ``sqrt(2) erfinv(u)`` with ``u`` uniform over the
    truncated mass, lands inside the bounds by construction.
    """
    # Narrow floats are drawn in float32 and cast, as the other samplers do,
    # so that erfinv keeps its precision near the bounds.
    draw_dtype = "float64" if dtype == "float64" else "float32"
    u = keras.random.uniform(
        shape,
        minval=-_ERF_TWO_STDDEVS,
        maxval=_ERF_TWO_STDDEVS,
        dtype=draw_dtype,
        seed=seed,
    )
    z = keras.ops.clip(math.sqrt(2.0) * keras.ops.erfinv(u), -2.0, 2.0)
    return keras.ops.cast(stddev * z, dtype)
