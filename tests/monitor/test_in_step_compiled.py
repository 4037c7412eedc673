"""`HealthMonitor(source="batch")` in compiled and distributed train steps.

Collected by every backend's test process (`conftest.ALL_BACKENDS`):
several steps per call, XLA, `torch.compile`, JAX without jit, and JAX's
data parallelism, each against a plain run of the same model. A case that
a backend does not have returns at once there.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

# An autouse fixture: one record per training-batch event.
from in_step_cases import (
    a_record_every_batch_event,  # noqa: F401
    batch_records,
    data,
    fit,
    mlp,
    variable_values,
)
from monitor_events import assert_same_run

import kerasinit as ki

# -- compiled train functions --------------------------------------------------


@pytest.mark.parametrize(
    "steps_per_execution, jit_compile, histograms",
    [
        (4, "auto", True),
        (1, True, True),
        (4, True, True),
        (1, True, False),
    ],
)
def test_several_steps_per_call_and_xla(
    tmp_path, steps_per_execution, jit_compile, histograms
):
    backend = keras.backend.backend()
    if jit_compile is True and backend != "tensorflow":
        # JAX compiles its step with XLA under "auto" (the first case);
        # PyTorch's `jit_compile` is `torch.compile`: the next test.
        return
    if steps_per_execution > 1 and backend == "torch":
        # Keras's PyTorch trainer runs one step per call only.
        return
    x, y = data(8 * 16)

    def model():
        m = mlp([16, 8], ["relu", "tanh"])
        m.compile(
            keras.optimizers.SGD(0.1),
            "mse",
            steps_per_execution=steps_per_execution,
            jit_compile=jit_compile,
        )
        return m

    plain = model()
    fit(plain, x, y, batch_size=16, epochs=2)
    monitored = model()
    monitor = ki.callbacks.HealthMonitor(
        str(tmp_path),
        probe=(x[:32], y[:32]),
        every_n_steps=3,
        source="batch",
        warn=False,
        histograms=histograms,
    )
    fit(monitored, x, y, monitor, batch_size=16, epochs=2)
    steps = [r["step"] for r in batch_records(tmp_path)]
    if steps_per_execution == 1:
        assert steps == [0, 3, 6, 9, 12, 15]
    else:
        # One event per call of the train function, holding its latest due
        # step: calls of steps 0-3, 4-7, 8-11 and 12-15.
        assert steps == [3, 6, 9, 15]
    assert monitor.skipped_events == 0
    for (name, value), (_, other) in zip(
        variable_values(plain), variable_values(monitored)
    ):
        np.testing.assert_array_equal(other, value, err_msg=name)


@pytest.mark.slow
def test_torch_compile(tmp_path):
    if keras.backend.backend() != "torch":
        return
    # `torch.compile` takes about 15 s for the plain run's step on this
    # size and 40 s for the monitored one (its due and idle steps are two
    # graphs): four steps, due every 2.
    x, y = data(4 * 16)

    def model():
        m = mlp([16, 8], ["relu", "tanh"])
        m.compile(keras.optimizers.SGD(0.1), "mse", jit_compile=True)
        return m

    plain = model()
    fit(plain, x, y, batch_size=16)
    monitored = model()
    monitor = ki.callbacks.HealthMonitor(
        str(tmp_path),
        probe=(x[:32], y[:32]),
        every_n_steps=2,
        source="batch",
        warn=False,
    )
    fit(monitored, x, y, monitor, batch_size=16)
    assert [r["step"] for r in batch_records(tmp_path)] == [0, 2]
    assert monitor.skipped_events == 0
    for (name, value), (_, other) in zip(
        variable_values(plain), variable_values(monitored)
    ):
        np.testing.assert_array_equal(other, value, err_msg=name)


def test_steps_compile_nothing_new_on_jax_without_jit(tmp_path):
    if keras.backend.backend() != "jax":
        # XLA compilation events are JAX's.
        return
    import jax

    # With `jit_compile=False` JAX runs the step operation by operation,
    # each compiled once per shape and cached: a second `fit` of the same
    # shapes compiles nothing, monitored or not.
    x, y = data(2 * 16)
    compiles = []

    def count(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    def second_fit_compiles(monitor):
        model = mlp([16, 8], ["relu", "tanh"])
        model.compile(keras.optimizers.SGD(0.1), "mse", jit_compile=False)
        fit(model, x, y, monitor, batch_size=16)
        compiles.clear()
        fit(model, x, y, monitor, batch_size=16)
        return len(compiles)

    jax.monitoring.register_event_duration_secs_listener(count)
    try:
        plain = second_fit_compiles(None)
        monitor = ki.callbacks.HealthMonitor(
            str(tmp_path),
            probe=(x[:32], y[:32]),
            every_n_steps=2,
            every_n_epochs=None,
            source="batch",
            warn=False,
        )
        monitored = second_fit_compiles(monitor)
    finally:
        jax.monitoring.unregister_event_duration_listener(count)
    assert plain == 0
    assert monitored == plain
    # Still measured: two steps per `fit`, due at 0 and 2.
    assert [r["step"] for r in batch_records(tmp_path)] == [0, 2]


# -- JAX's data parallelism ----------------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

_DATA_PARALLEL = textwrap.dedent(
    """
    import json, os, sys
    # As if TensorFlow were not installed: Keras's seeding would import it.
    sys.modules["tensorflow"] = None
    import keras, numpy as np
    import kerasinit as ki
    from kerasinit.monitor import event_files

    log_dir, parallel = sys.argv[1], sys.argv[2] == "1"
    if parallel:
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(
                devices=keras.distribution.list_devices()
            )
        )
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 10)).astype("float32")
    y = (x[:, :2].sum(axis=1) > 0).astype("int32")
    model = keras.Sequential([
        keras.Input((10,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(16, activation="tanh"),
        keras.layers.Dense(2),
    ])
    model.compile(keras.optimizers.SGD(1e-1),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = ki.callbacks.HealthMonitor(
        log_dir, probe=(x[:64], y[:64]), every_n_steps=3, source="batch",
        warn=False)
    # A record with every event, to compare them all.
    monitor.BATCH_RECORD_INTERVAL_S = 0.0
    model.fit(x, y, batch_size=64, epochs=2, shuffle=False, verbose=0,
              callbacks=[monitor])
    print(json.dumps({
        "devices": len(keras.distribution.list_devices()),
        "examples": monitor.last_batch_result.examples,
        "records": event_files.records(
            os.path.join(log_dir, "kerasinit-batch")),
    }))
    """
)


def _data_parallel_run(log_dir, parallel: bool) -> dict:
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        PYTHONPATH=ROOT,
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _DATA_PARALLEL,
            str(log_dir),
            str(int(parallel)),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_jax_data_parallel_measures_the_global_batch(tmp_path):
    if keras.backend.backend() != "jax":
        # `keras.distribution` lays out arrays on JAX only.
        return
    # In processes of their own: XLA's device count is fixed when JAX
    # starts. Two CPU devices against one, the same model, seed and data.
    one = _data_parallel_run(tmp_path / "single", parallel=False)
    two = _data_parallel_run(tmp_path / "parallel", parallel=True)
    assert two["devices"] == 2
    # Each event holds the whole global batch's statistics, once.
    assert one["examples"] == two["examples"] == 64
    # Four steps per epoch, due every 3: steps 0, 3 and 6.
    assert [r["step"] for r in one["records"]] == [0, 3, 6]
    assert_same_run(one["records"], two["records"])
