"""The ReLU6 activation layer."""

from __future__ import annotations

from typing import Any

import keras

from kerasinit.layers._base import ElementwiseActivation


@keras.saving.register_keras_serializable(package="kerasinit")
class ReLU6(ElementwiseActivation):
    """ReLU capped at 6: `min(max(x, 0), 6)`.

    Used by mobile architectures (MobileNet) where a bounded range keeps
    low-precision arithmetic exact. It can die like ReLU (output 0) and
    saturates where the output is clipped at 6; the monitor counts both.

    Formula:

    ```
    f(x) = min(max(x, 0), 6)
    ```

    Reference:

    - [Krizhevsky, 2010](https://www.cs.toronto.edu/~kriz/conv-cifar10-aug2010.pdf)
    - [Howard et al., 2017](https://arxiv.org/abs/1704.04861)

    Args:
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> x = np.array([-1.0, 3.0, 9.0])
    >>> kerasinit.layers.ReLU6()(x)  # [0., 3., 6.]
    """

    _activation_name = "relu6"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def call(self, inputs):
        return keras.activations.relu6(inputs)
