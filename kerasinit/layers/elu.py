"""The ELU activation layer."""

from __future__ import annotations

from typing import Any

import keras

from kerasinit.layers._base import ElementwiseActivation, check_number


@keras.saving.register_keras_serializable(package="kerasinit")
class ELU(ElementwiseActivation):
    """Exponential linear unit: `x` for `x > 0`, `alpha * (e^x - 1)` otherwise.

    Smooth on the negative side and with negative outputs, which pulls the
    mean activation towards zero and speeds up learning compared with ReLU.
    Outputs pinned near `-alpha` are saturated (derivative `y + alpha`
    close to 0).

    Formula:

    ```
    f(x) = x                    if x > 0
    f(x) = alpha * (exp(x) - 1)  otherwise
    ```

    Reference:

    - [Clevert et al., 2015](https://arxiv.org/abs/1511.07289)

    Args:
        alpha: Float > 0, the value the output approaches for large
            negative inputs is `-alpha`. Defaults to `1.0`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> x = np.array([-1.0, 0.0, 2.0])
    >>> kerasinit.layers.ELU()(x)  # [-0.632, 0, 2]
    """

    _activation_name = "elu"

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = check_number("alpha", alpha, minimum=0.0, strict=True)

    def _activation_param(self) -> float:
        return self.alpha

    def call(self, inputs):
        return keras.activations.elu(inputs, alpha=self.alpha)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"alpha": self.alpha})
        return config
