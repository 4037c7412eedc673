"""The Mish activation layer."""

from __future__ import annotations

from typing import Any

import keras

from kerasinit.layers._base import ElementwiseActivation


@keras.saving.register_keras_serializable(package="kerasinit")
class Mish(ElementwiseActivation):
    """Mish: `x * tanh(softplus(x))`.

    A smooth, non-monotonic ReLU replacement used in YOLOv4-era detectors;
    like SiLU it lets small negative values through, so units do not die.

    Formula:

    ```
    f(x) = x * tanh(log(1 + exp(x)))
    ```

    Reference:

    - [Misra, 2019](https://arxiv.org/abs/1908.08681)

    Args:
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> x = np.array([-1.0, 0.0, 1.0])
    >>> kerasinit.layers.Mish()(x)  # [-0.303, 0, 0.865]
    """

    _activation_name = "mish"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def call(self, inputs):
        return keras.activations.mish(inputs)
