"""The GELU activation layer."""

from __future__ import annotations

from typing import Any

import keras

from kerasinit.layers._base import ElementwiseActivation, check_bool


@keras.saving.register_keras_serializable(package="kerasinit")
class GELU(ElementwiseActivation):
    """Gaussian error linear unit: `x * Phi(x)`.

    The activation of BERT, GPT and ViT feed-forward blocks. The exact form
    uses the normal CDF `Phi`; `approximate=True` uses the tanh formula of
    the original paper (the one GPT-2 ships), which the table treats as its
    own activation (`"gelu_tanh"`) with its own gain.

    Formula:

    ```
    exact:       f(x) = x * 0.5 * (1 + erf(x / sqrt(2)))
    approximate: f(x) = 0.5 * x * (1 + tanh(sqrt(2 / pi)
                                            * (x + 0.044715 * x^3)))
    ```

    Reference:

    - [Hendrycks & Gimpel, 2016](https://arxiv.org/abs/1606.08415)

    Args:
        approximate: Whether to use the tanh approximation.
            Defaults to `False`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> x = np.array([-1.0, 0.0, 1.0])
    >>> kerasinit.layers.GELU()(x)  # [-0.159, 0, 0.841]
    """

    def __init__(self, approximate: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.approximate = check_bool("approximate", approximate)

    @property
    def _activation_name(self) -> str:
        return "gelu_tanh" if self.approximate else "gelu"

    def call(self, inputs):
        return keras.activations.gelu(inputs, approximate=self.approximate)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"approximate": self.approximate})
        return config
