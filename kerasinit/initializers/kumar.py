"""Kumar's initialization for activations differentiable at 0."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from kerasinit import gains
from kerasinit.initializers._base import FanInitializer, check_real


@keras.saving.register_keras_serializable(package="kerasinit")
class Kumar(FanInitializer):
    """Kumar initializer: the variance a smooth activation needs at 0.

    Linearizing an activation ``g`` around 0 gives the weight variance that
    keeps the pre-activation variance constant through depth. Glorot's
    derivation assumes ``g(0) = 0`` and ``g'(0) = 1``; sigmoid has
    ``g(0) = 1/2`` and ``g'(0) = 1/4`` and needs a much larger variance,
    12.8 / N (a standard deviation of about 3.6 / sqrt(N)). For tanh the
    formula gives 1 / N. ReLU is not differentiable at 0: use `He`.

    Formula:
        ``Var(W) = 1 / (fan_in * g'(0)^2 * (1 + g(0)^2))``, the factor
        coming from `kerasinit.gains.kumar_variance_factor`.

    Reference:
        - [Kumar, 2017, "On weight initialization in deep neural
          networks"](https://arxiv.org/abs/1704.08863)

    Args:
        activation: a name or alias from `kerasinit.gains` of an activation
            differentiable at 0 with ``g'(0) != 0``. Defaults to
            `"sigmoid"`.
        param: the activation's shape parameter, if it has one. Defaults to
            `None` (the table's default).
        distribution: ``"normal"``, ``"uniform"`` or ``"truncated_normal"``.
            Defaults to `"normal"`.
        fans: ``(fan_in, fan_out)`` to use instead of the ones read from the
            kernel shape. Defaults to `None`.
        seed: an integer, `None`, or a `keras.random.SeedGenerator` (see
            `Glorot`). Defaults to `None`.

    Example:

    >>> layer = keras.layers.Dense(
    ...     128, activation="sigmoid",
    ...     kernel_initializer=kerasinit.initializers.Kumar("sigmoid"))
    """

    def __init__(
        self,
        activation: str = "sigmoid",
        param: float | None = None,
        distribution: str = "normal",
        fans: Sequence[int] | None = None,
        seed: int | keras.random.SeedGenerator | None = None,
    ) -> None:
        entry = gains.info(activation)
        param = check_real("param", param)
        # Raises for activations with a kink at 0, pointing to He.
        self.factor = gains.kumar_variance_factor(entry, param)
        self.activation = activation
        self.param = param
        super().__init__(distribution=distribution, fans=fans, seed=seed)

    def variance(self, fan_in: int, fan_out: int) -> float:
        return self.factor / fan_in

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "activation": self.activation,
            "param": self.param,
        }
