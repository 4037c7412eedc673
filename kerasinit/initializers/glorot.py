"""Glorot (Xavier) initialization, with a gain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from kerasinit.initializers._base import FanInitializer, check_positive


@keras.saving.register_keras_serializable(package="kerasinit")
class Glorot(FanInitializer):
    """Glorot (Xavier) initializer: variance from the average of the fans.

    Keeps the variance of both the forward signal and the backward gradient
    roughly constant through a layer whose activation is close to the
    identity around 0 (linear, tanh, softsign). The `gain` compensates for an
    activation that shrinks its input: tanh takes gain 5/3, as PyTorch's
    ``calculate_gain`` documents (``kerasinit.gain("tanh")``).

    Formula:
        ``Var(W) = gain^2 * 2 / (fan_in + fan_out)``. With
        ``distribution="uniform"`` the values are drawn from
        ``U(-limit, limit)`` with ``limit = gain * sqrt(6 / (fan_in +
        fan_out))``; ``"truncated_normal"`` draws from a normal truncated at
        two standard deviations, rescaled so that the variance is the same.

    Reference:
        - [Glorot & Bengio, 2010](
          https://proceedings.mlr.press/v9/glorot10a.html)

    Args:
        distribution: ``"uniform"``, ``"normal"`` or ``"truncated_normal"``.
            Defaults to `"uniform"`.
        gain: multiplies the standard deviation; a finite number > 0.
            Defaults to `1.0`.
        fans: ``(fan_in, fan_out)`` to use instead of the ones read from the
            kernel shape (see `kerasinit.initializers.fans.fans_for_layer`).
            Defaults to `None`.
        seed: an integer, `None`, or a `keras.random.SeedGenerator`. An
            integer or `None` gives the same values on every call; a
            `SeedGenerator` gives new values on every call. Defaults to
            `None`.

    Example:

    >>> init = kerasinit.initializers.Glorot(gain=kerasinit.gain("tanh"))
    >>> layer = keras.layers.Dense(64, activation="tanh",
    ...                            kernel_initializer=init)
    """

    def __init__(
        self,
        distribution: str = "uniform",
        gain: float = 1.0,
        fans: Sequence[int] | None = None,
        seed: int | keras.random.SeedGenerator | None = None,
    ) -> None:
        self.gain = check_positive("gain", gain)
        super().__init__(distribution=distribution, fans=fans, seed=seed)

    def variance(self, fan_in: int, fan_out: int) -> float:
        return self.gain**2 * 2.0 / (fan_in + fan_out)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gain": self.gain}
