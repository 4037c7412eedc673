"""Histogram counts of many rows at once, bucketed on the device.

Each row is bucketed into `bins` equal-width buckets over its own range, and
one bincount (the backend's own) counts every row at once: O(N) memory,
instead of the one-hot of N x buckets that `tf.summary.histogram` builds.
The bucket edges follow from the range, which is transferred anyway, and are
laid out on the host by `histogram_table` in the TensorBoard histogram format.

A bucket position is a valid bucket whatever the values. A NaN position
(from a non-finite value, or from ``0 * inf``) goes to the row's first bucket
instead of being cast to a negative index, which `bincount` rejects with an
error. Such positions arise in two ways: without masks, from non-finite
values (the statistics of that event are then measured again with masks);
and from a row whose range is narrower than ``bins / 3.4e38``, where
``bins / width`` overflows to infinity and the row's minimum sits at
``0 * inf``. Deep stacks with tiny weights produce such rows; their minimum
is then counted in the first bucket and every other value in the last.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from kerasinit.monitor import backends

__all__ = ["bucket_counts", "histogram_table", "zero_buckets"]


def _positions(values, lo, hi, bins: int, offsets):
    """Float bucket positions, each in ``[row * bins, (row + 1) * bins)``."""
    width = hi - lo
    # False for a constant row (width 0) and for NaN widths.
    has_width = width > 0.0
    scale = ops.where(has_width, bins / width, 0.0)
    at = (values - lo) * scale
    # `x > 0` is false for NaN, so NaN goes to 0 with the negative positions;
    # the upper bound keeps each row's maximum (and +inf) in its last bucket.
    # (Plain element-wise ops: a clip costs more than one of them on the
    # CPU, and propagates NaN.)
    at = ops.minimum(ops.where(at > 0.0, at, 0.0), bins - 0.5)
    # A constant row has no width: its values go to the middle bucket, as in
    # the unit-wide range centred on the value that `histogram_table` gives
    # it.
    offsets = ops.convert_to_tensor(offsets, "float32")
    return at + offsets + ops.where(has_width, 0.0, float(bins // 2))


def _buckets64(values, lo, hi, bins: int):
    """int32 buckets within each row, positions computed in float64.

    The arithmetic of `tf.histogram_fixed_width` (the offset from the
    minimum in float32, divided in float64 by the bucket width), NaN-safe:
    for small tensors such as gradients, where the extra precision is cheap
    (in float32 where the backend computes no float64, JAX by default).
    """
    wide = backends.current().WIDE_FLOAT
    width = hi - lo
    has_width = width > 0.0
    step = ops.cast(ops.where(has_width, width, 1.0), wide) / bins
    at = ops.cast(ops.maximum(values, lo) - lo, wide) / step
    at = ops.minimum(ops.where(at > 0.0, at, 0.0), bins - 1.0)
    middle = ops.where(has_width, 0, bins // 2)
    return ops.where(has_width, ops.cast(at, "int32"), 0) + middle


def bucket_counts(
    values,
    lo,
    hi,
    bins: int,
    zero_adjustment=None,
    float64: bool = False,
):
    """``[k, bins]`` float32 counts of each row's values over its range.

    Args:
        values: ``[k, n]`` float32 values.
        lo: ``[k, 1]`` the lower end of each row's range.
        hi: ``[k, 1]`` the upper end of each row's range.
        bins: the number of buckets.
        zero_adjustment: ``[k]`` counts to add to the bucket where 0 falls
            in each row (negative to take out values that were replaced by
            0, such as masked non-finite ones), or `None`.
            Defaults to `None`.

    Returns:
        The counts. A row without width (constant, or without finite
        extremes) is counted in its middle bucket.
    """
    k = values.shape[0]
    offsets = np.arange(k, dtype=np.float32)[:, None] * bins
    if float64:
        buckets = _buckets64(values, lo, hi, bins) + ops.convert_to_tensor(
            offsets.astype(np.int32)
        )
    else:
        # Positions are at least 0, so the cast is the floor: the bucket.
        buckets = ops.cast(_positions(values, lo, hi, bins, offsets), "int32")
    counts = backends.current().count_buckets(
        ops.reshape(buckets, [-1]), k * bins
    )
    counts = ops.reshape(counts, [k, bins])
    if zero_adjustment is not None:
        landed = zero_buckets(lo, hi, bins)
        counts = counts + zero_adjustment[:, None] * ops.one_hot(landed, bins)
    return counts


def zero_buckets(lo, hi, bins: int):
    """``[k]`` int32: the bucket where 0 falls in each row's range.

    The same position as `bucket_counts` gives a 0 in the row (clamped to
    the first or last bucket when 0 is outside the range).
    """
    zero = ops.zeros_like(lo)
    at = _positions(zero, lo, hi, bins, np.float32(0.0))
    return ops.cast(at[:, 0], "int32")


def histogram_table(lo, hi, counts) -> np.ndarray:
    """(left edge, right edge, count) rows: the TensorBoard histogram layout.

    Args:
        lo: ``[k]`` finite minima (+inf where a row has no finite value).
        hi: ``[k]`` finite maxima (-inf where a row has no finite value).
        counts: ``[k, bins]`` counts from the device.

    Returns:
        ``[k, bins, 3]``. A row without finite values spans ``[0, 1]``; a
        constant row spans the unit-wide range centred on its value, as
        TensorBoard's own histograms do.
    """
    lo, hi = np.asarray(lo), np.asarray(hi)
    counts = np.asarray(counts)
    empty = np.isinf(lo) | np.isnan(lo)
    lo = np.where(empty, 0.0, lo)
    hi = np.where(empty, 1.0, hi)
    same = lo == hi
    lo = np.where(same, lo - 0.5, lo)
    hi = np.where(same, hi + 0.5, hi)
    width = hi - lo
    bins = counts.shape[1]
    fractions = np.linspace(0.0, 1.0, bins + 1, dtype=np.float32)
    left = lo[:, None] + width[:, None] * fractions[None, :-1]
    right = lo[:, None] + width[:, None] * fractions[None, 1:]
    return np.stack([left, right, counts], axis=2)
