"""The package on every Keras backend: imports, test selection, training.

The JAX and PyTorch test processes run the files `conftest.ALL_BACKENDS`
names; the tests here check that selection and what no single-class test
covers: that a JAX or PyTorch process never loads TensorFlow, and that a model
built from kerasinit's layers and initializers trains through the backend's
compiled train step and saves.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import ALL_BACKENDS, TENSORFLOW_MODULES

import kerasinit as ki

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def _run(code_or_args, backend, *argv, timeout=600):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    args = (
        [sys.executable, "-c", code_or_args, *argv]
        if isinstance(code_or_args, str)
        else [sys.executable, *code_or_args]
    )
    result = subprocess.run(
        args,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return result


# Uses what a JAX or PyTorch user reaches for without the monitor: the
# initializers, the layers, `gain`, `pair`, `check`, `lsuv`. Not configs,
# `model.save` nor `keras.utils.set_random_seed`: Keras 3.15 itself imports
# TensorFlow in those whenever it is installed (`serialize_keras_object`,
# which every `Layer.get_config` reaches, checks for `tf.TensorShape`; the
# seed is set for `tf.data`). They are tested in the JAX and PyTorch test
# processes, where TensorFlow is blocked.
_USE_THE_PACKAGE = """
import json, sys
import keras, numpy as np
import kerasinit as ki

model = keras.Sequential([
    keras.Input((8,)),
    keras.layers.Dense(16, kernel_initializer=ki.initializers.He("relu")),
    ki.layers.ReLU(),
    keras.layers.Dense(16, kernel_initializer="kerasinit>Glorot"),
    ki.layers.Tanh(),
    ki.layers.SwiGLU(8),
    keras.layers.Dense(1),
])
x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
ki.pair(model)
ki.check(model)
ki.lsuv(model, x)
ki.gain("leaky_relu", 0.1)
ki.callbacks.HealthWarning
print(json.dumps({
    "backend": keras.backend.backend(),
    "modules": sorted(m for m in sys.modules
                      if m.split(".")[0] in sys.argv[1:]),
}))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_package_never_imports_tensorflow(backend):
    result = _run(_USE_THE_PACKAGE, backend, *TENSORFLOW_MODULES)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == backend
    assert report["modules"] == []


# A monitored `fit` as a user writes it, TensorFlow installed but not
# blocked: neither the monitor nor its event files may load it.
_MONITORED_FIT = """
import json, sys, tempfile
import keras, numpy as np
import kerasinit as ki
from kerasinit.monitor import event_files

x = np.random.default_rng(0).normal(size=(128, 8)).astype("float32")
y = (x[:, 0] > 0).astype("int32")
model = keras.Sequential([
    keras.Input((8,)),
    keras.layers.Dense(16, activation="relu"),
    keras.layers.Dense(2),
])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(True))
log_dir = tempfile.mkdtemp()
model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[
    ki.callbacks.HealthMonitor(log_dir, probe=(x[:32], y[:32]),
                               every_n_steps=2, warn=False)])
print(json.dumps({
    "events": len(event_files.records(log_dir + "/kerasinit")),
    "modules": sorted(m for m in sys.modules
                      if m.split(".")[0] in sys.argv[1:]),
}))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_monitored_fit_never_imports_tensorflow(backend):
    result = _run(_MONITORED_FIT, backend, *TENSORFLOW_MODULES)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # The pre-flight and an event every two of the eight steps.
    assert report["events"] == 5
    assert report["modules"] == []


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_monitor_loads_only_when_asked_for(backend):
    code = (
        "import sys, kerasinit\n"
        "before = 'kerasinit.monitor' in sys.modules\n"
        "kerasinit.callbacks.HealthMonitor\n"
        "print(before, 'kerasinit.monitor' in sys.modules)\n"
    )
    result = _run(code, backend)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["False", "True"]


def test_selection_on_this_backend():
    """Every entry of the selection contributes tests on this backend.

    Collected in a fresh process, so the answer does not depend on which
    files this run was asked for.
    """
    backend = keras.backend.backend()
    result = _run(
        ["-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        backend,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    ids = [
        line.split("::")[0]
        for line in result.stdout.splitlines()
        if "::" in line
    ]
    entries = {
        entry: [
            i
            for i in ids
            if Path(i).relative_to("tests").parts[: len(Path(entry).parts)]
            == Path(entry).parts
        ]
        for entry in ALL_BACKENDS
    }
    for entry, found in entries.items():
        assert found, f"KERAS_BACKEND={backend}: no tests under tests/{entry}"
    selected = sum(len(found) for found in entries.values())
    if backend == "tensorflow":
        # The TensorFlow process runs the whole suite, selection included.
        assert len(ids) > selected
    else:
        assert len(ids) == selected


def test_layers_train_compiled_and_save(tmp_path):
    """A model of kerasinit layers trains in the backend's compiled step."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(256, 12)).astype("float32")
    y = (x[:, :3].sum(axis=1, keepdims=True) > 0).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((12,)),
            keras.layers.Dense(
                32,
                kernel_initializer=ki.initializers.He(
                    "leaky_relu", negative_slope=0.1, seed=1
                ),
            ),
            ki.layers.LeakyReLU(0.1),
            keras.layers.Dense(
                32, kernel_initializer=ki.initializers.Orthogonal(seed=2)
            ),
            ki.layers.PReLU(),
            ki.layers.SiLU(trainable_beta=True),
            ki.layers.SwiGLU(16),
            keras.layers.Dense(
                1, kernel_initializer=ki.initializers.Glorot(seed=3)
            ),
            ki.layers.Sigmoid(),
        ]
    )
    # Not run eagerly: the step is traced (TensorFlow), jitted (JAX) or
    # run as PyTorch executes it.
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=32, epochs=4, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    # Separable data: four epochs of Adam take the loss well below its start.
    assert losses[-1] < 0.7 * losses[0]
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    # Every trainable weight, the layers' own (PReLU slopes, SiLU beta,
    # SwiGLU projections) included, received a gradient.
    for weight, old, new in zip(model.trainable_weights, before, after):
        assert not np.array_equal(old, new), weight.path

    path = tmp_path / "trained.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x)),
        keras.ops.convert_to_numpy(model(x)),
    )


@pytest.mark.parametrize("step", [0, 5, 2**24 + 3, 2**31 - 1])
def test_the_outbox_carries_a_vector_and_its_step_exactly(step):
    # What a due step sends is what the host receives: the values, and the
    # step however large (TensorFlow carries it in float32 values).
    from kerasinit.monitor import backends

    outbox = backends.current().Outbox()
    values = np.array([0.5, -3.0, 1e-30], np.float32)

    def measure(x, *, masked):
        ones = keras.ops.ones([1], "float32")
        return keras.ops.concatenate([keras.ops.reshape(x, [-1]), ones])

    outbox.send(
        "v", True, step, values.size + 1, measure, [keras.ops.array(values)]
    )
    # The train step's outputs may carry it (JAX); Keras gets its own back.
    outputs = ({"loss": 1.0}, "state")
    assert outbox.detach(outbox.attach(outputs)) == outputs
    received = outbox.receive()
    got_step, got = received["v"]
    assert got_step == step
    np.testing.assert_array_equal(got, np.append(values, 1.0))


def test_the_outbox_falls_back_where_xla_cannot_compile():
    # An output whose size depends on the values (`tf.math.bincount`'s)
    # compiles on constant zeros, which TensorFlow folds, but not on the
    # step's tensors: the Outbox must find that out before the step runs,
    # and send the right values without XLA.
    if keras.backend.backend() != "tensorflow":
        # XLA is chosen per function on TensorFlow only (JAX compiles the
        # whole step with it already; PyTorch runs eagerly).
        return
    import tensorflow as tf

    from kerasinit.monitor.backends import tensorflow as tf_backend

    def measure(i, *, masked):
        counts = tf.math.bincount(i, minlength=4, maxlength=4, dtype=tf.float32)
        return tf.concat([counts, [1.0]], axis=0)

    indices = tf.constant([0, 1, 1, 3], tf.int32)
    specs = [tf.TensorSpec(indices.shape, indices.dtype)]
    assert not tf_backend._xla_compiles(measure, specs)

    outbox = tf_backend.Outbox()

    @tf.function(autograph=False)
    def step(i):
        outbox.send("v", True, 7, 5, measure, [i])

    step(indices)
    got_step, got = outbox.receive()["v"]
    assert got_step == 7
    np.testing.assert_array_equal(got, [1.0, 2.0, 0.0, 1.0, 1.0])
