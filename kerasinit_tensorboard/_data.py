"""Pure functions from what the data provider returns to what the page draws.

Kept apart from the routes so that they can be tested without a server, and
so that the routes stay a thin layer of argument checking and I/O.
Nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from kerasinit_tensorboard import schema

#: Rows of a layer's activation-distribution heatmap. Histograms written at
#: different steps may use different bin edges; they are redistributed onto
#: one shared grid so that each column of the heatmap is comparable.
HISTOGRAM_ROWS = 48


def finite_or_none(value) -> float | None:
    """``float(value)`` when finite, else ``None`` (JSON has no NaN)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def layer_names(record: dict) -> list[str]:
    """The record's layer paths, in model order, without duplicates."""
    names = []
    seen = set()
    for entry in record.get("layers") or []:
        name = entry.get("name") if isinstance(entry, dict) else entry
        if isinstance(name, str) and name not in seen:
            seen.add(name)
            names.append(name)
    return names


def clean_finding(finding: dict) -> dict:
    """A finding with exactly the fields the page shows, JSON-safe."""
    step = finding.get("step")
    return {
        "kind": str(finding.get("kind", "")),
        "layer": str(finding.get("layer", "")),
        "step": int(step) if isinstance(step, (int, float)) else None,
        "value": finite_or_none(finding.get("value")),
        "threshold": finite_or_none(finding.get("threshold")),
        "message": str(finding.get("message", "")),
        "advice": str(finding.get("advice", "")),
        "severity": str(finding.get("severity", "warning")),
    }


def findings(record: dict, kind: str | None = None) -> list[dict]:
    """Every finding in the (cumulative) record, optionally of one kind."""
    out = []
    for finding in record.get("findings") or []:
        if not isinstance(finding, dict):
            continue
        finding = clean_finding(finding)
        if kind is None or finding["kind"] == kind:
            out.append(finding)
    out.sort(key=lambda f: (f["step"] is None, f["step"] or 0))
    return out


def health_matrices(
    layers: Sequence[str],
    series: dict[str, Sequence[tuple[int, float]]],
    metrics: Iterable[str] = tuple(schema.HEATMAP_METRICS),
) -> dict:
    """One ``layers x steps`` matrix per metric from per-tag scalar series.

    Args:
        layers: layer paths in model order (the matrices' rows).
        series: ``{tag: [(step, value), ...]}`` as read from the provider.
        metrics: the metrics to build. Defaults to the health-map metrics.

    Returns:
        ``{"steps": [...], "points": n, "metrics": {metric: [[v, ...], ...]}}``
        where ``points`` is the largest number of points any one tag kept,
        the number to compare with the run's event count to detect thinning.
    """
    metrics = tuple(metrics)
    steps = sorted(
        {
            int(step)
            for metric in metrics
            for layer in layers
            for step, _ in series.get(schema.scalar_tag(metric, layer), ())
        }
    )
    column = {step: i for i, step in enumerate(steps)}
    points = 0
    matrices = {}
    for metric in metrics:
        rows = []
        for layer in layers:
            row = [None] * len(steps)
            data = series.get(schema.scalar_tag(metric, layer), ())
            points = max(points, len(data))
            for step, value in data:
                # With two events at one step the later one wins, as in the
                # Scalars dashboard's tooltip.
                row[column[int(step)]] = finite_or_none(value)
            rows.append(row)
        matrices[metric] = rows
    return {"steps": steps, "points": points, "metrics": matrices}


def histogram_heatmap(
    histograms: Sequence[tuple[int, Sequence[Sequence[float]]]],
    rows: int = HISTOGRAM_ROWS,
) -> dict:
    """Histograms over time as one ``steps x rows`` density grid.

    Each histogram is a list of ``(left, right, count)`` buckets. The counts
    are spread onto ``rows`` equal bins spanning every histogram's range, in
    proportion to how much of each bucket falls into each bin (a bucket of
    zero width goes to the bin holding it), then normalized so that each
    step's densities sum to 1.

    Args:
        histograms: ``[(step, buckets), ...]`` in step order.
        rows: the number of bins of the shared grid. Defaults to
            `HISTOGRAM_ROWS`.

    Returns:
        ``{"steps": [...], "edges": [rows + 1 floats], "density":
        [[rows floats] per step]}``; empty lists when there is no finite
        bucket.
    """
    lows, highs = [], []
    for _, buckets in histograms:
        for left, right, count in buckets:
            if count and math.isfinite(left) and math.isfinite(right):
                lows.append(min(left, right))
                highs.append(max(left, right))
    if not lows:
        return {"steps": [], "edges": [], "density": []}
    low, high = min(lows), max(highs)
    if high <= low:
        # Every value identical (a dead layer outputs only zeros): give the
        # single value a visible, centred bin.
        half = abs(low) * 1e-3 or 1e-3
        low, high = low - half, high + half
    width = (high - low) / rows
    edges = [low + i * width for i in range(rows)] + [high]
    steps, density = [], []
    for step, buckets in histograms:
        column = [0.0] * rows
        for left, right, count in buckets:
            if not count or not (math.isfinite(left) and math.isfinite(right)):
                continue
            left, right = min(left, right), max(left, right)
            first = min(rows - 1, max(0, int((left - low) / width)))
            last = min(rows - 1, max(0, int((right - low) / width)))
            if right == left or first == last:
                column[first] += count
                continue
            for b in range(first, last + 1):
                overlap = min(right, edges[b + 1]) - max(left, edges[b])
                if overlap > 0:
                    column[b] += count * overlap / (right - left)
        total = sum(column)
        steps.append(int(step))
        density.append([c / total if total else 0.0 for c in column])
    return {"steps": steps, "edges": edges, "density": density}
