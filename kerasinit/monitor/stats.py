"""Pure statistics: tensors in, small tensors out, computed on the device.

Nothing here does I/O or keeps state. Every function takes its thresholds as
arguments, so the rules that interpret the numbers (`diagnosis`) stay apart
from the code that measures them, and each function can be checked against a
NumPy reference in isolation.

Statistics over values that are not finite would themselves be NaN and hide
everything else, so means, extremes and histograms are taken over the finite
values only, and the non-finite values are counted separately.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "activation_stats",
    "gradient_stats",
    "histogram",
    "norm64",
]


def _masked_extremes(flat: tf.Tensor, finite: tf.Tensor):
    """Finite min and max without data-dependent shapes or branches."""
    inf = tf.constant(float("inf"), tf.float32)
    lo = tf.reduce_min(tf.where(finite, flat, inf))
    hi = tf.reduce_max(tf.where(finite, flat, -inf))
    return lo, hi


def histogram(
    values: tf.Tensor,
    bins: int = 30,
    extremes: tuple[tf.Tensor, tf.Tensor] | None = None,
    finite: tf.Tensor | None = None,
) -> tf.Tensor:
    """Bucket the finite values of a tensor into `bins` equal-width buckets.

    The buckets span the finite minimum to maximum, as TensorBoard's own
    histograms do, but counting happens on the device with
    `tf.histogram_fixed_width` (O(N) memory), instead of the one-hot of
    N x buckets that `tf.summary.histogram` builds. Only element-wise ops
    and reductions are used (no boolean masks or branches), which keeps the
    compiled probe small.

    Args:
        values: any real tensor.
        bins: number of buckets. Defaults to `30`.
        extremes: the finite ``(min, max)`` when already known (+/-inf when
            there is no finite value). Defaults to `None` (computed).
        finite: ``tf.math.is_finite(values)`` when already known, to save a
            pass over the values. Defaults to `None` (computed).

    Returns:
        A float32 ``[bins, 3]`` tensor of (left edge, right edge, count), the
        layout of the TensorBoard histogram plugin. A tensor with no finite
        values gives all-zero counts on ``[0, 1]``.
    """
    flat = tf.reshape(tf.cast(values, tf.float32), [-1])
    finite = (
        tf.math.is_finite(flat) if finite is None else tf.reshape(finite, [-1])
    )
    lo, hi = extremes if extremes else _masked_extremes(flat, finite)
    empty = tf.logical_not(tf.math.is_finite(lo))
    lo = tf.where(empty, 0.0, lo)
    hi = tf.where(empty, 1.0, hi)
    # A constant tensor has no width to divide; give it a unit-wide range
    # centred on the value, as TensorBoard does.
    same = tf.equal(lo, hi)
    lo = tf.where(same, lo - 0.5, lo)
    hi = tf.where(same, hi + 0.5, hi)
    # Non-finite entries are counted as zeros (values outside the range
    # land in the edge buckets), then taken out of the bucket that holds 0.
    counts = tf.cast(
        tf.histogram_fixed_width(
            tf.where(finite, flat, 0.0), tf.stack([lo, hi]), nbins=bins
        ),
        tf.float32,
    )
    n_bad = tf.cast(tf.size(flat), tf.float32) - tf.reduce_sum(
        tf.cast(finite, tf.float32)
    )
    zero_bucket = tf.clip_by_value(
        tf.floor((0.0 - lo) / (hi - lo) * bins), 0.0, bins - 1.0
    )
    counts = counts - n_bad * tf.cast(
        tf.equal(tf.range(bins, dtype=tf.float32), zero_bucket), tf.float32
    )
    # Edges from constant fractions: tf.linspace would add dozens of ops per
    # histogram to the compiled probe.
    fractions = np.linspace(0.0, 1.0, bins + 1, dtype=np.float32)
    width = hi - lo
    left = lo + width * fractions[:-1]
    right = lo + width * fractions[1:]
    return tf.stack([left, right, counts], axis=1)


def norm64(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    """Euclidean norm of several tensors taken together, without underflow.

    Squaring a gradient of 1e-25 in float32 gives 0, which would report a
    vanishing gradient as exactly zero; summing squares in float64 keeps its
    true order of magnitude down to about 1e-150.

    Args:
        tensors: the tensors, any shapes.

    Returns:
        A float32 scalar (infinite beyond the float32 range); 0 for an empty
        list.
    """
    if not tensors:
        return tf.constant(0.0, tf.float32)
    total = tf.add_n(
        [tf.reduce_sum(tf.square(tf.cast(t, tf.float64))) for t in tensors]
    )
    return tf.cast(tf.sqrt(total), tf.float32)


def activation_stats(
    y: tf.Tensor,
    *,
    dead_value: float | None = None,
    saturation_derivative: Callable[[Any], Any] | None = None,
    saturation_cutoff: float | None = None,
    bins: int | None = 30,
) -> dict[str, tf.Tensor]:
    """Statistics of one layer's output on the probe batch.

    Args:
        y: the output, examples on the first axis and units (channels) on
            the last.
        dead_value: the value an inactive unit outputs with zero gradient
            (0 for ReLU). A unit is dead when it outputs exactly this for
            every element of the probe (all examples and positions). `None`
            reports a dead fraction of 0. Defaults to `None`.
        saturation_derivative: ``y -> f'(f^{-1}(y))`` on keras.ops tensors.
            `None` reports a saturation fraction of 0. Defaults to `None`.
        saturation_cutoff: an output is saturated where the derivative is
            below this absolute value. Defaults to `None`.
        bins: histogram buckets, or `None` for no histogram.
            Defaults to `30`.

    Returns:
        float32 scalars ``act_mean``, ``act_std``, ``act_min``, ``act_max``
        (over finite values), ``zero_fraction``, ``dead_fraction``,
        ``saturation_fraction``, ``act_nonfinite`` and, with `bins`, the
        ``[bins, 3]`` tensor ``histogram``.
    """
    y = tf.cast(y, tf.float32)
    finite = tf.math.is_finite(y)
    n_finite = tf.reduce_sum(tf.cast(finite, tf.float32))
    safe = tf.where(finite, y, 0.0)
    denom = tf.maximum(n_finite, 1.0)
    mean = tf.reduce_sum(safe) / denom
    # One pass for both moments keeps the compiled probe small; the clamp
    # absorbs the rounding of E[y^2] - E[y]^2 when the spread is tiny.
    var = tf.maximum(tf.reduce_sum(tf.square(safe)) / denom - mean * mean, 0.0)
    inf = tf.constant(float("inf"), tf.float32)
    vmin = tf.reduce_min(tf.where(finite, y, inf))
    vmax = tf.reduce_max(tf.where(finite, y, -inf))
    # With no finite value at all, min/max stay at +/-inf and the host
    # reports every statistic as missing.
    is_zero = tf.equal(y, 0.0)
    out = {
        "act_mean": mean,
        "act_std": tf.sqrt(var),
        "act_min": vmin,
        "act_max": vmax,
        "zero_fraction": tf.reduce_mean(tf.cast(tf.equal(y, 0.0), tf.float32)),
        "act_nonfinite": tf.cast(tf.size(y), tf.float32) - n_finite,
    }
    if dead_value is not None and y.shape.rank is not None and y.shape.rank:
        axes = list(range(y.shape.rank - 1))
        at_dead = (
            is_zero
            if dead_value == 0.0
            else tf.equal(y, tf.constant(dead_value, tf.float32))
        )
        dead_units = tf.reduce_all(at_dead, axis=axes) if axes else at_dead
        out["dead_fraction"] = tf.reduce_mean(tf.cast(dead_units, tf.float32))
    else:
        out["dead_fraction"] = tf.constant(0.0, tf.float32)
    if saturation_derivative is not None and saturation_cutoff is not None:
        deriv = tf.cast(saturation_derivative(y), tf.float32)
        deriv = tf.broadcast_to(deriv, tf.shape(y))
        saturated = tf.logical_and(
            deriv < saturation_cutoff, tf.math.is_finite(y)
        )
        out["saturation_fraction"] = tf.reduce_mean(
            tf.cast(saturated, tf.float32)
        )
    else:
        out["saturation_fraction"] = tf.constant(0.0, tf.float32)
    if bins:
        out["histogram"] = histogram(
            y, bins, extremes=(vmin, vmax), finite=finite
        )
    return out


def gradient_stats(
    grads: Sequence[tf.Tensor | None],
    weights: Sequence[tf.Tensor],
    *,
    bins: int | None = 30,
) -> dict[str, tf.Tensor]:
    """Statistics of a layer's gradients relative to its weights.

    Args:
        grads: the gradients of the loss with respect to `weights`, `None`
            for a weight the loss does not depend on (counted as zeros).
        weights: the weight values, same order.
        bins: histogram buckets, or `None` for no histogram.
            Defaults to `30`.

    Returns:
        float32 scalars ``grad_norm``, ``weight_norm``,
        ``grad_weight_ratio`` (infinite or NaN when the weights are all
        zero), ``grad_nonfinite`` and, with `bins`, the ``[bins, 3]`` tensor
        ``histogram`` of all gradient entries.
    """
    grads = [
        tf.zeros_like(w, dtype=tf.float32) if g is None else g
        for g, w in zip(grads, weights)
    ]
    nonfinite = tf.add_n(
        [tf.constant(0.0)]
        + [
            tf.reduce_sum(
                tf.cast(tf.logical_not(tf.math.is_finite(g)), tf.float32)
            )
            for g in grads
        ]
    )
    g_norm = norm64(grads)
    w_norm = norm64(weights)
    ratio = g_norm / w_norm
    out = {
        "grad_norm": g_norm,
        "weight_norm": w_norm,
        "grad_weight_ratio": ratio,
        "grad_nonfinite": nonfinite,
    }
    if bins:
        flat = (
            tf.concat([tf.reshape(g, [-1]) for g in grads], axis=0)
            if len(grads) > 1
            else tf.reshape(grads[0], [-1])
        )
        out["histogram"] = histogram(flat, bins)
    return out


def saturation_fn(rule, param: float | None) -> Callable[[Any], Any]:
    """Bind a `kerasinit.gains.SaturationRule` to its parameter on device."""
    return lambda y: rule.derivative(y, param, keras.ops)
