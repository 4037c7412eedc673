"""What the health monitor writes and the dashboard reads: the tag scheme.

This module is the contract between `kerasinit.monitor` (the writer) and
`kerasinit_tensorboard` (the reader). It is pure Python, so both sides, and
TensorBoard itself, can import it without TensorFlow.

Layout of a log directory::

    log_dir/
      kerasinit/         <- RUN_SUBDIR: the monitor's own run (the probe)
        events.out.tfevents...
      kerasinit-batch/   <- BATCH_RUN_SUBDIR: the training batch's, if
        events.out...       measured (same tags)
      train/ validation/ <- keras.callbacks.TensorBoard, if also used

Tags, with ``{layer}`` the layer's path in the model (nested models joined
with ``/``, e.g. ``encoder/dense_1``):

* scalars ``{metric}/{layer}`` for every metric in `ACTIVATION_METRICS` and
  `GRADIENT_METRICS`: TensorBoard groups scalars by the text before the first
  ``/``, so each metric is one section holding every layer;
* histograms ``activations/{layer}`` and ``gradients/{layer}`` in the standard
  histogram format (a ``[k, 3]`` tensor of left edge, right edge, count,
  with the ``histograms`` plugin's metadata);
* the text summary `FINDINGS_TEXT_TAG` (Text dashboard), one per event that
  has new findings;
* the plugin tensor `RECORD_TAG` (plugin name `PLUGIN_NAME`), one per logging
  event: a UTF-8 JSON string, see `record`.
* the custom-scalars layout (written once, to the run), as
  `kerasinit_tensorboard.layout.scalars_layout` builds it: one chart per
  metric holding every layer, and one closed section per layer.

Downsampling: TensorBoard keeps a bounded reservoir per tag (by default 10
points for a third-party plugin's tensors in the Python loader, 100 in the Rust
data server, 1000 for scalars, 500 for histograms) and *always keeps the most
recent point*. The record is therefore cumulative where loss would matter: the
latest record carries every finding so far and the layer list, so findings can
never be hidden by downsampling. The per-event statistics for the health map
come from the scalar tags; the record's `event` counter lets a reader detect
when the scalars were thinned.
"""

from __future__ import annotations

import json

PLUGIN_NAME = "kerasinit"
SCHEMA_VERSION = 2
RUN_SUBDIR = "kerasinit"
#: The run of the statistics measured on the training batch, inside the
#: train step (``HealthMonitor(source="batch")``), beside `RUN_SUBDIR`.
BATCH_RUN_SUBDIR = "kerasinit-batch"
RECORD_TAG = "kerasinit/record"
FINDINGS_TEXT_TAG = "kerasinit/findings"
ACTIVATION_HISTOGRAM_PREFIX = "activations"
GRADIENT_HISTOGRAM_PREFIX = "gradients"

#: Per-layer activation statistics, in display order.
ACTIVATION_METRICS = (
    "act_mean",
    "act_std",
    "act_min",
    "act_max",
    "zero_fraction",
    "dead_fraction",
    "saturation_fraction",
    "act_nonfinite",
    "act_rms",
    "signal_gain",
    "cosine_similarity",
    "duplicate_fraction",
)
#: Per-layer gradient statistics (need a probe with targets).
GRADIENT_METRICS = (
    "grad_norm",
    "weight_norm",
    "grad_weight_ratio",
    "grad_nonfinite",
    "update_ratio",
)
#: What each metric is called on the page and in the custom-scalars layout.
METRIC_LABELS = {
    "act_mean": "activation mean",
    "act_std": "activation std",
    "act_min": "activation min",
    "act_max": "activation max",
    "zero_fraction": "zero fraction",
    "dead_fraction": "dead fraction",
    "saturation_fraction": "saturated fraction",
    "act_nonfinite": "non-finite activations",
    "act_rms": "activation rms",
    "signal_gain": "signal gain",
    "cosine_similarity": "cosine similarity between examples",
    "duplicate_fraction": "duplicate fraction",
    "grad_norm": "gradient norm",
    "weight_norm": "weight norm",
    "grad_weight_ratio": "gradient / weight norm",
    "grad_nonfinite": "non-finite gradient entries",
    "update_ratio": "update / weight norm",
}
#: The metrics the dashboard's health map and depth profile show, and how.
#: ``scale`` is ``"log"`` for quantities that span decades (a signal that
#: vanishes over depth is one dark block on a linear scale; on a log scale
#: every decade gets its own colour), drawn on one range shared by every
#: shown run, where 0 is an underflow and not a value; ``"fraction"`` is the
#: fixed range [0, 1]. ``transform`` is the same choice under its older name.
HEATMAP_METRICS = {
    "act_std": {
        "label": "activation std",
        "transform": "log10",
        "scale": "log",
    },
    "grad_norm": {
        "label": "gradient norm",
        "transform": "log10",
        "scale": "log",
    },
    "dead_fraction": {
        "label": "dead fraction",
        "transform": "identity",
        "scale": "fraction",
    },
    "saturation_fraction": {
        "label": "saturated fraction",
        "transform": "identity",
        "scale": "fraction",
    },
}
#: Severities, least to most severe (as `kerasinit.findings.SEVERITIES`).
SEVERITIES = ("info", "warning", "error")
#: Finding kinds, stable identifiers shared by warnings, text and the record.
FINDING_KINDS = (
    "dead_units",
    "saturation",
    "vanishing_gradients",
    "exploding_gradients",
    "nonfinite",
    "exploding_signal",
    "vanishing_signal",
    "representation_collapse",
    "symmetric_weights",
    "learning_rate_high",
    "learning_rate_low",
)


def scalar_tag(metric: str, layer: str) -> str:
    return f"{metric}/{layer}"


def split_scalar_tag(tag: str) -> tuple[str, str] | None:
    """``(metric, layer)`` for a monitor scalar tag, else ``None``."""
    metric, sep, layer = tag.partition("/")
    if not sep or metric not in ACTIVATION_METRICS + GRADIENT_METRICS:
        return None
    return metric, layer


def histogram_tag(prefix: str, layer: str) -> str:
    return f"{prefix}/{layer}"


def record(
    *,
    step: int,
    event: int,
    epoch: int | None,
    phase: str,
    layers: list[dict],
    stats: dict[str, dict[str, float]],
    findings: list[dict],
    diagnoses: list[dict] | None = None,
    skipped_events: int = 0,
) -> str:
    """Serialize one logging event for `RECORD_TAG`.

    Args:
        step: the global training step of the event (0 for pre-flight).
        event: 0-based count of logging events in this run (continues across
            resumed runs), so a reader can tell how many events exist even
            when TensorBoard kept only some.
        epoch: the epoch, or None at pre-flight.
        phase: ``"preflight"``, ``"step"`` or ``"epoch"``.
        layers: every monitored layer in model order, each
            ``{"name", "class", "activation"}``.
        stats: ``{layer: {metric: value}}`` for this event (non-finite values
            as ``None``).
        findings: *every* finding so far in the run, each
            ``{"kind", "layer", "step", "value", "threshold", "message",
            "advice", "severity"}``: the per-layer evidence.
        diagnoses: *every* diagnosis so far in the run, each
            `kerasinit.findings.Diagnosis.to_dict()`: ``{"kind", "severity",
            "first_layer", "layers", "step", "value", "threshold",
            "message", "evidence", "cause", "advice", "findings"}``. A
            version-1 record has none; `parse_record` gives it ``[]``.
        skipped_events: how many events of the run failed inside the
            monitor and were skipped (training went on). Defaults to `0`.
    """
    return json.dumps(
        {
            "version": SCHEMA_VERSION,
            "step": int(step),
            "event": int(event),
            "epoch": epoch,
            "phase": phase,
            "layers": layers,
            "stats": stats,
            "findings": findings,
            "diagnoses": list(diagnoses or []),
            "skipped_events": int(skipped_events),
        },
        allow_nan=False,
        separators=(",", ":"),
    )


def parse_record(text: str | bytes) -> dict:
    """Inverse of `record`; raises ValueError on a malformed or newer record."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    data = json.loads(text)
    if not isinstance(data, dict) or "version" not in data:
        raise ValueError("not a kerasinit record")
    if data["version"] > SCHEMA_VERSION:
        raise ValueError(
            f"record version {data['version']} is newer than this reader "
            f"({SCHEMA_VERSION}); upgrade kerasinit"
        )
    data.setdefault("diagnoses", [])
    data.setdefault("skipped_events", 0)
    return data
