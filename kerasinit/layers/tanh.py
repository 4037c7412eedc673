"""The Tanh activation layer."""

from __future__ import annotations

from typing import Any

import keras

from kerasinit.layers._base import ElementwiseActivation


@keras.saving.register_keras_serializable(package="kerasinit")
class Tanh(ElementwiseActivation):
    """Hyperbolic tangent.

    Zero-centred and bounded; the classic activation of recurrent networks
    and of Glorot initialization, which was derived for it. Outputs pinned
    near -1 or 1 are saturated (derivative `1 - y^2`).

    Formula:

    ```
    f(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))
    ```

    Reference:

    - [Glorot & Bengio, 2010](https://proceedings.mlr.press/v9/glorot10a.html)

    Args:
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> x = np.array([-1.0, 0.0, 1.0])
    >>> kerasinit.layers.Tanh()(x)  # [-0.762, 0, 0.762]
    """

    _activation_name = "tanh"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def call(self, inputs):
        return keras.activations.tanh(inputs)
