import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    # Layer names and seeds are global in Keras; tests must not depend on
    # what ran before them.
    # Without the garbage collection pass, which costs a large share of a
    # small test's time; memory is reclaimed by Python's own cycles.
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(1234)
    yield
