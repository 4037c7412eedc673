"""He (Kaiming) initialization, for any activation in the gains table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras

from kerasinit import gains
from kerasinit.initializers._base import (
    FanInitializer,
    check_choice,
    check_real,
)


@keras.saving.register_keras_serializable(package="kerasinit")
class He(FanInitializer):
    """He (Kaiming) initializer: ``gain^2 / fan`` for the activation given.

    For ReLU, half of a symmetric pre-activation is zeroed, halving the
    second moment at every layer; ``Var(W) = 2 / fan_in`` restores it, and
    the signal keeps its scale through any depth. The leaky ReLU with slope
    ``a`` keeps ``(1 + a^2) / 2`` of it. For any other activation in
    `kerasinit.gains` the gain is the table's: PyTorch's value where PyTorch
    defines one, else the second-moment gain ``1 / sqrt(E[f(z)^2])`` (so
    ``He("gelu")`` works). ``mode="fan_out"`` preserves the backward
    gradient's variance instead of the forward signal's.

    Formula:
        ``Var(W) = gain^2 / fan`` with ``fan`` the fan-in or fan-out;
        for leaky ReLU ``gain^2 = 2 / (1 + a^2)``. The uniform limit is
        ``gain * sqrt(3 / fan)``.

    Reference:
        - [He et al., 2015](https://arxiv.org/abs/1502.01852)

    Args:
        nonlinearity: the activation that follows the layer, a name or alias
            from `kerasinit.gains` (``"relu"``, ``"leaky_relu"``,
            ``"gelu"``...). Defaults to `"relu"`.
        negative_slope: the leaky slope ``a`` in ``[0, 1]``, for
            ``"leaky_relu"`` and ``"prelu"`` only (PyTorch's ``a``); `None`
            uses the table's default (0.01 for leaky_relu, as PyTorch).
            Defaults to `None`.
        mode: ``"fan_in"`` or ``"fan_out"``. Defaults to `"fan_in"`.
        distribution: ``"normal"``, ``"uniform"`` or ``"truncated_normal"``.
            Defaults to `"normal"`.
        fans: ``(fan_in, fan_out)`` to use instead of the ones read from the
            kernel shape. Defaults to `None`.
        seed: an integer, `None`, or a `keras.random.SeedGenerator` (see
            `Glorot`). Defaults to `None`.
        param: the shape parameter of any other parametrized activation
            (ELU's ``alpha``, SiLU's ``beta``); also accepted for the leaky
            slope, but not together with `negative_slope`. Defaults to
            `None`.

    Example:

    >>> init = kerasinit.initializers.He("leaky_relu", negative_slope=0.1)
    >>> layer = keras.layers.Dense(256, kernel_initializer=init)
    """

    def __init__(
        self,
        nonlinearity: str = "relu",
        negative_slope: float | None = None,
        mode: str = "fan_in",
        distribution: str = "normal",
        fans: Sequence[int] | None = None,
        seed: int | keras.random.SeedGenerator | None = None,
        param: float | None = None,
    ) -> None:
        entry = gains.info(nonlinearity)
        negative_slope = check_real("negative_slope", negative_slope)
        param = check_real("param", param)
        if negative_slope is not None:
            if entry.param_name != "negative_slope":
                raise ValueError(
                    f"`negative_slope` applies to leaky_relu and prelu only, "
                    f"not to {entry.name!r}"
                    + (
                        f" (use `param` for its {entry.param_name})"
                        if entry.param_name
                        else ""
                    )
                    + f". Received: negative_slope={negative_slope!r}"
                )
            if param is not None:
                raise ValueError(
                    "Pass the slope as `negative_slope` or as `param`, not "
                    f"both. Received: negative_slope={negative_slope!r}, "
                    f"param={param!r}"
                )
            if not 0.0 <= negative_slope <= 1.0:
                raise ValueError(
                    "Expected `negative_slope` in [0, 1]. "
                    f"Received: negative_slope={negative_slope!r}"
                )
        self.nonlinearity = nonlinearity
        self.negative_slope = negative_slope
        self.mode = check_choice("mode", mode, ("fan_in", "fan_out"))
        self.param = param
        self.gain = gains.gain(
            nonlinearity, negative_slope if param is None else param
        )
        if not math.isfinite(self.gain) or self.gain <= 0:
            raise ValueError(
                f"The gain of {entry.name!r} with this parameter is not a "
                f"finite positive number ({self.gain!r}). "
                f"Received: param={param!r}"
            )
        super().__init__(distribution=distribution, fans=fans, seed=seed)

    def variance(self, fan_in: int, fan_out: int) -> float:
        fan = fan_in if self.mode == "fan_in" else fan_out
        return self.gain**2 / fan

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "nonlinearity": self.nonlinearity,
            "negative_slope": self.negative_slope,
            "mode": self.mode,
            "param": self.param,
        }
