"""LeCun initialization, the one SELU's self-normalization assumes."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from kerasinit.initializers._base import FanInitializer


@keras.saving.register_keras_serializable(package="kerasinit")
class LeCun(FanInitializer):
    """LeCun initializer: unit gain on the fan-in.

    Use it before SELU: the self-normalizing fixed point (mean 0, variance
    1) of Klambauer et al. is derived for weights with ``Var(W) = 1 /
    fan_in``, and any other scale breaks the guarantee.

    Formula:
        ``Var(W) = 1 / fan_in``; the uniform limit is ``sqrt(3 / fan_in)``.

    Reference:
        - [LeCun et al., 1998, "Efficient BackProp"](
          https://doi.org/10.1007/3-540-49430-8_2)
        - [Klambauer et al., 2017](https://arxiv.org/abs/1706.02515)

    Args:
        distribution: ``"normal"``, ``"uniform"`` or ``"truncated_normal"``.
            Defaults to `"normal"`.
        fans: ``(fan_in, fan_out)`` to use instead of the ones read from the
            kernel shape. Defaults to `None`.
        seed: an integer, `None`, or a `keras.random.SeedGenerator` (see
            `Glorot`). Defaults to `None`.

    Example:

    >>> layer = keras.layers.Dense(
    ...     64, activation="selu",
    ...     kernel_initializer=kerasinit.initializers.LeCun())
    """

    def __init__(
        self,
        distribution: str = "normal",
        fans: Sequence[int] | None = None,
        seed: int | keras.random.SeedGenerator | None = None,
    ) -> None:
        super().__init__(distribution=distribution, fans=fans, seed=seed)

    def variance(self, fan_in: int, fan_out: int) -> float:
        return 1.0 / fan_in
