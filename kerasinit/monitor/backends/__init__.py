"""What differs per Keras backend in the probe: gradients and compiling.

Everything else the monitor computes (statistics, diagnosis, summaries) is
written once with `keras.ops` and NumPy. Each backend is one small module
here, and every module defines the same names:

- ``NAME``: the backend's name, as `keras.backend.backend` says it.
- ``USER_ERRORS``: the exception types with which a model or loss rejects
  a batch that does not fit it (a user error, reported at the pre-flight).
- ``WIDE_FLOAT``: the widest float dtype the statistics can compute with
  (``"float32"`` under JAX without ``jax_enable_x64``, and on PyTorch).
- ``COMPILES``: whether compiling on a background thread is worth
  starting (not where `eager` already compiles).
- ``value_and_grad(forward, weights)``: ``(loss, aux, grads)`` of
  ``forward(weights) -> (loss, aux)``, the gradients with respect to
  `weights` (a list of tensors), `None` for a weight the loss does not
  reach.
- ``abstract(args)``: what `compile` needs of arguments, taken on the
  training thread (JAX: shapes, dtypes and shardings, since the arrays
  themselves may be donated to a later train step).
- ``eager(fn)``: `fn` as the backend runs a function right away, on the
  training thread: as it is on TensorFlow and PyTorch; under `jax.jit` on
  JAX, whose operation-by-operation dispatch compiles every operation
  (cached, so later calls of the same shapes reuse it).
- ``compile(fn, abstract_args)``: `fn` compiled the backend's way and ready
  to run (traced, compiled and, where the backend defers work to the first
  call, run once), called as ``compiled(*args)``. Safe on another thread
  than training.
- ``isolated_rng()``: a context manager that leaves the backend's global
  random state as it found it (Keras's PyTorch dropout without a seed
  draws from PyTorch's global generator, which training draws from too).
- ``place(batch)``: the probe batch laid out where the model's weights
  are (JAX under a `keras.distribution`: split between the devices like a
  training batch, or copied to each where its size does not split).
- ``is_chief()``: whether this process is the one that writes in a run
  of several processes.
- ``sync(model)``: make the model's variables hold the current training
  state (JAX's `fit` keeps it apart between its syncs).
- ``copy(tensor)``: a copy on the device that later updates of the
  weights, in place or by buffer donation, leave as it is.
- ``count_buckets(indices, length)``: ``[length]`` float32 counts of the
  int32 `indices`, each in ``[0, length)``, with a static length.
- ``weight_values(variables)``: the values to pass `fn` for these model
  variables (what the stateless call maps them to).

Inside Keras's own train step (`kerasinit.monitor.in_step`):

- ``step_count(model, args)``: in the train step being traced (or run),
  the number of updates done before it, from the arguments of
  ``model.train_step`` or the optimizer; `None` where the host counts
  (PyTorch runs its step eagerly, once per call).
- ``Outbox()``: ``snapshot(variables, due)`` returns the variables'
  values from before the update, which the update leaves as they are
  (copies made on due steps only, where a backend updates in place);
  ``send(name, due, step, size, measure, args)`` computes the
  float32 vector ``measure(*args, masked=...)`` of `size` values, its
  last value 1 when every value measured was finite (``masked=False``,
  exact then; a step where it is not is measured again with
  ``masked=True``, see `measure_exactly`), only when `due` (a
  conditional on the device) and keeps it with its step;
  ``attach(outputs)`` returns the outputs of the train step being traced
  (or run), where a backend may carry the statistics sent in it;
  ``detach(outputs)`` returns the train function's outputs without them,
  as Keras expects them;
  ``receive()`` returns ``{name: (step, NumPy vector)}`` of the latest
  vectors, in one transfer each.

Only the module of the running backend is imported, so a JAX or PyTorch
process never imports TensorFlow.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import keras

__all__ = ["SUPPORTED", "current", "measure_exactly"]

#: The backends the monitor runs on.
SUPPORTED = ("tensorflow", "jax", "torch")


def measure_exactly(measure, args):
    """``measure(*args, masked=False)``, or with ``masked=True`` where that
    is not exact.

    Statistics taken without masks for non-finite values cost fewer passes
    and are exact when every value is finite (the vector's last value says
    so); a step with a NaN or an infinity somewhere is measured again, with
    every statistic over the finite values only and the non-finite values
    counted, as the probe does. Traced, the device decides (a conditional);
    run eagerly (PyTorch, or JAX without compiling) the host does, as a
    conditional would be built, and on JAX compiled, again at every step.
    """
    flat = measure(*args, masked=False)
    exact = keras.ops.equal(flat[-1], 1.0)
    try:
        known = bool(keras.ops.convert_to_numpy(exact))
    except Exception:  # noqa: BLE001
        return keras.ops.cond(
            exact, lambda: flat, lambda: measure(*args, masked=True)
        )
    return flat if known else measure(*args, masked=True)


def current() -> ModuleType:
    """The module of the running Keras backend.

    Raises:
        NotImplementedError: the monitor has no implementation for it.
    """
    name = keras.backend.backend()
    if name not in SUPPORTED:
        raise NotImplementedError(
            "`HealthMonitor` measures models on the TensorFlow, JAX and "
            "PyTorch backends; set `KERAS_BACKEND` to one of "
            f"{', '.join(SUPPORTED)}. Received: backend={name}"
        )
    return importlib.import_module(f"{__name__}.{name}")
