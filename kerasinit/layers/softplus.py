"""The Softplus activation layer."""

from __future__ import annotations

from typing import Any

import keras

from kerasinit.layers._base import ElementwiseActivation


@keras.saving.register_keras_serializable(package="kerasinit")
class Softplus(ElementwiseActivation):
    """Softplus: `log(1 + e^x)`, a smooth ReLU.

    Strictly positive outputs, for rates and scales, or as a ReLU that
    never has a zero gradient. Outputs near 0 are saturated (derivative
    `1 - exp(-y)`).

    Formula:

    ```
    f(x) = log(1 + exp(x))
    ```

    Reference:

    - [Dugas et al., 2000](https://papers.nips.cc/paper/1920-incorporating-second-order-functional-knowledge-for-better-option-pricing)

    Args:
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> x = np.array([-1.0, 0.0, 1.0])
    >>> kerasinit.layers.Softplus()(x)  # [0.313, 0.693, 1.313]
    """

    _activation_name = "softplus"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def call(self, inputs):
        return keras.activations.softplus(inputs)
