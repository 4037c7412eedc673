"""The monitor in a real two-process JAX run (`jax.distributed`).

Two Python processes join one JAX cluster over loopback, each with one CPU
device, and train the same model under `keras.distribution.DataParallel`
over the two global devices, each with a `HealthMonitor` on the same log
directory. Only process 0 may write; what it writes must be what a
single-process run measures, on the same global batches. Every subprocess
answers within `TIMEOUT_S` or is killed; the cluster listens on loopback.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

from monitor_events import assert_same_run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
TIMEOUT_S = 120

_RUN = textwrap.dedent(
    """
    import json, os, sys
    # As if TensorFlow were not installed: Keras's seeding would import it.
    sys.modules["tensorflow"] = None
    log_dir, port, count, index = sys.argv[1:5]
    count, index = int(count), int(index)
    import jax
    if count > 1:
        # The default of jax 0.10; named so that a jax whose CPU client
        # exchanges nothing between processes by default runs it too.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{port}",
            num_processes=count,
            process_id=index,
            initialization_timeout=60,
        )
    import keras, numpy as np
    import kerasinit as ki
    from kerasinit.monitor import event_files

    devices = keras.distribution.list_devices()
    if count > 1:
        distribution = keras.distribution.DataParallel(devices=devices)
        # Each process feeds its own half of every global batch (below).
        distribution.auto_shard_dataset = False
        keras.distribution.set_distribution(distribution)
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 10)).astype("float32")
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
        log_dir, probe=(x[:64], y[:64]), every_n_steps=2, warn=False)
    # Process i's rows of each global batch of 64 are the i-th half: the
    # global batches are those of the one-process run.
    batches = x.reshape(-1, count, 64 // count, 10)[:, index]
    labels = y.reshape(-1, count, 64 // count)[:, index]
    model.fit(batches.reshape(-1, 10), labels.reshape(-1),
              batch_size=64 // count, epochs=2, shuffle=False, verbose=0,
              callbacks=[monitor])
    run = os.path.join(log_dir, "kerasinit")
    print(json.dumps({
        "process": jax.process_index(),
        "processes": jax.process_count(),
        "devices": len(devices),
        "pid": os.getpid(),
        "records": event_files.records(run) if index == 0 else None,
        "tensorflow": sys.modules.get("tensorflow") is not None,
    }))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=ROOT)
    # One CPU device per process: the two devices are the two processes.
    env.pop("XLA_FLAGS", None)
    return env


def _output(proc: subprocess.Popen) -> dict:
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(
            f"no answer in {TIMEOUT_S} s: {err[-3000:]}"
        ) from None
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _start(log_dir, port: int, count: int, index: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            _RUN,
            str(log_dir),
            str(port),
            str(count),
            str(index),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def test_only_process_0_of_a_two_process_jax_run_writes(tmp_path):
    port = _free_port()
    shared = tmp_path / "two_processes"
    procs = [_start(shared, port, 2, i) for i in range(2)]
    try:
        zero, one = (_output(p) for p in procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    single = _output(_start(tmp_path / "one_process", 0, 1, 0))
    assert (zero["process"], one["process"]) == (0, 1)
    assert zero["processes"] == one["processes"] == 2
    assert zero["devices"] == one["devices"] == 2
    assert not zero["tensorflow"] and not one["tensorflow"]
    # One event file in the shared directory, named with process 0's pid
    # (`events.out.tfevents.<time>.<host>.<pid>...`).
    files = os.listdir(shared / "kerasinit")
    assert len(files) == 1 and files[0].startswith("events.out.tfevents")
    assert f".{zero['pid']}." in files[0] + "."
    assert f".{one['pid']}." not in files[0] + "."
    a, b = single["records"], zero["records"]
    assert_same_run(a, b)
    assert "dead_units" in {d["kind"] for d in a[-1]["diagnoses"]}
