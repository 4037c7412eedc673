"""`HealthMonitor(source="batch")` in compiled train steps.

Collected by every backend's test process (`conftest.ALL_BACKENDS`):
several steps per call, XLA, `torch.compile` and JAX without jit, each
against a plain run of the same model. A case that a backend does not have
returns at once there. JAX's data parallelism is in `test_distribution.py`.
"""

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

import kerasinit as ki
from kerasinit.monitor import event_files
from kerasinit_tensorboard import schema

# -- compiled train functions --------------------------------------------------


@pytest.mark.parametrize(
    "steps_per_execution, jit_compile, histograms",
    [
        (4, "auto", True),
        (1, True, True),
        (4, True, True),
        (1, True, False),
        # Histograms every 6 steps: a cadence of their own.
        (4, "auto", 6),
        (1, True, 6),
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
        histograms=bool(histograms),
        histogram_every_n_steps=(
            None if isinstance(histograms, bool) else histograms
        ),
    )
    fit(monitored, x, y, monitor, batch_size=16, epochs=2)
    steps = [r["step"] for r in batch_records(tmp_path)]
    if steps_per_execution == 1:
        assert steps == [0, 3, 6, 9, 12, 15]
    else:
        # One event per call of the train function, holding its latest due
        # step: calls of steps 0-3, 4-7, 8-11 and 12-15.
        assert steps == [3, 6, 9, 15]
    hist_steps = {
        v.step
        for v in event_files.read_run(tmp_path / schema.BATCH_RUN_SUBDIR)
        if v.plugin_name == "histograms"
    }
    if histograms is True:
        assert hist_steps == set(steps)
    elif histograms is False:
        assert hist_steps == set()
    elif steps_per_execution == 1:
        assert hist_steps == {0, 6, 12}
    else:
        # An event holds its call's latest due step, and its histograms
        # where that step bucketed them: of the calls of steps 0-3 (with
        # histograms at 0), 4-7, 8-11 and 12-15 (at 12), only 6.
        assert hist_steps == {6}
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
