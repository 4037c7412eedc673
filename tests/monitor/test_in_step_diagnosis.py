"""What the diagnosis makes of `HealthMonitor(source="batch")`'s events.

Collected by every backend's test process (`conftest.ALL_BACKENDS`). A
problem is said once, by whichever source measures it first; a step that
is not finite is counted exactly; a healthy run says nothing.
"""

import keras
import numpy as np
import pytest

# An autouse fixture: one record per training-batch event.
from in_step_cases import (
    WeightsBeforeEachStep,
    a_record_every_batch_event,  # noqa: F401
    batch_records,
    data,
    fit,
    mlp,
    probe_records,
    reference_step,
)

import kerasinit as ki
from kerasinit.findings import (
    HealthWarning,
    LearningRateWarning,
    NonFiniteWarning,
)


def test_a_nan_step_is_counted_and_said_once(tmp_path, capfd):
    # Four steps of 16; one input of the second batch is infinite. The
    # gradients of that step are not all finite, SGD writes them into the
    # weights, and the later steps compute with them.
    batch = 16
    x, y = data(4 * batch)
    x[batch + 4, 0] = np.inf
    model = mlp([16, 8], ["relu", "tanh"])
    seen = WeightsBeforeEachStep()
    monitor = ki.callbacks.HealthMonitor(
        str(tmp_path),
        probe=(x[:batch], y[:batch]),
        every_n_steps=1,
        source="batch",
    )
    capfd.readouterr()
    with pytest.warns(HealthWarning) as caught:
        fit(model, x, y, monitor, batch_size=batch, extra=[seen])
    assert monitor.skipped_events == 0
    records = batch_records(tmp_path)
    assert [r["step"] for r in records] == [0, 1, 2, 3]
    # The first two steps compute with finite weights: the outputs that are
    # not finite are those of a NumPy forward pass, counted exactly.
    for step in (0, 1):
        xb = x[step * batch : (step + 1) * batch]
        yb = y[step * batch : (step + 1) * batch]
        with np.errstate(all="ignore"):
            outs, _, _ = reference_step(
                seen.before[step], ["relu", "tanh", None], xb, yb
            )
        for path, out in zip(("d1", "d2"), outs):
            stats = records[step]["stats"][path]
            want = int(np.sum(~np.isfinite(out)))
            assert stats["act_nonfinite"] == want, (step, path)
            # A step with a non-finite value is measured again with masks:
            # the other statistics are over the finite values only.
            finite = out[np.isfinite(out)].astype(np.float64)
            rms = float(np.sqrt(np.mean(np.square(finite))))
            assert stats["act_rms"] == pytest.approx(rms, rel=1e-5), path
    assert records[1]["stats"]["d1"]["act_nonfinite"] > 0
    for i, path in enumerate(("d1", "d2")):
        # SGD's update of finite weights is not finite exactly where the
        # gradient is not.
        updated = seen.before[2][2 * i : 2 * i + 2]
        want = sum(int(np.sum(~np.isfinite(w))) for w in updated)
        assert records[1]["stats"][path]["grad_nonfinite"] == want > 0, path
    # From then on d2's bias is NaN in every unit: each of its outputs and
    # gradient entries is NaN. (What ReLU makes of a NaN input differs:
    # TensorFlow's fused graph kernels output 0, so d1's are not counted
    # here.)
    assert np.all(np.isnan(seen.before[2][3]))
    entries = sum(int(np.prod(w.shape)) for w in model.get_layer("d2").weights)
    for r in records[2:]:
        stats = r["stats"]["d2"]
        assert stats["act_nonfinite"] == batch * 8, r["step"]
        assert stats["grad_nonfinite"] == entries, r["step"]
    # Said once, first by the training batch of the second step; the
    # epoch's probe sees the same problem still active and stays quiet.
    found = [d for d in monitor.diagnoses if d.kind == "nonfinite"]
    assert len(found) == 1
    assert (found[0].source, found[0].step) == ("batch", 1)
    said = [w for w in caught if issubclass(w.category, NonFiniteWarning)]
    assert len(said) == 1 and "on the training batch" in str(said[0].message)
    # No error of TensorFlow's (or any backend's) own on the way.
    err = capfd.readouterr().err
    assert not [
        line
        for line in err.splitlines()
        if line[:1] in "EF" and line[1:5].isdigit()
    ], err


def _health(caught):
    return [w for w in caught if issubclass(w.category, HealthWarning)]


def _relu_mlp(depth, width, initializer, optimizer, seed=3):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((6,))]
        + [
            keras.layers.Dense(
                width,
                activation="relu",
                kernel_initializer=initializer,
                name=f"d{i + 1}",
            )
            for i in range(depth)
        ]
        + [keras.layers.Dense(1, name="head")]
    )
    model.compile(optimizer, "mse")
    return model


def _watch(log_dir, x, y, statistics="full"):
    return ki.callbacks.HealthMonitor(
        str(log_dir),
        probe=(x[:64], y[:64]),
        every_n_steps=1,
        source="batch",
        statistics=statistics,
    )


def test_a_healthy_run_is_quiet_from_both_sources(tmp_path):
    x, y = data(256)
    model = _relu_mlp(3, 32, "he_normal", keras.optimizers.Adam(1e-3))
    monitor = _watch(tmp_path, x, y)
    # Any warning kerasinit raised would fail the test (pytest's filters).
    fit(model, x, y, monitor, batch_size=32, epochs=3)
    assert monitor.diagnoses == []
    assert len(batch_records(tmp_path)) == 24
    assert monitor.skipped_events == 0


def test_a_problem_present_from_the_start_is_said_once(tmp_path):
    # N(0, 1) kernels on a 6-layer ReLU stack: the signal grows about 5.7x
    # per layer. The pre-flight's probe says so first; the training batch
    # measures the same problem every step and stays quiet about it.
    x, y = data(128)
    model = _relu_mlp(
        6,
        64,
        keras.initializers.RandomNormal(0.0, 1.0),
        keras.optimizers.SGD(1e-3),
    )
    monitor = _watch(tmp_path, x, y)
    with pytest.warns(ki.callbacks.HealthWarning) as caught:
        fit(model, x, y, monitor, batch_size=32, epochs=1)
    found = [d for d in monitor.diagnoses if d.kind == "exploding_signal"]
    assert [(d.source, d.step) for d in found] == [("probe", 0)]
    kinds = [d.kind for d in monitor.diagnoses]
    assert len(kinds) == len(set(kinds)), kinds
    assert len(_health(caught)) == len(monitor.diagnoses)
    # The batch run's records carry only what the batch said.
    last = batch_records(tmp_path)[-1]
    assert "exploding_signal" not in {d["kind"] for d in last["diagnoses"]}


@pytest.mark.parametrize("statistics", ["full", "economy"])
def test_a_problem_of_training_is_said_from_the_training_batch(
    tmp_path, statistics
):
    # He-initialized, healthy at the pre-flight; Adam at a learning rate of
    # 1 moves every weight by about its own size per step, which only the
    # steps show.
    x, y = data(128)
    model = _relu_mlp(3, 32, "he_normal", keras.optimizers.Adam(1.0))
    monitor = _watch(tmp_path, x, y, statistics)
    with pytest.warns(LearningRateWarning) as caught:
        fit(model, x, y, monitor, batch_size=32, epochs=2)
    found = [d for d in monitor.diagnoses if d.kind == "learning_rate_high"]
    assert [(d.source, d.step) for d in found] == [("batch", 0)]
    assert "(on the training batch)" in str(found[0])
    assert [str(w.message) for w in _health(caught)] == [
        str(d) for d in monitor.diagnoses
    ]
    # The probe's epoch events see it too, still active: not said again.
    probe_kinds = {d["kind"] for d in probe_records(tmp_path)[-1]["diagnoses"]}
    assert "learning_rate_high" not in probe_kinds
    batch_kinds = {d["kind"] for d in batch_records(tmp_path)[-1]["diagnoses"]}
    assert "learning_rate_high" in batch_kinds
