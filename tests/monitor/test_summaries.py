"""The event bytes the writer puts together equal protobuf's own."""

import math

import numpy as np
import pytest
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.util import tensor_util

from kerasinit.monitor import event_files, summaries
from kerasinit_tensorboard import schema


@pytest.mark.parametrize(
    "value", [0.0, -1.5, 1e-30, 3.4e38, 1e39, -1e39, math.inf, math.nan, 7]
)
def test_scalar_value_bytes_equal_protobuf(tmp_path, value):
    writer = summaries.EventWriter(str(tmp_path))
    tag = schema.scalar_tag("act_mean", "block/dense_1")
    with np.errstate(over="ignore"):
        as_float32 = np.float32(value)
    expected = summary_pb2.Summary.Value(
        tag=tag,
        tensor=tensor_util.make_tensor_proto(as_float32),
        metadata=summaries._scalar_metadata(),
    ).SerializeToString()
    assert writer._scalar_bytes(tag, value) == expected


@pytest.mark.parametrize("step", [0, 1, 127, 128, 300, 2**40])
@pytest.mark.parametrize("wall_time", [0.0, 1234.5])
def test_event_bytes_equal_protobuf(step, wall_time):
    values = [
        summary_pb2.Summary.Value(
            tag=f"t{i}", tensor=tensor_util.make_tensor_proto(np.float32(i))
        )
        for i in range(3)
    ]
    # Long enough for a length of several varint bytes.
    values.append(
        summary_pb2.Summary.Value(
            tag="long",
            tensor=tensor_util.make_tensor_proto(
                np.arange(400, dtype=np.float64)
            ),
        )
    )
    expected = event_pb2.Event(
        wall_time=wall_time,
        step=step,
        summary=summary_pb2.Summary(value=values),
    ).SerializeToString()
    got = summaries._event_bytes(
        wall_time, step, [v.SerializeToString() for v in values]
    )
    assert got == expected


def test_written_scalars_read_back(tmp_path):
    from kerasinit.monitor.result import ProbeResult

    layers = {"dense": {"act_mean": 0.25, "act_std": math.nan}}
    result = ProbeResult(
        layers=layers,
        reference_grad_norm=None,
        input_rms=None,
        loss=None,
        activation_histograms={},
        gradient_histograms={},
    )
    writer = summaries.EventWriter(str(tmp_path))
    for step in (0, 5):
        writer.write_event(
            step=step,
            event=step,
            epoch=None,
            phase="step",
            layers=[{"name": "dense", "class": "Dense", "activation": "relu"}],
            result=result,
            new_diagnoses=[],
            all_diagnoses=[],
            all_findings=[],
            record=step == 0,
        )
    writer.close()
    values = event_files.read_run(writer.run_dir)
    means = [
        (v.step, float(v.value), v.plugin_name)
        for v in values
        if v.tag == schema.scalar_tag("act_mean", "dense")
    ]
    assert means == [(0, 0.25, "scalars"), (5, 0.25, "scalars")]
    stds = [
        float(v.value)
        for v in values
        if v.tag == schema.scalar_tag("act_std", "dense")
    ]
    assert len(stds) == 2 and all(math.isnan(x) for x in stds)
    records = [v.step for v in values if v.tag == schema.RECORD_TAG]
    assert records == [0]
