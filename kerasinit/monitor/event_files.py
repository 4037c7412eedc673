"""Reading event files back: the monitor's own runs, and the tests'.

Event files are TFRecord files of `Event` protocol buffers. They are read
with the public `tf.data.TFRecordDataset` and TensorBoard's own `Event`
proto, so a file cut short by a killed run yields every complete record
before the cut.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import tensorflow as tf
from tensorboard.compat.proto import event_pb2
from tensorboard.util import tensor_util

from kerasinit_tensorboard import schema

__all__ = ["EventValue", "events", "read_run", "records"]


def events(path: str | os.PathLike) -> Iterator[event_pb2.Event]:
    """Every `Event` of one event file, in order.

    Args:
        path: the event file.

    Yields:
        The events up to the first record that cannot be read (a file cut
        short by a killed run ends there).
    """
    dataset = tf.data.TFRecordDataset(os.fspath(path))
    iterator = iter(dataset)
    while True:
        try:
            raw = next(iterator)
        except StopIteration:
            return
        except tf.errors.DataLossError:
            return
        yield event_pb2.Event.FromString(raw.numpy())


class EventValue:
    """One summary value of an event, decoded.

    Attributes:
        step: the event's step.
        tag: the value's tag.
        value: the tensor as a NumPy array (`None` for a value without a
            tensor).
        plugin_name: the plugin the value's metadata names.
    """

    __slots__ = ("step", "tag", "value", "plugin_name")

    def __init__(self, step: int, tag: str, value, plugin_name: str):
        self.step = step
        self.tag = tag
        self.value = value
        self.plugin_name = plugin_name

    def __iter__(self):
        return iter((self.step, self.tag, self.value, self.plugin_name))


def read_run(run_dir: str | os.PathLike) -> list[EventValue]:
    """Every summary value of every event file of a run directory.

    Args:
        run_dir: the directory holding the event files (for the monitor,
            ``log_dir/kerasinit``).

    Returns:
        The values, files in name order and events in file order.
    """
    pattern = os.path.join(os.fspath(run_dir), "events.out.tfevents*")
    out = []
    for path in sorted(tf.io.gfile.glob(pattern)):
        for event in events(path):
            for value in event.summary.value:
                array = (
                    tensor_util.make_ndarray(value.tensor)
                    if value.HasField("tensor")
                    else None
                )
                out.append(
                    EventValue(
                        event.step,
                        value.tag,
                        array,
                        value.metadata.plugin_data.plugin_name,
                    )
                )
    return out


def records(run_dir: str | os.PathLike) -> list[dict]:
    """The monitor's records (`schema.parse_record`) of a run, in order."""
    return [
        schema.parse_record(np.asarray(v.value).item())
        for v in read_run(run_dir)
        if v.tag == schema.RECORD_TAG
    ]
