"""Reading a monitor run back from its event files."""

from __future__ import annotations

import os

from kerasinit.monitor import event_files
from kerasinit_tensorboard import schema


def read_events(log_dir):
    """Every (step, tag, value, plugin_name) in the monitor's run directory."""
    run = os.path.join(os.fspath(log_dir), schema.RUN_SUBDIR)
    return [tuple(v) for v in event_files.read_run(run)]


def tags(log_dir) -> set[str]:
    return {tag for _, tag, _, _ in read_events(log_dir)}


def records(log_dir) -> list[dict]:
    return event_files.records(os.path.join(log_dir, schema.RUN_SUBDIR))


def scalars(log_dir, tag) -> list[tuple[int, float]]:
    return [
        (step, float(v)) for step, t, v, _ in read_events(log_dir) if t == tag
    ]


def small_model():
    """Dense(8, relu) 'd1' and a linear head 'head', compiled with SGD."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu", name="d1"),
            keras.layers.Dense(1, name="head"),
        ]
    )
    model.compile("sgd", "mse")
    return model


def assert_same_run(expected: list[dict], got: list[dict]) -> None:
    """Two runs' records: same steps and verdicts, statistics within 1e-3.

    Gradients summed over several devices or processes round differently
    from one device's sum, and the weights drift apart by that much step
    after step; nothing is skipped in either run.
    """
    import numpy as np

    assert [r["step"] for r in got] == [r["step"] for r in expected]
    assert [r["skipped_events"] for r in got] == [0] * len(got)
    assert [d["kind"] for d in got[-1]["diagnoses"]] == [
        d["kind"] for d in expected[-1]["diagnoses"]
    ]
    for a, b in zip(expected, got):
        assert a["stats"].keys() == b["stats"].keys()
        for layer in a["stats"]:
            for metric, value in a["stats"][layer].items():
                other = b["stats"][layer][metric]
                if value is None:
                    assert other is None, (layer, metric)
                    continue
                np.testing.assert_allclose(
                    other, value, rtol=1e-3, atol=1e-6, err_msg=metric
                )
