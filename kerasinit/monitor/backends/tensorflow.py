"""The probe's gradients and compiling on the TensorFlow backend."""

from __future__ import annotations

import contextlib
import json
import os

import tensorflow as tf

NAME = "tensorflow"
USER_ERRORS = (ValueError, TypeError, tf.errors.InvalidArgumentError)
WIDE_FLOAT = "float64"
COMPILES = True


def value_and_grad(forward, weights):
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(weights)
        loss, aux = forward(weights)
    return loss, aux, tape.gradient(loss, weights)


def abstract(args):
    # The variables and tensors themselves: reading them on another thread
    # is safe.
    return args


def eager(fn):
    return fn


def compile(fn, args):
    # A concrete function: later calls skip matching the arguments against
    # the traces, which costs more than the probe for a small model.
    concrete = tf.function(fn, autograph=False).get_concrete_function(*args)
    # TensorFlow instantiates and optimizes the graph at its first call: do
    # it here rather than at the next logging event. The run reads the
    # variables and changes nothing.
    concrete(*args)
    return concrete


def isolated_rng():
    # Keras draws the probe's random numbers (dropout) from seed generator
    # state, which the stateless call maps and throws away.
    return contextlib.nullcontext()


def place(batch):
    return batch


def is_chief() -> bool:
    # Multi-worker strategies read the cluster from `TF_CONFIG`: its chief
    # writes, or worker 0 where the cluster names no chief. (Keras 3's `fit`
    # does not run under `MultiWorkerMirroredStrategy` today,
    # keras-team/keras#20585; the monitor is ready for when it does.)
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    cluster, task = config.get("cluster", {}), config.get("task", {})
    if not cluster or not task:
        return True
    if task.get("type") == "chief":
        return True
    return (
        "chief" not in cluster
        and task.get("type") == "worker"
        and int(task.get("index", 0)) == 0
    )


def sync(model) -> None:
    del model


def copy(tensor):
    return tf.identity(tensor)


def count_buckets(indices, length: int):
    return tf.math.bincount(
        indices, minlength=length, maxlength=length, dtype=tf.float32
    )


def weight_values(variables) -> list:
    # The TensorFlow variables themselves: a compiled probe reads them by
    # reference at each call.
    return [v.value for v in variables]


# -- inside Keras's train step (`kerasinit.monitor.in_step`) -------------------


def step_count(model, args):
    # Read here, before the update adds one (a variable is otherwise read
    # where it is used); with `steps_per_execution` each step of the loop
    # reads its own count.
    return tf.identity(model.optimizer.iterations.value)


class Outbox:
    """Device variables the train step assigns on due steps; read at events.

    An assignment inside `tf.cond` runs only when the step is due, and
    compiles under XLA (a host callback would not).
    """

    def __init__(self):
        self._slots: dict[str, tuple[tf.Variable, tf.Variable]] = {}
        self._before: list[tf.Variable] = []

    def snapshot(self, variables, due):
        # A read held across the update would make TensorFlow copy every
        # weight on every step (copy-on-write); a copy into variables of
        # our own costs nothing on the steps that are not due.
        shapes = [(tuple(v.shape), v.dtype) for v in variables]
        if [(tuple(b.shape), b.dtype) for b in self._before] != [
            (s, tf.as_dtype(d)) for s, d in shapes
        ]:
            with tf.init_scope():
                self._before = [
                    tf.Variable(tf.zeros(s, d), trainable=False)
                    for s, d in shapes
                ]
        before = self._before

        def now():
            for copy, v in zip(before, variables):
                copy.assign(v.value)
            return tf.constant(True)

        tf.cond(due, now, lambda: tf.constant(False))
        return before

    def send(self, name, due, step, size, compute):
        slot = self._slots.get(name)
        if slot is None or int(slot[0].shape[0]) != size:
            # Created once, outside the traced function, whose graph then
            # holds them.
            with tf.init_scope():
                slot = (
                    tf.Variable(
                        tf.zeros([size], tf.float32),
                        trainable=False,
                        name=f"kerasinit_{name}",
                    ),
                    tf.Variable(
                        tf.constant(-1, tf.int64),
                        trainable=False,
                        name=f"kerasinit_{name}_step",
                    ),
                )
            self._slots[name] = slot
        values, at = slot

        def now():
            values.assign(tf.cast(compute(), tf.float32))
            at.assign(tf.cast(step, tf.int64))
            return tf.constant(True)

        tf.cond(due, now, lambda: tf.constant(False))

    def receive(self):
        return {
            name: (int(at.numpy()), values.numpy())
            for name, (values, at) in self._slots.items()
        }
