"""Statistics of each layer's trainable weights: their gradients and updates.

Pure functions of tensors, computed on the device. Weight and gradient
tensors of one shape (the kernels of equal-width layers, their biases) are
stacked as the rows of one matrix, each statistic is one reduction along the
rows of each matrix, then one segment reduction from rows to layers: the
operations grow with the number of distinct shapes, not with depth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from keras import ops

from kerasinit.monitor import backends, histograms
from kerasinit.monitor.rows import Rows, concat, group_by_key, size

__all__ = [
    "DEVICE_METRICS",
    "gradient_histograms_many",
    "gradient_stats_many",
    "update_ratios",
]

#: The gradient metrics of `gradient_stats_many`, each one a column of its
#: result. (``update_ratio`` comes from `update_ratios`.)
DEVICE_METRICS = (
    "grad_norm",
    "weight_norm",
    "grad_weight_ratio",
    "grad_nonfinite",
)


def gradient_stats_many(
    groups: Sequence[tuple[Sequence], Sequence],
    *,
    bins: int | None = 30,
    masked: bool = True,
) -> dict:
    """Gradient statistics of several layers at once.

    Args:
        groups: per layer, ``(grads, weights)``: the gradients of the loss
            with respect to the layer's weights (`None` for a weight the loss
            does not depend on, counted as zeros) and the weight values.
        bins: histogram buckets, or `None` for no histogram.
            Defaults to `30`.
        masked: keep non-finite values out of the extremes and histograms.
            With `False` they are exact only when ``"all_finite"`` is true.
            Defaults to `True`.

    Returns:
        ``{"columns": {metric: [n]}}`` float32, one entry per name of
        `DEVICE_METRICS`: norms (gradients scaled so tiny ones do not
        underflow to 0), the gradient-to-weight norm ratio (infinite or NaN
        when the weights are all zero) and the non-finite count;
        ``"all_finite"``; plus, with `bins`, ``"range"``, ``[n, 2]``, the
        finite extremes of each layer's gradient entries, and ``"counts"``,
        ``[n, bins]``, their histogram counts over that range.
    """
    g_rows, rows, missing = _gradient_rows(groups, masked)
    w_rows = _LayerRows(
        [(i, w) for i, (_, ws) in enumerate(groups) for w in ws], len(groups)
    )
    g_norm = _gradient_norms(g_rows, rows)
    # Weights are not tiny enough for float32 squares to underflow.
    w_sq = ops.cast(
        w_rows.per_layer(
            "sum",
            [ops.sum(ops.square(m), axis=1) for m in w_rows.matrices],
        ),
        backends.current().WIDE_FLOAT,
    )
    w_norm = ops.cast(ops.sqrt(w_sq), "float32")
    bad = _nonfinite(g_rows, rows, masked)
    columns = {
        "grad_norm": g_norm,
        "weight_norm": w_norm,
        "grad_weight_ratio": g_norm / w_norm,
        "grad_nonfinite": bad,
    }
    out = {
        "columns": columns,
        # The norms are finite exactly when every value is.
        "all_finite": ops.isfinite(ops.sum(g_norm)),
    }
    if bins:
        out.update(_histograms(g_rows, rows, missing, bad, bins))
    return out


def gradient_histograms_many(
    groups: Sequence[tuple[Sequence], Sequence],
    *,
    bins: int,
    masked: bool = True,
) -> dict:
    """The gradient histograms of `gradient_stats_many` alone.

    For a training step that buckets its histograms less often than it
    takes the other statistics: the same ranges and counts as
    ``gradient_stats_many(groups, bins=bins, masked=masked)``, at the cost
    of the extremes and the bucketing only.

    Args:
        groups: as `gradient_stats_many`'s (the weights give the sizes of
            the gradients the loss does not reach).
        bins: histogram buckets.
        masked: keep non-finite values out of the histograms (exact without
            masks only when ``"all_finite"``). Defaults to `True`.

    Returns:
        ``{"range": [n, 2], "counts": [n, bins], "all_finite": scalar
        bool}``.
    """
    g_rows, rows, missing = _gradient_rows(groups, masked)
    out = _histograms(
        g_rows, rows, missing, _nonfinite(g_rows, rows, masked), bins
    )
    finite = [r.all_finite for r in rows]
    out["all_finite"] = (
        ops.all(ops.stack(finite)) if finite else ops.convert_to_tensor(True)
    )
    return out


def _gradient_rows(groups, masked: bool):
    """The gradients' `_LayerRows` and `Rows` and, per layer, how many
    entries have no gradient (counted as zeros).
    """
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
    missing = np.array(
        [
            sum(int(_size(w)) for g, w in zip(gs, ws) if g is None)
            for gs, ws in groups
        ],
        dtype=np.float32,
    )
    rows = [Rows(m, masked) for m in g_rows.matrices]
    return g_rows, rows, missing


def _nonfinite(g_rows, rows, masked: bool):
    """``[n]`` the non-finite gradient entries of each layer (0 unmasked)."""
    if not masked:
        return ops.zeros([g_rows.n])
    return g_rows.per_layer("sum", [(r.count - r.n_finite)[:, 0] for r in rows])


def _extremes(g_rows, rows, missing):
    """``([n], [n])`` the finite extremes of each layer's gradient entries."""
    inf = float("inf")
    # A layer without gradient entries has no extremes; the zeros that stand
    # for the gradients of unreached weights widen the range to 0.
    lo = _where(
        g_rows.empty, inf, g_rows.per_layer("min", [r.lo[:, 0] for r in rows])
    )
    hi = _where(
        g_rows.empty, -inf, g_rows.per_layer("max", [r.hi[:, 0] for r in rows])
    )
    if missing.any():
        lo = ops.where(missing > 0, ops.minimum(lo, 0.0), lo)
        hi = ops.where(missing > 0, ops.maximum(hi, 0.0), hi)
    return lo, hi


def _histograms(g_rows, rows, missing, bad, bins: int) -> dict:
    lo, hi = _extremes(g_rows, rows, missing)
    return {
        "range": ops.stack([lo, hi], axis=1),
        "counts": _layer_counts(
            g_rows, rows, lo, hi, ops.convert_to_tensor(missing) - bad, bins
        ),
    }


def update_ratios(
    weights: Sequence[Sequence],
    previous: Sequence[Sequence],
):
    """``[n]`` per layer, ``||W - W_prev|| / ||W_prev||`` over its weights.

    The relative size of the updates made since the previous measurement:
    the learning rate's effect, whatever the optimizer.

    Args:
        weights: per layer, its current weight values.
        previous: per layer, the same weights' values at the previous
            measurement.

    Returns:
        float32 ratios (infinite or NaN when the previous weights are all
        zero).
    """
    n = len(weights)
    deltas = _LayerRows(
        [
            (i, ops.cast(w, "float32") - ops.cast(p, "float32"))
            for i, (ws, ps) in enumerate(zip(weights, previous))
            for w, p in zip(ws, ps)
        ],
        n,
    )
    before = _LayerRows(
        [(i, p) for i, ps in enumerate(previous) for p in ps], n
    )

    def norms(layer_rows):
        return ops.sqrt(
            layer_rows.per_layer(
                "sum",
                [ops.sum(ops.square(m), axis=1) for m in layer_rows.matrices],
            )
        )

    return norms(deltas) / norms(before)


def _size(t):
    n = size(t)
    return n if n is not None else ops.size(t)


def _where(condition: np.ndarray, a, b):
    """`ops.where` with a NumPy condition, without an operation if all false."""
    return ops.where(condition, a, b) if condition.any() else b


class _LayerRows:
    """Tensors that belong to layers, stacked by shape into matrices.

    Args:
        items: ``(layer index, tensor)`` pairs.
        n: the number of layers.

    Attributes:
        matrices: one ``[k, size]`` float32 matrix per distinct shape (a
            tensor of unknown shape is a matrix of its own).
        layers: per matrix, the int32 layer of each of its rows.
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
        members = group_by_key(keys)
        self.matrices = [
            Rows.matrix([items[i][1] for i in group]) for group in members
        ]
        self.layers = [
            np.array([items[i][0] for i in group], dtype=np.int32)
            for group in members
        ]
        self.layer_of_row = (
            np.concatenate(self.layers)
            if self.layers
            else np.zeros([0], np.int32)
        )
        self.empty = ~np.isin(np.arange(n), self.layer_of_row)

    def per_layer(self, how: str, per_matrix: list):
        """``[n]``: per-row values (one tensor per matrix) reduced by layer.

        A layer without rows gets 0 for a sum and any value otherwise.
        """
        if not per_matrix:
            return ops.zeros([self.n])
        values = concat(per_matrix)
        segments = ops.convert_to_tensor(self.layer_of_row)
        if how == "sum":
            return ops.segment_sum(values, segments, num_segments=self.n)
        if how == "max":
            out = ops.segment_max(values, segments, num_segments=self.n)
        else:
            out = -ops.segment_max(-values, segments, num_segments=self.n)
        # TensorFlow's reductions start from the largest finite float, so an
        # infinite extreme comes out as that: put it back.
        top = np.finfo(np.float32).max
        return ops.where(ops.abs(out) >= top, out * float("inf"), out)


def _gradient_norms(g_rows: _LayerRows, rows: list[Rows]):
    """``[n]`` float32 gradient norms, exact for tiny gradients too.

    Each row is divided by its largest finite magnitude before squaring,
    so a gradient of 1e-25, whose float32 square underflows to 0, keeps its
    norm; a non-finite value makes the norm non-finite. The rows' factors
    are put back in float64 where the backend computes it; otherwise (JAX
    without x64) each row is scaled by its layer's largest factor, which
    float32 holds without underflow.
    """
    wide = backends.current().WIDE_FLOAT
    tops, units = [], []
    for r in rows:
        top = ops.maximum(-r.lo, r.hi)
        units.append(ops.sum(ops.square(ops.divide_no_nan(r.values, top)), 1))
        tops.append(top[:, 0])
    if wide == "float64":
        squares = [
            ops.cast(u, wide) * ops.square(ops.cast(t, wide))
            for u, t in zip(units, tops)
        ]
        return ops.cast(ops.sqrt(g_rows.per_layer("sum", squares)), "float32")
    if not rows:
        return ops.zeros([g_rows.n])
    layer_top = g_rows.per_layer("max", tops)
    scaled = [
        u * ops.square(ops.divide_no_nan(t, ops.take(layer_top, layers, 0)))
        for u, t, layers in zip(units, tops, g_rows.layers)
    ]
    # A layer without rows has an extreme of -inf: its norm is 0.
    layer_top = ops.where(ops.isfinite(layer_top), layer_top, 0.0)
    return layer_top * ops.sqrt(g_rows.per_layer("sum", scaled))


def _layer_counts(g_rows, rows, lo, hi, extra, bins: int):
    """``[n, bins]`` histogram counts of each layer's gradient entries.

    Every row is counted over its layer's range and the rows' counts are
    summed by layer. `extra` per layer is added to the bucket of 0: the
    zeros of unreached weights, less the masked (non-finite) entries, which
    were counted there.
    """
    per_matrix = []
    for layers, r in zip(g_rows.layers, rows):
        row_lo = ops.take(lo, layers, axis=0)[:, None]
        row_hi = ops.take(hi, layers, axis=0)[:, None]
        per_matrix.append(
            histograms.bucket_counts(r.safe, row_lo, row_hi, bins, float64=True)
        )
    if per_matrix:
        counts = ops.segment_sum(
            concat(per_matrix),
            ops.convert_to_tensor(g_rows.layer_of_row),
            num_segments=g_rows.n,
        )
    else:
        counts = ops.zeros([g_rows.n, bins])
    zero = histograms.zero_buckets(lo[:, None], hi[:, None], bins)
    return counts + extra[:, None] * ops.one_hot(zero, bins)
