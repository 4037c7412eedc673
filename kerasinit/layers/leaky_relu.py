"""The leaky ReLU activation layer."""

from __future__ import annotations

from typing import Any

import keras

from kerasinit.layers._base import ElementwiseActivation, check_number


@keras.saving.register_keras_serializable(package="kerasinit")
class LeakyReLU(ElementwiseActivation):
    """Leaky rectified linear unit: `x` for `x > 0`, `a * x` otherwise.

    A ReLU whose negative side keeps a small slope, so no unit can die.
    The slope changes the gain (`sqrt(2 / (1 + a^2))`), which is why the
    layer carries it and every part of kerasinit reads it from the layer.
    The default slope, 0.3, is the one of `keras.layers.LeakyReLU`;
    PyTorch's `torch.nn.LeakyReLU` defaults to 0.01 and
    `keras.activations.leaky_relu` to 0.2, so pass the slope explicitly
    when porting a model.

    Formula:

    ```
    f(x) = x              if x > 0
    f(x) = negative_slope * x  otherwise
    ```

    Reference:

    - [Maas et al., 2013](https://ai.stanford.edu/~amaas/papers/relu_hybrid_icml2013_final.pdf)

    Args:
        negative_slope: Float >= 0, the slope for negative inputs.
            Defaults to `0.3`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> layer = kerasinit.layers.LeakyReLU(0.1)
    >>> layer(np.array([-10.0, 0.0, 5.0]))  # [-1., 0., 5.]
    >>> keras.layers.Dense(64, kernel_initializer=layer.paired_initializer())
    """

    _activation_name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.negative_slope = check_number(
            "negative_slope", negative_slope, minimum=0.0
        )

    def _activation_param(self) -> float:
        return self.negative_slope

    def call(self, inputs):
        return keras.activations.leaky_relu(
            inputs, negative_slope=self.negative_slope
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"negative_slope": self.negative_slope})
        return config
