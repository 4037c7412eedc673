"""Writes a log directory exactly as `kerasinit_tensorboard.schema` says.

Used where a test needs data with a known shape (a given number of events,
hostile names, thinned scalars) that a real training run cannot produce
cheaply. Tests of the whole path use a real `HealthMonitor` run instead.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.histogram import metadata as histogram_metadata

from kerasinit_tensorboard import schema


def _record_metadata():
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=schema.PLUGIN_NAME
        ),
        data_class=summary_pb2.DATA_CLASS_TENSOR,
    )


def write_run(
    run_dir: str,
    layers: list[str],
    steps: list[int],
    stats,
    findings_at: dict[int, list[dict]] | None = None,
    histograms: bool = True,
) -> None:
    """Writes one event per step into ``run_dir/kerasinit``.

    Args:
        run_dir: the log dir the monitor would have been given.
        layers: layer paths, in model order.
        steps: the global step of each logging event.
        stats: ``stats(event, layer) -> {metric: value}``.
        findings_at: ``{event: [finding dict, ...]}``: findings first seen at
            that event; records carry every finding so far.
        histograms: whether to write activation/gradient histograms.
    """
    findings_at = findings_at or {}
    writer = tf.summary.create_file_writer(
        os.path.join(run_dir, schema.RUN_SUBDIR)
    )
    rng = np.random.default_rng(0)
    so_far = []
    with writer.as_default():
        for event, step in enumerate(steps):
            event_stats = {layer: stats(event, layer) for layer in layers}
            for layer, values in event_stats.items():
                for metric, value in values.items():
                    tf.summary.scalar(
                        schema.scalar_tag(metric, layer), value, step=step
                    )
                if histograms:
                    scale = values.get("act_std", 1.0) or 1e-6
                    counts, edges = np.histogram(
                        rng.normal(0.0, scale, 256), bins=30
                    )
                    buckets = np.stack(
                        [edges[:-1], edges[1:], counts], axis=1
                    ).astype(np.float64)
                    for prefix in (
                        schema.ACTIVATION_HISTOGRAM_PREFIX,
                        schema.GRADIENT_HISTOGRAM_PREFIX,
                    ):
                        tf.summary.write(
                            schema.histogram_tag(prefix, layer),
                            tf.constant(buckets),
                            step=step,
                            metadata=histogram_metadata.create_summary_metadata(
                                display_name="", description=""
                            ),
                        )
            so_far.extend(findings_at.get(event, []))
            record = schema.record(
                step=step,
                event=event,
                epoch=None if event == 0 else event,
                phase="preflight" if event == 0 else "step",
                layers=[
                    {"name": n, "class": "Dense", "activation": "relu"}
                    for n in layers
                ],
                stats=event_stats,
                findings=list(so_far),
            )
            tf.summary.write(
                schema.RECORD_TAG,
                tf.constant(record),
                step=step,
                metadata=_record_metadata(),
            )
    writer.close()


def finding(kind: str, layer: str, step: int, value: float = 0.9) -> dict:
    return {
        "kind": kind,
        "layer": layer,
        "step": step,
        "value": value,
        "threshold": 0.5,
        "message": f"{layer}: {kind} at step {step}.",
        "advice": "Use He init.",
        "severity": "warning",
    }
