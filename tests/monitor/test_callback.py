"""HealthMonitor: arguments, user errors, reporting, and never breaking fit."""

import errno
import logging
import re
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from monitor_events import records, small_model

from kerasinit.callbacks import (
    DeadUnitsWarning,
    HealthMonitor,
    HealthWarning,
    NonFiniteWarning,
)

X = np.zeros((32, 4), "float32")
Y = np.zeros((32, 1), "float32")


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"every_n_epochs": 0}, "every_n_epochs"),
        ({"every_n_steps": 1.5}, "every_n_steps"),
        ({"every_n_epochs": None}, "every_n_epochs"),
        ({"thresholds": {"dead_fraction": 0.1}}, "thresholds"),
        ({"layers": 3}, "layers"),
        ({"probe": None}, "probe"),
        ({"probe": (X, Y, Y, Y)}, "probe"),
        ({"log_dir": ""}, "log_dir"),
        ({"compile": "yes"}, "compile"),
    ],
)
def test_constructor_rejects_bad_arguments(tmp_path, kwargs, name):
    args = {"log_dir": tmp_path, "probe": (X, Y), **kwargs}
    with pytest.raises(ValueError, match=re.escape(f"`{name}`")):
        HealthMonitor(**args)


def test_unwritable_log_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match="`log_dir`"):
        HealthMonitor(blocker / "runs", (X, Y))


@pytest.mark.parametrize(
    "probe, match",
    [
        ((np.zeros((32, 5), "float32"), Y), "shape"),
        ((np.zeros((32, 4, 1), "float32"), Y), "shape"),
        (([X, X], Y), "input"),
        ((np.array([["a"] * 4] * 32), Y), "numeric"),
        ((X, np.zeros((32, 3, 3), "float32")), "does not fit"),
    ],
)
def test_probe_that_does_not_fit_the_model(tmp_path, probe, match):
    model = small_model()
    monitor = HealthMonitor(tmp_path, probe)
    monitor.set_model(model)
    with pytest.raises(ValueError, match=match):
        monitor.on_train_begin()


def test_unknown_layer_names_list_the_available_layers(tmp_path):
    monitor = HealthMonitor(tmp_path, (X, Y), layers=["d1", "nope"])
    monitor.set_model(small_model())
    with pytest.raises(ValueError, match=r"\['nope'\].*\['d1', 'head'\]"):
        monitor.on_train_begin()


@pytest.mark.parametrize(
    "layers, expected",
    [
        (["head"], ["head"]),
        (re.compile("^d"), ["d1"]),
        ("re:head|d1", ["d1", "head"]),
        (lambda layer: layer.name == "head", ["head"]),
    ],
)
def test_layer_selection_forms(tmp_path, layers, expected):
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    monitor = HealthMonitor(tmp_path, x, layers=layers)
    monitor.set_model(small_model())
    monitor.on_train_begin()
    assert list(monitor.last_result.layers) == expected
    # x alone: activation statistics only.
    assert "grad_norm" not in monitor.last_result.layers[expected[0]]


def test_dataset_probe_takes_the_first_batch_without_consuming(tmp_path):
    ds = tf.data.Dataset.from_tensor_slices(
        (np.arange(64 * 4, dtype="float32").reshape(64, 4), np.ones((64, 1)))
    ).batch(16)
    iterator = iter(ds)
    monitor = HealthMonitor(tmp_path, ds)
    assert monitor.probe_examples == 16
    first, _ = next(iterator)
    assert first.numpy()[0, 0] == 0.0


def test_each_new_diagnosis_is_warned_once_at_the_callers_line(
    tmp_path, caplog
):
    model = small_model()
    model.get_layer("d1").bias.assign(-100.0 * np.ones(8, "float32"))
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    monitor = HealthMonitor(tmp_path, (x, x[:, :1]))
    monitor.set_model(model)
    with caplog.at_level(logging.WARNING, logger="kerasinit.monitor"):
        with pytest.warns(HealthWarning) as record:
            monitor.on_train_begin()
    health = [w for w in record if issubclass(w.category, HealthWarning)]
    # One problem, one warning: the units stuck at 0 also pass no gradient
    # to the kernel feeding them, which is evidence, not a second verdict.
    assert [(w.category, str(w.message)) for w in health] == [
        (d.warning_class, str(d)) for d in monitor.diagnoses
    ]
    assert [(d.kind, d.first_layer) for d in monitor.diagnoses] == [
        ("dead_units", "d1")
    ]
    assert health[0].category is DeadUnitsWarning
    assert "bias" in monitor.diagnoses[0].cause
    assert [f.kind for f in monitor.findings] == [
        f.kind for f in monitor.diagnoses[0].findings
    ]
    assert monitor.findings[0].value == 1.0
    # The warning points at the line that called into the monitor.
    assert health[0].filename == __file__
    said = [r for r in caplog.records if r.name == "kerasinit.monitor"]
    assert len(said) == 1 and "dead units" in said[0].getMessage()


def test_nonfinite_names_the_first_layer(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu", name="d1"),
            keras.layers.Dense(8, activation="relu", name="d2"),
            keras.layers.Dense(1, name="head"),
        ]
    )
    model.compile("sgd", "mse")
    kernel = model.get_layer("d2").kernel
    kernel.assign(np.full(kernel.shape, np.inf, "float32"))
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    monitor = HealthMonitor(tmp_path, (x, x[:, :1]), layers=None)
    monitor.set_model(model)
    with pytest.warns(NonFiniteWarning, match="'d2'"):
        monitor.on_train_begin()
    assert [(f.kind, f.layer) for f in monitor.findings][0] == (
        "nonfinite",
        "d2",
    )


# -- the monitor never breaks training ---------------------------------------

TRAIN_X = np.random.default_rng(7).normal(size=(64, 4)).astype("float32")
TRAIN_Y = TRAIN_X[:, :1] - TRAIN_X[:, 1:2]


def _train(callbacks, learning_rate=0.05, epochs=3):
    """Weights after a seeded fit of a small regression MLP."""
    keras.utils.set_random_seed(7)
    model = small_model()
    model.compile(keras.optimizers.SGD(learning_rate), "mse")
    model.fit(
        TRAIN_X,
        TRAIN_Y,
        batch_size=8,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
    )
    return [v.numpy() for v in model.weights]


class _AtEpoch(keras.callbacks.Callback):
    """Runs ``fault()`` at the beginning of one epoch (before the monitor's
    end-of-epoch event)."""

    def __init__(self, epoch, fault):
        super().__init__()
        self.epoch, self.fault = epoch, fault

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.fault()


def _assert_same_weights(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def _failure_logs(caplog):
    return [r for r in caplog.records if "the event is skipped" in r.message]


def _fit_with_fault(tmp_path, caplog, fault, at_epoch=1, **kwargs):
    monitor = HealthMonitor(
        tmp_path, (TRAIN_X[:32], TRAIN_Y[:32]), compile=False, **kwargs
    )
    with caplog.at_level(logging.WARNING, logger="kerasinit.monitor"):
        weights = _train([_AtEpoch(at_epoch, fault), monitor])
    return monitor, weights


def test_a_failing_statistic_skips_the_event_and_training_goes_on(
    tmp_path, caplog, monkeypatch
):
    from kerasinit.monitor import activation_stats

    def broken(*args, **kwargs):
        raise RuntimeError("statistic failed")

    def fault():
        monkeypatch.setattr(activation_stats, "activation_stats_many", broken)

    monitor, weights = _fit_with_fault(tmp_path, caplog, fault)
    _assert_same_weights(weights, _train([]))
    # Pre-flight and epoch 0 measured; epochs 1 and 2 skipped, logged once.
    assert monitor.skipped_events == 2
    assert len(_failure_logs(caplog)) == 1
    assert "statistic failed" in _failure_logs(caplog)[0].message
    assert [r["phase"] for r in records(tmp_path)] == ["preflight", "epoch"]


def test_an_internal_error_at_the_preflight_is_not_the_users(
    tmp_path, caplog, monkeypatch
):
    from kerasinit.monitor import activation_stats

    def broken(*args, **kwargs):
        # A ValueError from the monitor's own code, not from the model.
        raise ValueError("internal")

    monkeypatch.setattr(activation_stats, "activation_stats_many", broken)
    monitor, weights = _fit_with_fault(tmp_path, caplog, lambda: None)
    _assert_same_weights(weights, _train([]))
    assert monitor.skipped_events == 4
    assert not any("does not fit" in r.message for r in caplog.records)


def test_a_full_disk_skips_the_event(tmp_path, caplog, monkeypatch):
    from kerasinit.monitor import summaries

    def full(self, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    def fault():
        monkeypatch.setattr(summaries.EventWriter, "write_event", full)

    monitor, weights = _fit_with_fault(tmp_path, caplog, fault)
    _assert_same_weights(weights, _train([]))
    assert monitor.skipped_events == 2
    assert len(_failure_logs(caplog)) == 1
    assert len(records(tmp_path)) == 2


def test_the_log_directory_removed_mid_run(tmp_path, caplog):
    def fault():
        shutil.rmtree(tmp_path / "kerasinit")

    monitor, weights = _fit_with_fault(tmp_path, caplog, fault)
    _assert_same_weights(weights, _train([]))
    # The run goes on in a new event file.
    assert monitor.skipped_events == 0
    assert [r["event"] for r in records(tmp_path)] == [2, 3]


def test_an_unwritable_log_directory_mid_run(tmp_path, caplog):
    def fault():
        # A file where the run directory was: it cannot be created again.
        shutil.rmtree(tmp_path / "kerasinit")
        (tmp_path / "kerasinit").write_text("not a directory")

    monitor, weights = _fit_with_fault(tmp_path, caplog, fault)
    _assert_same_weights(weights, _train([]))
    assert monitor.skipped_events == 2
    assert len(_failure_logs(caplog)) == 1


def test_nonfinite_values_everywhere(tmp_path, caplog):
    # A learning rate that sends every weight to inf, then NaN.
    monitor = HealthMonitor(
        tmp_path, (TRAIN_X[:32], TRAIN_Y[:32]), every_n_steps=1, warn=False
    )
    weights = _train([monitor], learning_rate=1e6, epochs=2)
    _assert_same_weights(weights, _train([], learning_rate=1e6, epochs=2))
    assert not np.isfinite(weights[0]).any()
    assert monitor.skipped_events == 0
    last = records(tmp_path)[-1]["stats"]["d1"]
    assert last["act_nonfinite"] == 32 * 8 and last["act_mean"] is None
    # The cause, said once: the values that turn infinite, then NaN, later
    # are its consequence, not a second verdict.
    assert [(d.kind, d.first_layer) for d in monitor.diagnoses] == [
        ("learning_rate_high", "d1")
    ]


def test_the_update_ratio_measures_the_steps_between_events(tmp_path):
    keras.utils.set_random_seed(3)
    model = small_model()
    monitor = HealthMonitor(tmp_path, (TRAIN_X[:32], TRAIN_Y[:32]))
    kernels = []

    class Kernels(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            kernels.append(model.get_layer("d1").get_weights())

        def on_epoch_end(self, epoch, logs=None):
            kernels.append(model.get_layer("d1").get_weights())

    model.fit(
        TRAIN_X,
        TRAIN_Y,
        batch_size=8,
        epochs=2,
        verbose=0,
        callbacks=[Kernels(), monitor],
    )
    got = [r["stats"]["d1"]["update_ratio"] for r in records(tmp_path)]
    assert got[0] is None
    for before, after, ratio in zip(kernels, kernels[1:], got[1:]):
        old = np.concatenate([w.ravel() for w in before]).astype(np.float64)
        new = np.concatenate([w.ravel() for w in after]).astype(np.float64)
        expected = np.linalg.norm(new - old) / np.linalg.norm(old)
        np.testing.assert_allclose(ratio, expected, rtol=1e-5)


def test_deep_stack_of_tiny_weights_preflight(tmp_path):
    """The pre-flight that crashed with "Bincount ... Input arr must be
    non-negative": a 50-layer, 64-wide ReLU MLP with N(0, 1e-3) kernels
    and a probe of 128. With this seed one layer's outputs span a range
    narrower than ``30 / float32 max`` (the condition of the crash)."""
    keras.utils.set_random_seed(4)
    tiny = keras.initializers.RandomNormal(0.0, 1e-3)
    model = keras.Sequential(
        [keras.Input((64,))]
        + [
            keras.layers.Dense(64, activation="relu", kernel_initializer=tiny)
            for _ in range(50)
        ]
        + [keras.layers.Dense(10)]
    )
    model.compile(
        "sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    rng = np.random.default_rng(4)
    x = rng.normal(size=(128, 64)).astype("float32")
    y = rng.integers(0, 10, 128)
    monitor = HealthMonitor(tmp_path, (x, y), warn=False)
    monitor.set_model(model)
    monitor.on_train_begin()
    assert monitor.skipped_events == 0
    result = monitor.last_result
    smallest_normal = np.finfo(np.float32).tiny
    overflowing = 30 / np.finfo(np.float32).max
    widths = [v["act_max"] - v["act_min"] for v in result.layers.values()]
    assert any(smallest_normal <= w < overflowing for w in widths)
    for table in result.activation_histograms.values():
        assert table[:, 2].sum() == 128 * 64 and (table[:, 2] >= 0).all()
