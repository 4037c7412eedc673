"""Event files written and read back without TensorFlow."""

import os

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_file_loader import (
    EventFileLoader,
)
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import (
    masked_crc32c as reference_crc,
)
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata
from tensorboard.util import tensor_util

from kerasinit.monitor import event_files, summaries
from kerasinit.monitor.result import ProbeResult
from kerasinit_tensorboard import schema
from kerasinit_tensorboard.layout import scalars_layout


def _write(log_dir, events):
    writer = summaries.EventWriter(str(log_dir))
    result = ProbeResult(
        layers={"d": {"act_mean": 0.5, "act_rms": float("nan")}},
        reference_grad_norm=None,
        input_rms=1.0,
        loss=None,
        activation_histograms={"d": np.array([[0.0, 1.0, 3.0]])},
        gradient_histograms={},
    )
    for event in range(events):
        writer.write_event(
            step=10 * event,
            event=event,
            epoch=None,
            phase="step",
            layers=[{"name": "d", "class": "Dense", "activation": "relu"}],
            result=result,
            new_diagnoses=[],
            all_diagnoses=[],
            all_findings=[],
        )
    writer.close()
    return writer.run_dir


def test_every_value_is_read_back(tmp_path):
    run = _write(tmp_path, 3)
    values = event_files.read_run(run)
    steps = [v.step for v in values if v.tag == schema.RECORD_TAG]
    assert steps == [0, 10, 20]
    rms = [v.value for v in values if v.tag == "act_rms/d"]
    assert len(rms) == 3 and np.isnan(rms[0])
    histogram = [v for v in values if v.tag == "activations/d"][0]
    assert histogram.plugin_name == "histograms"
    np.testing.assert_array_equal(histogram.value, [[0.0, 1.0, 3.0]])
    assert [r["stats"]["d"]["act_rms"] for r in event_files.records(run)] == [
        None
    ] * 3


def test_a_file_cut_short_yields_the_records_before_the_cut(tmp_path):
    run = _write(tmp_path, 3)
    (path,) = [os.path.join(run, f) for f in os.listdir(run)]
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 20)
    assert [r["event"] for r in event_files.records(run)] == [0, 1]
    # A resumed monitor continues the event counter from there.
    assert summaries.EventWriter(str(tmp_path)).last_event() == 1


@pytest.mark.parametrize("size", [0, 1, 8, 511, 512, 513, 4096, 100_003])
def test_masked_crc32c_matches_tensorboards_own(size):
    data = np.random.default_rng(size).integers(0, 256, size, np.uint8)
    data = data.tobytes()
    assert event_files.masked_crc32c(data) == reference_crc(data)
    # Both implementations: the C one the package installs, and the NumPy
    # one used where only google-crc32c's pure-Python fallback is.
    assert event_files._checksum is event_files._c_crc32c
    assert event_files._crc32c(data) == event_files._c_crc32c(data)


def test_tensorboards_own_loader_reads_the_file(tmp_path):
    run = _write(tmp_path, 2)
    (path,) = [os.path.join(run, f) for f in os.listdir(run)]
    loaded = list(EventFileLoader(path).Load())
    assert loaded[0].file_version == "brain.Event:2"
    assert [e.step for e in loaded[1:]] == [0, 10]
    tags = {v.tag for v in loaded[1].summary.value}
    assert {"act_mean/d", schema.RECORD_TAG} <= tags
    # The custom scalars layout is written once, as the plugin's helper
    # would: the serialized `Layout` proto under the plugin's tag.
    (config,) = [
        v
        for v in loaded[1].summary.value
        if v.tag == custom_scalar_metadata.CONFIG_SUMMARY_TAG
    ]
    assert config.metadata.plugin_data.plugin_name == "custom_scalars"
    layout = layout_pb2.Layout.FromString(
        tensor_util.make_ndarray(config.tensor).item()
    )
    assert layout == scalars_layout(
        schema.ACTIVATION_METRICS + schema.GRADIENT_METRICS, layers=["d"]
    )
    assert custom_scalar_metadata.CONFIG_SUMMARY_TAG not in {
        v.tag for v in loaded[2].summary.value
    }


def test_a_damaged_record_ends_the_reading(tmp_path):
    run = _write(tmp_path, 3)
    (path,) = [os.path.join(run, f) for f in os.listdir(run)]
    content = bytearray(open(path, "rb").read())
    # Flip one byte in the last record's data.
    content[-30] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(content))
    assert [r["event"] for r in event_files.records(run)] == [0, 1]
