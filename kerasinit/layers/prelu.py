"""The PReLU activation layer (learned, per-channel leaky slope)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from kerasinit.layers._base import ElementwiseActivation


def _check_shared_axes(shared_axes: Any) -> list[int] | None:
    if shared_axes is None:
        return None
    axes = (
        list(shared_axes)
        if isinstance(shared_axes, (list, tuple))
        else [shared_axes]
    )
    for axis in axes:
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(
                "Expected `shared_axes` to be an int or a list of ints "
                "(non-batch axes, counted from 1). "
                f"Received: shared_axes={shared_axes!r}"
            )
        if axis == 0:
            raise ValueError(
                "Expected `shared_axes` to name non-batch axes; axis 0 is "
                "the batch axis, whose examples never share a slope. "
                f"Received: shared_axes={shared_axes!r}"
            )
    if len(set(axes)) != len(axes):
        raise ValueError(
            "Expected `shared_axes` without repeated axes. "
            f"Received: shared_axes={shared_axes!r}"
        )
    return [int(axis) for axis in axes]


@keras.saving.register_keras_serializable(package="kerasinit")
class PReLU(ElementwiseActivation):
    """Parametric ReLU: a leaky ReLU whose negative slope is learned.

    Each channel (the last axis) learns its own slope, starting from 0.25
    as in He et al.; this differs from `keras.layers.PReLU`, which by
    default learns one slope per *element* starting from 0. Because the
    slope is learned, the gain changes during training: the layer reports
    the mean of its current slopes to `kerasinit.gains`.

    Formula:

    ```
    f(x) = x          if x > 0
    f(x) = alpha * x  otherwise, alpha learned per channel
    ```

    Reference:

    - [He et al., 2015](https://arxiv.org/abs/1502.01852)

    Args:
        alpha_initializer: Initializer of the slopes.
            Defaults to `keras.initializers.Constant(0.25)`.
        alpha_regularizer: Regularizer of the slopes. Defaults to `None`.
        alpha_constraint: Constraint on the slopes. Defaults to `None`.
        shared_axes: Non-batch axes (counted from 1, negative from the end)
            along which one slope is shared. `None` shares every axis but
            the last, giving one slope per channel; an explicit list shares
            exactly those axes and learns a slope per element of the others
            (the `keras.layers.PReLU` convention). Defaults to `None`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> layer = kerasinit.layers.PReLU()
    >>> layer(np.ones((2, 8, 8, 16))).shape  # alpha has shape (1, 1, 16)
    >>> kerasinit.layers.PReLU(shared_axes=[1, 2, 3])  # one slope in all
    """

    _activation_name = "prelu"

    def __init__(
        self,
        alpha_initializer: Any = None,
        alpha_regularizer: Any = None,
        alpha_constraint: Any = None,
        shared_axes: int | list[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if alpha_initializer is None:
            alpha_initializer = keras.initializers.Constant(0.25)
        self.alpha_initializer = keras.initializers.get(alpha_initializer)
        self.alpha_regularizer = keras.regularizers.get(alpha_regularizer)
        self.alpha_constraint = keras.constraints.get(alpha_constraint)
        self.shared_axes = _check_shared_axes(shared_axes)
        self.alpha = None

    def _param_shape(self, input_shape) -> list[int]:
        ndim = len(input_shape)
        if ndim < 2:
            raise ValueError(
                "PReLU needs inputs with a batch axis and at least one "
                f"feature axis. Received: input_shape={input_shape}"
            )
        if self.shared_axes is None:
            shape = [1] * (ndim - 1)
            shape[-1] = input_shape[-1]
        else:
            shape = list(input_shape[1:])
            for axis in self.shared_axes:
                positive = axis + ndim if axis < 0 else axis
                if not 1 <= positive < ndim:
                    raise ValueError(
                        f"`shared_axes` must name axes of the input, from 1 "
                        f"to {ndim - 1} (or -{ndim - 1} to -1). "
                        f"Received: shared_axes={self.shared_axes}"
                    )
                shape[positive - 1] = 1
        for i, dim in enumerate(shape):
            if dim is None:
                raise ValueError(
                    f"PReLU learns a slope per element of axis {i + 1}, "
                    "whose size is unknown; add it to `shared_axes`. "
                    f"Received: input_shape={input_shape}"
                )
        return shape

    def build(self, input_shape) -> None:
        self.alpha = self.add_weight(
            shape=self._param_shape(input_shape),
            name="alpha",
            initializer=self.alpha_initializer,
            regularizer=self.alpha_regularizer,
            constraint=self.alpha_constraint,
        )

    def _activation_param(self) -> float | None:
        if self.alpha is not None:
            alpha = keras.ops.convert_to_numpy(self.alpha.value)
            return float(np.mean(alpha))
        init = self.alpha_initializer
        if isinstance(init, keras.initializers.Constant):
            return float(init.value)
        if isinstance(init, keras.initializers.Zeros):
            return 0.0
        if isinstance(init, keras.initializers.Ones):
            return 1.0
        # An unbuilt layer with a random initializer has no slope yet; the
        # table's default stands in for it.
        return None

    def call(self, inputs):
        alpha = keras.ops.cast(self.alpha, inputs.dtype)
        return keras.ops.where(inputs > 0, inputs, alpha * inputs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "alpha_initializer": keras.initializers.serialize(
                    self.alpha_initializer
                ),
                "alpha_regularizer": keras.regularizers.serialize(
                    self.alpha_regularizer
                ),
                "alpha_constraint": keras.constraints.serialize(
                    self.alpha_constraint
                ),
                "shared_axes": self.shared_axes,
            }
        )
        return config
