"""The probe's gradients on the PyTorch backend.

The probe runs eagerly, as Keras's own PyTorch train step does by default;
`torch.compile` is not used.
"""

from __future__ import annotations

import contextlib

import keras
import torch

NAME = "torch"
USER_ERRORS = (ValueError, TypeError, RuntimeError)
# Keras's PyTorch segment sums return float64 input summed in float32.
WIDE_FLOAT = "float32"
COMPILES = False


def value_and_grad(forward, weights):
    weights = [w.detach().requires_grad_(True) for w in weights]
    with torch.enable_grad():
        loss, aux = forward(weights)
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
    aux = keras.tree.map_structure(
        lambda t: t.detach() if isinstance(t, torch.Tensor) else t, aux
    )
    return loss.detach(), aux, list(grads)


def abstract(args):
    return args


def eager(fn):
    return fn


def compile(fn, args):
    del args
    return fn


@contextlib.contextmanager
def isolated_rng():
    cpu = torch.random.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        torch.random.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def place(batch):
    return batch


def is_chief() -> bool:
    distributed = torch.distributed
    if distributed.is_available() and distributed.is_initialized():
        return distributed.get_rank() == 0
    return True


def sync(model) -> None:
    del model


def copy(tensor):
    return tensor.detach().clone()


def count_buckets(indices, length: int):
    return torch.bincount(indices.long(), minlength=length).float()


def weight_values(variables) -> list:
    return [v.value.detach() for v in variables]


# -- inside Keras's train step (`kerasinit.monitor.in_step`) -------------------


def step_count(model, args):
    # The step runs eagerly, once per call: the host counts (reading the
    # optimizer's counter would wait for the device every step).
    return None


class Outbox:
    """Tensors kept on the device on due steps; one transfer at the event."""

    def __init__(self):
        self._received: dict = {}

    def snapshot(self, variables, due):
        # The optimizer updates the parameters in place: copies, made on
        # due steps only.
        return [v.value.detach().clone() for v in variables] if due else None

    def send(self, name, due, step, size, measure, args):
        from kerasinit.monitor.backends import measure_exactly

        if due:
            with torch.no_grad():
                flat = measure_exactly(measure, args)
                self._received[name] = (int(step), flat.detach())

    def attach(self, outputs):
        # The statistics stay in the outbox: the step's outputs are Keras's.
        return outputs

    def detach(self, outputs):
        return outputs

    def receive(self):
        return {
            name: (step, values.float().cpu().numpy())
            for name, (step, values) in self._received.items()
        }
