"""The Softsign activation layer."""

from __future__ import annotations

from typing import Any

import keras

from kerasinit.layers._base import ElementwiseActivation


@keras.saving.register_keras_serializable(package="kerasinit")
class Softsign(ElementwiseActivation):
    """Softsign: `x / (1 + |x|)`.

    A tanh-shaped activation whose tails approach +-1 polynomially rather
    than exponentially, so it saturates more slowly. Outputs near +-1 are
    saturated (derivative `(1 - |y|)^2`).

    Formula:

    ```
    f(x) = x / (1 + |x|)
    ```

    Reference:

    - [Glorot & Bengio, 2010](https://proceedings.mlr.press/v9/glorot10a.html)

    Args:
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> x = np.array([-1.0, 0.0, 3.0])
    >>> kerasinit.layers.Softsign()(x)  # [-0.5, 0, 0.75]
    """

    _activation_name = "softsign"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def call(self, inputs):
        return keras.activations.softsign(inputs)
