"""`HealthMonitor(source="batch")`: statistics of the training batch.

Collected by the TensorFlow, JAX and PyTorch test processes alike
(`conftest.ALL_BACKENDS`). Each test trains a small real model on generated
data and reads what the monitor measured back, from `last_batch_result` or
from the event files of ``log_dir/kerasinit-batch``; the statistics are
checked against a NumPy forward and backward pass of the same batch and
weights.
"""

import copy
import math
import os
import pickle

import keras
import numpy as np
import pytest
from keras import ops

import kerasinit as ki
from kerasinit.monitor import backends, event_files
from kerasinit_tensorboard import schema

# float32's spacing at 1: the unit of every tolerance below.
EPS32 = float(np.finfo(np.float32).eps)
EPS16 = float(np.finfo(np.float16).eps)


def _data(n, features=6, outputs=1, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    w = rng.normal(size=(features, outputs)) / np.sqrt(features)
    y = np.tanh(x @ w).astype("float32")
    return x, y


def _mlp(units, activations, *, features=6, outputs=1, optimizer=None, seed=7):
    """Dense layers ``d1, d2, ...`` and a linear head, MSE, SGD(0.1)."""
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((features,))]
    for i, (n, act) in enumerate(zip(units, activations)):
        layers.append(keras.layers.Dense(n, activation=act, name=f"d{i + 1}"))
    layers.append(keras.layers.Dense(outputs, name="head"))
    model = keras.Sequential(layers)
    model.compile(optimizer or keras.optimizers.SGD(0.1), "mse")
    return model


def _fit(model, x, y, monitor=None, *, batch_size, epochs=1, extra=()):
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


def _batch_records(log_dir):
    return event_files.records(os.path.join(log_dir, schema.BATCH_RUN_SUBDIR))


def _probe_records(log_dir):
    return event_files.records(os.path.join(log_dir, schema.RUN_SUBDIR))


def _numpy(variables):
    return [np.array(ops.convert_to_numpy(v), np.float64) for v in variables]


class _WeightsBeforeEachStep(keras.callbacks.Callback):
    """The trainable weights as each step found them, read on the host."""

    def __init__(self):
        super().__init__()
        self.before = []

    def on_train_batch_begin(self, batch, logs=None):
        # JAX's `fit` keeps the training state apart from the variables
        # between its syncs.
        backends.current().sync(self.model)
        self.before.append(_numpy(self.model.trainable_variables))


# -- a NumPy reference of the train step -------------------------------------

_ACTIVATIONS = {
    "relu": (lambda z: np.maximum(z, 0.0), lambda z, a: (z > 0.0) * 1.0),
    "tanh": (np.tanh, lambda z, a: 1.0 - a**2),
    None: (lambda z: z, lambda z, a: np.ones_like(z)),
}


def _reference_step(weights, activations, x, y):
    """Outputs, MSE loss and gradients of a Dense MLP in float64.

    Args:
        weights: ``[W1, b1, W2, b2, ...]`` including the head's.
        activations: per layer, a key of `_ACTIVATIONS` (the head's last).
    """
    h = np.asarray(x, np.float64)
    inputs, pre, outs = [], [], []
    for (kernel, bias), act in zip(zip(weights[::2], weights[1::2]), activations):
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
    model = _mlp([16, 8], activations[:2])
    x, y = _data(3 * batch)
    seen = _WeightsBeforeEachStep()
    monitor = ki.callbacks.HealthMonitor(
        str(tmp_path),
        probe=(x[:batch], y[:batch]),
        every_n_steps=2,
        every_n_epochs=None,
        warn=False,
        source="batch",
    )
    _fit(model, x, y, monitor, batch_size=batch, extra=[seen])
    taken = monitor.last_batch_result
    assert taken.step == 2 and taken.examples == batch
    before = seen.before[2]
    after = _numpy(model.trainable_variables)
    xb, yb = x[2 * batch :], y[2 * batch :]
    outs, loss, grads = _reference_step(before, activations, xb, yb)
    result = taken.result
    assert list(result.layers) == ["d1", "d2"]
    # Every statistic below is a float32 reduction of at most a few hundred
    # terms (pairwise summation: a few roundings each) of values computed
    # in float32 through at most three layers and their gradients: 64
    # roundings of the terms' size bound all of it.
    ulps = 64
    _assert_near(result.loss, loss, loss, ulps, "loss")
    _assert_near(
        result.input_rms, math.sqrt(np.mean(xb.astype(np.float64) ** 2)),
        1.0, ulps, "input_rms",
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
            stats["cosine_similarity"], _cosine(out), 1.0, ulps,
            f"{path} cosine",
        )
        _assert_near(
            stats["signal_gain"], rms / previous_rms, rms / previous_rms,
            ulps, f"{path} signal_gain",
        )
        previous_rms = stats["act_rms"]
        # Counts: exact (no output of this batch is within rounding of 0).
        assert stats["zero_fraction"] == np.float32(np.mean(out == 0.0))
        dead = np.mean(np.all(out == 0.0, axis=0)) if i == 0 else 0.0
        assert stats["dead_fraction"] == np.float32(dead)
        assert stats["act_nonfinite"] == 0
        # The layer's kernel and bias, as the optimizer received them.
        g = grads[2 * i : 2 * i + 2]
        w = before[2 * i : 2 * i + 2]
        g_norm, w_norm = _norm(g), _norm(w)
        _assert_near(stats["grad_norm"], g_norm, g_norm, ulps, "grad_norm")
        _assert_near(stats["weight_norm"], w_norm, w_norm, ulps, "weight_norm")
        _assert_near(
            stats["grad_weight_ratio"], g_norm / w_norm, g_norm / w_norm,
            ulps, "grad_weight_ratio",
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
            ratio, lr * g_norm / w_norm, w_norm / w_norm, 2 * ulps,
            "sgd update",
        )
    head = _norm(grads[-2:])
    _assert_near(result.reference_grad_norm, head, head, ulps, "head")
