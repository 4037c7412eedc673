"""The HardSigmoid activation layer."""

from __future__ import annotations

from typing import Any

import keras

from kerasinit.layers._base import ElementwiseActivation


@keras.saving.register_keras_serializable(package="kerasinit")
class HardSigmoid(ElementwiseActivation):
    """Hard sigmoid: `relu6(x + 3) / 6`, a piecewise-linear sigmoid.

    Cheap on mobile hardware (MobileNetV3 gates). This is the Keras 3
    definition (slope 1/6); Keras 2 used slope 0.2 and PyTorch uses 1/6.
    Outputs clipped at 0 or 1 are saturated (derivative 0).

    Formula:

    ```
    f(x) = min(max(x + 3, 0), 6) / 6
    ```

    Reference:

    - [Howard et al., 2019](https://arxiv.org/abs/1905.02244)

    Args:
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> x = np.array([-4.0, 0.0, 1.5])
    >>> kerasinit.layers.HardSigmoid()(x)  # [0, 0.5, 0.75]
    """

    _activation_name = "hard_sigmoid"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def call(self, inputs):
        return keras.activations.hard_sigmoid(inputs)
