"""Equal-size tensors as the rows of one matrix, with their finite extremes.

Every statistic of many tensors at once starts here: tensors of one size are
stacked as the rows of one ``[k, n]`` matrix, and each statistic is one
reduction along the rows, so a compiled probe holds one set of operations
per group of alike tensors (an MLP of equal widths is one group) rather than
a copy per layer.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

__all__ = ["Rows", "group_by_key", "in_input_order"]


def group_by_key(keys: Sequence) -> list[list[int]]:
    """Indices grouped by equal key, groups in order of first appearance."""
    groups: dict = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def concat(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    """`tf.concat` along the first axis, without an operation for one."""
    return tensors[0] if len(tensors) == 1 else tf.concat(list(tensors), axis=0)


def in_input_order(parts: list[tf.Tensor], groups: list[list[int]]):
    """Concatenate per-group results and put their rows back in input order."""
    order = [i for members in groups for i in members]
    joined = concat(parts)
    if order == sorted(order):
        return joined
    return tf.gather(joined, np.argsort(order).astype(np.int32))


class Rows:
    """A ``[k, n]`` float32 matrix, one row per tensor, and its extremes.

    With ``masked=False`` every value is taken to be finite, and the masks
    that keep non-finite values out of the statistics are skipped: on large
    activations each element-wise pass costs more than all the reductions
    together, and non-finite values are the rare case. Whether the
    assumption held is `all_finite`; the statistics are exact only then.

    Args:
        values: the ``[k, n]`` matrix.
        masked: whether to keep non-finite values out of every statistic.
            Defaults to `True`.

    Attributes:
        safe: the values, non-finite ones replaced by 0 when masked.
        n_finite: ``[k, 1]`` the number of finite values per row.
        lo: ``[k, 1]`` finite minima (+inf for a row without any).
        hi: ``[k, 1]`` finite maxima (-inf for a row without any).
    """

    @staticmethod
    def matrix(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
        """Equal-size tensors as the rows of one float32 matrix."""
        tensors = [tf.cast(t, tf.float32) for t in tensors]
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) == 1 and None not in next(iter(shapes)):
            # One stack and one reshape, whatever the number of rows.
            stacked = (
                tf.stack(tensors)
                if len(tensors) > 1
                else tf.expand_dims(tensors[0], 0)
            )
            return tf.reshape(stacked, [len(tensors), -1])
        return tf.stack([tf.reshape(t, [-1]) for t in tensors])

    def __init__(self, values: tf.Tensor, masked: bool = True):
        self.values = values
        self.masked = masked
        k, n = values.shape[0], values.shape[1]
        self.count = (
            float(n)
            if n is not None
            else tf.cast(tf.shape(values)[1], tf.float32)
        )
        if masked:
            self.finite = tf.math.is_finite(values)
            self.safe = tf.where(self.finite, values, 0.0)
            self.n_finite = tf.reduce_sum(
                tf.cast(self.finite, tf.float32), axis=1, keepdims=True
            )
            inf = float("inf")
            self.lo = tf.reduce_min(
                tf.where(self.finite, values, inf), axis=1, keepdims=True
            )
            self.hi = tf.reduce_max(
                tf.where(self.finite, values, -inf), axis=1, keepdims=True
            )
        else:
            self.finite = None
            self.safe = values
            self.n_finite = tf.fill([k, 1], self.count)
            self.lo = tf.reduce_min(values, axis=1, keepdims=True)
            self.hi = tf.reduce_max(values, axis=1, keepdims=True)

    @functools.cached_property
    def sums(self) -> tf.Tensor:
        """``[k, 1]`` sums of each row's finite values."""
        return tf.reduce_sum(self.safe, axis=1, keepdims=True)

    @functools.cached_property
    def squares(self) -> tf.Tensor:
        """``[k, n]`` squares of the finite values (0 for the others)."""
        return tf.square(self.safe)

    @property
    def all_finite(self) -> tf.Tensor:
        """Whether every value is finite (a scalar bool).

        Without masks it follows from the sums the mean needs anyway: a sum
        is finite only if every value is (or it overflowed, an event
        measured again with masks like any other non-finite one).
        """
        if self.masked:
            return tf.reduce_all(tf.equal(self.n_finite, self.count))
        return tf.reduce_all(tf.math.is_finite(self.sums))
