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


def json_value(value) -> float | str | None:
    """A statistic for the page: a float, ``"nan"``, ``"inf"``, ``"-inf"``.

    JSON has no NaN or infinity, and the page must tell a non-finite value
    (the run broke) from a missing one (``None``: nothing was measured).
    """
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def health_matrices(
    layers: Sequence[str],
    series: dict[str, Sequence[tuple[int, float]]],
    metrics: Iterable[str] = tuple(schema.HEATMAP_METRICS),
) -> dict:
    """One ``layers x steps`` matrix per metric from per-tag scalar series.

    Args:
        layers: layer paths in model order (the matrices' rows).
        series: ``{tag: [(step, value), ...]}`` as read from the provider;
            tags that are not the monitor's scalar tags are ignored.
        metrics: the metrics to build. Defaults to the health-map metrics.

    Returns:
        ``{"steps": [...], "points": n, "metrics": {metric: [[v, ...], ...]}}``
        with each ``v`` as `json_value` gives it, where ``points`` is the
        largest number of points any one tag kept, the number to compare
        with the run's event count to detect thinning.
    """
    metrics = tuple(metrics)
    row_of = {layer: i for i, layer in enumerate(layers)}
    wanted = {}
    for tag, data in series.items():
        split = schema.split_scalar_tag(tag)
        if split and split[0] in metrics and split[1] in row_of:
            wanted[split] = data
    steps = sorted({int(step) for data in wanted.values() for step, _ in data})
    column = {step: i for i, step in enumerate(steps)}
    matrices = {
        metric: [[None] * len(steps) for _ in layers] for metric in metrics
    }
    points = 0
    for (metric, layer), data in wanted.items():
        points = max(points, len(data))
        row = matrices[metric][row_of[layer]]
        for step, value in data:
            # With two events at one step the later one wins, as in the
            # Scalars dashboard's tooltip.
            row[column[int(step)]] = json_value(value)
    return {"steps": steps, "points": points, "metrics": matrices}


def worst_severity(severities: Iterable[str]) -> str | None:
    """The most severe of ``severities`` in `schema.SEVERITIES`, or None."""
    rank = {s: i for i, s in enumerate(schema.SEVERITIES)}
    known = [s for s in severities if s in rank]
    return max(known, key=rank.__getitem__) if known else None


def _clean_diagnosis(diagnosis: dict) -> dict:
    step = diagnosis.get("step")
    layers = [str(x) for x in diagnosis.get("layers") or []]
    first = str(diagnosis.get("first_layer", ""))
    return {
        "kind": str(diagnosis.get("kind", "")),
        "severity": str(diagnosis.get("severity", "warning")),
        "first_layer": first,
        "layers": layers or ([first] if first else []),
        "step": int(step) if isinstance(step, (int, float)) else None,
        "value": finite_or_none(diagnosis.get("value")),
        "threshold": finite_or_none(diagnosis.get("threshold")),
        "message": str(diagnosis.get("message", "")),
        "evidence": str(diagnosis.get("evidence", "")),
        "cause": str(diagnosis.get("cause", "")),
        "advice": str(diagnosis.get("advice", "")),
        "findings": [
            clean_finding(f)
            for f in diagnosis.get("findings") or []
            if isinstance(f, dict)
        ],
    }


def verdicts(record: dict) -> dict:
    """One verdict per problem: the record's diagnoses, or grouped findings.

    A record that carries diagnoses gives them as they are. A record without
    (written before the monitor grouped its findings) gets its per-layer
    findings grouped by kind and by runs of adjacent layers in model order,
    so that one vanishing gradient through 40 layers is one row and not 40.
    A model-wide finding (no layer) is a group of its own.

    Args:
        record: a parsed record (`schema.parse_record`).

    Returns:
        ``{"source": "diagnoses" | "findings", "verdicts": [...]}``, each
        verdict with the fields of `kerasinit.findings.Diagnosis.to_dict`,
        most severe first, then by first layer in model order.
    """
    order = {name: i for i, name in enumerate(layer_names(record))}
    raw = [d for d in record.get("diagnoses") or [] if isinstance(d, dict)]
    if raw:
        source = "diagnoses"
        out = [_clean_diagnosis(d) for d in raw]
    else:
        source = "findings"
        out = _grouped_findings(findings(record), order)
    rank = {s: i for i, s in enumerate(schema.SEVERITIES)}
    out.sort(
        key=lambda v: (
            -rank.get(v["severity"], -1),
            order.get(v["first_layer"], len(order)),
            v["kind"],
        )
    )
    return {"source": source, "verdicts": out}


def _grouped_findings(found: list[dict], order: dict[str, int]) -> list[dict]:
    by_kind: dict[str, list[dict]] = {}
    for finding in found:
        by_kind.setdefault(finding["kind"], []).append(finding)
    groups = []
    for kind, items in by_kind.items():
        # A condition that cleared and came back is reported again at a
        # later step; the layer's first report is the one that places it.
        first_report: dict[str, dict] = {}
        for finding in items:
            first_report.setdefault(finding["layer"], finding)
        located = sorted(
            (order[layer], layer) for layer in first_report if layer in order
        )
        runs: list[list[str]] = []
        previous = None
        for index, layer in located:
            if previous is None or index != previous + 1:
                runs.append([])
            runs[-1].append(layer)
            previous = index
        runs.extend([layer] for layer in first_report if layer not in order)
        for layers in runs:
            members = [f for f in items if f["layer"] in layers]
            groups.append(_group(kind, layers, members, first_report))
    return groups


def _group(kind, layers, members, first_report) -> dict:
    head = first_report[layers[0]]
    values = [
        first_report[layer]["value"]
        for layer in layers
        if first_report[layer]["value"] is not None
    ]
    where = layers[0] or "the model"
    if len(layers) > 1:
        spread = (
            f"; {len(layers)} adjacent layers, values from "
            f"{min(values):.3g} to {max(values):.3g}"
            if values
            else f"; {len(layers)} adjacent layers"
        )
    else:
        spread = ""
    value = head["value"]
    evidence = (
        f"{'non-finite' if value is None else format(value, '.3g')} at "
        f"{where} (threshold {head['threshold']:.3g}){spread}"
        if head["threshold"] is not None
        else f"at {where}{spread}"
    )
    kind_text = kind.replace("_", " ")
    span = ""
    if len(layers) > 1:
        span = f" and {len(layers) - 1} layer(s) after it"
    return {
        "kind": kind,
        "severity": worst_severity(f["severity"] for f in members) or "warning",
        "first_layer": layers[0],
        "layers": list(layers),
        "step": min(
            (f["step"] for f in members if f["step"] is not None),
            default=None,
        ),
        "value": value,
        "threshold": head["threshold"],
        "message": f"{kind_text} from '{where}'{span}: {evidence}",
        "evidence": evidence,
        "cause": "",
        "advice": head["advice"],
        "findings": members,
    }


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
