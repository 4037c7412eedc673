"""GPT-2's scaled normal initialization for residual output projections."""

from __future__ import annotations

import math
import numbers
from typing import Any

import keras

from kerasinit.initializers._base import (
    check_positive,
    check_seed,
    config_repr,
    float_dtype,
    runtime_seed,
    sample_dtype,
)


@keras.saving.register_keras_serializable(package="kerasinit")
class ScaledNormal(keras.initializers.Initializer):
    """Normal initializer scaled down by the depth of a residual stream.

    In a pre-norm transformer every block adds its branches' outputs to one
    residual stream, so at initialization the stream's variance grows with
    the number of additions. GPT-2 scales the *output projection* of each
    residual branch (attention output and second MLP layer) by
    ``1 / sqrt(2 N)``, two additions per block for ``N`` blocks, which keeps
    the stream's variance independent of depth.

    `num_layers` is the number of residual blocks ``N`` (GPT-2 small: 12),
    not the number of projections. Use this initializer only for the
    branch output projections; token and position embeddings and every
    other kernel keep the unscaled ``N(0, stddev^2)``, which is
    ``keras.initializers.RandomNormal(stddev=0.02)`` (a `ScaledNormal` with
    ``num_layers=1`` is still scaled, by ``1 / sqrt(2)``).

    Formula:
        ``W ~ N(0, (stddev / sqrt(2 * num_layers))^2)``.

    Reference:
        - [Radford et al., 2019, "Language Models are Unsupervised
          Multitask Learners"](https://cdn.openai.com/better-language-models/
          language_models_are_unsupervised_multitask_learners.pdf),
          section 2.3.

    Args:
        stddev: the unscaled standard deviation; a finite number > 0.
            Defaults to `0.02`.
        num_layers: the number of residual blocks ``N``, an integer >= 1.
            Defaults to `1`.
        seed: an integer, `None`, or a `keras.random.SeedGenerator` (see
            `Glorot`). Defaults to `None`.

    Example:

    >>> out_proj = keras.layers.Dense(
    ...     768, kernel_initializer=kerasinit.initializers.ScaledNormal(
    ...         num_layers=12))
    """

    def __init__(
        self,
        stddev: float = 0.02,
        num_layers: int = 1,
        seed: int | keras.random.SeedGenerator | None = None,
    ) -> None:
        self.stddev = check_positive("stddev", stddev)
        if isinstance(num_layers, bool) or not isinstance(
            num_layers, numbers.Integral
        ):
            raise TypeError(
                "Expected `num_layers` to be an integer >= 1 (the number of "
                f"residual blocks). Received: num_layers={num_layers!r}"
            )
        if num_layers < 1:
            raise ValueError(
                "Expected `num_layers` to be an integer >= 1 (the number of "
                f"residual blocks). Received: num_layers={num_layers!r}"
            )
        self.num_layers = int(num_layers)
        self.seed = check_seed(seed)
        self._seed = runtime_seed(self.seed)

    @property
    def scaled_stddev(self) -> float:
        """The standard deviation actually drawn with."""
        return self.stddev / math.sqrt(2.0 * self.num_layers)

    def __call__(self, shape, dtype=None):
        dtype = float_dtype(dtype)
        values = keras.random.normal(
            tuple(shape),
            stddev=self.scaled_stddev,
            dtype=sample_dtype(dtype),
            seed=self._seed,
        )
        return keras.ops.cast(values, dtype)

    def __repr__(self) -> str:
        return config_repr(self)

    def get_config(self) -> dict[str, Any]:
        return {
            "stddev": self.stddev,
            "num_layers": self.num_layers,
            "seed": keras.saving.serialize_keras_object(self.seed),
        }
