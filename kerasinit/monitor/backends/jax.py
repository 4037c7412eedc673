"""The probe's gradients and compiling on the JAX backend."""

from __future__ import annotations

import contextlib
import functools

import jax
import jax.numpy as jnp
import keras
import numpy as np

NAME = "jax"
# Shape mismatches surface from `jax.numpy` as TypeError or ValueError.
USER_ERRORS = (ValueError, TypeError)
# The first uncompiled run (`eager`) is already one compiled function.
COMPILES = False


def _wide_float() -> str:
    return "float64" if jax.config.jax_enable_x64 else "float32"


WIDE_FLOAT = _wide_float()


def value_and_grad(forward, weights):
    (loss, aux), grads = jax.value_and_grad(forward, has_aux=True)(weights)
    return loss, aux, grads


def abstract(args):
    return jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding),
        args,
    )


def eager(fn):
    # Op-by-op, the first probe would compile each of its hundreds of
    # operations: one function compiles in a fraction of that time.
    return jax.jit(fn)


def compile(fn, args):
    # Compiled ahead of time from shapes alone: the training thread owns the
    # arrays.
    return jax.jit(fn).lower(*args).compile()


def isolated_rng():
    # Keras draws the probe's random numbers (dropout) from seed generator
    # state, which the stateless call maps and throws away.
    return contextlib.nullcontext()


def place(batch):
    distribution = keras.distribution.distribution()
    if distribution is None:
        return batch

    def put(tensor):
        try:
            layout = distribution.get_data_layout(tensor.shape)
            return keras.distribution.distribute_tensor(tensor, layout)
        except ValueError:
            # A batch that does not split evenly: every device gets it all.
            copied = keras.distribution.TensorLayout(
                [None] * len(tensor.shape), distribution.device_mesh
            )
            return keras.distribution.distribute_tensor(tensor, copied)

    return keras.tree.map_structure(
        lambda t: None if t is None else put(t), batch
    )


def is_chief() -> bool:
    return jax.process_index() == 0


def sync(model) -> None:
    # Between its syncs, Keras's JAX `fit` keeps the training state apart
    # and leaves the variables without values.
    model.jax_state_sync()


def copy(tensor):
    # Keras's JAX train step donates the weights' buffers; an array handed
    # through unchanged would be the donated one.
    return jnp.copy(tensor)


def count_buckets(indices, length: int):
    return jnp.bincount(indices, length=length).astype(jnp.float32)


def weight_values(variables) -> list:
    return [v.value for v in variables]


# -- inside Keras's train step (`kerasinit.monitor.in_step`) -------------------


def step_count(model, args):
    # Keras's JAX train step is pure: the count is the optimizer's
    # `iterations` among the state it is passed, ``(trainable,
    # non-trainable, optimizer, metrics)``.
    optimizer = model.optimizer
    index = next(
        i
        for i, v in enumerate(optimizer.variables)
        if v is optimizer.iterations
    )
    return args[0][2][index]


def _same_trace(value, step) -> bool:
    """Whether `value` can be returned by the train step: concrete, or
    traced in the same trace as the step's count (not in a conditional
    or loop within it). Where this JAX cannot tell, no."""
    if not isinstance(value, jax.core.Tracer):
        return True
    trace = getattr(value, "_trace", None)
    return trace is not None and trace is getattr(step, "_trace", None)


#: Where a measured step's statistics leave it, among the logs its train
#: step returns (the dispatcher takes them out before Keras reads them).
_LOGS_KEY = "kerasinit_statistics"


class Outbox:
    """The statistics of due steps, as the step's outputs or by a host
    callback; read at events.

    With one step per call of the train function, every step the
    measuring function runs is due: its statistics leave it among its
    outputs (`attach`, `detach`) and stay on the device until the event
    reads them. Keras's JAX loop for ``steps_per_execution > 1`` keeps
    only the last step's outputs, so there a host callback under
    `jax.lax.cond` runs on the due step only. Either way the statistics
    are computed inside the jitted step and cross to the host once.
    """

    def __init__(self):
        self._received: dict = {}
        # ``{name: (step, vector)}``: traced, in the step being traced.
        self._pending: dict = {}
        # The same, as arrays, from the latest call that measured.
        self._returned: dict | None = None

    def snapshot(self, variables, due):
        # Arrays are values: an update makes new ones.
        return [v.value for v in variables]

    def _receive(self, name, step, values):
        self._received[name] = (int(step), np.asarray(values, np.float32))

    def send(self, name, due, step, size, measure, args):
        from kerasinit.monitor.backends import measure_exactly

        def vector():
            return measure_exactly(measure, args).astype(jnp.float32)

        if due is True:
            values = vector()
            if _same_trace(values, step):
                self._pending[name] = (step, values)
                return
            # Sent from inside a conditional of the step (a loss-scale
            # optimizer applies the gradients under one): a value traced
            # there cannot leave it as an output of the step.
            jax.debug.callback(
                functools.partial(self._receive, name), step, values
            )
            return

        def now():
            jax.debug.callback(
                functools.partial(self._receive, name), step, vector()
            )

        jax.lax.cond(due, now, lambda: None)

    def attach(self, outputs):
        """The train step's ``(logs, state)`` with the statistics sent in
        it added to the logs."""
        pending, self._pending = self._pending, {}
        if not pending:
            return outputs
        try:
            logs, state = outputs
        except (TypeError, ValueError):
            logs = state = None
        if not isinstance(logs, dict):
            # A train step of the user's own that returns something else:
            # the statistics take the host callback.
            for name, (step, values) in pending.items():
                jax.debug.callback(
                    functools.partial(self._receive, name), step, values
                )
            return outputs
        return {**logs, _LOGS_KEY: pending}, state

    def detach(self, outputs):
        """The train function's outputs as Keras expects them: the
        statistics `attach` added are taken out and kept, on the device."""
        try:
            logs, state = outputs
        except (TypeError, ValueError):
            return outputs
        if not isinstance(logs, dict) or _LOGS_KEY not in logs:
            return outputs
        logs = dict(logs)
        self._returned = logs.pop(_LOGS_KEY)
        return logs, state

    def receive(self):
        # The callbacks of the steps dispatched so far have run.
        jax.effects_barrier()
        if self._returned is not None:
            # One transfer for every vector of the latest measured call.
            returned = jax.device_get(self._returned)
            self._returned = None
            for name, (step, values) in returned.items():
                self._receive(name, step, values)
        return dict(self._received)
