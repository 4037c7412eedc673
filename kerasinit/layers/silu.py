"""The SiLU (swish) activation layer, with an optionally trainable beta."""

from __future__ import annotations

from typing import Any

import keras

from kerasinit.layers._base import (
    ElementwiseActivation,
    check_bool,
    check_number,
)


@keras.saving.register_keras_serializable(package="kerasinit")
class SiLU(ElementwiseActivation):
    """Sigmoid linear unit (swish): `x * sigmoid(beta * x)`.

    The activation of EfficientNet and of the SwiGLU feed-forward blocks
    of modern language models. With `beta = 1` it is SiLU; Ramachandran
    et al. also learn `beta` (`trainable_beta=True`), which moves the
    activation between linear (`beta -> 0`) and ReLU (`beta -> inf`). The
    gain depends on `beta`; a trainable layer reports its current value.

    Formula:

    ```
    f(x) = x * sigmoid(beta * x) = x / (1 + exp(-beta * x))
    ```

    Reference:

    - [Elfwing et al., 2017](https://arxiv.org/abs/1702.03118)
    - [Ramachandran et al., 2017](https://arxiv.org/abs/1710.05941)

    Args:
        beta: Float, the sharpness of the gate (its initial value when
            trainable). Defaults to `1.0`.
        trainable_beta: Whether `beta` is a trainable scalar weight.
            Defaults to `False`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> x = np.array([-1.0, 0.0, 1.0])
    >>> kerasinit.layers.SiLU()(x)  # [-0.269, 0, 0.731]
    >>> learned = kerasinit.layers.SiLU(trainable_beta=True)
    """

    _activation_name = "silu"

    def __init__(
        self, beta: float = 1.0, trainable_beta: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.beta = check_number("beta", beta)
        self.trainable_beta = check_bool("trainable_beta", trainable_beta)
        self.beta_weight = None

    def build(self, input_shape) -> None:
        if self.trainable_beta:
            self.beta_weight = self.add_weight(
                shape=(),
                name="beta",
                initializer=keras.initializers.Constant(self.beta),
                trainable=True,
            )

    def _current_beta(self) -> float:
        if self.beta_weight is None:
            return self.beta
        return float(keras.ops.convert_to_numpy(self.beta_weight.value))

    def _activation_param(self) -> float:
        return self._current_beta()

    def call(self, inputs):
        if self.beta_weight is not None:
            beta = keras.ops.cast(self.beta_weight, inputs.dtype)
            return inputs * keras.ops.sigmoid(beta * inputs)
        if self.beta == 1.0:
            return keras.activations.silu(inputs)
        return inputs * keras.ops.sigmoid(self.beta * inputs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {"beta": self.beta, "trainable_beta": self.trainable_beta}
        )
        return config


@keras.saving.register_keras_serializable(package="kerasinit")
class Swish(SiLU):
    """Swish: the same activation as `SiLU`, under its other name.

    A subclass rather than an alias, so that a saved model records the name
    its author used and loads back as that class. See `SiLU` for the
    formula, arguments and references.

    Example:

    >>> layer = kerasinit.layers.Swish(beta=1.5)
    >>> isinstance(layer, kerasinit.layers.SiLU)  # True
    """
