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
# saving). Entries are paths under tests/. The TensorFlow process runs the
# whole suite; a JAX or PyTorch process (`KERAS_BACKEND=jax python -m pytest`)
# collects only these, so a test file that needs TensorFlow is never imported
# there. `tests/test_backends.py` checks that each entry still holds tests
# and, in a process of its own, that the package imports no TensorFlow.
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


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    # Layer names and seeds are global in Keras; tests must not depend on
    # what ran before them.
    # Without the garbage collection pass, which costs a large share of a
    # small test's time; memory is reclaimed by Python's own cycles.
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(1234)
    yield
