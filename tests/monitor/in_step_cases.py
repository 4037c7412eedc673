"""A small Keras model, its data and a NumPy train step, for the tests of
`HealthMonitor(source="batch")` (``test_in_step*.py``)."""

import os

import keras
import numpy as np
import pytest
from keras import ops

from kerasinit.monitor import backends, event_files
from kerasinit_tensorboard import schema

# float32's and float16's spacing at 1: the units of the tests' tolerances.
EPS32 = float(np.finfo(np.float32).eps)
EPS16 = float(np.finfo(np.float16).eps)


@pytest.fixture(autouse=True)
def a_record_every_batch_event(monkeypatch):
    """The training-batch tests read one record per event (imported by each
    ``test_in_step*.py``, where it applies to every test).

    A monitor writes the record of training-batch events at most once a
    second; these tests count and read the records of every event, so the
    interval is 0 here (`test_in_step_dispatch.py` tests the interval
    itself, on a monitor's own attribute).
    """
    from kerasinit.callbacks import HealthMonitor

    monkeypatch.setattr(HealthMonitor, "BATCH_RECORD_INTERVAL_S", 0.0)


def data(n, features=6, outputs=1, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    w = rng.normal(size=(features, outputs)) / np.sqrt(features)
    y = np.tanh(x @ w).astype("float32")
    return x, y


def mlp(units, activations, *, features=6, outputs=1, optimizer=None, seed=7):
    """Dense layers ``d1, d2, ...`` and a linear head, MSE, SGD(0.1)."""
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((features,))]
    for i, (n, act) in enumerate(zip(units, activations)):
        layers.append(keras.layers.Dense(n, activation=act, name=f"d{i + 1}"))
    layers.append(keras.layers.Dense(outputs, name="head"))
    model = keras.Sequential(layers)
    model.compile(optimizer or keras.optimizers.SGD(0.1), "mse")
    return model


def fit(model, x, y, monitor=None, *, batch_size, epochs=1, extra=()):
    callbacks = ([monitor] if monitor is not None else []) + list(extra)
    return model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
    )


def batch_records(log_dir):
    return event_files.records(os.path.join(log_dir, schema.BATCH_RUN_SUBDIR))


def probe_records(log_dir):
    return event_files.records(os.path.join(log_dir, schema.RUN_SUBDIR))


def host_values(variables):
    return [np.array(ops.convert_to_numpy(v), np.float64) for v in variables]


class WeightsBeforeEachStep(keras.callbacks.Callback):
    """The trainable weights as each step found them, read on the host."""

    def __init__(self):
        super().__init__()
        self.before = []

    def on_train_batch_begin(self, batch, logs=None):
        # JAX's `fit` keeps the training state apart from the variables
        # between its syncs.
        backends.current().sync(self.model)
        self.before.append(host_values(self.model.trainable_variables))


# -- a NumPy reference of the train step -------------------------------------

_ACTIVATIONS = {
    "relu": (lambda z: np.maximum(z, 0.0), lambda z, a: (z > 0.0) * 1.0),
    "tanh": (np.tanh, lambda z, a: 1.0 - a**2),
    None: (lambda z: z, lambda z, a: np.ones_like(z)),
}


def reference_step(weights, activations, x, y):
    """Outputs, MSE loss and gradients of a Dense MLP in float64.

    Args:
        weights: ``[W1, b1, W2, b2, ...]`` including the head's.
        activations: per layer, a key of `_ACTIVATIONS` (the head's last).
    """
    h = np.asarray(x, np.float64)
    inputs, pre, outs = [], [], []
    for (kernel, bias), act in zip(
        zip(weights[::2], weights[1::2]), activations
    ):
        inputs.append(h)
        z = h @ kernel + bias
        h = _ACTIVATIONS[act][0](z)
        pre.append(z)
        outs.append(h)
    error = h - np.asarray(y, np.float64)
    loss = np.mean(error**2)
    upstream = 2.0 * error / error.size
    grads = []
    for i in reversed(range(len(activations))):
        dz = upstream * _ACTIVATIONS[activations[i]][1](pre[i], outs[i])
        grads[:0] = [inputs[i].T @ dz, dz.sum(axis=0)]
        upstream = dz @ weights[2 * i].T
    return outs, loss, grads


def variable_values(model):
    """``(name, value)`` of every model and optimizer variable, in order."""
    return [
        (v.name, ops.convert_to_numpy(v))
        for v in model.variables + model.optimizer.variables
    ]
