import os
import sys
from pathlib import Path

BACKEND = os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

# What runs on every Keras backend: the tests of the code whose behaviour
# depends on the backend (random draws, dtypes, gradients through the layers,
# saving). Entries are paths under tests/. The TensorFlow process runs the
# whole suite; a JAX or PyTorch process (`KERAS_BACKEND=jax python -m pytest`)
# collects only these, so a test file that needs TensorFlow is never imported
# there. `tests/test_backends.py` checks that each entry still holds tests.
ALL_BACKENDS = (
    "initializers",
    "layers",
    "test_backends.py",
    "test_check.py",
    "test_gains.py",
    "test_lsuv.py",
    "test_pairing.py",
    "test_serialization.py",
)

# Module families that TensorFlow brings with it; none may appear in a JAX or
# PyTorch test process, where TensorFlow would reserve the accelerator's memory.
TENSORFLOW_MODULES = ("tensorflow", "tf_keras")

_TESTS = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path, config):
    if BACKEND == "tensorflow":
        return None
    try:
        relative = Path(collection_path).resolve().relative_to(_TESTS)
    except ValueError:
        return None
    if not relative.parts or relative.parts[0] in ALL_BACKENDS:
        return None
    return True


def tensorflow_modules(modules=None):
    """The loaded modules that belong to TensorFlow, sorted."""
    modules = sys.modules if modules is None else modules
    return sorted(
        name for name in modules if name.split(".")[0] in TENSORFLOW_MODULES
    )


def pytest_sessionfinish(session, exitstatus):
    if BACKEND == "tensorflow":
        return
    # Checked once the whole process has run, so that an import buried in any
    # selected test or in the package code it reaches is caught.
    loaded = tensorflow_modules()
    if loaded:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = (
            f"KERAS_BACKEND={BACKEND}: the test process imported TensorFlow "
            f"({', '.join(loaded[:5])}, ...)"
        )
        if reporter is not None:
            reporter.write_line(message, red=True, bold=True)
        else:
            print(message, file=sys.stderr)


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    # Layer names and seeds are global in Keras; tests must not depend on
    # what ran before them.
    # Without the garbage collection pass, which costs a large share of a
    # small test's time; memory is reclaimed by Python's own cycles.
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(1234)
    yield
