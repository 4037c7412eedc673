"""Statistics of layer outputs on the probe batch, computed on the device.

Pure functions of tensors: nothing here does I/O or keeps state, and every
threshold is an argument, so the rules that interpret the numbers
(`kerasinit.monitor.diagnosis`) stay apart from the code that measures them
and each statistic can be checked against a NumPy reference in isolation.

Outputs of one size measured by the same rules are stacked as the rows of
one matrix (`kerasinit.monitor.rows.Rows`), so a deep stack of equal widths
costs one set of operations. Statistics over values that are not finite
would themselves be NaN and hide everything else, so moments, extremes and
histograms are taken over the finite values only (with ``masked=True``), and
the non-finite values are counted separately.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from kerasinit.monitor import histograms
from kerasinit.monitor.rows import Rows, group_by_key, in_input_order, size
from kerasinit_tensorboard import schema

__all__ = [
    "DEVICE_METRICS",
    "DUPLICATE_TOLERANCE",
    "ECONOMY_METRICS",
    "activation_counts_many",
    "activation_stats_many",
    "input_cosine",
    "is_float",
    "saturation_fn",
]

#: Ratios between layers, taken on the host from the device's columns.
_HOST_METRICS = ("signal_gain",)

#: The activation metrics computed on the device, each one a column of
#: `activation_stats_many`'s result. (``signal_gain`` is a ratio of two
#: layers' ``act_rms``, taken on the host.)
DEVICE_METRICS = tuple(
    m for m in schema.ACTIVATION_METRICS if m not in _HOST_METRICS
)

#: What a due step of the training batch measures with
#: ``statistics="economy"``: every device metric except the units'
#: duplicate fingerprints (one more product over every output; their cost
#: is in ``docs/monitor.md``, Overhead). Symmetric weights are there from
#: the start, and the probe's events find them.
ECONOMY_METRICS = tuple(m for m in DEVICE_METRICS if m != "duplicate_fraction")

#: Two units are duplicates when their fingerprints differ by less than this
#: fraction of their output columns' norms: far above the float32 rounding of
#: the fingerprint of equal columns (0 when computed alike), far below the
#: difference of two distinct columns (see `_duplicate_fraction`).
DUPLICATE_TOLERANCE = 1e-5

# The array namespace the saturation rules of `kerasinit.gains` run with on
# the device.
_OPS_XP = types.SimpleNamespace(where=ops.where, exp=ops.exp, abs=ops.abs)


def saturation_fn(rule, param: float | None) -> Callable[[Any], Any]:
    """Bind a `kerasinit.gains.SaturationRule` to its parameter on device.

    The same ``(rule, param)`` gives the same function object, so layers
    that share an activation are measured together.
    """
    return _bound_rule(rule, param)


@functools.cache
def _bound_rule(rule, param):
    return lambda y: rule.derivative(y, param, _OPS_XP)


def _units(y) -> int | None:
    """Units per observation: the last axis of an output of rank 2 or more."""
    if len(y.shape) < 2:
        return None
    return y.shape[-1]


def _examples(y) -> int | None:
    """The number of examples: the first axis, when known."""
    if len(y.shape) < 1:
        return None
    return y.shape[0]


def activation_stats_many(
    outputs: Sequence,
    *,
    dead_values: Sequence[float | None],
    saturation: Sequence[tuple[Callable, float] | None],
    bins: int | None = 30,
    masked: bool = True,
    metrics: Sequence[str] = DEVICE_METRICS,
) -> dict[str, Any]:
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
        metrics: the names of `DEVICE_METRICS` to compute (a statistic
            left out costs nothing; `ECONOMY_METRICS` leaves out the
            costliest). Defaults to `DEVICE_METRICS`.

    Returns:
        ``{"columns": {metric: [n]}}`` float32, one entry per name of
        `metrics` (moments and extremes over finite values; min/max
        are +/-inf for an output without any finite value; NaN where a
        statistic does not apply: cosine similarity of fewer than two
        non-zero examples, duplicates of an output without a unit axis),
        ``"all_finite"`` (a scalar bool) and, with `bins`, ``"counts"``,
        ``[n, bins]``, the histogram counts over each output's
        ``[act_min, act_max]`` (see `histograms.histogram_table`).
    """
    unknown = [m for m in metrics if m not in DEVICE_METRICS]
    if unknown:
        raise ValueError(
            f"Expected `metrics` among {DEVICE_METRICS}. "
            f"Received: metrics={tuple(metrics)!r}"
        )
    metrics = tuple(m for m in DEVICE_METRICS if m in metrics)
    outputs = [ops.cast(y, "float32") for y in outputs]
    keys = []
    for i, (y, dead, rule) in enumerate(zip(outputs, dead_values, saturation)):
        n = size(y)
        if n is None or _examples(y) is None:
            # Unknown sizes cannot share a matrix.
            keys.append(("alone", i))
        else:
            rule_key = None if rule is None else (rule[0], float(rule[1]))
            keys.append((n, _examples(y), _units(y), dead, rule_key))
    groups = group_by_key(keys)
    per_group, counts, finite = [], [], []
    for members in groups:
        first = members[0]
        rows = Rows(Rows.matrix([outputs[i] for i in members]), masked)
        per_group.append(
            _activation_columns(
                rows,
                dead=dead_values[first],
                examples=_examples(outputs[first]),
                units=_units(outputs[first]),
                saturation=saturation[first],
                metrics=metrics,
            )
        )
        if bins:
            counts.append(_counts(rows, bins))
        finite.append(rows.all_finite)
    columns = {
        name: in_input_order([c[name] for c in per_group], groups)
        for name in metrics
    }
    out: dict[str, Any] = {
        "columns": columns,
        "all_finite": ops.all(ops.stack(finite)),
    }
    if bins:
        out["counts"] = in_input_order(counts, groups)
    return out


def activation_counts_many(
    outputs: Sequence, *, bins: int, masked: bool = True
) -> dict[str, Any]:
    """The histogram counts of `activation_stats_many` alone.

    For a training step that buckets its histograms less often than it
    takes the other statistics: the same counts, over the same ranges
    (each output's finite extremes), as ``activation_stats_many(outputs,
    bins=bins, masked=masked)["counts"]``, at the cost of the extremes and
    the bucketing only.

    Args:
        outputs: each layer's output.
        bins: histogram buckets.
        masked: keep non-finite values out of the counts (they are exact
            without masks only when ``"all_finite"``). Defaults to `True`.

    Returns:
        ``{"counts": [n, bins], "all_finite": scalar bool}``.
    """
    outputs = [ops.cast(y, "float32") for y in outputs]
    keys = [
        ("alone", i) if size(y) is None else size(y)
        for i, y in enumerate(outputs)
    ]
    groups = group_by_key(keys)
    counts, finite = [], []
    for members in groups:
        rows = Rows(Rows.matrix([outputs[i] for i in members]), masked)
        counts.append(_counts(rows, bins))
        finite.append(rows.all_finite)
    return {
        "counts": in_input_order(counts, groups),
        "all_finite": ops.all(ops.stack(finite)),
    }


def _counts(rows: Rows, bins: int):
    """``[k, bins]`` counts of each row over its finite extremes."""
    adjust = None
    if rows.masked:
        # Masked values were counted where 0 falls: take them out.
        adjust = (rows.n_finite - rows.count)[:, 0]
    return histograms.bucket_counts(rows.safe, rows.lo, rows.hi, bins, adjust)


def _activation_columns(
    rows: Rows, *, dead, examples, units, saturation, metrics
):
    """``{metric: [k]}`` of `metrics`, for rows alike in size, shape and
    rules; what no metric asked for is not computed."""
    k = rows.values.shape[0]
    denom = ops.maximum(rows.n_finite, 1.0)
    mean = rows.sums / denom
    # One pass for both moments; the clamp absorbs the rounding of
    # E[y^2] - E[y]^2 when the spread is tiny.
    square_mean = ops.sum(rows.squares, axis=1, keepdims=True) / denom
    is_zero = ops.equal(rows.values, 0.0)

    def zeros():
        count = ops.sum(ops.cast(is_zero, "float32"), axis=1, keepdims=True)
        return count / rows.count

    def dead_fraction():
        if dead is None or units is None:
            return ops.zeros([k, 1])
        # Units on the last axis; every other axis observes them.
        at_dead = is_zero if dead == 0.0 else ops.equal(rows.values, dead)
        grid = ops.reshape(at_dead, [k, -1, units])
        dead_units = ops.cast(ops.all(grid, axis=1), "float32")
        return ops.mean(dead_units, axis=1, keepdims=True)

    def saturated():
        if saturation is None:
            return ops.zeros([k, 1])
        derivative, cutoff = saturation
        below = derivative(rows.values) < cutoff
        if rows.masked:
            below = ops.logical_and(below, rows.finite)
        count = ops.sum(ops.cast(below, "float32"), axis=1, keepdims=True)
        return count / rows.count

    nan = ops.full([k, 1], float("nan"))
    columns = {
        "act_mean": lambda: mean,
        "act_std": lambda: ops.sqrt(
            ops.maximum(square_mean - ops.square(mean), 0.0)
        ),
        "act_min": lambda: rows.lo,
        "act_max": lambda: rows.hi,
        "zero_fraction": zeros,
        "dead_fraction": dead_fraction,
        "saturation_fraction": saturated,
        "act_nonfinite": lambda: rows.count - rows.n_finite,
        "act_rms": lambda: ops.sqrt(square_mean),
        "cosine_similarity": lambda: (
            _cosine_similarity(rows, examples) if examples else nan
        ),
        "duplicate_fraction": lambda: (
            _duplicate_fraction(rows, units) if units else nan
        ),
    }
    return {name: columns[name]()[:, 0] for name in metrics}


def input_cosine(inputs: Sequence):
    """``[1]`` mean pairwise cosine similarity of the examples' inputs.

    The baseline for the layers' ``cosine_similarity``: a layer whose
    outputs are far more alike across examples than its inputs were has
    collapsed them; one that is only as alike as the inputs has not. Each
    example's float inputs are flattened and concatenated into one vector,
    and the similarity is taken as for a layer's output (pairs of distinct
    examples, examples whose vector is all zero left out, non-finite values
    counted as zeros).

    Args:
        inputs: the model's input tensors, examples on the first axis.
            Tensors that are not floating point (token ids) are left out.

    Returns:
        float32 ``[1]``; NaN with fewer than two non-zero examples or no
        float input.
    """
    floats = [
        t
        for t in inputs
        if t is not None and is_float(t) and _examples(t) is not None
    ]
    if not floats:
        return ops.convert_to_tensor([float("nan")], "float32")
    examples = _examples(floats[0])
    per_example = ops.concatenate(
        [ops.reshape(ops.cast(t, "float32"), [examples, -1]) for t in floats],
        axis=1,
    )
    rows = Rows(ops.reshape(per_example, [1, -1]), masked=True)
    return ops.reshape(_cosine_similarity(rows, examples), [1])


def is_float(t) -> bool:
    """Whether a tensor's dtype is floating point, on any backend."""
    return keras.backend.is_float_dtype(
        keras.backend.standardize_dtype(t.dtype)
    )


def _cosine_similarity(rows: Rows, examples: int):
    """``[k, 1]`` mean pairwise cosine similarity of the examples' outputs.

    With ``u_i`` the unit-norm output of example ``i`` and ``m`` the number
    of examples whose output is not all zero, the mean over the pairs
    ``i != j`` of ``u_i . u_j`` is ``(||sum_i u_i||^2 - m) / (m (m - 1))``:
    one pass over the values and no ``m x m`` Gram matrix. NaN when
    ``m < 2``.
    """
    k = rows.values.shape[0]
    per_example = ops.reshape(rows.safe, [k, examples, -1])
    norms = ops.sqrt(
        ops.sum(ops.reshape(rows.squares, [k, examples, -1]), axis=2)
    )
    nonzero = norms > 0.0
    inverse = ops.divide_no_nan(1.0, norms)
    # One product reads every value once; no scaled copy is written.
    total = ops.matmul(inverse[:, None, :], per_example)[:, 0, :]
    m = ops.sum(ops.cast(nonzero, "float32"), axis=1, keepdims=True)
    squared = ops.sum(ops.square(total), axis=1, keepdims=True)
    pairs = m * (m - 1.0)
    return ops.where(
        m >= 2.0, (squared - m) / ops.maximum(pairs, 1.0), float("nan")
    )


def _duplicate_fraction(rows: Rows, units: int):
    """``[k, 1]`` the fraction of units whose output column repeats another's.

    A unit's column is its output over every example and position. Each
    column is reduced to two fingerprints, its projections on two fixed
    random unit vectors, and to its norm; the units are sorted by the first
    fingerprint, and a unit is a duplicate when a neighbour in that order
    has the same fingerprints and norm, within `DUPLICATE_TOLERANCE` of the
    larger norm. Equal columns give equal fingerprints. For two different
    columns the fingerprints differ by about the norm of their difference
    over ``sqrt(N)`` (N observations per unit), so two distinct columns
    collide with a chance of about ``(tolerance * sqrt(N))^2`` per
    neighbouring pair: about 1e-5 for N = 10^5. Units that all output the same
    constant (zero kernels, or units that are all dead) are duplicates of
    one another.
    """
    k = rows.values.shape[0]
    grid = ops.reshape(rows.safe, [k, -1, units])
    observations = grid.shape[1]
    if observations is None:
        return ops.full([k, 1], float("nan"))
    rng = np.random.default_rng(0)
    directions = rng.standard_normal((observations, 2)).astype(np.float32)
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    # [k, 2, units]: one product over the observations, with the units
    # kept on the last axis, so the values are read as laid out (an einsum
    # to [k, units, 2] transposes them first on some backends).
    across = ops.convert_to_tensor(np.ascontiguousarray(directions.T))
    prints = ops.matmul(across[None], grid)
    norms = ops.sqrt(ops.sum(ops.reshape(rows.squares, [k, -1, units]), axis=1))
    order = ops.argsort(prints[:, 0, :], axis=1)
    first = ops.take_along_axis(prints[:, 0, :], order, axis=1)
    second = ops.take_along_axis(prints[:, 1, :], order, axis=1)
    norms = ops.take_along_axis(norms, order, axis=1)
    scale = DUPLICATE_TOLERANCE * ops.maximum(norms[:, 1:], norms[:, :-1])
    same = ops.logical_and(
        ops.logical_and(
            ops.abs(first[:, 1:] - first[:, :-1]) <= scale,
            ops.abs(second[:, 1:] - second[:, :-1]) <= scale,
        ),
        ops.abs(norms[:, 1:] - norms[:, :-1]) <= scale,
    )
    no = ops.zeros([k, 1], "bool")
    duplicate = ops.logical_or(
        ops.concatenate([same, no], axis=1), ops.concatenate([no, same], axis=1)
    )
    return ops.mean(ops.cast(duplicate, "float32"), axis=1, keepdims=True)
