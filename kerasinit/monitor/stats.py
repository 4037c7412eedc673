"""Pure statistics: tensors in, small tensors out, computed on the device.

Nothing here does I/O or keeps state. Every function takes its thresholds as
arguments, so the rules that interpret the numbers (`diagnosis`) stay apart
from the code that measures them, and each function can be checked against a
NumPy reference in isolation.

The functions measure *many* tensors at once. Layer outputs of one size
that are measured by the same rules are stacked as the rows of one matrix,
and each statistic is one reduction along the rows, so the compiled probe
holds one set of operations per group of alike layers (an MLP of equal
widths is one group) rather than a copy of every statistic per layer.
Gradient and weight tensors of one shape (the kernels of equal-width layers)
are stacked the same way, and the rows' results are summed, or their
extremes taken, by layer. Histogram counts are computed on the device; the
bucket edges follow from the extremes, which are transferred anyway, and are
laid out on the host by `histogram_table`.

Statistics over values that are not finite would themselves be NaN and hide
everything else, so means, extremes and histograms are taken over the finite
values only, and the non-finite values are counted separately.
"""

from __future__ import annotations

import functools
import types
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from kerasinit_tensorboard import schema

__all__ = [
    "ACTIVATION_SCALARS",
    "GRADIENT_SCALARS",
    "activation_stats",
    "activation_stats_many",
    "gradient_stats",
    "gradient_stats_many",
    "histogram",
    "histogram_table",
    "saturation_fn",
]

# The scalar statistics, in the order of the columns the `*_many` functions
# return: the schema's metrics, so the probe's layout and the tags agree.
ACTIVATION_SCALARS = schema.ACTIVATION_METRICS
GRADIENT_SCALARS = schema.GRADIENT_METRICS

# The array namespaces `histogram_table` runs with.
_NP = types.SimpleNamespace(
    where=np.where, stack=np.stack, isinf=np.isinf, asarray=np.asarray
)
_TF = types.SimpleNamespace(
    where=tf.where,
    stack=tf.stack,
    isinf=tf.math.is_inf,
    asarray=tf.convert_to_tensor,
)
# The array namespace the saturation rules of `kerasinit.gains` run with on
# the device: plain TensorFlow ops, the fewest graph nodes per rule.
_TF_XP = types.SimpleNamespace(where=tf.where, exp=tf.exp, abs=tf.abs)


def _flat_f32(t) -> tf.Tensor:
    return tf.reshape(tf.cast(t, tf.float32), _flat_shape())


# Constants that every statistic shares, one per graph (and one for eager
# execution): a constant written inline is a new one each time, which adds
# operations to a traced graph and takes a slow path eagerly.
_SHARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _shared_constant(value, dtype) -> tf.Tensor:
    graph = tf.compat.v1.get_default_graph()
    per_graph = _SHARED.setdefault(graph, {})
    key = (tuple(value), dtype)
    if key not in per_graph:
        per_graph[key] = tf.constant(value, dtype)
    return per_graph[key]


def _flat_shape() -> tf.Tensor:
    """``[-1]``, the shape of every flattening."""
    return _shared_constant([-1], tf.int32)


def _no_weights() -> tf.Tensor:
    """An empty float32 vector: a bincount's weights of one per entry."""
    return _shared_constant([], tf.float32)


def _flat(t) -> tf.Tensor:
    return tf.reshape(t, _flat_shape())


def _concat(flats: Sequence[tf.Tensor]) -> tf.Tensor:
    return flats[0] if len(flats) == 1 else tf.concat(list(flats), axis=0)


def _group(keys: Sequence) -> list[list[int]]:
    """Indices grouped by equal key, groups in order of first appearance."""
    groups: dict = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _in_input_order(parts: list[tf.Tensor], groups: list[list[int]]):
    """Concatenate per-group results and put their rows back in input order."""
    order = [i for members in groups for i in members]
    joined = _concat(parts)
    if order == sorted(order):
        return joined
    return tf.gather(joined, np.argsort(order).astype(np.int32))


class _Rows:
    """A ``[k, n]`` matrix of values, one row per measured tensor, with what
    every statistic of them shares: the finite values and their extremes.

    With ``masked=False`` every value is known to be finite, and the masks
    that keep non-finite values out of the statistics are skipped: on large
    activations each element-wise pass costs more than all the reductions
    together, and non-finite values are the rare case.
    """

    @staticmethod
    def matrix(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
        """Equal-size tensors as the rows of one matrix."""
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) == 1 and None not in next(iter(shapes)):
            # One stack and one reshape, whatever the number of rows.
            stacked = (
                tf.stack(list(tensors))
                if len(tensors) > 1
                else tf.expand_dims(tensors[0], 0)
            )
            return tf.reshape(stacked, [len(tensors), -1])
        return tf.stack([tf.reshape(t, _flat_shape()) for t in tensors])

    def __init__(self, values: tf.Tensor, masked: bool = True):
        self.values = values
        self.masked = masked
        k = values.shape[0]
        n = values.shape[1]
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

    @property
    def all_finite(self) -> tf.Tensor:
        """Whether every value is finite (a scalar bool).

        Without masks it follows from the sums the mean needs anyway: a sum
        is finite only if every value is (or an overflow, measured again
        with masks like any other non-finite event).
        """
        if self.masked:
            return tf.reduce_all(tf.equal(self.n_finite, self.count))
        return tf.reduce_all(tf.math.is_finite(self.sums))

    def histogram_counts(self, bins: int) -> tf.Tensor:
        """``[k, bins]`` counts of each row's finite values.

        The buckets of a row span its finite minimum to maximum. Each value
        is mapped to bucket ``row * bins + its position in the row's
        range``, and one bincount counts every row at once (O(N) memory,
        instead of the one-hot of N x buckets that `tf.summary.histogram`
        builds; and faster on the CPU than `tf.histogram_fixed_width`,
        which recomputes every position in float64: see `--stats` in
        ``benchmarks/overhead.py``). A constant row has no width: its
        values go to the middle bucket, as in the unit-wide range centred on
        the value that `histogram_table` gives it.
        """
        k = self.values.shape[0]
        width = self.hi - self.lo
        has_width = width > 0.0
        scale = tf.where(has_width, bins / width, 0.0)
        offsets = np.arange(k, dtype=np.float32)[:, None] * bins
        offsets = offsets + tf.where(has_width, 0.0, float(bins // 2))
        # With masks, `multiply_no_nan` keeps rows without finite values,
        # whose extremes are infinite, at 0 instead of NaN. (Without masks
        # every value is finite, or the result is thrown away.)
        multiply = tf.math.multiply_no_nan if self.masked else tf.multiply

        def position(values):
            # The upper clip keeps each row's maximum in its last bucket.
            # Without masks every value is at least its row's minimum, so
            # the position is at least 0; with masks, the lower clip keeps
            # masked values inside their row. (Plain element-wise ops:
            # `tf.clip_by_value` costs several times one of them on the
            # CPU.)
            at = tf.minimum(multiply(values - self.lo, scale), bins - 0.5)
            if self.masked:
                at = tf.maximum(at, 0.0)
            return at + offsets

        # Positions are at least 0, so the cast is the floor: the bucket.
        buckets = tf.cast(position(self.safe), tf.int32)
        # Empty weights count each entry once, in float32.
        counts = tf.raw_ops.Bincount(
            arr=buckets, size=k * bins, weights=_no_weights()
        )
        counts = tf.reshape(counts, [k, bins])
        if self.masked:
            # Masked values were counted where 0 falls in their row: take
            # them out again.
            landed = tf.cast(tf.floor(position(tf.zeros([k, 1]))), tf.int32)
            landed = landed - tf.cast(offsets, tf.int32)
            masked = self.count - self.n_finite
            counts = counts - masked * tf.one_hot(landed[:, 0], bins)
        return counts


def histogram_table(lo, hi, counts, xp=_NP):
    """(left edge, right edge, count) rows: the TensorBoard histogram layout.

    Args:
        lo: ``[k]`` finite minima (+inf where a row has no finite value).
        hi: ``[k]`` finite maxima (-inf where a row has no finite value).
        counts: ``[k, bins]`` counts from the device.
        xp: the array namespace. Defaults to NumPy.

    Returns:
        ``[k, bins, 3]``. A row without finite values spans ``[0, 1]``; a
        constant row spans the unit-wide range centred on its value, as
        TensorBoard's own histograms do.
    """
    lo, hi = xp.asarray(lo), xp.asarray(hi)
    empty = xp.isinf(lo)
    lo = xp.where(empty, 0.0, lo)
    hi = xp.where(empty, 1.0, hi)
    same = lo == hi
    lo = xp.where(same, lo - 0.5, lo)
    hi = xp.where(same, hi + 0.5, hi)
    width = hi - lo
    bins = counts.shape[1]
    # Edges from constant fractions: tf.linspace would add dozens of ops.
    fractions = np.linspace(0.0, 1.0, bins + 1, dtype=np.float32)
    left = lo[:, None] + width[:, None] * fractions[None, :-1]
    right = lo[:, None] + width[:, None] * fractions[None, 1:]
    return xp.stack([left, right, counts], axis=2)


def histogram(
    values: tf.Tensor,
    bins: int = 30,
) -> tf.Tensor:
    """Bucket the finite values of a tensor into `bins` equal-width buckets.

    The buckets span the finite minimum to maximum, as TensorBoard's own
    histograms do; the counting happens on the device in O(N) memory.

    Args:
        values: any real tensor.
        bins: number of buckets. Defaults to `30`.

    Returns:
        A float32 ``[bins, 3]`` tensor of (left edge, right edge, count), the
        layout of the TensorBoard histogram plugin. A tensor with no finite
        values gives all-zero counts on ``[0, 1]``.
    """
    rows = _Rows(_Rows.matrix([_flat_f32(values)]))
    counts = rows.histogram_counts(bins)
    return histogram_table(rows.lo[:, 0], rows.hi[:, 0], counts, _TF)[0]


def saturation_fn(rule, param: float | None) -> Callable[[Any], Any]:
    """Bind a `kerasinit.gains.SaturationRule` to its parameter on device.

    The same ``(rule, param)`` gives the same function object, so layers
    that share an activation are measured together.
    """
    return _bound_rule(rule, param)


@functools.cache
def _bound_rule(rule, param):
    return lambda y: rule.derivative(y, param, _TF_XP)


def _units(y: tf.Tensor) -> int | None:
    """Units per observation: the last axis (a vector: one per example)."""
    if y.shape.rank is None or y.shape.rank == 0:
        return None
    if y.shape.rank == 1:
        return y.shape[0]
    return y.shape[-1]


def activation_stats_many(
    outputs: Sequence[tf.Tensor],
    *,
    dead_values: Sequence[float | None],
    saturation: Sequence[tuple[Callable, float] | None],
    bins: int | None = 30,
    masked: bool = True,
) -> dict[str, tf.Tensor]:
    """Statistics of several layers' outputs on the probe batch at once.

    Args:
        outputs: each layer's output, examples on the first axis and units
            (channels) on the last.
        dead_values: per output, the value an inactive unit outputs with zero
            gradient (0 for ReLU), or `None`. A unit is dead when it outputs
            exactly this for every element of the probe (all examples and
            positions); `None` reports a dead fraction of 0.
        saturation: per output, ``(derivative, cutoff)`` or `None`: an output
            is saturated where ``derivative(y)`` (``y -> f'(f^{-1}(y))``) is
            below the absolute `cutoff`. `None` reports 0.
        bins: histogram buckets, or `None` for no histogram.
            Defaults to `30`.
        masked: keep non-finite values out of every statistic. With
            `False` the statistics are exact only when every value is
            finite, which ``"all_finite"`` tells, and cost a few fewer
            passes over the values. Defaults to `True`.

    Returns:
        ``{"scalars": [n, len(ACTIVATION_SCALARS)]}`` float32, columns in
        `ACTIVATION_SCALARS` order (moments and extremes over finite values;
        min/max are +/-inf for an output without any finite value), plus,
        with `bins`, ``"counts"``, ``[n, bins]``, the histogram counts over
        each output's ``[act_min, act_max]`` (see `histogram_table`).
    """
    outputs = [tf.cast(y, tf.float32) for y in outputs]
    keys = []
    for i, (y, dead, rule) in enumerate(zip(outputs, dead_values, saturation)):
        size = y.shape.num_elements()
        units = _units(y) if dead is not None else None
        if size is None or (dead is not None and units is None):
            # Unknown sizes cannot share a matrix.
            keys.append(("alone", i))
        else:
            rule_key = None if rule is None else (rule[0], float(rule[1]))
            keys.append((size, units, dead, rule_key))
    groups = _group(keys)
    scalars, counts, finite = [], [], []
    for members in groups:
        first = members[0]

        rows = _Rows(_Rows.matrix([outputs[i] for i in members]), masked)
        scalars.append(
            _activation_scalars(
                rows,
                dead=dead_values[first],
                units=_units(outputs[first]),
                saturation=saturation[first],
            )
        )
        if bins:
            counts.append(rows.histogram_counts(bins))
        finite.append(rows.all_finite)
    out = {
        "scalars": _in_input_order(scalars, groups),
        "all_finite": tf.reduce_all(tf.stack(finite)),
    }
    if bins:
        out["counts"] = _in_input_order(counts, groups)
    return out


def _activation_scalars(rows: _Rows, *, dead, units, saturation):
    """``[k, len(ACTIVATION_SCALARS)]`` for rows alike in size and rules."""
    k = rows.values.shape[0]
    denom = tf.maximum(rows.n_finite, 1.0)
    mean = rows.sums / denom
    # One pass for both moments; the clamp absorbs the rounding of
    # E[y^2] - E[y]^2 when the spread is tiny.
    square_mean = (
        tf.reduce_sum(tf.square(rows.safe), axis=1, keepdims=True) / denom
    )
    std = tf.sqrt(tf.maximum(square_mean - tf.square(mean), 0.0))
    is_zero = tf.equal(rows.values, 0.0)
    zeros = tf.reduce_sum(tf.cast(is_zero, tf.float32), axis=1, keepdims=True)
    if dead is None:
        dead_fraction = tf.zeros([k, 1])
    else:
        # Units on the last axis; every other axis observes them.
        at_dead = is_zero if dead == 0.0 else tf.equal(rows.values, dead)
        grid = tf.reshape(at_dead, [k, -1, units])
        dead_units = tf.cast(tf.reduce_all(grid, axis=1), tf.float32)
        dead_fraction = tf.reduce_mean(dead_units, axis=1, keepdims=True)
    if saturation is None:
        saturated = tf.zeros([k, 1])
    else:
        derivative, cutoff = saturation
        below = derivative(rows.values) < cutoff
        if rows.masked:
            below = tf.logical_and(below, rows.finite)
        saturated = (
            tf.reduce_sum(tf.cast(below, tf.float32), axis=1, keepdims=True)
            / rows.count
        )
    columns = {
        "act_mean": mean,
        "act_std": std,
        "act_min": rows.lo,
        "act_max": rows.hi,
        "zero_fraction": zeros / rows.count,
        "dead_fraction": dead_fraction,
        "saturation_fraction": saturated,
        "act_nonfinite": rows.count - rows.n_finite,
    }
    return tf.concat([columns[c] for c in ACTIVATION_SCALARS], axis=1)


def activation_stats(
    y: tf.Tensor,
    *,
    dead_value: float | None = None,
    saturation_derivative: Callable[[Any], Any] | None = None,
    saturation_cutoff: float | None = None,
    bins: int | None = 30,
) -> dict[str, tf.Tensor]:
    """Statistics of one layer's output (`activation_stats_many` of one).

    Args:
        y: the output, examples on the first axis and units (channels) on
            the last.
        dead_value: the value an inactive unit outputs with zero gradient.
            Defaults to `None` (dead fraction 0).
        saturation_derivative: ``y -> f'(f^{-1}(y))``. Defaults to `None`
            (saturation fraction 0).
        saturation_cutoff: an output is saturated where the derivative is
            below this absolute value. Defaults to `None`.
        bins: histogram buckets, or `None` for no histogram.
            Defaults to `30`.

    Returns:
        float32 scalars named as in `ACTIVATION_SCALARS` and, with `bins`,
        the ``[bins, 3]`` tensor ``histogram``.
    """
    rule = (
        (saturation_derivative, saturation_cutoff)
        if saturation_derivative is not None and saturation_cutoff is not None
        else None
    )
    many = activation_stats_many(
        [y], dead_values=[dead_value], saturation=[rule], bins=bins
    )
    return _first_row(
        many, ACTIVATION_SCALARS, many["scalars"][:, 2:4] if bins else None
    )


def gradient_stats_many(
    groups: Sequence[tuple[Sequence[tf.Tensor | None], Sequence[tf.Tensor]]],
    *,
    bins: int | None = 30,
    masked: bool = True,
) -> dict[str, tf.Tensor]:
    """Gradient statistics of several layers at once.

    Args:
        groups: per layer, ``(grads, weights)``: the gradients of the loss
            with respect to the layer's weights (`None` for a weight the loss
            does not depend on, counted as zeros) and the weight values.
        bins: histogram buckets, or `None` for no histogram.
            Defaults to `30`.
        masked: as in `activation_stats_many`. Defaults to `True`.

    Returns:
        ``{"scalars": [n, len(GRADIENT_SCALARS)]}`` float32, columns in
        `GRADIENT_SCALARS` order: norms (gradients scaled so tiny ones do
        not underflow to 0), the gradient-to-weight norm ratio (infinite or
        NaN when the weights are all zero) and the non-finite count; plus,
        with `bins`, ``"range"``, ``[n, 2]``, the finite extremes of each
        layer's gradient entries, and ``"counts"``, ``[n, bins]``, their
        histogram counts over that range (see `histogram_table`).
    """

    # Weight tensors of one shape (the kernels of equal-width layers, their
    # biases) are stacked as the rows of one matrix, and each statistic is
    # one reduction along the rows of each matrix, then one segment
    # reduction from rows to layers: the operations grow with the number of
    # distinct shapes, not with depth, and every pass over the values is a
    # plain row reduction.
    n = len(groups)
    g_rows = _LayerRows(
        [
            (i, g)
            for i, (gs, _) in enumerate(groups)
            for g in gs
            if g is not None
        ],
        n,
    )
    w_rows = _LayerRows(
        [(i, w) for i, (_, ws) in enumerate(groups) for w in ws], n
    )
    missing = np.array(
        [
            sum(int(_size(w)) for g, w in zip(gs, ws) if g is None)
            for gs, ws in groups
        ],
        dtype=np.float32,
    )
    rows = [_Rows(m, masked) for m in g_rows.matrices]
    g_sq = g_rows.per_layer("sum", [_row_squares64(r) for r in rows])
    # Weights are not tiny enough for float32 squares to underflow.
    w_sq = tf.cast(
        w_rows.per_layer(
            "sum",
            [tf.reduce_sum(tf.square(m), axis=1) for m in w_rows.matrices],
        ),
        tf.float64,
    )
    g_norm = tf.cast(tf.sqrt(g_sq), tf.float32)
    w_norm = tf.cast(tf.sqrt(w_sq), tf.float32)
    bad = (
        g_rows.per_layer("sum", [_flat(r.count - r.n_finite) for r in rows])
        if masked
        else tf.zeros([n])
    )
    inf = float("inf")
    # A layer without gradient entries has no extremes; the zeros that stand
    # for the gradients of unreached weights widen the range to 0.
    lo = _where(
        g_rows.empty, inf, g_rows.per_layer("min", [_flat(r.lo) for r in rows])
    )
    hi = _where(
        g_rows.empty,
        -inf,
        g_rows.per_layer("max", [_flat(r.hi) for r in rows]),
    )
    if missing.any():
        lo = tf.where(missing > 0, tf.minimum(lo, 0.0), lo)
        hi = tf.where(missing > 0, tf.maximum(hi, 0.0), hi)
    columns = {
        "grad_norm": g_norm,
        "weight_norm": w_norm,
        "grad_weight_ratio": g_norm / w_norm,
        "grad_nonfinite": bad,
    }
    out = {
        "scalars": tf.stack([columns[c] for c in GRADIENT_SCALARS], axis=1),
        # The sums of squares are finite exactly when every value is.
        "all_finite": tf.math.is_finite(tf.reduce_sum(g_sq)),
    }
    if bins:
        out["range"] = tf.stack([lo, hi], axis=1)
        out["counts"] = _layer_counts(
            [(i, _as_f32(t)) for i, t in g_rows.items],
            n,
            lo,
            hi,
            missing - bad,
            bins,
            masked,
        )
    return out


def _size(t: tf.Tensor):
    n = t.shape.num_elements()
    return n if n is not None else tf.size(t)


def _where(condition: np.ndarray, a, b):
    """`tf.where` with a NumPy condition, without an operation if all false."""
    return tf.where(condition, a, b) if condition.any() else b


class _LayerRows:
    """Tensors that belong to layers, stacked by shape into matrices.

    Args:
        items: ``(layer index, tensor)`` pairs.
        n: the number of layers.

    Attributes:
        matrices: one ``[k, size]`` float32 matrix per distinct shape (a
            tensor of unknown shape is a matrix of its own).
        layer_of_row: int32, the layer of each row of the matrices, in
            order.
        empty: per layer, whether it has no tensor.
    """

    def __init__(self, items: list, n: int):
        self.n = n
        keys = []
        for i, (_, t) in enumerate(items):
            shape = tuple(t.shape)
            keys.append(shape if None not in shape else ("alone", i))
        members = _group(keys)
        self.items = items
        self.matrices = [
            _Rows.matrix([_as_f32(items[i][1]) for i in group])
            for group in members
        ]
        self.layer_of_row = np.array(
            [items[i][0] for group in members for i in group], dtype=np.int32
        )
        self.empty = ~np.isin(np.arange(n), self.layer_of_row)

    def per_layer(self, how: str, per_matrix: list) -> tf.Tensor:
        """``[n]``: per-row values (one tensor per matrix) reduced by layer.

        A layer without rows gets 0 for a sum and any value otherwise.
        """
        if not per_matrix:
            return tf.zeros([self.n])
        op = {
            "sum": tf.math.unsorted_segment_sum,
            "min": tf.math.unsorted_segment_min,
            "max": tf.math.unsorted_segment_max,
        }[how]
        out = op(_concat(per_matrix), self.layer_of_row, self.n)
        if how == "sum":
            return out
        # The reductions start from the largest finite float, so an infinite
        # extreme comes out as that: put it back.
        top = np.finfo(np.float32).max
        return tf.where(tf.abs(out) >= top, out * float("inf"), out)


def _as_f32(t) -> tf.Tensor:
    return tf.cast(t, tf.float32)


def _row_squares64(rows: _Rows) -> tf.Tensor:
    """``[k]`` float64 row sums of squares, exact for tiny gradients too.

    Each row is divided by its largest finite magnitude before squaring
    and the factor is put back in float64, so a gradient of 1e-25, whose
    float32 square underflows to 0, keeps its norm; a non-finite value
    makes the sum non-finite.
    """
    top = tf.maximum(-rows.lo, rows.hi)
    unit = tf.reduce_sum(
        tf.square(tf.math.divide_no_nan(rows.values, top)), axis=1
    )
    top = tf.cast(_flat(top), tf.float64)
    return tf.cast(unit, tf.float64) * top * top


def _layer_counts(items, n, lo, hi, extra, bins: int, masked) -> tf.Tensor:
    """``[n, bins]`` histogram counts of each layer's gradient entries.

    Each tensor is counted by `tf.histogram_fixed_width` over its layer's
    range (the operation finds each value's bucket itself, and a compiled
    graph runs the tensors in parallel), and the counts are summed by
    layer. `extra` per layer is added to the bucket of 0: the zeros of
    unreached weights, less the masked (non-finite) entries, which were
    counted there. A constant layer gets the unit-wide range centred on its
    value, as `histogram_table` lays it out; a layer without finite entries
    (infinite extremes), or, without masks, with NaN extremes whose
    statistics are thrown away, any valid range.
    """
    valid = tf.logical_and(tf.math.is_finite(lo), tf.math.is_finite(hi))
    lo = tf.where(valid, lo, 0.0)
    hi = tf.where(valid, hi, 1.0)
    same = tf.equal(lo, hi)
    lo = tf.where(same, lo - 0.5, lo)
    hi = tf.where(same, hi + 0.5, hi)
    spans = tf.unstack(tf.stack([lo, hi], axis=1), num=n)
    nbins = tf.constant(bins)
    by_layer: list[list] = [[] for _ in range(n)]
    for layer, t in items:
        if masked:
            t = tf.where(tf.math.is_finite(t), t, 0.0)
        by_layer[layer].append(
            tf.histogram_fixed_width(t, spans[layer], nbins=nbins)
        )
    nothing = tf.zeros([bins], tf.int32)
    counts = tf.cast(
        tf.stack([_sum(hists) if hists else nothing for hists in by_layer]),
        tf.float32,
    )
    zero = tf.cast(
        tf.clip_by_value(
            tf.floor((0.0 - lo) / (hi - lo) * bins), 0.0, bins - 1.0
        ),
        tf.int32,
    )
    return counts + extra[:, None] * tf.one_hot(zero, bins)


def _sum(tensors: list) -> tf.Tensor:
    return tensors[0] if len(tensors) == 1 else tf.add_n(tensors)


def gradient_stats(
    grads: Sequence[tf.Tensor | None],
    weights: Sequence[tf.Tensor],
    *,
    bins: int | None = 30,
) -> dict[str, tf.Tensor]:
    """Statistics of one layer's gradients (`gradient_stats_many` of one).

    Args:
        grads: the gradients of the loss with respect to `weights`, `None`
            for a weight the loss does not depend on (counted as zeros).
        weights: the weight values, same order.
        bins: histogram buckets, or `None` for no histogram.
            Defaults to `30`.

    Returns:
        float32 scalars named as in `GRADIENT_SCALARS` and, with `bins`, the
        ``[bins, 3]`` tensor ``histogram`` of all gradient entries.
    """
    many = gradient_stats_many([(grads, weights)], bins=bins)
    return _first_row(many, GRADIENT_SCALARS, many["range"] if bins else None)


def _first_row(many: dict, names, extremes) -> dict[str, tf.Tensor]:
    """A `*_many` result of one tensor as named scalars and a histogram."""
    out = dict(zip(names, tf.unstack(many["scalars"][0])))
    if extremes is not None:
        out["histogram"] = histogram_table(
            extremes[:, 0], extremes[:, 1], many["counts"], _TF
        )[0]
    return out
