"""HealthMonitor: every first-day mistake is refused before the first step.

Each case trains (or tries to train) a real model and checks the error's
type, the parts of its message (the argument, what was expected, what was
received, the fix), that the model did not take a step, and that nothing
was written under ``log_dir``. Also: NumPy integers, the probe's cap,
pickling, and what a run prints to standard error.
"""

import copy
import os
import pickle
import re
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from monitor_events import records, small_model

from kerasinit.callbacks import HealthMonitor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 4)).astype("float32")
Y = (X[:, :1] - X[:, 1:2]).astype("float32")


def _written(log_dir) -> list[str]:
    """Every path under ``log_dir`` (which may not exist)."""
    if not os.path.exists(log_dir):
        return []
    return sorted(
        os.path.relpath(os.path.join(d, n), log_dir)
        for d, dirs, files in os.walk(log_dir)
        for n in dirs + files
    )


def _refused(log_dir, error, parts, make, model=None, x=X, y=Y):
    """Build the monitor with ``make(log_dir)`` and fit; expect ``error``.

    The error may come from the constructor or from `fit`, but before the
    first step, with every one of ``parts`` in its message.
    """
    model = model or small_model()
    with pytest.raises(error) as caught:
        model.fit(x, y, epochs=1, verbose=0, callbacks=[make(log_dir)])
    message = str(caught.value)
    for part in parts:
        assert part in message, message
    assert "Received:" in message
    assert int(model.optimizer.iterations.numpy()) == 0
    assert _written(log_dir) == []
    return message


def test_an_empty_probe(tmp_path):
    _refused(
        tmp_path / "runs",
        ValueError,
        ["`probe`", "at least one example", "0 examples", "(0, 4)"],
        lambda d: HealthMonitor(d, (X[:0], Y[:0])),
    )


def test_an_empty_first_batch_of_a_dataset(tmp_path):
    empty = tf.data.Dataset.from_tensor_slices((X[:0], Y[:0])).batch(8)
    # A dataset with no batch at all yields nothing to take.
    _refused(
        tmp_path / "runs",
        ValueError,
        ["`probe`", "non-empty"],
        lambda d: HealthMonitor(d, empty),
    )


@pytest.mark.parametrize(
    "kwargs, parts",
    [
        (
            {"histogram_every_n_steps": 4},
            ['only with source="batch"', "source='probe'"],
        ),
        (
            {
                "source": "batch",
                "histograms": False,
                "histogram_every_n_steps": 4,
            },
            ["only with histograms=True", "histograms=False"],
        ),
        (
            {"source": "batch", "histogram_every_n_steps": 5},
            [
                "a multiple of `every_n_steps`",
                "(such as 4)",
                "histogram_every_n_steps=5, every_n_steps=2",
            ],
        ),
        (
            {"source": "batch", "histogram_every_n_steps": 0},
            ["`histogram_every_n_steps`", "positive integer"],
        ),
        (
            {"source": "batch", "statistics": "cheap"},
            ['`statistics` to be "full" or "economy"', "'cheap'"],
        ),
        (
            {"source": "batch", "statistics": None},
            ["`statistics`", "statistics=None"],
        ),
        (
            {"statistics": "economy"},
            ['only with source="batch"', "source='probe'"],
        ),
    ],
)
def test_batch_source_arguments_that_do_not_fit(tmp_path, kwargs, parts):
    _refused(
        tmp_path / "runs",
        ValueError,
        parts,
        lambda d: HealthMonitor(d, (X, Y), every_n_steps=2, **kwargs),
    )


@pytest.mark.parametrize(
    "layers, words",
    [
        ([], "name at least one layer"),
        ((), "name at least one layer"),
        ("re:zzz", "the regular expression matches none"),
        (re.compile("zzz"), "the regular expression matches none"),
        (lambda layer: False, "the predicate returns True for none"),
        ("re:(", "valid regular expression"),
    ],
)
def test_a_layer_selection_that_selects_nothing(tmp_path, layers, words):
    message = _refused(
        tmp_path / "runs",
        ValueError,
        ["`layers`", words],
        lambda d: HealthMonitor(d, (X, Y), layers=layers),
    )
    if "matches none" in message or "predicate" in message:
        # The layers that could have been chosen.
        assert "['d1', 'head']" in message


@pytest.mark.parametrize(
    "probe, part",
    [
        ((X, np.array(["up", "down"] * 32)), "y"),
        ((X, Y, np.array(["1"] * 64)), "sample_weight"),
    ],
)
def test_targets_the_loss_cannot_take(tmp_path, probe, part):
    message = _refused(
        tmp_path / "runs",
        ValueError,
        [f"{part} of `probe`", "numbers", f"{part} of dtype=string"],
        lambda d: HealthMonitor(d, probe),
    )
    if part == "y":
        assert "StringLookup" in message and "probe=x" in message


def test_string_labels_are_fine_without_gradients(tmp_path):
    # Targets that are never read are not checked.
    monitor = HealthMonitor(
        tmp_path, (X, np.array(["a"] * 64)), gradients=False
    )
    small_model().fit(X, Y, epochs=1, verbose=0, callbacks=[monitor])
    assert "act_mean" in monitor.last_result.layers["d1"]


def test_string_inputs_to_a_float_model(tmp_path):
    _refused(
        tmp_path / "runs",
        ValueError,
        ["`probe` input", "model input 0", "numeric", "dtype=string"],
        lambda d: HealthMonitor(d, np.array([["a"] * 4] * 8)),
    )


def test_an_unbatched_dataset_with_targets(tmp_path):
    # Class labels: each example's label is a scalar.
    unbatched = tf.data.Dataset.from_tensor_slices((X, (X[:, 0] > 0) * 1.0))
    _refused(
        tmp_path / "runs",
        ValueError,
        ["`probe`", "did you forget `.batch()`?", "no batch axis"],
        lambda d: HealthMonitor(d, unbatched),
    )


def test_an_unbatched_dataset_of_inputs(tmp_path):
    # Nothing to compare within the probe: the model's input tells.
    unbatched = tf.data.Dataset.from_tensor_slices(X)
    _refused(
        tmp_path / "runs",
        ValueError,
        ["`probe`", "did you forget `.batch()`?", "shape=(4,)"],
        lambda d: HealthMonitor(d, unbatched),
    )


def test_one_example_without_its_batch_axis(tmp_path):
    _refused(
        tmp_path / "runs",
        ValueError,
        ["`probe`", "x[None]", "shape=(4,)"],
        lambda d: HealthMonitor(d, X[0]),
    )


def test_inputs_are_named_by_their_input_name_or_position(tmp_path):
    plain = keras.Input((4,))
    named = keras.Input((3,), name="extra")
    hidden = keras.layers.Dense(4, activation="relu")(plain)
    out = keras.layers.Dense(1)(keras.layers.Concatenate()([hidden, named]))
    model = keras.Model([plain, named], out)
    model.compile("sgd", "mse")
    extra = RNG.normal(size=(64, 3)).astype("float32")
    wrong_first = np.zeros((64, 5), "float32")
    wrong_second = np.zeros((64, 5), "float32")
    for probe, label in [
        (([wrong_first, extra], Y), "model input 0."),
        (([X, wrong_second], Y), "model input 'extra' (position 1)"),
    ]:
        log_dir = tmp_path / label[:13]
        message = _refused(
            log_dir,
            ValueError,
            ["`probe` inputs of shape", label, "shape=(64, 5)"],
            lambda d, probe=probe: HealthMonitor(d, probe),
            model=model,
            x=[X, extra],
        )
        assert "keras_tensor" not in message


class OwnStepModel(keras.Model):
    """Trains with its own step and loss; compiled without `loss=`."""

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = keras.ops.mean(keras.ops.square(self(x) - y))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return {"loss": loss}


def _own_step_model():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu", name="d1")(inputs)
    model = OwnStepModel(inputs, keras.layers.Dense(1, name="head")(hidden))
    model.compile("sgd")
    return model


def test_a_custom_train_step_without_a_loss(tmp_path):
    _refused(
        tmp_path / "runs",
        ValueError,
        [
            "`probe`",
            "its own `train_step`",
            "without `loss=`",
            "`probe=x`",
            "`gradients=False`",
            "No loss to compute",
        ],
        lambda d: HealthMonitor(d, (X, Y)),
        model=_own_step_model(),
    )
    # Both ways out train and measure.
    for name, kwargs in [
        ("x_only", {"probe": X}),
        ("no_gradients", {"probe": (X, Y), "gradients": False}),
    ]:
        monitor = HealthMonitor(tmp_path / name, **kwargs)
        _own_step_model().fit(X, Y, epochs=1, verbose=0, callbacks=[monitor])
        assert [r["phase"] for r in records(tmp_path / name)] == [
            "preflight",
            "epoch",
        ]
        assert "grad_norm" not in monitor.last_result.layers["d1"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"every_n_epochs": 2.0},
        {"every_n_steps": np.float32(2)},
        {"every_n_epochs": True},
        {"max_probe_examples": 0},
        {"max_probe_examples": "all"},
    ],
)
def test_non_integers_are_refused(tmp_path, kwargs):
    (name,) = kwargs
    with pytest.raises(ValueError, match=re.escape(f"`{name}`")):
        HealthMonitor(tmp_path / "runs", (X, Y), **kwargs)
    assert _written(tmp_path / "runs") == []


def test_numpy_integers_are_integers(tmp_path):
    monitor = HealthMonitor(
        tmp_path,
        (X, Y),
        every_n_epochs=np.int64(2),
        every_n_steps=np.int32(3),
        max_probe_examples=np.uint16(64),
    )
    batch = HealthMonitor(
        tmp_path / "batch",
        (X, Y),
        every_n_steps=np.int32(3),
        source="batch",
        histogram_every_n_steps=np.int64(6),
    )
    assert type(batch.histogram_every_n_steps) is int
    assert type(monitor.every_n_epochs) is int
    assert type(monitor.every_n_steps) is int
    assert type(monitor.max_probe_examples) is int
    with pytest.warns(UserWarning, match="40 evenly spaced"):
        pass_through = HealthMonitor(
            tmp_path / "other", (X, Y), max_probe_examples=np.uint16(40)
        )
    assert pass_through.probe_examples == 40
    keras.utils.set_random_seed(0)
    model = small_model()
    # 64 / 16 = 4 steps per epoch, 4 epochs.
    model.fit(X, Y, batch_size=16, epochs=4, verbose=0, callbacks=[monitor])
    steps = [(r["phase"], r["step"]) for r in records(tmp_path)]
    expected = [("preflight", 0)]
    for step in range(1, 17):
        if step % 3 == 0:
            expected.append(("step", step))
        if step % 8 == 0:
            expected.append(("epoch", step))
    assert steps == expected


def test_a_large_probe_is_cut_to_evenly_spaced_examples(tmp_path):
    big = RNG.normal(size=(5000, 4)).astype("float32")
    targets = big[:, :1] - big[:, 1:2]
    state = np.random.get_state()
    with pytest.warns(UserWarning) as caught:
        monitor = HealthMonitor(
            tmp_path, (big, targets), max_probe_examples=100
        )
    # One line, at the line that made the monitor, with the numbers and
    # the way to change them.
    (warning,) = caught
    assert warning.filename == __file__
    text = str(warning.message)
    assert "5000 examples" in text and "100 evenly spaced" in text
    assert "`max_probe_examples=`" in text
    assert monitor.probe_examples == 100
    # Every 50th example, the same ones every time; no random state used.
    kept_x = np.asarray(monitor._x)
    kept_y = np.asarray(monitor._y)
    np.testing.assert_array_equal(kept_x, big[::50])
    np.testing.assert_array_equal(kept_y, targets[::50])
    assert all(
        np.array_equal(a, b) for a, b in zip(state, np.random.get_state())
    )
    small_model().fit(X, Y, epochs=1, verbose=0, callbacks=[monitor])
    assert [r["phase"] for r in records(tmp_path)] == ["preflight", "epoch"]


def test_the_cap_applies_to_a_datasets_batch_and_can_be_lifted(tmp_path):
    big = RNG.normal(size=(3000, 4)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((big, big[:, :1])).batch(3000)
    with pytest.warns(UserWarning, match="3000 examples; 1024 evenly"):
        assert HealthMonitor(tmp_path, ds).probe_examples == 1024
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # No cap, or a probe under it: every example, and no warning.
        uncapped = HealthMonitor(tmp_path, ds, max_probe_examples=None)
        assert uncapped.probe_examples == 3000
        under = HealthMonitor(tmp_path, (big[:1024], big[:1024, :1]))
        assert under.probe_examples == 1024
    assert _written(tmp_path) == []


def _pickled(monitor):
    return pickle.loads(pickle.dumps(monitor))


@pytest.mark.parametrize("clone", [_pickled, copy.deepcopy])
def test_monitors_copy_before_and_after_use(tmp_path, clone):
    ds = tf.data.Dataset.from_tensor_slices((X, Y)).batch(32)
    monitor = HealthMonitor(
        tmp_path / "first", ds, layers=["d1", "head"], every_n_steps=2
    )
    fresh = clone(monitor)
    assert fresh.probe_examples == 32 and fresh.layers == ["d1", "head"]
    keras.utils.set_random_seed(0)
    model = small_model()
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0, callbacks=[monitor])
    used = clone(monitor)
    assert used.model is None and used.last_result is not None
    assert used._event == monitor._event == 3
    np.testing.assert_array_equal(
        used.last_result.layers["d1"]["act_mean"],
        monitor.last_result.layers["d1"]["act_mean"],
    )
    # Both copies train a new model and log again.
    for copied in (fresh, used):
        other = small_model()
        other.fit(X, Y, batch_size=16, epochs=1, verbose=0, callbacks=[copied])
        assert copied.model is other
        assert copied.last_result is not None
    events = [r["event"] for r in records(tmp_path / "first")]
    # The original's 3 events; the fresh copy's, counted from 0 but after
    # the first file's events as it starts on a new model at step 0; the
    # used copy's, continuing its count.
    assert sorted(events) == [0, 0, 1, 1, 2, 2, 3, 4, 5]
    # A copy of a copy that trained still pickles.
    assert clone(used).probe_examples == 32


STDERR_SCRIPT = """\
import numpy as np
import keras
from kerasinit.callbacks import HealthMonitor

keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input((4,)),
    keras.layers.Dense(8, activation="relu", name="d1"),
    keras.layers.Dense(1, name="head"),
])
model.compile("sgd", "mse")
model.get_layer("d1").bias.assign(-100.0 * np.ones(8, "float32"))
x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
monitor = HealthMonitor({log_dir!r}, (x, x[:, :1]))
model.fit(x, x[:, :1], epochs=3, verbose=0, callbacks=[monitor])
print("diagnoses:", len(monitor.diagnoses))
"""

# What TensorFlow prints when one of its ops fails (a C++ log line, or an
# error escaping to Python) or when it warns from Python.
TF_ERROR = re.compile(
    r"WARNING:tensorflow|Traceback|UNIMPLEMENTED|INVALID_ARGUMENT"
    r"|Cast string|must not contain NaN|non-negative|rendezvous is aborting"
    r"|tensorflow\.python\.framework\.errors",
    re.IGNORECASE,
)


def test_a_finding_reaches_stderr_once_at_the_fit_line(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(STDERR_SCRIPT.format(log_dir=str(tmp_path / "runs")))
    fit_line = next(
        i
        for i, line in enumerate(STDERR_SCRIPT.splitlines(), start=1)
        if line.startswith("model.fit(")
    )
    env = dict(
        os.environ,
        PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
        # Every C++ log line shown, so that a failing op would be seen.
        TF_CPP_MIN_LOG_LEVEL="0",
    )
    # Python's default warning filters, as a user's script has them.
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.strip() == "diagnoses: 1"
    stderr = proc.stderr
    located = re.findall(
        r"^(.*):(\d+): (\w+Warning): (.*)$", stderr, flags=re.MULTILINE
    )
    assert len(located) == 1, stderr
    filename, line, category, message = located[0]
    assert (filename, int(line)) == (str(script), fit_line)
    assert category == "DeadUnitsWarning"
    assert "'d1'" in message
    # Said once: no second copy from the logger's last-resort handler.
    assert stderr.count(message) == 1, stderr
    assert not TF_ERROR.search(stderr), stderr
