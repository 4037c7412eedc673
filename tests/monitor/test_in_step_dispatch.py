"""How `source="batch"` runs: the plain train function on steps that are not
due, the measuring one on due steps; XLA on TensorFlow and its fallback; the
record interval of training-batch events."""

import os

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
)

import kerasinit as ki
from kerasinit.findings import HealthWarning
from kerasinit.monitor import event_files, in_step
from kerasinit_tensorboard import schema


@pytest.fixture
def calls(monkeypatch):
    """Counts the calls of the plain and the measuring train functions."""
    counts = {"plain": 0, "measuring": 0}
    original = in_step.InStep._dispatcher

    def spying(self, plain, measuring):
        def counted(name, fn):
            def call(*args, **kwargs):
                counts[name] += 1
                return fn(*args, **kwargs)

            return call

        return original(
            self, counted("plain", plain), counted("measuring", measuring)
        )

    monkeypatch.setattr(in_step.InStep, "_dispatcher", spying)
    return counts


def test_only_due_steps_run_the_measuring_function(tmp_path, calls):
    x, y = data(13 * 8)
    model = mlp([8], ["relu"])
    monitor = ki.callbacks.HealthMonitor(
        str(tmp_path), probe=(x[:16], y[:16]), every_n_steps=5, source="batch"
    )
    fit(model, x, y, monitor, batch_size=8, epochs=2)
    # 26 steps: 0, 5, ..., 25 are due.
    assert calls == {"plain": 20, "measuring": 6}
    assert [r["step"] for r in batch_records(tmp_path)] == list(range(0, 26, 5))


def test_steps_per_execution_runs_the_measuring_function_for_due_calls(
    tmp_path, calls
):
    if keras.backend.backend() == "torch":
        # Keras's PyTorch trainer runs one step per call.
        return
    x, y = data(12 * 8)
    model = mlp([8], ["relu"])
    model.compile(keras.optimizers.SGD(0.1), "mse", steps_per_execution=3)
    monitor = ki.callbacks.HealthMonitor(
        str(tmp_path), probe=(x[:16], y[:16]), every_n_steps=4, source="batch"
    )
    fit(model, x, y, monitor, batch_size=8)
    # Calls cover steps 0-2, 3-5, 6-8, 9-11; due: 0, 4, 8 (in calls 1-3).
    assert calls == {"plain": 1, "measuring": 3}
    assert [r["step"] for r in batch_records(tmp_path)] == [0, 4, 8]


@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_jax_steps_return_their_statistics_without_a_host_callback(
    tmp_path, monkeypatch, steps_per_execution
):
    # With one step per call, a measured step's statistics leave it among
    # its outputs; Keras's loop of several steps per call keeps only the
    # last one's outputs, so there the due step calls back to the host.
    if keras.backend.backend() != "jax":
        return
    import jax

    sites = []
    callback = jax.debug.callback

    def counted(*args, **kwargs):
        sites.append(args[0])
        return callback(*args, **kwargs)

    monkeypatch.setattr(jax.debug, "callback", counted)
    x, y = data(12 * 8)
    model = mlp([8], ["relu"])
    model.compile(
        keras.optimizers.SGD(0.1),
        "mse",
        steps_per_execution=steps_per_execution,
    )
    seen = []

    class Logs(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(sorted(logs))

    monitor = ki.callbacks.HealthMonitor(
        str(tmp_path), probe=(x[:16], y[:16]), every_n_steps=4, source="batch"
    )
    fit(model, x, y, monitor, batch_size=8, extra=[Logs()])
    assert [r["step"] for r in batch_records(tmp_path)] == [0, 4, 8]
    assert seen and all(keys == ["loss"] for keys in seen)
    layers = monitor.last_batch_result.result.layers
    assert layers["d1"]["grad_norm"] > 0.0
    if steps_per_execution == 1:
        assert sites == []
    else:
        # The forward's and the gradients' vectors, traced once each.
        assert len(sites) == 2


def _xla_run(tmp_path, compiles: bool):
    with pytest.MonkeyPatch.context() as patch:
        return _xla_run_patched(tmp_path, compiles, patch)


def _xla_run_patched(tmp_path, compiles, monkeypatch):
    from kerasinit.monitor.backends import tensorflow as tf_backend

    if not compiles:
        monkeypatch.setattr(tf_backend, "_xla_compiles", lambda *a: False)
    x, y = data(4 * 16)
    model = mlp([16, 8], ["relu", "tanh"])
    monitor = ki.callbacks.HealthMonitor(
        str(tmp_path), probe=(x[:16], y[:16]), every_n_steps=1, source="batch"
    )
    kinds = {}
    original = in_step.InStep.__exit__

    def leaving(self, *exc):
        # The functions without masks (those with masks run only after a
        # value that is not finite).
        kinds.update(
            {
                name: type(f).__name__
                for ((name, masked), _), f in self._outbox._functions.items()
                if not masked
            }
        )
        return original(self, *exc)

    monkeypatch.setattr(in_step.InStep, "__exit__", leaving)
    fit(model, x, y, monitor, batch_size=16)
    return kinds, batch_records(tmp_path)


def test_tensorflow_statistics_compile_with_xla_or_run_as_they_are(tmp_path):
    if keras.backend.backend() != "tensorflow":
        # XLA is chosen per function on TensorFlow only (JAX compiles the
        # whole step with it already; PyTorch runs eagerly).
        return
    fused, with_xla = _xla_run(tmp_path / "xla", compiles=True)
    plain, without = _xla_run(tmp_path / "plain", compiles=False)
    # Compiled where XLA compiles them; the Python function itself where it
    # does not (tried before the step uses it).
    assert fused == {"forward": "Function", "gradients": "Function"}
    assert plain == {"forward": "function", "gradients": "function"}, plain
    assert [r["step"] for r in with_xla] == [r["step"] for r in without]
    for a, b in zip(with_xla, without):
        for layer, stats in a["stats"].items():
            for metric, value in stats.items():
                other = b["stats"][layer][metric]
                if value is None or other is None:
                    assert value is None and other is None, (layer, metric)
                    continue
                # The same float32 statistics in another order of summation.
                assert other == pytest.approx(value, rel=1e-4, abs=1e-6), (
                    layer,
                    metric,
                )


def test_training_batch_records_come_once_a_second_and_with_verdicts(tmp_path):
    x, y = data(10 * 8)
    x[3 * 8 + 2, 0] = np.inf
    model = mlp([8], ["relu"])
    monitor = ki.callbacks.HealthMonitor(
        str(tmp_path), probe=(x[:16], y[:16]), every_n_steps=1, source="batch"
    )
    # Longer than the run: records come only with the first event and with
    # a new verdict.
    monitor.BATCH_RECORD_INTERVAL_S = 3600.0
    with pytest.warns(HealthWarning):
        fit(model, x, y, monitor, batch_size=8)
    run = os.path.join(tmp_path, schema.BATCH_RUN_SUBDIR)
    values = event_files.read_run(run)
    tag = schema.scalar_tag("act_mean", "d1")
    assert [v.step for v in values if v.tag == tag] == list(range(10))
    records = [r["step"] for r in event_files.records(run)]
    said = sorted({d.step for d in monitor.diagnoses if d.source == "batch"})
    assert said and records == sorted({0, *said})
