"""The monitor under Keras's distribution API and in multi-process runs.

JAX's `keras.distribution.DataParallel` runs in subprocesses of their own
(XLA's device count is fixed when JAX starts): two CPU devices against one,
the same model, seed and data.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from monitor_events import assert_same_run

from kerasinit.monitor import backends, summaries
from kerasinit.monitor.result import ProbeResult

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

_RUN = textwrap.dedent(
    """
    import glob, json, os, sys
    # As if TensorFlow were not installed: Keras's seeding would import it.
    sys.modules["tensorflow"] = None
    import keras, numpy as np
    import kerasinit as ki
    from kerasinit.monitor import event_files

    log_dir, parallel, source = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
    if parallel:
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(
                devices=keras.distribution.list_devices()
            )
        )
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 10)).astype("float32")
    y = (x[:, :2].sum(axis=1) > 0).astype("int32")
    model = keras.Sequential([
        keras.Input((10,)),
        keras.layers.Dense(32, activation="relu"),
        # Dead from the start: the diagnosis must see it on both runs.
        keras.layers.Dense(16, activation="relu", bias_initializer=
                           keras.initializers.Constant(-30.0)),
        keras.layers.Dense(2),
    ])
    model.compile(keras.optimizers.SGD(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = ki.callbacks.HealthMonitor(
        log_dir, probe=(x[:128], y[:128]), every_n_steps=4, warn=False,
        source=source)
    # A record with every training-batch event, to compare them all.
    monitor.BATCH_RECORD_INTERVAL_S = 0.0
    model.fit(x, y, batch_size=64, epochs=3, shuffle=False, verbose=0,
              callbacks=[monitor])
    run = os.path.join(
        log_dir, "kerasinit" if source == "probe" else "kerasinit-batch")
    batch = monitor.last_batch_result
    print(json.dumps({
        "devices": len(keras.distribution.list_devices()),
        "files": len(glob.glob(os.path.join(run, "events.out.tfevents*"))),
        "records": event_files.records(run),
        "examples": batch.examples if batch is not None else None,
        "tensorflow": sys.modules.get("tensorflow") is not None,
    }))
    """
)


def _run(tmp_path, parallel: bool, source: str = "probe") -> dict:
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        PYTHONPATH=ROOT,
    )
    log_dir = tmp_path / ("parallel" if parallel else "single")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _RUN,
            str(log_dir),
            "1" if parallel else "0",
            source,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_jax_data_parallel_measures_the_global_probe(tmp_path):
    single = _run(tmp_path, parallel=False)
    parallel = _run(tmp_path, parallel=True)
    assert parallel["devices"] == 2
    assert parallel["files"] == 1 and not parallel["tensorflow"]
    one, two = single["records"], parallel["records"]
    assert_same_run(one, two)
    assert "dead_units" in {d["kind"] for d in one[-1]["diagnoses"]}


def test_jax_data_parallel_measures_the_global_batch(tmp_path):
    # `source="batch"`: the statistics of the training batch, inside the
    # train step.
    single = _run(tmp_path, parallel=False, source="batch")
    parallel = _run(tmp_path, parallel=True, source="batch")
    assert parallel["devices"] == 2
    assert parallel["files"] == 1 and not parallel["tensorflow"]
    # Each event holds the whole global batch's statistics, once.
    assert single["examples"] == parallel["examples"] == 64
    # Eight steps per epoch, three epochs, due every 4.
    steps = [r["step"] for r in single["records"]]
    assert steps == list(range(0, 24, 4))
    assert_same_run(single["records"], parallel["records"])


def _result():
    return ProbeResult(
        layers={"d": {"act_mean": 0.5}},
        reference_grad_norm=None,
        input_rms=1.0,
        loss=None,
        activation_histograms={},
        gradient_histograms={},
    )


def _write(writer):
    writer.write_event(
        step=1,
        event=0,
        epoch=None,
        phase="step",
        layers=[{"name": "d", "class": "Dense", "activation": "relu"}],
        result=_result(),
        new_diagnoses=[],
        all_diagnoses=[],
        all_findings=[],
    )
    writer.close()


def _cluster(task_type, index, chief=False):
    cluster = {"worker": ["a:1", "b:1"]}
    if chief:
        cluster["chief"] = ["c:1"]
    return {"cluster": cluster, "task": {"type": task_type, "index": index}}


@pytest.mark.parametrize(
    "config, chief",
    [
        (None, True),
        (_cluster("worker", 0), True),
        (_cluster("worker", 1), False),
        (_cluster("worker", 0, chief=True), False),
        (_cluster("chief", 0, chief=True), True),
    ],
)
def test_only_the_chief_of_a_multi_worker_run_writes(
    tmp_path, monkeypatch, config, chief
):
    if config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    writer = summaries.EventWriter(str(tmp_path))
    assert writer.chief is chief
    _write(writer)
    written = os.path.isdir(writer.run_dir) and os.listdir(writer.run_dir)
    assert bool(written) is chief


def test_only_process_0_of_a_jax_run_writes(tmp_path, monkeypatch):
    import jax

    from kerasinit.monitor.backends import jax as jax_backend

    monkeypatch.setattr(backends, "current", lambda: jax_backend)
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    writer = summaries.EventWriter(str(tmp_path))
    assert not writer.chief
    _write(writer)
    assert not os.path.isdir(writer.run_dir)
