"""The ReLU activation layer."""

from __future__ import annotations

from typing import Any

import keras

from kerasinit.layers._base import ElementwiseActivation


@keras.saving.register_keras_serializable(package="kerasinit")
class ReLU(ElementwiseActivation):
    """Rectified linear unit: `max(x, 0)`.

    The default non-linearity of deep feed-forward and convolutional
    networks. It halves the second moment of a symmetric input, so the
    kernel before it needs He initialization (gain `sqrt(2)`); a unit whose
    pre-activation is negative for every input is *dead* (outputs 0 with
    zero gradient), which the health monitor reports.

    Formula:

    ```
    f(x) = max(x, 0)
    ```

    Reference:

    - [Nair & Hinton, 2010](https://www.cs.toronto.edu/~hinton/absps/reluICML.pdf)
    - [He et al., 2015](https://arxiv.org/abs/1502.01852)

    Args:
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> layer = kerasinit.layers.ReLU()
    >>> layer(np.array([-2.0, 0.0, 3.0]))  # [0., 0., 3.]
    >>> layer.paired_initializer()  # He-family init for the kernel before it
    """

    _activation_name = "relu"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def call(self, inputs):
        return keras.activations.relu(inputs)
