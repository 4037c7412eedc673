"""Statistics against NumPy, diagnosis rules, and argument validation."""

import logging
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasinit import gains
from kerasinit.callbacks import (
    DeadUnitsWarning,
    Finding,
    HealthMonitor,
    HealthWarning,
    NonFiniteWarning,
    Thresholds,
)
from kerasinit.monitor import diagnosis, stats


def test_activation_stats_match_numpy():
    rng = np.random.default_rng(0)
    y = np.maximum(rng.normal(size=(64, 5, 7)), 0.0).astype("float32")
    y[:, :, 3] = 0.0  # one dead channel
    y[0, 0, 0] = np.nan
    y[1, 0, 0] = np.inf
    rule = gains.info("sigmoid").saturation
    out = {
        k: v.numpy()
        for k, v in stats.activation_stats(
            tf.constant(y),
            dead_value=0.0,
            saturation_derivative=stats.saturation_fn(rule, None),
            saturation_cutoff=0.05 * 0.25,
            bins=10,
        ).items()
    }
    finite = y[np.isfinite(y)]
    np.testing.assert_allclose(out["act_mean"], finite.mean(), rtol=1e-5)
    np.testing.assert_allclose(out["act_std"], finite.std(), rtol=1e-4)
    assert out["act_min"] == finite.min() and out["act_max"] == finite.max()
    assert out["act_nonfinite"] == 2
    np.testing.assert_allclose(out["zero_fraction"], np.mean(y == 0.0))
    dead = np.all(y == 0.0, axis=(0, 1))
    assert dead.sum() == 1
    np.testing.assert_allclose(out["dead_fraction"], dead.mean())
    with np.errstate(invalid="ignore"):
        deriv = y * (1.0 - y)
        sat = np.mean((deriv < 0.0125) & np.isfinite(y))
    np.testing.assert_allclose(out["saturation_fraction"], sat, rtol=1e-6)
    hist = out["histogram"]
    counts, edges = np.histogram(
        finite, bins=10, range=(finite.min(), finite.max())
    )
    np.testing.assert_allclose(hist[:, 0], edges[:-1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hist[:, 1], edges[1:], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(hist[:, 2], counts)


def test_histogram_of_constant_and_empty_tensors():
    h = stats.histogram(tf.fill([4, 3], 2.0), bins=4).numpy()
    assert h[0, 0] == 1.5 and h[-1, 1] == 2.5 and h[:, 2].sum() == 12
    h = stats.histogram(tf.constant([np.nan, np.inf]), bins=4).numpy()
    assert h[:, 2].sum() == 0 and h[0, 0] == 0.0 and h[-1, 1] == 1.0
    # Non-finite values are left out even when 0 lies outside the range.
    for values in ([5.0, 6.0, 7.0, np.nan], [-7.0, -6.0, -np.inf, -5.0]):
        h = stats.histogram(tf.constant(values), bins=3).numpy()
        np.testing.assert_array_equal(h[:, 2], [1.0, 1.0, 1.0])


def _run(fn, compiled: bool):
    """`fn()` eagerly, or traced and run as one `tf.function`."""
    return tf.function(fn)() if compiled else fn()


# The gradient statistics take another path eagerly (one concatenation, one
# segment reduction per statistic) than compiled (tensor by tensor); both
# must give the same numbers.
both_paths = pytest.mark.parametrize(
    "compiled", [False, True], ids=["eager", "compiled"]
)


@both_paths
def test_gradient_stats_keep_tiny_norms(compiled):
    g = [tf.fill([100], 1e-25), None]
    w = [tf.fill([100], 2.0), tf.zeros([3])]
    got = _run(lambda: stats.gradient_stats(g, w), compiled)
    out = {k: v.numpy() for k, v in got.items()}
    # A float32 sum of squares would underflow to exactly 0.
    np.testing.assert_allclose(out["grad_norm"], 1e-24, rtol=1e-5)
    np.testing.assert_allclose(out["weight_norm"], 20.0, rtol=1e-6)
    np.testing.assert_allclose(out["grad_weight_ratio"], 5e-26, rtol=1e-5)
    assert out["grad_nonfinite"] == 0
    assert out["histogram"][:, 2].sum() == 103


def _numpy_activation_row(y, dead, rule):
    finite = y[np.isfinite(y)]
    units = y.reshape(-1, y.shape[-1])
    with np.errstate(invalid="ignore"):
        deriv = rule(y) if rule else None
    return {
        "act_mean": finite.mean(),
        "act_std": finite.std(),
        "act_min": finite.min(),
        "act_max": finite.max(),
        "zero_fraction": np.mean(y == 0.0),
        "dead_fraction": (
            np.all(units == dead, axis=0).mean() if dead is not None else 0.0
        ),
        "saturation_fraction": (
            np.mean((deriv < 0.0125) & np.isfinite(y)) if rule else 0.0
        ),
        "act_nonfinite": np.sum(~np.isfinite(y)),
    }


def test_many_outputs_at_once_match_each_alone():
    # Outputs of three sizes and two rules, interleaved, so the grouping by
    # size and rule must put every row back in input order.
    rng = np.random.default_rng(1)
    shapes = [(32, 8), (32, 4, 4), (32, 8), (16, 6), (32, 16)]
    outputs = [rng.normal(size=s).astype("float32") for s in shapes]
    outputs[0] = np.maximum(outputs[0], 0.0)
    outputs[0][:, 2] = 0.0
    outputs[2] = 1.0 / (1.0 + np.exp(-4.0 * outputs[2]))
    outputs[3][0, 0] = np.inf
    sigmoid = stats.saturation_fn(gains.info("sigmoid").saturation, None)
    dead = [0.0, None, None, 0.0, None]
    rules = [None, None, (sigmoid, 0.0125), None, (sigmoid, 0.0125)]
    got = stats.activation_stats_many(
        [tf.constant(y) for y in outputs],
        dead_values=dead,
        saturation=rules,
        bins=7,
    )
    scalars = got["scalars"].numpy()
    counts = got["counts"].numpy()
    for i, y in enumerate(outputs):
        expected = _numpy_activation_row(
            y, dead[i], (lambda v: v * (1.0 - v)) if rules[i] else None
        )
        for column, name in enumerate(stats.ACTIVATION_SCALARS):
            np.testing.assert_allclose(
                scalars[i, column], expected[name], rtol=1e-4, err_msg=name
            )
        finite = y[np.isfinite(y)]
        np.testing.assert_array_equal(
            counts[i],
            np.histogram(finite, 7, range=(finite.min(), finite.max()))[0],
        )


@both_paths
def test_many_gradients_at_once_match_each_alone(compiled):
    rng = np.random.default_rng(2)
    layers = [
        ([rng.normal(size=(5, 3)), rng.normal(size=3)], [(5, 3), (3,)]),
        ([rng.normal(size=(7, 3)) * 1e-20, None], [(7, 3), (3,)]),
        ([rng.normal(size=(5, 3)), rng.normal(size=3)], [(5, 3), (3,)]),
    ]
    groups = []
    for grads, shapes in layers:
        weights = [rng.normal(size=s).astype("float32") for s in shapes]
        groups.append(
            (
                [
                    None if g is None else tf.constant(g, tf.float32)
                    for g in grads
                ],
                [tf.constant(w) for w in weights],
            )
        )
    got = _run(lambda: stats.gradient_stats_many(groups, bins=5), compiled)
    _check_gradient_rows(groups, got)
    # One non-finite gradient anywhere: every layer is measured with masks,
    # and the finite ones still match.
    bad = rng.normal(size=(4, 3))
    bad[0, 0], bad[1, 1] = np.nan, np.inf
    weights = [tf.constant(rng.normal(size=(4, 3)), tf.float32)]
    groups.append(([tf.constant(bad, tf.float32)], weights))
    got = _run(lambda: stats.gradient_stats_many(groups, bins=5), compiled)
    _check_gradient_rows(groups[:-1], got)
    last = got["scalars"].numpy()[-1]
    assert last[3] == 2 and not np.isfinite(last[0])
    finite = bad[np.isfinite(bad)].astype(np.float32)
    np.testing.assert_allclose(
        got["range"].numpy()[-1], [finite.min(), finite.max()], rtol=1e-6
    )
    np.testing.assert_array_equal(
        got["counts"].numpy()[-1],
        np.histogram(finite, 5, range=(finite.min(), finite.max()))[0],
    )


@both_paths
def test_layers_the_loss_does_not_reach(compiled):
    # Whole layers without gradients, inside the list and at its end: their
    # entries are the zeros of their weights.
    rng = np.random.default_rng(3)

    def layer(reached):
        w = [
            tf.constant(rng.normal(size=s), tf.float32) for s in [(4, 2), (2,)]
        ]
        g = [tf.constant(rng.normal(size=v.shape), tf.float32) for v in w]
        return (g if reached else [None, None]), w

    groups = [layer(True), layer(False), layer(True), layer(False)]
    got = _run(lambda: stats.gradient_stats_many(groups, bins=5), compiled)
    _check_gradient_rows(groups, got)
    scalars = got["scalars"].numpy()
    np.testing.assert_array_equal(scalars[[1, 3], 0], [0.0, 0.0])
    np.testing.assert_array_equal(got["range"].numpy()[[1, 3]], 0.0)
    # A constant 0 is bucketed in the unit-wide range centred on it.
    np.testing.assert_array_equal(got["counts"].numpy()[3], [0, 0, 10, 0, 0])


@both_paths
def test_a_layer_without_finite_gradients(compiled):
    groups = [([tf.fill([3, 2], np.nan)], [tf.ones([3, 2])])]
    got = _run(lambda: stats.gradient_stats_many(groups, bins=4), compiled)
    # No finite extremes (not the largest finite floats) and nothing counted.
    lo, hi = got["range"].numpy()[0]
    assert lo == np.inf and hi == -np.inf
    assert got["scalars"].numpy()[0, 3] == 6
    assert not np.isfinite(got["scalars"].numpy()[0, 0])
    assert got["counts"].numpy()[0].sum() == 0


def _check_gradient_rows(groups, got):
    scalars = got["scalars"].numpy()
    for i, (grads, weights) in enumerate(groups):
        g = np.concatenate(
            [
                np.zeros(w.shape).ravel() if gr is None else gr.numpy().ravel()
                for gr, w in zip(grads, weights)
            ]
        ).astype(np.float64)
        w = np.concatenate([v.numpy().ravel() for v in weights])
        g32 = g.astype(np.float32).astype(np.float64)
        np.testing.assert_allclose(
            scalars[i, 0], np.linalg.norm(g32), rtol=1e-5
        )
        np.testing.assert_allclose(scalars[i, 1], np.linalg.norm(w), rtol=1e-5)
        np.testing.assert_allclose(
            got["range"].numpy()[i], [g32.min(), g32.max()], rtol=1e-6
        )
        np.testing.assert_array_equal(
            got["counts"].numpy()[i],
            np.histogram(g32, 5, range=(g32.min(), g32.max()))[0],
        )


def test_histogram_table_layout():
    table = stats.histogram_table(
        np.array([1.0, 2.0, np.inf], np.float32),
        np.array([3.0, 2.0, -np.inf], np.float32),
        np.array([[1, 2], [0, 4], [0, 0]], np.float32),
    )
    np.testing.assert_allclose(table[0], [[1, 2, 1], [2, 3, 2]])
    # A constant row: unit-wide, centred on its value.
    np.testing.assert_allclose(table[1], [[1.5, 2.0, 0], [2.0, 2.5, 4]])
    # No finite value: [0, 1], no counts.
    np.testing.assert_allclose(table[2], [[0, 0.5, 0], [0.5, 1, 0]])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dead_fraction": 0.0},
        {"dead_fraction": 1.5},
        {"saturation_fraction": float("nan")},
        {"saturation_derivative": "0.1"},
        {"vanishing_ratio": 2.0},
        {"exploding_ratio": 0.5},
        {"exploding_ratio": float("inf")},
        {"dead_min_examples": 0},
    ],
)
def test_thresholds_reject_bad_values(kwargs):
    (name,) = kwargs
    with pytest.raises(ValueError, match=re.escape(f"`{name}`")):
        Thresholds(**kwargs)


def test_thresholds_defaults_round_trip():
    t = Thresholds()
    assert Thresholds(**t.get_config()).get_config() == t.get_config()


def _stats(**layers):
    return {name: dict(values) for name, values in layers.items()}


def test_diagnose_rules_and_first_nonfinite_layer():
    t = Thresholds()
    layer_stats = _stats(
        a={"dead_fraction": 0.5, "grad_norm": 1e-5, "act_nonfinite": 0},
        b={"saturation_fraction": 0.9, "grad_norm": 1e4, "act_nonfinite": 3},
        c={"act_nonfinite": 7, "grad_norm": 1.0},
        out={"grad_norm": 1.0},
    )
    found = diagnosis.diagnose(
        layer_stats,
        ["a", "b", "c", "out"],
        step=5,
        thresholds=t,
        reference_grad_norm=1.0,
        reference_layer="out",
        dead_applies=["a"],
        saturation_applies=["b"],
    )
    kinds = [(f.kind, f.layer) for f in found]
    assert kinds == [
        ("nonfinite", "b"),
        ("dead_units", "a"),
        ("vanishing_gradients", "a"),
        ("saturation", "b"),
    ]
    for f in found:
        assert f.step == 5 and f"'{f.layer}'" in f.message
        assert "step 5" in f.message and f.advice
    # The dead rule needs enough probe examples to mean anything.
    few = diagnosis.diagnose(
        layer_stats,
        ["a"],
        step=0,
        thresholds=t,
        probe_examples=8,
        dead_applies=["a"],
    )
    assert [f.kind for f in few] == []


def test_rate_limiter_fires_again_after_the_condition_clears():
    def finding(layer, kind="dead_units"):
        return Finding(kind, layer, 0, 0.5, 0.25, "m", "a")

    limiter = diagnosis.RateLimiter()
    assert len(limiter.filter([finding("a"), finding("b")])) == 2
    assert limiter.filter([finding("a"), finding("b")]) == []
    assert [f.layer for f in limiter.filter([finding("b")])] == []
    assert [f.layer for f in limiter.filter([finding("a"), finding("b")])] == [
        "a"
    ]


def _small_model():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu", name="d1"),
            keras.layers.Dense(1, name="head"),
        ]
    )
    model.compile("sgd", "mse")
    return model


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
    model = _small_model()
    monitor = HealthMonitor(tmp_path, probe)
    monitor.set_model(model)
    with pytest.raises(ValueError, match=match):
        monitor.on_train_begin()


def test_unknown_layer_names_list_the_available_layers(tmp_path):
    monitor = HealthMonitor(tmp_path, (X, Y), layers=["d1", "nope"])
    monitor.set_model(_small_model())
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
    monitor.set_model(_small_model())
    monitor.on_train_begin()
    assert list(monitor.last_result["layers"]) == expected
    # x alone: activation statistics only.
    assert "grad_norm" not in monitor.last_result["layers"][expected[0]]


def test_dataset_probe_takes_the_first_batch_without_consuming(tmp_path):
    ds = tf.data.Dataset.from_tensor_slices(
        (np.arange(64 * 4, dtype="float32").reshape(64, 4), np.ones((64, 1)))
    ).batch(16)
    iterator = iter(ds)
    monitor = HealthMonitor(tmp_path, ds)
    assert monitor.probe_examples == 16
    first, _ = next(iterator)
    assert first.numpy()[0, 0] == 0.0


def test_each_new_finding_is_warned_logged_and_recorded(tmp_path, caplog):
    model = _small_model()
    model.get_layer("d1").bias.assign(-100.0 * np.ones(8, "float32"))
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    monitor = HealthMonitor(tmp_path, (x, x[:, :1]))
    monitor.set_model(model)
    with caplog.at_level(logging.WARNING, logger="kerasinit.monitor"):
        with pytest.warns(HealthWarning) as record:
            monitor.on_train_begin()
    # A unit stuck at 0 also passes no gradient to the kernel feeding it.
    assert [(w.category, str(w.message)) for w in record] == [
        (f.warning_class, str(f)) for f in monitor.findings
    ]
    assert [f.kind for f in monitor.findings] == [
        "dead_units",
        "vanishing_gradients",
    ]
    assert record[0].category is DeadUnitsWarning
    assert re.search("'d1'.*= 1 .*Fix:", str(record[0].message))
    assert monitor.findings[0].value == 1.0
    assert any("dead unit fraction" in r.getMessage() for r in caplog.records)


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
    x = np.ones((32, 4), "float32")
    monitor = HealthMonitor(tmp_path, (x, x[:, :1]), layers=None)
    monitor.set_model(model)
    with pytest.warns(NonFiniteWarning, match="'d2'"):
        monitor.on_train_begin()
    assert [(f.kind, f.layer) for f in monitor.findings][0] == (
        "nonfinite",
        "d2",
    )
