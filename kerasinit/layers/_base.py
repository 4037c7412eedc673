"""The shared part of every kerasinit activation layer: what it knows."""

from __future__ import annotations

import math
import numbers
from typing import Any

import keras

from kerasinit import gains


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    strict: bool = False,
) -> float:
    """Validate a scalar constructor argument and return it as a float.

    Raises:
        TypeError: when `value` is not a real number (booleans included,
            since `True` as a slope is always a mistake).
        ValueError: when it is not finite or below `minimum`.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"Expected `{name}` to be a real number. Received: {name}={value!r}"
        )
    received = value
    value = float(value)
    bound = ""
    if minimum is not None:
        bound = f" {'>' if strict else '>='} {minimum:g}"
    if not math.isfinite(value) or (
        minimum is not None
        and (value <= minimum if strict else value < minimum)
    ):
        raise ValueError(
            f"Expected `{name}` to be a finite number{bound}. "
            f"Received: {name}={received!r}"
        )
    return value


def check_bool(name: str, value: Any) -> bool:
    """Validate a boolean constructor argument."""
    if not isinstance(value, bool):
        raise TypeError(
            f"Expected `{name}` to be a bool. Received: {name}={value!r}"
        )
    return value


class ActivationLayer(keras.layers.Layer):
    """Base of the kerasinit activation layers.

    Subclasses set `_activation_name` (a name in `kerasinit.gains`) and
    override `_activation_param` when they carry a shape parameter.
    Everything the layer says about itself is read from that table, so a
    layer never states a number of its own.
    """

    _activation_name: str = ""

    #: True for the gated (GLU-family) layers, whose activation is the
    #: gate's.
    gated: bool = False

    def _activation_param(self) -> float | None:
        return None

    @property
    def kerasinit_activation(self) -> tuple[str, float | None]:
        """``(table_name, param)``: how `kerasinit.gains` sees this layer."""
        return self._activation_name, self._activation_param()

    @property
    def activation_info(self) -> gains.ActivationInfo:
        """The table entry: family, dead value, saturation rule."""
        return gains.info(self._activation_name)

    @property
    def gain(self) -> float:
        """The gain of this layer's activation, from `kerasinit.gains`."""
        name, param = self.kerasinit_activation
        return gains.gain(name, param)

    def paired_initializer(
        self, **kwargs: Any
    ) -> keras.initializers.Initializer:
        """The initializer for the kernel feeding this activation.

        Args:
            **kwargs: forwarded to `kerasinit.initializers.ForActivation`
                (`distribution`, `fans`, `seed`).

        Returns:
            A `kerasinit.initializers.ForActivation` for this layer's
            activation and parameter.
        """
        # Imported here: the initializers import nothing from layers, and
        # keeping it that way avoids an import cycle.
        from kerasinit.initializers import ForActivation

        name, param = self.kerasinit_activation
        return ForActivation(name, param, **kwargs)

    def get_config(self) -> dict[str, Any]:
        # Explicit, so that subclasses without arguments serialize exactly
        # the parent's config rather than Keras's recorded constructor call.
        return super().get_config()


class ElementwiseActivation(ActivationLayer):
    """An activation applied element by element: shape in = shape out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_output_shape(self, input_shape):
        return input_shape
