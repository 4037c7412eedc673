import os
import sys
from pathlib import Path

BACKEND = os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Top-level modules of TensorFlow and what exists only on top of it.
TENSORFLOW_MODULES = ("tensorflow", "tf_keras")

if BACKEND != "tensorflow":
    # A JAX or PyTorch process runs as if TensorFlow were not installed: any
    # import of it, from the package or from a test, raises ImportError and
    # fails the test that made it. It also keeps Keras itself from loading
    # TensorFlow: `keras.utils.set_random_seed` (called before every test
    # below) imports it whenever it is installed, to seed `tf.data`.
    for _name in TENSORFLOW_MODULES:
        sys.modules[_name] = None

import keras  # noqa: E402
import pytest  # noqa: E402

# What runs on every Keras backend: the tests of the code whose behaviour
# depends on the backend (random draws, dtypes, gradients through the layers,
# saving, the monitor's statistics and probe). Entries are paths under
# tests/, a directory or a file. The TensorFlow process runs the whole suite;
# a JAX or PyTorch process (`KERAS_BACKEND=jax python -m pytest`) collects
# only these, so a test file that needs TensorFlow is never imported there.
# `tests/test_backends.py` checks that each entry still holds tests and, in a
# process of its own, that the package imports no TensorFlow.
#
# The monitor's other test files stay TensorFlow-only: they test the
# callback's cadence, warnings, pre-flight and the models it measures
# (`test_callback.py`, `test_monitor_*.py`, `test_probe_cache.py`, written
# with `tf.data` probes, `tf.function` traces and TensorFlow-specific
# models), and the diagnosis, which is NumPy on the host and the same on
# every backend. `monitor/test_monitor_backends.py` runs the monitor end to
# end on each backend.
ALL_BACKENDS = (
    "initializers",
    "layers",
    "monitor/test_activation_stats.py",
    "monitor/test_diagnosis.py",
    "monitor/test_diagnosis_rules.py",
    "monitor/test_event_files.py",
    "monitor/test_gradient_stats.py",
    "monitor/test_histograms.py",
    "monitor/test_in_step.py",
    "monitor/test_in_step_compiled.py",
    "monitor/test_in_step_diagnosis.py",
    "monitor/test_in_step_dispatch.py",
    "monitor/test_summaries.py",
    "monitor/test_monitor_backends.py",
    "monitor/test_result.py",
    "test_backends.py",
    "test_check.py",
    "test_cli.py",
    "test_gains.py",
    "test_lsuv.py",
    "test_pairing.py",
    "test_serialization.py",
)

_TESTS = Path(__file__).resolve().parent
_SELECTED = tuple(Path(entry).parts for entry in ALL_BACKENDS)


def pytest_ignore_collect(collection_path, config):
    if BACKEND == "tensorflow":
        return None
    try:
        relative = Path(collection_path).resolve().relative_to(_TESTS)
    except ValueError:
        return None
    parts = relative.parts
    for entry in _SELECTED:
        # The entry itself, what is under it, or a directory on its way.
        n = min(len(parts), len(entry))
        if parts[:n] == entry[:n]:
            return None
    return True


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    # Layer names and seeds are global in Keras; tests must not depend on
    # what ran before them.
    # Without the garbage collection pass, which costs a large share of a
    # small test's time; memory is reclaimed by Python's own cycles.
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(1234)
    yield
