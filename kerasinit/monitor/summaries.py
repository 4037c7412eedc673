"""Host-side TensorBoard writing, once per logging event.

Everything written here comes from the probe's one transferred result, with
tags exactly as `kerasinit_tensorboard.schema` specifies, into the monitor's
own run subdirectory (``log_dir/kerasinit``) so it sits beside the runs of
`keras.callbacks.TensorBoard`. The writer is created on the first event and
flushed after every event, so a run that is killed keeps everything logged
before.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import tensorflow as tf
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import summary as custom_scalar_summary
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.util import tensor_util

from kerasinit.findings import Finding
from kerasinit_tensorboard import schema

__all__ = ["EventWriter", "record_metadata", "scalars_layout"]


def record_metadata() -> summary_pb2.SummaryMetadata:
    """Metadata that makes TensorBoard list the record under the plugin."""
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=schema.PLUGIN_NAME, content=b""
        ),
        data_class=summary_pb2.DATA_CLASS_TENSOR,
    )


def scalars_layout(metrics) -> layout_pb2.Layout:
    """Custom-scalars layout: one multi-line chart per metric, all layers."""
    charts = [
        layout_pb2.Chart(
            title=metric,
            multiline=layout_pb2.MultilineChartContent(tag=[rf"^{metric}/"]),
        )
        for metric in metrics
    ]
    return layout_pb2.Layout(
        category=[layout_pb2.Category(title="kerasinit", chart=charts)]
    )


def _json_number(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


class EventWriter:
    """Writes the monitor's events to ``log_dir/<schema.RUN_SUBDIR>``.

    Args:
        log_dir: the TensorBoard log directory.
    """

    def __init__(self, log_dir: str):
        self.log_dir = os.fspath(log_dir)
        self.run_dir = os.path.join(self.log_dir, schema.RUN_SUBDIR)
        self._writer = None
        self._layout_written = False

    @property
    def writer(self):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.run_dir)
        return self._writer

    def write_event(
        self,
        *,
        step: int,
        event: int,
        epoch: int | None,
        phase: str,
        layers: list[dict],
        result: dict[str, Any],
        new_findings: list[Finding],
        all_findings: list[Finding],
    ) -> dict[str, dict[str, float | None]]:
        """Write one event; return the JSON-safe statistics of the record."""
        metrics = schema.ACTIVATION_METRICS + schema.GRADIENT_METRICS
        record_stats: dict[str, dict[str, float | None]] = {}
        hist_meta = {}
        with self.writer.as_default(step=step):
            if not self._layout_written:
                layout = custom_scalar_summary.pb(scalars_layout(metrics))
                tf.summary.experimental.write_raw_pb(
                    layout.SerializeToString(), step=step
                )
                self._layout_written = True
            for layer, values in result["layers"].items():
                record_stats[layer] = {}
                for metric in metrics:
                    if metric not in values:
                        continue
                    value = values[metric]
                    tf.summary.scalar(schema.scalar_tag(metric, layer), value)
                    record_stats[layer][metric] = _json_number(value)
                for key, prefix in (
                    ("histogram", schema.ACTIVATION_HISTOGRAM_PREFIX),
                    ("grad_histogram", schema.GRADIENT_HISTOGRAM_PREFIX),
                ):
                    if key not in values:
                        continue
                    tag = schema.histogram_tag(prefix, layer)
                    if tag not in hist_meta:
                        hist_meta[tag] = (
                            histogram_metadata.create_summary_metadata(
                                display_name=tag, description=""
                            )
                        )
                    tf.summary.write(
                        tag,
                        tf.constant(np.asarray(values[key], np.float64)),
                        metadata=hist_meta[tag],
                    )
            if new_findings:
                lines = [
                    f"* **{f.kind}** (step {f.step}): {f}" for f in new_findings
                ]
                tf.summary.text(schema.FINDINGS_TEXT_TAG, "\n".join(lines))
            text = schema.record(
                step=step,
                event=event,
                epoch=epoch,
                phase=phase,
                layers=layers,
                stats=record_stats,
                findings=[f.to_dict() for f in all_findings],
            )
            tf.summary.write(
                schema.RECORD_TAG,
                tf.constant(text),
                metadata=record_metadata(),
            )
        self.writer.flush()
        return record_stats

    def last_event(self) -> int:
        """The largest record ``event`` already in the run, or -1.

        Lets a new monitor resuming into an existing run continue the event
        counter instead of restarting it.
        """
        last = -1
        pattern = os.path.join(self.run_dir, "events.out.tfevents*")
        for path in tf.io.gfile.glob(pattern):
            try:
                for event in tf.compat.v1.train.summary_iterator(path):
                    for value in event.summary.value:
                        if value.tag != schema.RECORD_TAG:
                            continue
                        text = tensor_util.make_ndarray(value.tensor).item()
                        last = max(last, schema.parse_record(text)["event"])
            except (tf.errors.DataLossError, ValueError):
                # A file cut short by a killed run still counts up to
                # where it was readable.
                continue
        return last

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
