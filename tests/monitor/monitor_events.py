"""Reading a monitor run back from its event files."""

from __future__ import annotations

import glob
import os

import numpy as np
import tensorflow as tf
from tensorboard.util import tensor_util

from kerasinit_tensorboard import schema


def read_events(log_dir):
    """Every (step, tag, value, plugin_name) in the monitor's run directory."""
    run = os.path.join(os.fspath(log_dir), schema.RUN_SUBDIR)
    out = []
    for path in sorted(glob.glob(os.path.join(run, "events.out.tfevents*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                array = (
                    tensor_util.make_ndarray(value.tensor)
                    if value.HasField("tensor")
                    else None
                )
                out.append(
                    (
                        event.step,
                        value.tag,
                        array,
                        value.metadata.plugin_data.plugin_name,
                    )
                )
    return out


def tags(log_dir) -> set[str]:
    return {tag for _, tag, _, _ in read_events(log_dir)}


def records(log_dir) -> list[dict]:
    return [
        schema.parse_record(np.asarray(v).item())
        for _, tag, v, _ in read_events(log_dir)
        if tag == schema.RECORD_TAG
    ]


def scalars(log_dir, tag) -> list[tuple[int, float]]:
    return [
        (step, float(v)) for step, t, v, _ in read_events(log_dir) if t == tag
    ]
