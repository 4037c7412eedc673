"""`HealthMonitor(source="batch")`: statistics of the training batch.

Collected by the TensorFlow, JAX and PyTorch test processes alike
(`conftest.ALL_BACKENDS`). Each test trains a small real model on generated
data and reads what the monitor measured back, from `last_batch_result` or
from the event files of ``log_dir/kerasinit-batch``; the statistics are
checked against a NumPy forward and backward pass of the same batch and
weights. What the diagnosis makes of them: `test_in_step_diagnosis.py`;
compiled and distributed train steps: `test_in_step_compiled.py`.
"""

import copy
import math
import pickle

import keras
import numpy as np
import pytest

# An autouse fixture: one record per training-batch event.
from in_step_cases import (
    EPS16,
    EPS32,
    WeightsBeforeEachStep,
    a_record_every_batch_event,  # noqa: F401
    batch_records,
    data,
    fit,
    host_values,
    mlp,
    probe_records,
    reference_step,
    variable_values,
)
from keras import ops

import kerasinit as ki
from kerasinit.monitor import event_files
from kerasinit_tensorboard import schema


def _cosine(a):
    """Mean cosine similarity over pairs of distinct non-zero rows."""
    norms = np.linalg.norm(a, axis=1)
    unit = a[norms > 0] / norms[norms > 0, None]
    m = len(unit)
    gram = unit @ unit.T
    return (gram.sum() - np.trace(gram)) / (m * (m - 1))


def _norm(arrays):
    return math.sqrt(sum(float(np.sum(np.square(a))) for a in arrays))


def _assert_near(got, want, scale, ulps, what):
    """``|got - want| <= ulps * EPS32 * scale``.

    `scale` is the size of the terms the statistic is computed from (a
    mean near zero is the sum of terms of the layer's rms), `ulps` how many
    float32 roundings can pile up on the way.
    """
    bound = ulps * EPS32 * scale
    assert abs(got - want) <= bound, (what, got, want, bound)


# -- correctness ---------------------------------------------------------------


def test_a_due_step_measures_its_own_batch_and_weights(tmp_path):
    # Three steps of 32 examples; due every 2: steps 0 and 2. The last one
    # measured is step 2, which trains on the third batch with the weights
    # after two updates.
    batch, lr = 32, 0.1
    activations = ["relu", "tanh", None]
    model = mlp([16, 8], activations[:2])
    x, y = data(3 * batch)
    seen = WeightsBeforeEachStep()
    monitor = ki.callbacks.HealthMonitor(
        str(tmp_path),
        probe=(x[:batch], y[:batch]),
        every_n_steps=2,
        every_n_epochs=None,
        warn=False,
        source="batch",
    )
    fit(model, x, y, monitor, batch_size=batch, extra=[seen])
    taken = monitor.last_batch_result
    assert taken.step == 2 and taken.examples == batch
    before = seen.before[2]
    after = host_values(model.trainable_variables)
    xb, yb = x[2 * batch :], y[2 * batch :]
    outs, loss, grads = reference_step(before, activations, xb, yb)
    result = taken.result
    assert list(result.layers) == ["d1", "d2"]
    # Every statistic below is a float32 reduction of at most a few hundred
    # terms (pairwise summation: a few roundings each) of values computed
    # in float32 through at most three layers and their gradients: 64
    # roundings of the terms' size bound all of it.
    ulps = 64
    _assert_near(result.loss, loss, loss, ulps, "loss")
    _assert_near(
        result.input_rms,
        math.sqrt(np.mean(xb.astype(np.float64) ** 2)),
        1.0,
        ulps,
        "input_rms",
    )
    previous_rms = result.input_rms
    for i, (path, out) in enumerate(zip(result.layers, outs)):
        stats = result.layers[path]
        rms = math.sqrt(np.mean(out**2))
        for metric, want in (
            ("act_mean", out.mean()),
            ("act_std", out.std()),
            ("act_min", out.min()),
            ("act_max", out.max()),
            ("act_rms", rms),
        ):
            _assert_near(stats[metric], want, rms, ulps, f"{path} {metric}")
        _assert_near(
            stats["cosine_similarity"],
            _cosine(out),
            1.0,
            ulps,
            f"{path} cosine",
        )
        _assert_near(
            stats["signal_gain"],
            rms / previous_rms,
            rms / previous_rms,
            ulps,
            f"{path} signal_gain",
        )
        previous_rms = stats["act_rms"]
        # Counts: exact (no output of this batch is within rounding of 0).
        assert stats["zero_fraction"] == np.float32(np.mean(out == 0.0))
        dead = np.mean(np.all(out == 0.0, axis=0)) if i == 0 else 0.0
        assert stats["dead_fraction"] == np.float32(dead)
        assert stats["act_nonfinite"] == 0
        # tanh saturates where its derivative, 1 - y^2, is below 5% of its
        # peak (the default threshold); ReLU never does.
        saturated = np.mean(1.0 - out**2 < 0.05) if i == 1 else 0.0
        assert stats["saturation_fraction"] == np.float32(saturated)
        # The layer's kernel and bias, as the optimizer received them.
        g = grads[2 * i : 2 * i + 2]
        w = before[2 * i : 2 * i + 2]
        g_norm, w_norm = _norm(g), _norm(w)
        _assert_near(stats["grad_norm"], g_norm, g_norm, ulps, "grad_norm")
        _assert_near(stats["weight_norm"], w_norm, w_norm, ulps, "weight_norm")
        _assert_near(
            stats["grad_weight_ratio"],
            g_norm / w_norm,
            g_norm / w_norm,
            ulps,
            "grad_weight_ratio",
        )
        assert stats["grad_nonfinite"] == 0
        # This one step's update, from the weights read around it; SGD's
        # is the learning rate times the gradient.
        delta = _norm([a - b for a, b in zip(after[2 * i : 2 * i + 2], w)])
        ratio = delta / w_norm
        _assert_near(stats["update_ratio"], ratio, ratio, ulps, "update")
        # The difference of two float32 weights is exact to one rounding of
        # the weights themselves.
        _assert_near(
            ratio,
            lr * g_norm / w_norm,
            w_norm / w_norm,
            2 * ulps,
            "sgd update",
        )
    head = _norm(grads[-2:])
    _assert_near(result.reference_grad_norm, head, head, ulps, "head")


def test_the_first_step_measures_what_the_pre_flight_probe_does(tmp_path):
    # The probe is the first training batch: the pre-flight measures it
    # with the initial weights, as the first step does, through the probe's
    # own forward and backward pass.
    x, y = data(32)
    model = mlp([16, 8], ["relu", "tanh"])
    monitor = ki.callbacks.HealthMonitor(
        str(tmp_path),
        probe=(x, y),
        every_n_steps=1,
        every_n_epochs=None,
        source="batch",
        warn=False,
    )
    fit(model, x, y, monitor, batch_size=32)
    probe, batch = monitor.last_result, monitor.last_batch_result.result
    assert probe.layers.keys() == batch.layers.keys() == {"d1", "d2"}
    # The same float32 operations on the same values, traced apart: equal
    # to within the rounding of a reduction's order.
    close = {"rtol": 16 * EPS32, "atol": 16 * EPS32}
    for path, stats in probe.layers.items():
        assert stats.keys() == batch.layers[path].keys()
        for metric, value in stats.items():
            if metric == "update_ratio":
                # Unknown at the pre-flight; one step's update here.
                assert math.isnan(value)
                assert batch.layers[path][metric] > 0
                continue
            np.testing.assert_allclose(
                batch.layers[path][metric], value, **close, err_msg=metric
            )
        for histograms in ("activation_histograms", "gradient_histograms"):
            mine = getattr(batch, histograms)[path]
            theirs = getattr(probe, histograms)[path]
            # Bucket edges from the extremes; counts of the same values.
            np.testing.assert_allclose(mine[:, :2], theirs[:, :2], **close)
            np.testing.assert_array_equal(mine[:, 2], theirs[:, 2])
    for name in ("loss", "input_rms", "reference_grad_norm", "input_cosine"):
        np.testing.assert_allclose(
            getattr(batch, name), getattr(probe, name), **close, err_msg=name
        )


# -- training is unchanged -----------------------------------------------------


def _regularized_model(seed=11):
    """Batch norm, dropout (random state in the step) and Adam."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu", name="d1"),
            keras.layers.BatchNormalization(name="norm"),
            keras.layers.Dropout(0.25, name="drop"),
            keras.layers.Dense(8, activation="tanh", name="d2"),
            keras.layers.Dense(1, name="head"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    return model


def test_training_is_bit_identical_with_the_batch_source(tmp_path):
    x, y = data(7 * 16)
    plain = _regularized_model()
    plain_history = fit(plain, x, y, batch_size=16, epochs=2)
    monitored = _regularized_model()
    monitor = ki.callbacks.HealthMonitor(
        str(tmp_path),
        probe=(x[:32], y[:32]),
        every_n_steps=1,
        source="batch",
        warn=False,
    )
    history = fit(monitored, x, y, monitor, batch_size=16, epochs=2)
    assert len(batch_records(tmp_path)) == 14
    # The same weights, batch-norm statistics and optimizer state, to the
    # bit: the step's own values are only read, its random state untouched.
    expected, got = variable_values(plain), variable_values(monitored)
    assert len(got) == len(expected)
    for (name, value), (_, other) in zip(expected, got):
        np.testing.assert_array_equal(other, value, err_msg=name)
    assert history.history == plain_history.history


# -- cadence and the event files -----------------------------------------------


def _scalar_tags(run):
    return {
        v.tag for v in event_files.read_run(run) if v.plugin_name == "scalars"
    }


def test_events_come_at_the_due_steps_in_a_run_of_their_own(tmp_path):
    x, y = data(7 * 16)
    model = mlp([16, 8], ["relu", "tanh"])
    monitor = ki.callbacks.HealthMonitor(
        str(tmp_path),
        probe=(x[:32], y[:32]),
        every_n_steps=3,
        source="batch",
        warn=False,
    )
    fit(model, x, y, monitor, batch_size=16, epochs=2)
    batch = batch_records(tmp_path)
    # Two epochs of 7 steps: the steps with 0, 3, 6, 9 and 12 earlier
    # updates are due.
    assert [r["step"] for r in batch] == [0, 3, 6, 9, 12]
    assert [r["epoch"] for r in batch] == [0, 0, 0, 1, 1]
    assert {r["phase"] for r in batch} == {"step"}
    assert [r["event"] for r in batch] == list(range(5))
    assert [r["skipped_events"] for r in batch] == [0] * 5
    assert monitor.last_batch_result.step == 12
    # The probe keeps the pre-flight and the epochs' ends, nothing more.
    probe = probe_records(tmp_path)
    assert [(r["phase"], r["step"]) for r in probe] == [
        ("preflight", 0),
        ("epoch", 7),
        ("epoch", 14),
    ]
    # The same layers and metrics, under the same tags.
    batch_tags = _scalar_tags(tmp_path / schema.BATCH_RUN_SUBDIR)
    assert batch_tags == _scalar_tags(tmp_path / schema.RUN_SUBDIR)
    assert schema.scalar_tag("update_ratio", "d1") in batch_tags
    assert schema.scalar_tag("dead_fraction", "d1") in batch_tags
    for r in batch:
        assert set(r["stats"]) == {"d1", "d2"}


def _run_values(run, plugin):
    """``{(step, tag): value}`` of one plugin's values in a run."""
    return {
        (v.step, v.tag): v.value
        for v in event_files.read_run(run)
        if v.plugin_name == plugin
    }


def _batch_run(log_dir, x, y, **kwargs):
    """A 2-layer MLP fitted once under a batch monitor: the model and its
    batch run's ``(scalars, histograms)``."""
    model = mlp([16, 8], ["relu", "tanh"])
    monitor = ki.callbacks.HealthMonitor(
        str(log_dir),
        probe=(x[:32], y[:32]),
        source="batch",
        warn=False,
        **kwargs,
    )
    fit(model, x, y, monitor, batch_size=16)
    run = log_dir / schema.BATCH_RUN_SUBDIR
    return model, (_run_values(run, "scalars"), _run_values(run, "histograms"))


def test_histograms_with_a_cadence_of_their_own(tmp_path):
    # Seven steps, each one an event; histograms every third. The same
    # model trained again with histograms at every event gives the
    # reference: training is the same with both, so are the values.
    x, y = data(7 * 16)
    runs = {}
    for every in (3, None):
        _, runs[every] = _batch_run(
            tmp_path / str(every),
            x,
            y,
            every_n_steps=1,
            every_n_epochs=None,
            histogram_every_n_steps=every,
        )
    (scalars, hists), (all_scalars, all_hists) = runs[3], runs[None]
    assert {step for step, _ in all_hists} == set(range(7))
    assert {step for step, _ in hists} == {0, 3, 6}
    # Every layer's activation and gradient histograms at those steps.
    tags = {
        schema.histogram_tag(prefix, layer)
        for prefix in (
            schema.ACTIVATION_HISTOGRAM_PREFIX,
            schema.GRADIENT_HISTOGRAM_PREFIX,
        )
        for layer in ("d1", "d2")
    }
    assert {tag for _, tag in hists} == tags
    # Counts over the same ranges: the same, exactly.
    for key, table in hists.items():
        np.testing.assert_array_equal(table, all_hists[key], err_msg=key)
    # The other statistics at every event, equal to within the rounding
    # of a reduction's order (the two traces fuse their operations apart).
    assert scalars.keys() == all_scalars.keys()
    assert {step for step, _ in scalars} == set(range(7))
    for key, value in scalars.items():
        np.testing.assert_allclose(
            value,
            all_scalars[key],
            rtol=16 * EPS32,
            atol=16 * EPS32,
            err_msg=key,
        )


def test_economy_leaves_out_duplicates_and_histograms(tmp_path):
    # The same model trained twice, full and economy: training is the same
    # with both, so the statistics economy measures are the full ones.
    x, y = data(7 * 16)
    runs, weights = {}, {}
    for statistics in ("full", "economy"):
        log_dir = tmp_path / statistics
        model, runs[statistics] = _batch_run(
            log_dir, x, y, every_n_steps=2, statistics=statistics
        )
        weights[statistics] = variable_values(model)
        # The probe's events measure everything, in both.
        probe_tags = _scalar_tags(log_dir / schema.RUN_SUBDIR)
        assert schema.scalar_tag("duplicate_fraction", "d1") in probe_tags
    (full, full_hists), (economy, hists) = runs["full"], runs["economy"]
    assert hists == {} and full_hists
    left_out = {
        (step, tag)
        for step, tag in full
        if tag.startswith("duplicate_fraction/")
    }
    assert {tag for _, tag in left_out} == {
        schema.scalar_tag("duplicate_fraction", p) for p in ("d1", "d2")
    }
    assert economy.keys() == full.keys() - left_out
    assert {step for step, _ in economy} == {0, 2, 4, 6}
    for key, value in economy.items():
        np.testing.assert_allclose(
            value, full[key], rtol=16 * EPS32, atol=16 * EPS32, err_msg=key
        )
    for (name, value), (_, other) in zip(weights["full"], weights["economy"]):
        np.testing.assert_array_equal(other, value, err_msg=name)


def test_economy_buckets_histograms_at_their_own_cadence(tmp_path):
    x, y = data(7 * 16)
    _, (scalars, hists) = _batch_run(
        tmp_path,
        x,
        y,
        every_n_steps=1,
        statistics="economy",
        histogram_every_n_steps=3,
    )
    assert {step for step, _ in hists} == {0, 3, 6}
    assert len({tag for _, tag in hists}) == 4
    assert {step for step, _ in scalars} == set(range(7))
    assert not any(tag.startswith("duplicate_fraction/") for _, tag in scalars)


# -- the model after `fit` -----------------------------------------------------


class _Installed(keras.callbacks.Callback):
    """What is installed on the model during each `fit`'s steps."""

    def __init__(self):
        super().__init__()
        self.seen = []
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(_own_attributes(self.model))
        self.logs.append(sorted(logs))


def _own_attributes(model):
    optimizer = model.optimizer
    while hasattr(optimizer, "inner_optimizer"):
        optimizer = optimizer.inner_optimizer
    found = {
        name for name in ("train_step", "compute_loss") if name in vars(model)
    }
    if "apply" in vars(optimizer):
        found.add("apply")
    found |= {
        f"{layer.name}.call"
        for layer in model._flatten_layers(include_self=False)
        if "call" in vars(layer)
    }
    return found


def test_fit_leaves_the_model_as_it_found_it(tmp_path):
    x, y = data(4 * 16)
    model = mlp([16, 8], ["relu", "tanh"])
    monitor = ki.callbacks.HealthMonitor(
        str(tmp_path),
        probe=(x[:32], y[:32]),
        every_n_steps=2,
        source="batch",
        warn=False,
    )
    installed = _Installed()
    fit(model, x, y, monitor, batch_size=16, extra=[installed])
    # Installed while the steps ran, gone after.
    assert installed.seen[0] == {
        "train_step",
        "compute_loss",
        "apply",
        "d1.call",
        "d2.call",
    }
    assert _own_attributes(model) == set()
    # The function `fit` made without the wrappers is back.
    plain_function, measuring = monitor._batch.in_step._functions
    assert model.train_function is plain_function
    steps = [r["step"] for r in batch_records(tmp_path)]
    assert steps == [0, 2]
    plain = _Installed()
    fit(model, x, y, batch_size=16, extra=[plain])
    assert plain.seen == [set()] * 4
    # The logs of measured steps are those of plain ones.
    assert installed.logs == plain.logs == [["loss"]] * 4
    assert model.train_function is plain_function
    assert [r["step"] for r in batch_records(tmp_path)] == steps
    # The same monitor again: it counts on from the optimizer's 8 updates,
    # with the functions of the first `fit`.
    fit(model, x, y, monitor, batch_size=16, extra=[installed])
    assert [r["step"] for r in batch_records(tmp_path)] == [0, 2, 8, 10]
    assert monitor.last_batch_result.step == 10
    assert monitor._batch.in_step._functions == (plain_function, measuring)
    assert model.train_function is plain_function
    assert _own_attributes(model) == set()


def test_the_measuring_function_is_traced_once_until_the_model_compiles(
    tmp_path, monkeypatch
):
    from kerasinit.monitor import in_step

    # The forward statistics are built while a step is traced (TensorFlow,
    # JAX) or, on PyTorch, which traces nothing, while a due step runs.
    built = []
    send_forward = in_step.InStep._send_forward

    def counted(self, *args, **kwargs):
        built.append(self)
        return send_forward(self, *args, **kwargs)

    monkeypatch.setattr(in_step.InStep, "_send_forward", counted)
    traces = keras.backend.backend() != "torch"
    x, y = data(4 * 16)
    model = mlp([16, 8], ["relu", "tanh"])
    monitor = ki.callbacks.HealthMonitor(
        str(tmp_path),
        probe=(x[:32], y[:32]),
        every_n_steps=2,
        source="batch",
        warn=False,
    )
    fit(model, x, y, monitor, batch_size=16)
    first = len(built)
    # (TensorFlow traces a function twice when its first trace makes
    # variables, as the outbox does.)
    assert first >= 1 if traces else first == 2
    functions = monitor._batch.in_step._functions
    fit(model, x, y, monitor, batch_size=16)
    assert len(built) == (first if traces else 4)
    assert monitor._batch.in_step._functions == functions
    assert [r["step"] for r in batch_records(tmp_path)] == [0, 2, 4, 6]
    layers = monitor.last_batch_result.result.layers
    assert all(layers[p]["update_ratio"] > 0.0 for p in ("d1", "d2"))

    # Compiling drops the train function: both are made again, with the
    # new optimizer (a zero learning rate: no step changes the weights).
    # Its count of updates starts again at 0, and so do the events.
    model.compile(keras.optimizers.SGD(0.0), "mse")
    fit(model, x, y, monitor, batch_size=16)
    assert len(built) > first if traces else len(built) == 6
    plain_function, measuring = monitor._batch.in_step._functions
    assert plain_function is not functions[0]
    assert measuring is not functions[1]
    assert model.train_function is plain_function
    steps = [r["step"] for r in batch_records(tmp_path)]
    assert steps == [0, 2, 4, 6, 0, 2]
    layers = monitor.last_batch_result.result.layers
    assert [layers[p]["update_ratio"] for p in ("d1", "d2")] == [0.0, 0.0]


# -- arguments, copies ---------------------------------------------------------


def test_source_is_validated(tmp_path):
    x, y = data(8)
    with pytest.raises(
        ValueError, match=r"`source`.*Received: source='bogus'$"
    ):
        ki.callbacks.HealthMonitor(
            str(tmp_path), probe=(x, y), every_n_steps=1, source="bogus"
        )
    with pytest.raises(
        ValueError, match=r"`every_n_steps`.*Received: every_n_steps=None"
    ):
        ki.callbacks.HealthMonitor(str(tmp_path), probe=(x, y), source="batch")


def test_a_batch_monitor_is_copied_before_and_after_fit(tmp_path):
    x, y = data(6 * 16)
    monitor = ki.callbacks.HealthMonitor(
        str(tmp_path),
        probe=(x[:32], y[:32]),
        every_n_steps=2,
        source="batch",
        statistics="economy",
        warn=False,
    )
    fresh = [pickle.loads(pickle.dumps(monitor)), copy.deepcopy(monitor)]
    fit(mlp([16], ["relu"]), x[:64], y[:64], monitor, batch_size=16)
    assert monitor.last_batch_result.step == 2
    trained = [pickle.loads(pickle.dumps(monitor)), copy.deepcopy(monitor)]
    for twin in fresh + trained:
        assert twin.source == "batch" and twin.every_n_steps == 2
        assert twin.statistics == "economy"
    # A monitor pickled before `statistics` existed measured everything.
    state = monitor.__getstate__()
    del state["statistics"]
    older = ki.callbacks.HealthMonitor.__new__(ki.callbacks.HealthMonitor)
    older.__setstate__(state)
    assert older.statistics == "full"
    # One of each kind of copy trains a model of its own, six steps: due
    # at 0, 2 and 4.
    for twin in (fresh[0], trained[1]):
        fit(mlp([16], ["relu"]), x, y, twin, batch_size=16)
        assert twin.last_batch_result.step == 4
        assert twin.skipped_events == 0


# -- loss scaling --------------------------------------------------------------


@pytest.fixture
def mixed_float16():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def _first_step_gradients(log_dir, x, y):
    model = mlp([16, 8], ["relu", "tanh"])
    monitor = ki.callbacks.HealthMonitor(
        str(log_dir),
        probe=(x, y),
        every_n_steps=1,
        source="batch",
        warn=False,
    )
    fit(model, x, y, monitor, batch_size=len(x))
    stats = batch_records(log_dir)[0]["stats"]
    return model, {path: stats[path]["grad_norm"] for path in stats}


def test_gradients_are_unscaled_under_mixed_precision(tmp_path, mixed_float16):
    x, y = data(32)
    model, mixed = _first_step_gradients(tmp_path / "mixed", x, y)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.get_layer("d1").compute_dtype == "float16"
    scale = float(ops.convert_to_numpy(model.optimizer.dynamic_scale))
    keras.mixed_precision.set_dtype_policy("float32")
    # The same initial weights (drawn in float32 either way), all float32.
    _, full = _first_step_gradients(tmp_path / "full", x, y)
    assert mixed.keys() == full.keys() == {"d1", "d2"}
    for path in full:
        # Inputs, weights and each layer's output rounded to float16 on the
        # way forward and back through three layers: a few dozen float16
        # roundings, against a loss scale of 2^15 if it were left in.
        assert scale >= 2**10
        np.testing.assert_allclose(
            mixed[path], full[path], rtol=32 * EPS16, err_msg=path
        )
