"""Reading event files back with the public reader."""

import os

import numpy as np

from kerasinit.monitor import event_files, summaries
from kerasinit.monitor.result import ProbeResult
from kerasinit_tensorboard import schema


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
