"""The HardSwish activation layer."""

from __future__ import annotations

from typing import Any

import keras

from kerasinit.layers._base import ElementwiseActivation


@keras.saving.register_keras_serializable(package="kerasinit")
class HardSwish(ElementwiseActivation):
    """Hard swish: `x * relu6(x + 3) / 6`, a piecewise SiLU.

    The activation of MobileNetV3: SiLU's shape without an exponential.
    Every input below -3 maps to 0 with zero gradient, so a unit can die
    like a ReLU unit.

    Formula:

    ```
    f(x) = x * min(max(x + 3, 0), 6) / 6
    ```

    Reference:

    - [Howard et al., 2019](https://arxiv.org/abs/1905.02244)

    Args:
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> x = np.array([-4.0, 1.0, 4.0])
    >>> kerasinit.layers.HardSwish()(x)  # [0, 0.667, 4]
    """

    _activation_name = "hard_swish"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def call(self, inputs):
        return keras.activations.hard_silu(inputs)
