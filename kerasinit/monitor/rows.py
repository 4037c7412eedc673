"""Equal-size tensors as the rows of one matrix, with their finite extremes.

Every statistic of many tensors at once starts here: tensors of one size are
stacked as the rows of one ``[k, n]`` matrix, and each statistic is one
reduction along the rows, so a compiled probe holds one set of operations
per group of alike tensors (an MLP of equal widths is one group) rather than
a copy per layer.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from keras import ops

__all__ = ["Rows", "concat", "group_by_key", "in_input_order", "size"]


def group_by_key(keys: Sequence) -> list[list[int]]:
    """Indices grouped by equal key, groups in order of first appearance."""
    groups: dict = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def size(t) -> int | None:
    """The number of elements of a tensor, or `None` when not static."""
    shape = tuple(t.shape)
    return None if None in shape else math.prod(shape)


def concat(tensors: Sequence) -> object:
    """Concatenation along the first axis, without an operation for one."""
    return (
        tensors[0]
        if len(tensors) == 1
        else ops.concatenate(list(tensors), axis=0)
    )


def in_input_order(parts: list, groups: list[list[int]]):
    """Concatenate per-group results and put their rows back in input order."""
    order = [i for members in groups for i in members]
    joined = concat(parts)
    if order == sorted(order):
        return joined
    return ops.take(joined, np.argsort(order).astype(np.int32), axis=0)


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
    def matrix(tensors: Sequence) -> object:
        """Equal-size tensors as the rows of one float32 matrix."""
        tensors = [ops.cast(t, "float32") for t in tensors]
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) == 1 and None not in next(iter(shapes)):
            # One stack and one reshape, whatever the number of rows.
            stacked = (
                ops.stack(tensors)
                if len(tensors) > 1
                else ops.expand_dims(tensors[0], 0)
            )
            return ops.reshape(stacked, [len(tensors), -1])
        return ops.stack([ops.reshape(t, [-1]) for t in tensors])

    def __init__(self, values, masked: bool = True):
        self.values = values
        self.masked = masked
        k, n = values.shape[0], values.shape[1]
        self.count = (
            float(n)
            if n is not None
            else ops.cast(ops.shape(values)[1], "float32")
        )
        if masked:
            self.finite = ops.isfinite(values)
            self.safe = ops.where(self.finite, values, 0.0)
            self.n_finite = ops.sum(
                ops.cast(self.finite, "float32"), axis=1, keepdims=True
            )
            inf = float("inf")
            self.lo = ops.min(
                ops.where(self.finite, values, inf), axis=1, keepdims=True
            )
            self.hi = ops.max(
                ops.where(self.finite, values, -inf), axis=1, keepdims=True
            )
        else:
            self.finite = None
            self.safe = values
            self.n_finite = ops.full([k, 1], self.count)
            self.lo = ops.min(values, axis=1, keepdims=True)
            self.hi = ops.max(values, axis=1, keepdims=True)

    @functools.cached_property
    def sums(self):
        """``[k, 1]`` sums of each row's finite values."""
        return ops.sum(self.safe, axis=1, keepdims=True)

    @functools.cached_property
    def squares(self):
        """``[k, n]`` squares of the finite values (0 for the others)."""
        return ops.square(self.safe)

    @property
    def all_finite(self):
        """Whether every value is finite (a scalar bool).

        Without masks it follows from the sums the mean needs anyway: a sum
        is finite only if every value is (or it overflowed, an event
        measured again with masks like any other non-finite one).
        """
        if self.masked:
            return ops.all(ops.equal(self.n_finite, self.count))
        return ops.all(ops.isfinite(self.sums))
