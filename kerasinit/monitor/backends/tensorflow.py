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
    # A bincount of a constant size: XLA compiles it (the statistics inside
    # the train step are compiled, see `Outbox`), and without XLA it is
    # many times faster than the segment sum that XLA also compiles
    # (`benchmarks/overhead.py --stats`). `tf.math.bincount` would take its
    # size from the largest index, which XLA cannot compile. The positions
    # are valid buckets by construction (`kerasinit.monitor.histograms`);
    # the floor at 0 makes sure that no index could fail the step that
    # counts it (a bincount rejects negative ones and drops those past the
    # end).
    return tf.raw_ops.DenseBincount(
        input=tf.maximum(indices, 0),
        size=length,
        weights=tf.zeros([0], tf.float32),
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


def _xla_compiles(compute, signature) -> bool:
    """Whether XLA compiles `compute` for `signature` (compiling only).

    Traced on specs of static shapes (an unknown size taken as 2), never
    on tensor values: values would be constants that TensorFlow folds
    before XLA sees them, so that an operation whose output size depends
    on its input (``tf.math.bincount``'s) would pass here and then fail
    in every step.
    """
    specs = [
        tf.TensorSpec([2 if d is None else d for d in t.shape], t.dtype)
        for t in signature
    ]
    trial = tf.function(compute, jit_compile=True, autograph=False)
    try:
        trial.experimental_get_compiler_ir(*specs)(stage="hlo")
    except Exception:  # noqa: BLE001
        return False
    return True


# A step count travels in a slot's last two float32 values, each exact:
# ``step = high * _STEP_BASE + low`` (counts below 2**48).
_STEP_BASE = 2**24


class Outbox:
    """Device variables the train step assigns on due steps; read at events.

    An assignment inside `tf.cond` runs only when the step is due, and
    compiles under XLA (a host callback would not). Each slot is one
    variable, the step it measured in its last two values: one read per
    slot at an event.
    """

    def __init__(self):
        self._slots: dict[str, tf.Variable] = {}
        self._before: list[tf.Variable] = []
        self._functions: dict = {}

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

        if due is True:
            now()
        else:
            tf.cond(due, now, lambda: tf.constant(False))
        return before

    def _compiled(self, name, compute, args):
        """`compute` compiled by XLA, where XLA compiles it.

        Outside XLA, TensorFlow runs each of the statistics' few hundred
        small operations on its own; compiled, they fuse into a few loops
        (``docs/monitor.md``, Overhead). Whether XLA can compile it is
        tried here, on the arguments' shapes, before the train step uses
        it: a failure inside the step would stop training.
        """
        signature = [tf.TensorSpec(a.shape, a.dtype) for a in args]
        key = (name, tuple((tuple(t.shape), t.dtype) for t in signature))
        if key in self._functions:
            return self._functions[key]
        fused = tf.function(
            compute,
            jit_compile=True,
            autograph=False,
            input_signature=signature,
            reduce_retracing=True,
        )
        with tf.init_scope():
            if not _xla_compiles(compute, signature):
                fused = compute
        self._functions[key] = fused
        return fused

    def send(self, name, due, step, size, measure, args):
        values = self._slots.get(name)
        if values is None or int(values.shape[0]) != size + 2:
            # Created once, outside the traced function, whose graph then
            # holds it; no step yet (a negative count).
            with tf.init_scope():
                values = tf.Variable(
                    tf.concat([tf.zeros([size]), [-1.0, 0.0]], axis=0),
                    trainable=False,
                    name=f"kerasinit_{name}",
                )
            self._slots[name] = values

        # Two functions, each compiled where XLA compiles it: XLA compiles
        # a function at its first run, so the masked one, run only after a
        # step with a value that is not finite, costs nothing until then.
        def unmasked_fn(*args):
            return measure(*args, masked=False)

        def masked_fn(*args):
            return measure(*args, masked=True)

        plain = self._compiled((name, False), unmasked_fn, args)
        masked = self._compiled((name, True), masked_fn, args)

        def fn(*args):
            flat = plain(*args)
            return tf.cond(
                tf.equal(flat[-1], 1.0), lambda: flat, lambda: masked(*args)
            )

        def now():
            count = tf.cast(step, tf.int64)
            high, low = count // _STEP_BASE, count % _STEP_BASE
            values.assign(
                tf.concat(
                    [
                        tf.cast(fn(*args), tf.float32),
                        tf.cast(tf.stack([high, low]), tf.float32),
                    ],
                    axis=0,
                )
            )
            return tf.constant(True)

        if due is True:
            now()
        else:
            tf.cond(due, now, lambda: tf.constant(False))

    def attach(self, outputs):
        # The statistics stay in the outbox: the step's outputs are Keras's.
        return outputs

    def detach(self, outputs):
        return outputs

    def receive(self):
        out = {}
        for name, slot in self._slots.items():
            values = slot.numpy()
            high, low = int(values[-2]), int(values[-1])
            out[name] = (high * _STEP_BASE + low, values[:-2])
        return out
