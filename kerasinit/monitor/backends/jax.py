"""The probe's gradients and compiling on the JAX backend."""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp

NAME = "jax"
# Shape mismatches surface from `jax.numpy` as TypeError or ValueError.
USER_ERRORS = (ValueError, TypeError)
COMPILES = True


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


def compile(fn, args):
    # Compiled ahead of time from shapes alone: the training thread owns the
    # arrays.
    return jax.jit(fn).lower(*args).compile()


def isolated_rng():
    # Keras draws the probe's random numbers (dropout) from seed generator
    # state, which the stateless call maps and throws away.
    return contextlib.nullcontext()


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
