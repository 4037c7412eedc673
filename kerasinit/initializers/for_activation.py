"""The initializer an activation is paired with, chosen from the gains table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from kerasinit import gains
from kerasinit.initializers._base import (
    DISTRIBUTIONS,
    check_choice,
    check_fans,
    check_real,
    check_seed,
)
from kerasinit.initializers.glorot import Glorot
from kerasinit.initializers.he import He
from kerasinit.initializers.kumar import Kumar
from kerasinit.initializers.lecun import LeCun


def paired_initializer(
    activation: str,
    param: float | None = None,
    distribution: str = "normal",
    fans: Sequence[int] | None = None,
    seed: int | keras.random.SeedGenerator | None = None,
) -> keras.initializers.Initializer:
    """The concrete initializer the table pairs with `activation`.

    Args:
        activation: a name or alias from `kerasinit.gains`.
        param: the activation's shape parameter. Defaults to `None`.
        distribution: passed to the chosen initializer. Defaults to
            `"normal"`.
        fans: passed to the chosen initializer. Defaults to `None`.
        seed: passed to the chosen initializer. Defaults to `None`.

    Returns:
        A `He`, `Glorot`, `LeCun` or `Kumar` instance.
    """
    entry = gains.info(activation)
    common = {"distribution": distribution, "fans": fans, "seed": seed}
    if entry.family == "he":
        return He(activation, param=param, **common)
    if entry.family == "glorot":
        return Glorot(gain=gains.gain(activation, param), **common)
    if entry.family == "lecun":
        # LeCun's 1 / fan_in has no parameter; still reject a stray one.
        entry.param_or_default(param)
        return LeCun(**common)
    if entry.family == "kumar":
        return Kumar(activation, param=param, **common)
    raise ValueError(  # pragma: no cover - guarded by gains.FAMILIES
        f"Unknown initializer family {entry.family!r} for {entry.name!r}. "
        f"Received: activation={activation!r}"
    )


@keras.saving.register_keras_serializable(package="kerasinit")
class ForActivation(keras.initializers.Initializer):
    """The variance-preserving initializer derived for a given activation.

    Reads the activation's family from `kerasinit.gains` and delegates:

    * ``"he"`` (ReLU family, ELU, GELU, SiLU, Mish...): ``He(activation,
      param)``;
    * ``"glorot"`` (linear, tanh): ``Glorot(gain=gain(activation))``, so
      tanh gets gain 5/3 as PyTorch documents;
    * ``"lecun"`` (SELU): ``LeCun()``;
    * ``"kumar"`` (sigmoid, hard sigmoid, softsign): ``Kumar(activation,
      param)``.

    `delegate` is the concrete initializer chosen, for printing what was
    picked. This is what `kerasinit.pair` and the kerasinit activation
    layers' ``paired_initializer()`` use.

    Formula:
        That of the delegate; see `docs/which-initializer.md` for the
        variance each activation gets.

    Args:
        activation: a name or alias from `kerasinit.gains`.
        param: the activation's shape parameter (leaky slope, ELU alpha,
            SiLU beta). Defaults to `None` (the table's default).
        distribution: ``"normal"``, ``"uniform"`` or ``"truncated_normal"``.
            Defaults to `"normal"`.
        fans: ``(fan_in, fan_out)`` to use instead of the ones read from the
            kernel shape. Defaults to `None`.
        seed: an integer, `None`, or a `keras.random.SeedGenerator` (see
            `Glorot`). Defaults to `None`.

    Example:

    >>> init = kerasinit.initializers.ForActivation("leaky_relu", 0.2)
    >>> init.delegate
    He(distribution='normal', fans=None, nonlinearity='leaky_relu',
    negative_slope=None, mode='fan_in', param=0.2)
    >>> layer = keras.layers.Dense(128, kernel_initializer=init)
    """

    def __init__(
        self,
        activation: str,
        param: float | None = None,
        distribution: str = "normal",
        fans: Sequence[int] | None = None,
        seed: int | keras.random.SeedGenerator | None = None,
    ) -> None:
        gains.info(activation)
        self.activation = activation
        self.param = check_real("param", param)
        self.distribution = check_choice(
            "distribution", distribution, DISTRIBUTIONS
        )
        self.fans = check_fans(fans)
        self.seed = check_seed(seed)
        self._delegate = paired_initializer(
            activation, self.param, self.distribution, self.fans, self.seed
        )

    @property
    def delegate(self) -> keras.initializers.Initializer:
        """The concrete initializer (`He`, `Glorot`, `LeCun`, `Kumar`) used."""
        return self._delegate

    def __call__(self, shape, dtype=None):
        return self._delegate(shape, dtype=dtype)

    def __repr__(self) -> str:
        return (
            f"ForActivation({self.activation!r}, param={self.param!r}) -> "
            f"{self._delegate!r}"
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "activation": self.activation,
            "param": self.param,
            "distribution": self.distribution,
            "fans": None if self.fans is None else list(self.fans),
            "seed": keras.saving.serialize_keras_object(self.seed),
        }
