"""Host-side TensorBoard writing, once per logging event.

Everything written here comes from the probe's one transferred result, with
tags exactly as `kerasinit_tensorboard.schema` specifies, into the monitor's
own run subdirectory (``log_dir/kerasinit``) so it sits beside the runs of
`keras.callbacks.TensorBoard`. The event file is created on the first event
and flushed after every event, so a run that is killed keeps everything
logged before.

An event's summaries are built as protocol buffers on the host and written as
one record by `event_files.RecordWriter`, which needs no TensorFlow (a JAX
or PyTorch process never imports it): `tf.summary` would also run one eager
operation per value, which for a model of tens of layers costs more than
the probe itself. The protos are the ones `tf.summary.scalar`,
`tf.summary.text` and the histogram plugin write, so TensorBoard's Scalars,
Histograms, Distributions, Text and Custom Scalars dashboards read them as
their own.
"""

from __future__ import annotations

import itertools
import math
import os
import socket
import struct
import time

import numpy as np
from tensorboard.compat.proto import (
    event_pb2,
    summary_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)
from tensorboard.compat.tensorflow_stub.io import gfile
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.plugins.text import metadata as text_metadata
from tensorboard.util import tensor_util

from kerasinit.findings import Diagnosis, Finding
from kerasinit.monitor import backends, event_files
from kerasinit.monitor.result import ProbeResult
from kerasinit_tensorboard import schema
from kerasinit_tensorboard.layout import scalars_layout

__all__ = ["EventWriter", "record_metadata"]


def record_metadata() -> summary_pb2.SummaryMetadata:
    """Metadata that makes TensorBoard list the record under the plugin."""
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=schema.PLUGIN_NAME, content=b""
        ),
        data_class=summary_pb2.DATA_CLASS_TENSOR,
    )


def _scalar_metadata() -> summary_pb2.SummaryMetadata:
    return scalar_metadata.create_summary_metadata(
        display_name="", description=""
    )


def _text_metadata() -> summary_pb2.SummaryMetadata:
    return text_metadata.create_summary_metadata(
        display_name="", description=""
    )


def _json_number(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


_FILE_IDS = itertools.count()


class EventWriter:
    """Writes the monitor's events to ``log_dir/<run>``.

    In a run of several processes (JAX's `jax.distributed`, TensorFlow's
    multi-worker strategies, `torch.distributed`) only the chief writes:
    the others build every event the same way and write nothing, so one
    set of events describes the run.

    Args:
        log_dir: the TensorBoard log directory.
        run: the run's subdirectory. Defaults to `schema.RUN_SUBDIR`.

    Attributes:
        chief: whether this process writes.
    """

    def __init__(self, log_dir: str, run: str = schema.RUN_SUBDIR):
        self.chief = backends.current().is_chief()
        self.log_dir = os.fspath(log_dir)
        self.run = run
        self.run_dir = os.path.join(self.log_dir, run)
        self._writer = None
        self._layout_written = False
        self._metadata: dict[str, summary_pb2.SummaryMetadata] = {}
        self._scalar_ends: dict[str, tuple[bytes, bytes]] = {}

    @property
    def writer(self) -> event_files.RecordWriter:
        if self._writer is not None and not _isdir(self.run_dir):
            # The run directory was removed while the file was open: what
            # is written now would go to an unlinked file. Start a new one.
            self.close()
        if self._writer is None:
            gfile.makedirs(self.run_dir)
            # The name TensorBoard looks for; the pid and a counter tell
            # apart the files of writers opened within the same second.
            name = (
                f"events.out.tfevents.{int(time.time()):010d}."
                f"{socket.gethostname()}.{os.getpid()}."
                # Zero-padded: readers order the files by name.
                f"{next(_FILE_IDS):06d}.v2"
            )
            self._writer = event_files.RecordWriter(
                os.path.join(self.run_dir, name)
            )
            header = event_pb2.Event(
                wall_time=time.time(), file_version="brain.Event:2"
            )
            self._writer.write(header.SerializeToString())
        return self._writer

    def _scalar_bytes(self, tag: str, value) -> bytes:
        """The serialized ``Summary.Value`` of one float32 scalar."""
        ends = self._scalar_ends.get(tag)
        if ends is None:
            metadata = self._meta(tag, _scalar_metadata).SerializeToString()
            name = tag.encode()
            ends = (
                b"\x0a" + _varint(len(name)) + name + b"\x42\x0a" + _FLOAT_HEAD,
                b"\x4a" + _varint(len(metadata)) + metadata,
            )
            self._scalar_ends[tag] = ends
        try:
            packed = _FLOAT32.pack(value)
        except OverflowError:
            # Beyond float32's range: what the cast to float32 gives.
            packed = _FLOAT32.pack(math.copysign(math.inf, value))
        return ends[0] + packed + ends[1]

    def _meta(self, tag: str, make) -> summary_pb2.SummaryMetadata:
        if tag not in self._metadata:
            self._metadata[tag] = make()
        return self._metadata[tag]

    def write_event(
        self,
        *,
        step: int,
        event: int,
        epoch: int | None,
        phase: str,
        layers: list[dict],
        result: ProbeResult,
        new_diagnoses: list[Diagnosis],
        all_diagnoses: list[Diagnosis],
        all_findings: list[Finding],
        skipped_events: int = 0,
        record: bool = True,
    ) -> dict[str, dict[str, float | None]]:
        """Write one event; return the JSON-safe statistics of the record.

        With ``record=False`` the event holds the scalars, histograms and
        text but no plugin record (the record is cumulative, and
        TensorBoard keeps only some of a tag's points: an event every step
        need not carry one).
        """
        metrics = schema.ACTIVATION_METRICS + schema.GRADIENT_METRICS
        record_stats: dict[str, dict[str, float | None]] = {}
        # Each value serialized on its own, the event put together from
        # them (`_event_bytes`): at an event every step, building a message
        # per scalar costs more than the rest of the event.
        values: list[bytes] = []
        if not self._layout_written:
            layout = scalars_layout(
                metrics, layers=[lyr["name"] for lyr in layers]
            )
            # What `custom_scalar.summary.pb` writes, without the TensorFlow
            # that helper imports.
            values.append(
                summary_pb2.Summary.Value(
                    tag=custom_scalar_metadata.CONFIG_SUMMARY_TAG,
                    tensor=tensor_util.make_tensor_proto(
                        np.array(layout.SerializeToString(), dtype=object)
                    ),
                    metadata=custom_scalar_metadata.create_summary_metadata(),
                ).SerializeToString()
            )
            self._layout_written = True
        for layer, layer_values in result.layers.items():
            record_stats[layer] = {}
            for metric in metrics:
                if metric not in layer_values:
                    continue
                value = layer_values[metric]
                tag = schema.scalar_tag(metric, layer)
                values.append(self._scalar_bytes(tag, value))
                record_stats[layer][metric] = _json_number(value)
            for histograms, prefix in (
                (
                    result.activation_histograms,
                    schema.ACTIVATION_HISTOGRAM_PREFIX,
                ),
                (result.gradient_histograms, schema.GRADIENT_HISTOGRAM_PREFIX),
            ):
                if layer not in histograms:
                    continue
                tag = schema.histogram_tag(prefix, layer)
                values.append(
                    summary_pb2.Summary.Value(
                        tag=tag,
                        tensor=_double_array_proto(histograms[layer]),
                        metadata=self._meta(
                            tag,
                            lambda tag=tag: (
                                histogram_metadata.create_summary_metadata(
                                    display_name=tag, description=""
                                )
                            ),
                        ),
                    ).SerializeToString()
                )
        if new_diagnoses:
            lines = [
                f"* **{d.severity}: {d.kind}** (step {d.step}): {d}"
                for d in new_diagnoses
            ]
            values.append(
                summary_pb2.Summary.Value(
                    tag=schema.FINDINGS_TEXT_TAG,
                    tensor=tensor_util.make_tensor_proto(
                        np.array("\n".join(lines), dtype=object)
                    ),
                    metadata=self._meta(
                        schema.FINDINGS_TEXT_TAG, _text_metadata
                    ),
                ).SerializeToString()
            )
        if record:
            text = schema.record(
                step=step,
                event=event,
                epoch=epoch,
                phase=phase,
                layers=layers,
                stats=record_stats,
                findings=[f.to_dict() for f in all_findings],
                diagnoses=[d.to_dict() for d in all_diagnoses],
                skipped_events=skipped_events,
            )
            values.append(
                summary_pb2.Summary.Value(
                    tag=schema.RECORD_TAG,
                    tensor=tensor_util.make_tensor_proto(
                        np.array(text, dtype=object)
                    ),
                    metadata=record_metadata(),
                ).SerializeToString()
            )
        if self.chief:
            self.writer.write(_event_bytes(time.time(), int(step), values))
            self.writer.flush()
        return record_stats

    def last_event(self) -> int:
        """The largest record ``event`` already in the run, or -1.

        Lets a new monitor resuming into an existing run continue the event
        counter instead of restarting it.
        """
        if not gfile.isdir(self.run_dir):
            return -1
        last = -1
        for value in event_files.read_run(self.run_dir):
            if value.tag != schema.RECORD_TAG:
                continue
            try:
                record = schema.parse_record(np.asarray(value.value).item())
            except ValueError:
                # A record this version cannot read counts as none.
                continue
            last = max(last, record["event"])
        return last

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


# What `tensor_util.make_tensor_proto` gives for a float64 array, built
# directly: at an event every step, its checks cost more than the rest of
# writing the event.
def _double_array_proto(array) -> tensor_pb2.TensorProto:
    array = np.ascontiguousarray(array, np.float64)
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_DOUBLE,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[
                tensor_shape_pb2.TensorShapeProto.Dim(size=n)
                for n in array.shape
            ]
        ),
        tensor_content=array.astype("<f8").tobytes(),
    )


def _isdir(path: str) -> bool:
    # A local path is checked at every event: the operating system's call
    # is far cheaper than the file-system layer's.
    if "://" in path:
        return gfile.isdir(path)
    return os.path.isdir(path)


# A float32 scalar's `TensorProto` up to its value: dtype DT_FLOAT (field
# 1), an empty shape (field 2), then packed `float_val` (field 5) of 4
# bytes; with the value, 10 bytes (the ``\x0a`` length before it).
_FLOAT_HEAD = b"\x08\x01\x12\x00\x2a\x04"
_FLOAT32 = struct.Struct("<f")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _event_bytes(wall_time: float, step: int, values: list[bytes]) -> bytes:
    """A serialized `Event` of serialized `Summary.Value` messages.

    The bytes `event_pb2.Event(wall_time=..., step=..., summary=...)`
    serializes to: fields in number order, wall_time (1, double), step
    (2, varint), summary (5, the values as its repeated field 1).
    """
    summary = b"".join(b"\x0a" + _varint(len(v)) + v for v in values)
    # A field at its default value (0) is left out, as protobuf does.
    head = b"\x09" + struct.pack("<d", wall_time) if wall_time else b""
    if step:
        head += b"\x10" + _varint(step & 0xFFFFFFFFFFFFFFFF)
    return head + b"\x2a" + _varint(len(summary)) + summary
