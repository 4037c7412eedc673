"""The Sigmoid activation layer."""

from __future__ import annotations

from typing import Any

import keras

from kerasinit.layers._base import ElementwiseActivation


@keras.saving.register_keras_serializable(package="kerasinit")
class Sigmoid(ElementwiseActivation):
    """Logistic sigmoid: `1 / (1 + e^-x)`.

    For gates and bounded outputs. Its derivative peaks at 1/4 at `x = 0`,
    so Glorot-scaled kernels shrink gradients layer after layer; Kumar
    (2017) derives the variance that keeps sigmoid activations in their
    linear range, which is its paired initializer. Outputs pinned near 0 or
    1 are saturated (derivative `y (1 - y)`).

    Formula:

    ```
    f(x) = 1 / (1 + exp(-x))
    ```

    Reference:

    - [Kumar, 2017](https://arxiv.org/abs/1704.08863)

    Args:
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> x = np.array([-1.0, 0.0, 1.0])
    >>> kerasinit.layers.Sigmoid()(x)  # [0.269, 0.5, 0.731]
    """

    _activation_name = "sigmoid"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def call(self, inputs):
        return keras.activations.sigmoid(inputs)
