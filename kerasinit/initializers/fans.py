"""Fan-in and fan-out: from a kernel shape, and the true ones of a layer.

A variance-preserving initializer needs the number of inputs each output
sums over (fan-in) and the number of outputs each input feeds (fan-out).
`compute_fans` reads them off a kernel shape with Keras's convention, which
is right for `Dense` and standard convolutions. Other kernel layouts lie to
that convention: a depthwise kernel ``(k..., in, mult)`` does not sum over its
input channels, a transposed-convolution kernel stores ``(k..., out, in)``,
and an `EinsumDense` kernel can have any number of axes. `fans_for_layer`
returns the true fans of a built layer's kernel, which every fan-based
kerasinit initializer accepts through its ``fans=(fan_in, fan_out)``
argument.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["compute_fans", "fans_for_layer", "kernel_fans"]


def compute_fans(shape: Sequence[int]) -> tuple[int, int]:
    """Fans of a kernel shape, by Keras's convention.

    The last axis holds the outputs, the one before it the inputs, and any
    leading axes are a receptive field that multiplies both.

    Formula:
        ``rf = prod(shape[:-2])``, ``fan_in = shape[-2] * rf``,
        ``fan_out = shape[-1] * rf``; a rank-1 shape ``(n,)`` gives
        ``(n, n)`` and a scalar ``(1, 1)``.

    Args:
        shape: the kernel shape, a sequence of integers.

    Returns:
        ``(fan_in, fan_out)``, Python integers.

    Example:

    >>> compute_fans((3, 3, 64, 128))
    (576, 1152)
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _shape(variable) -> tuple[int, ...]:
    return tuple(int(d) for d in variable.shape)


def _per_position(count: int, window: Sequence[int], strides: Sequence[int]):
    # A stride-s window of k taps visits a given position k/s times on
    # average along each axis; the variance rule needs that average.
    taps = count * math.prod(k / s for k, s in zip(window, strides))
    return max(1, round(taps))


def _strides(layer, rank: int) -> tuple[int, ...]:
    strides = getattr(layer, "strides", None) or 1
    if isinstance(strides, int):
        return (strides,) * rank
    strides = tuple(int(s) for s in strides)
    if len(strides) == 1 and rank > 1:
        return strides * rank
    return strides


def _depthwise_fans(layer, shape: tuple[int, ...]) -> tuple[int, int]:
    # Each output channel sums over one input channel's window only; each
    # input value feeds `multiplier` channels at each of the k/s windows
    # (on average, per axis) that cover it.
    window = shape[:-2]
    strides = _strides(layer, len(window))
    return math.prod(window), _per_position(shape[-1], window, strides)


def _transpose_fans(layer, shape: tuple[int, ...]) -> tuple[int, int]:
    # The kernel stores (k..., out, in). Each input value is spread over a
    # full k-window of outputs (fan_out = prod(k) * out), but an output
    # position receives only the k/s taps per axis that land on it, so
    # fan_in = in * prod(k / s): the stride thins the sum, which a fan read
    # off the shape misses by a factor prod(s).
    window = shape[:-2]
    strides = _strides(layer, len(window))
    fan_in = _per_position(shape[-1], window, strides)
    return fan_in, math.prod(window) * shape[-2]


def _conv_fans(layer, shape: tuple[int, ...]) -> tuple[int, int]:
    # The kernel stores (k..., in / groups, out): fan-in is right as stored
    # (dilation spreads the taps but does not change their number). Each
    # input feeds only the `out / groups` filters of its group, at the k/s
    # windows per axis that cover it.
    window = shape[:-2]
    groups = int(getattr(layer, "groups", 1) or 1)
    strides = _strides(layer, len(window))
    fan_in = math.prod(window) * shape[-2]
    return fan_in, _per_position(shape[-1] // groups, window, strides)


def _parse_einsum(equation: str) -> tuple[str, str, str]:
    if not isinstance(equation, str) or "->" not in equation:
        raise ValueError(
            "Expected an einsum equation of the form 'ab,bc->ac'. "
            f"Received: equation={equation!r}"
        )
    inputs, output = equation.replace(" ", "").split("->")
    operands = inputs.split(",")
    if len(operands) != 2:
        raise ValueError(
            "Expected an einsum equation with two operands (input, kernel). "
            f"Received: equation={equation!r}"
        )
    lhs, kernel = operands
    if "..." in kernel:
        raise ValueError(
            "Cannot read fans from an einsum kernel with an ellipsis. "
            f"Received: equation={equation!r}"
        )
    return lhs.replace("...", ""), kernel, output.replace("...", "")


def einsum_fans(equation: str, kernel_shape: Sequence[int]) -> tuple[int, int]:
    """True fans of an `EinsumDense` kernel.

    Kernel axes summed over (in the input, not in the output) make the
    fan-in; kernel axes that appear in the output but not in the input make
    the fan-out. Axes shared by input, kernel and output are per-slice
    (batch-like) axes and count in neither. A kernel axis found in neither
    the input nor the output is summed over too, so it counts in fan-in.

    Args:
        equation: the layer's einsum equation, e.g. ``"btd,dnh->btnh"``.
        kernel_shape: the kernel shape.

    Returns:
        ``(fan_in, fan_out)``.
    """
    lhs, kernel, output = _parse_einsum(equation)
    kernel_shape = tuple(int(d) for d in kernel_shape)
    if len(kernel) != len(kernel_shape):
        raise ValueError(
            f"The kernel term {kernel!r} of the equation has {len(kernel)} "
            f"axes but the kernel has shape {kernel_shape}. "
            f"Received: equation={equation!r}"
        )
    fan_in = fan_out = 1
    for letter, size in zip(kernel, kernel_shape):
        in_input, in_output = letter in lhs, letter in output
        if in_output and not in_input:
            fan_out *= size
        elif not in_output:
            fan_in *= size
    return fan_in, fan_out


def kernel_fans(layer: Any) -> dict[str, tuple[int, int]]:
    """True fans of every kernel of a built layer, by attribute name.

    Args:
        layer: a built Keras layer: `Dense`, `Conv1D`/`2D`/`3D`,
            `DepthwiseConv1D`/`2D`, `SeparableConv1D`/`2D`,
            `Conv1DTranspose`/`2D`/`3D`, `EinsumDense`, or any layer with a
            ``kernel`` attribute (read with `compute_fans`).

    Returns:
        ``{"kernel": (fan_in, fan_out)}``, or for separable convolutions
        ``{"depthwise_kernel": ..., "pointwise_kernel": ...}``.

    Raises:
        ValueError: if the layer is not built or has no kernel.
    """
    import keras

    layers = keras.layers
    if not getattr(layer, "built", False):
        raise ValueError(
            "Expected a built layer: its kernel shape is only known once it "
            "is built (call it on data or `layer.build(input_shape)`). "
            f"Received: layer={layer!r}"
        )
    separable = (layers.SeparableConv1D, layers.SeparableConv2D)
    if isinstance(layer, separable):
        return {
            "depthwise_kernel": _depthwise_fans(
                layer, _shape(layer.depthwise_kernel)
            ),
            # The pointwise kernel (1..., in * mult, out) is a standard one.
            "pointwise_kernel": compute_fans(_shape(layer.pointwise_kernel)),
        }
    kernel = getattr(layer, "kernel", None)
    if kernel is None:
        raise ValueError(
            "Expected a layer with a kernel (Dense, a convolution, "
            f"EinsumDense...). Received: layer={layer!r}"
        )
    shape = _shape(kernel)
    depthwise = (layers.DepthwiseConv1D, layers.DepthwiseConv2D)
    transpose = (
        layers.Conv1DTranspose,
        layers.Conv2DTranspose,
        layers.Conv3DTranspose,
    )
    conv = (layers.Conv1D, layers.Conv2D, layers.Conv3D)
    if isinstance(layer, depthwise):
        fans = _depthwise_fans(layer, shape)
    elif isinstance(layer, transpose):
        fans = _transpose_fans(layer, shape)
    elif isinstance(layer, conv):
        fans = _conv_fans(layer, shape)
    elif isinstance(layer, layers.EinsumDense):
        fans = einsum_fans(layer.equation, shape)
    else:
        fans = compute_fans(shape)
    return {"kernel": fans}


def fans_for_layer(layer: Any, kernel: str | None = None) -> tuple[int, int]:
    """True ``(fan_in, fan_out)`` of a built layer's kernel.

    Use it to give a kerasinit initializer the fans a kernel's shape hides:

    * `Dense`: as `compute_fans`.
    * `Conv1D`/`2D`/`3D` (any dilation), kernel ``(k..., in / groups,
      out)``: ``fan_in = prod(k) * in / groups``; each input feeds its
      group's filters at ``k / s`` windows per axis on average, so
      ``fan_out = out / groups * prod(k / s)`` for strides ``s``.
    * `DepthwiseConv1D`/`2D`, kernel ``(k..., in, mult)``:
      ``fan_in = prod(k)``, ``fan_out = mult * prod(k / s)``.
    * `SeparableConv1D`/`2D`: the depthwise kernel as above, the pointwise
      kernel as a standard one (pass ``kernel=`` to choose).
    * `Conv1DTranspose`/`2D`/`3D`, kernel ``(k..., out, in)``: the stored
      axes are swapped, and an output position receives only ``k / s`` taps
      per axis, so ``fan_in = in * prod(k / s)`` (the fan per output
      position), ``fan_out = prod(k) * out``.

    Fans that are averages over positions are rounded to the nearest
    integer (at least 1).
    * `EinsumDense`: from the equation (see `einsum_fans`).

    Args:
        layer: a built Keras layer.
        kernel: which kernel, by attribute name, for layers with several
            (``"depthwise_kernel"`` or ``"pointwise_kernel"``). Defaults to
            `None`, the layer's only kernel.

    Returns:
        ``(fan_in, fan_out)``, Python integers.

    Example:

    >>> layer = keras.layers.DepthwiseConv2D(3, depth_multiplier=2)
    >>> layer.build((None, 32, 32, 16))
    >>> fans_for_layer(layer)
    (9, 18)
    >>> kerasinit.initializers.He(fans=fans_for_layer(layer))
    """
    all_fans = kernel_fans(layer)
    if kernel is None:
        if len(all_fans) > 1:
            raise ValueError(
                f"Layer {layer.name!r} has several kernels; pass `kernel=` as "
                f"one of {', '.join(map(repr, all_fans))}. "
                f"Received: kernel={kernel!r}"
            )
        return next(iter(all_fans.values()))
    if kernel not in all_fans:
        raise ValueError(
            f"Layer {layer.name!r} has no kernel named {kernel!r}; expected "
            f"one of {', '.join(map(repr, all_fans))}. "
            f"Received: kernel={kernel!r}"
        )
    return all_fans[kernel]
