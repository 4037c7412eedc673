"""The forward signal probe: each hidden activation's std on random inputs.

`kerasinit.check` compares the first hidden activation's scale with the
last one's (``exploding_signal``, ``vanishing_signal``); this module finds
those activations and measures them, in inference mode and without
changing the model.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import keras
import numpy as np

from kerasinit import _graph, _kernels

__all__ = ["SignalPoint", "measure", "probe_inputs", "signal_points"]


def probe_inputs(model: Any, batch: int, seed: int) -> list[np.ndarray]:
    """Random inputs for `model`: N(0, 1) floats, integers in range."""
    rng = np.random.default_rng(seed)
    graph = _graph.Graph(model)
    out = []
    for tensor in _graph.flat(model.inputs):
        shape = [batch] + [
            16 if d is None else int(d) for d in tensor.shape[1:]
        ]
        dtype = keras.backend.standardize_dtype(tensor.dtype)
        if "int" in dtype or dtype == "bool":
            high = 2
            for item in graph.consumers((model,), tensor):
                if item != _graph.OUTPUT and isinstance(
                    item[1], keras.layers.Embedding
                ):
                    high = int(item[1].input_dim)
            out.append(rng.integers(0, high, size=shape).astype(dtype))
        else:
            out.append(rng.standard_normal(shape).astype(dtype))
    return out


@dataclasses.dataclass(frozen=True)
class SignalPoint:
    """A hidden activation the signal probe measures.

    Attributes:
        path: the kernel layer's path, as findings name it.
        ctx: the chain of models holding `tensor`.
        tensor: the symbolic output measured.
    """

    path: str
    ctx: tuple
    tensor: Any


def signal_points(
    model: Any, kernels: list[_kernels.Kernel] | None = None
) -> list[SignalPoint]:
    """The hidden activations of `model`, in graph order.

    A kernel layer's activation output (fused, or the activation layer its
    walk found), a gated layer's output and a recurrent layer's output,
    each only when it feeds another weighted layer: output heads are left
    out.
    """
    if kernels is None:
        kernels = _kernels.analyse(model)
    graph = _graph.Graph(model)
    points = []
    seen: set[int] = set()
    for kernel in kernels:
        if id(kernel.layer) in seen or not _graph.in_graph(kernel.ctx):
            continue
        if kernel.role in ("kernel", "gate", "rnn_input"):
            seen.add(id(kernel.layer))
        else:
            continue
        if kernel.head or kernel.activation is None:
            continue
        ctx, layer = kernel.ctx, kernel.layer
        if kernel.role == "kernel":
            if kernel.activation.linear or isinstance(layer, _graph.PROJECTING):
                continue
            walk = kernel.walk
            if walk is not None and walk.at is not None:
                ctx, layer = walk.at
        elif _graph.is_head(graph, ctx, layer):
            continue
        try:
            tensor = layer.output
        except (AttributeError, ValueError):
            continue
        points.append(SignalPoint(kernel.path, ctx, tensor))
    return points


def measure(
    model: Any, points: list[SignalPoint], batch: int, seed: int
) -> list[float]:
    """The std of each point's values on `probe_inputs` (inf if not finite).

    One sub-model per model of the nesting chain computes all of that
    model's points in a single forward pass, in inference mode.
    """
    x = probe_inputs(model, batch, seed)
    x = x[0] if len(x) == 1 else x
    groups: dict[tuple, list[int]] = {}
    for i, point in enumerate(points):
        groups.setdefault(tuple(id(m) for m in point.ctx), []).append(i)
    stds = [math.nan] * len(points)
    for members in groups.values():
        ctx = points[members[0]].ctx
        tensors = [points[i].tensor for i in members]
        values = _graph.tensor_function(ctx, tensors)(x)
        for i, value in zip(members, values):
            value = keras.ops.convert_to_numpy(value).astype(np.float64)
            finite = np.all(np.isfinite(value))
            stds[i] = float(np.std(value)) if finite else math.inf
    return stds
