"""The SELU activation layer."""

from __future__ import annotations

from typing import Any

import keras

from kerasinit.layers._base import ElementwiseActivation


@keras.saving.register_keras_serializable(package="kerasinit")
class SELU(ElementwiseActivation):
    """Scaled exponential linear unit, the self-normalizing activation.

    With LeCun-normal weights (`Var(W) = 1 / fan_in`) and no normalization
    layers, activations of a deep stack converge to zero mean and unit
    variance. The property only holds with that initialization, so the
    paired initializer matters more here than for any other activation.

    Formula:

    ```
    f(x) = scale * x                     if x > 0
    f(x) = scale * alpha * (exp(x) - 1)  otherwise
    scale = 1.05070098..., alpha = 1.67326324...
    ```

    Reference:

    - [Klambauer et al., 2017](https://arxiv.org/abs/1706.02515)

    Args:
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> layer = kerasinit.layers.SELU()
    >>> keras.layers.Dense(64, kernel_initializer=layer.paired_initializer())
    """

    _activation_name = "selu"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def call(self, inputs):
        return keras.activations.selu(inputs)
