"""Layer-sequential unit-variance initialization (Mishkin & Matas, 2015)."""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import keras
import numpy as np

from kerasinit import _graph, _seed
from kerasinit._report import Report

__all__ = ["LSUVReport", "LSUVRow", "lsuv"]


@dataclasses.dataclass(frozen=True)
class LSUVRow:
    """One layer's pass through LSUV.

    Attributes:
        layer: the layer's path in the model.
        variance_before: output variance on `x` after the orthonormal
            pre-init, before rescaling (earlier layers already rescaled).
        variance_after: output variance on `x` after rescaling.
        scale: the factor the kernel was multiplied by in total.
        iterations: rescaling steps taken.
    """

    layer: str
    variance_before: float
    variance_after: float
    scale: float
    iterations: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class LSUVReport(Report):
    """Per-layer variances before and after LSUV; prints as a table."""

    _header = ("layer", "var before", "var after", "scale", "iters")
    _noun = "layers"

    def _cells(self, r: LSUVRow) -> tuple[str, ...]:
        return (
            r.layer,
            f"{r.variance_before:.4g}",
            f"{r.variance_after:.4g}",
            f"{r.scale:.4g}",
            str(r.iterations),
        )


def _pre_activation(layer: Any, inputs: Any) -> np.ndarray:
    """The layer's output on `inputs` with its fused activation left out.

    LSUV normalizes what the kernel produces; a fused tanh or sigmoid could
    never reach unit variance after the activation.
    """
    activation = getattr(layer, "activation", None)
    if activation is not None:
        layer.activation = keras.activations.linear
    try:
        out = layer(inputs, training=False)
    finally:
        if activation is not None:
            layer.activation = activation
    return keras.ops.convert_to_numpy(out).astype(np.float64)


def _check_args(model, x, tol, max_iter) -> None:
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Expected `model` to be a `keras.Model`. Received: model={model!r}"
        )
    if not model.built:
        raise ValueError(
            "Expected `model` to be built: start it with `keras.Input(...)` "
            f"or call `model.build(input_shape)`. Received: model="
            f"{model.name!r} (not built)"
        )
    if not _graph.has_graph(model):
        raise ValueError(
            "Expected a Functional or Sequential model with known inputs: "
            "LSUV computes each layer's input from `x` through the layer "
            "graph, which a subclassed model does not have. "
            f"Received: model={type(model).__name__}"
        )
    if (
        isinstance(tol, bool)
        or not isinstance(tol, numbers.Real)
        or not 0 < tol < 1
    ):
        raise ValueError(
            f"Expected `tol` to be a number in (0, 1). Received: tol={tol!r}"
        )
    if (
        isinstance(max_iter, bool)
        or not isinstance(max_iter, numbers.Integral)
        or max_iter < 1
    ):
        raise ValueError(
            "Expected `max_iter` to be an integer >= 1. "
            f"Received: max_iter={max_iter!r}"
        )
    if x is None:
        raise ValueError(
            "Expected `x` to be a batch of inputs. Received: x=None"
        )


def lsuv(
    model: keras.Model,
    x: Any,
    tol: float = 0.1,
    max_iter: int = 10,
    *,
    orthonormal: bool = True,
    seed: int | None = None,
) -> LSUVReport:
    """Layer-sequential unit-variance initialization.

    Data-driven init for when no derivation fits the architecture: start
    every kernel orthonormal, then walk the layers in order and rescale each
    kernel until the layer's output variance on a real batch is 1. Every
    layer then starts with unit-variance outputs on *your* data, whatever
    the activation, normalization or input statistics.

    Kernel layers are processed in graph order (`Dense`, `EinsumDense`,
    convolutions, depthwise, separable and transposed convolutions, inside
    nested Functional/Sequential models too). A layer's "output" is its
    pre-activation output, kernel and bias applied, fused activation left
    out. Each kernel (a separable convolution's pointwise kernel) is
    pre-initialized with `keras.initializers.Orthogonal` and then multiplied
    by ``1 / sqrt(Var(output))`` until ``|Var(output) - 1| < tol``.

    The model is changed only on success: if anything raises (a layer's
    output is constant or not finite, it does not converge in `max_iter`
    steps, `x` does not fit the model), every weight is restored first.

    Formula:
        ``W_L <- W_L / sqrt(Var(B_L))`` while ``|Var(B_L) - 1| >= tol``,
        with ``B_L`` the output of layer ``L`` on ``x``.

    Reference:
        - [Mishkin & Matas, 2015, "All you need is a good init"](
          https://arxiv.org/abs/1511.06422)

    Args:
        model: a built Functional or Sequential `keras.Model`.
        x: a batch of model inputs (an array, or a list/dict for several
            inputs); a few hundred examples.
        tol: tolerance on the unit variance, in (0, 1). Defaults to `0.1`.
        max_iter: rescaling steps per layer, >= 1. Defaults to `10`.
        orthonormal: pre-initialize kernels orthonormally. Defaults to
            `True`.
        seed: seed of the orthonormal pre-init. Defaults to `None`.

    Returns:
        An `LSUVReport`: per layer, the variance before and after, the scale
        applied and the steps taken.

    Raises:
        ValueError: for bad arguments, an unbuilt or subclassed model, or a
            layer whose output variance is zero or not finite on `x`.
        RuntimeError: when a layer does not reach the tolerance in
            `max_iter` steps.

    Example:

    >>> report = kerasinit.lsuv(model, x_train[:256])
    >>> print(report)
    """
    _check_args(model, x, tol, max_iter)
    snapshot = [(v, np.array(v.numpy())) for v in model.weights]
    try:
        return _run(model, x, float(tol), int(max_iter), orthonormal, seed)
    except BaseException:
        for variable, value in snapshot:
            variable.assign(value)
        raise


def _run(model, x, tol, max_iter, orthonormal, seed) -> LSUVReport:
    rows = []
    layers = _graph.kernel_layers(model)
    for index, (ctx, layer) in enumerate(layers):
        attr = _graph.kernels(layer)[0][0]
        kernel = _graph.kernel_variable(layer, attr)
        if kernel is None:
            continue
        path = _graph.path(ctx, layer)
        if not _graph.in_graph(ctx):
            raise ValueError(
                f"Layer {path!r} is inside a subclassed model, whose layer "
                "inputs cannot be computed from `x`. "
                f"Received: model={type(ctx[-1]).__name__}"
            )
        if orthonormal:
            init = keras.initializers.Orthogonal(seed=_seed.derive(seed, index))
            kernel.assign(init(tuple(kernel.shape), dtype=kernel.dtype))
            if attr == "pointwise_kernel":
                depthwise = _graph.kernel_variable(layer, "depthwise_kernel")
                depthwise.assign(
                    init(tuple(depthwise.shape), dtype=depthwise.dtype)
                )
        try:
            inputs = layer.input
        except (AttributeError, ValueError) as error:
            raise ValueError(
                f"Layer {path!r} is called more than once in the model, so "
                f"it has no single input to normalize. Received: {error}"
            ) from None
        feed = _graph.tensor_function(ctx, inputs)
        layer_input = feed(x)
        variance = float(np.var(_pre_activation(layer, layer_input)))
        before, scale, steps = variance, 1.0, 0
        while abs(variance - 1.0) >= tol:
            if not math.isfinite(variance) or variance <= 0.0:
                raise ValueError(
                    f"Layer {path!r} has output variance {variance!r} on `x`; "
                    "LSUV can only rescale a layer whose output varies. "
                    "Check that `x` is varied data and that earlier layers "
                    f"are not dead. Received: x with shape {np.shape(x)}"
                )
            if steps == max_iter:
                raise RuntimeError(
                    f"Layer {path!r} did not reach unit output variance "
                    f"within tol={tol} in max_iter={max_iter} steps "
                    f"(variance {variance:.4g}). Raise `max_iter` or `tol`."
                )
            factor = 1.0 / math.sqrt(variance)
            kernel.assign(kernel * factor)
            scale *= factor
            steps += 1
            variance = float(np.var(_pre_activation(layer, layer_input)))
        rows.append(LSUVRow(path, before, variance, scale, steps))
    return LSUVReport(rows)
