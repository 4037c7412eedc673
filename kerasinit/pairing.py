"""`pair`: re-initialize every kernel of a model for what its output feeds.

For every kernel kerasinit knows (see `kerasinit._kernels` for how they are
found and `kerasinit._graph` for how the layer graph is read), `pair` draws
it from the initializer the gains table pairs with the activation its output
goes through, with the kernel's true fans. `kerasinit.check` reads the same
analysis without changing anything. The rules are in ``docs/pairing.md``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import keras
import numpy as np

from kerasinit import _initializer_facts, _kernels, _seed
from kerasinit._report import Report

__all__ = ["PairingReport", "PairingRow", "pair"]


@dataclasses.dataclass(frozen=True)
class PairingRow:
    """One kernel of the model, what feeds it and what `pair` did to it.

    Attributes:
        layer: the layer's path in the model (``"block/dense"``).
        kernel: the kernel attribute (``"kernel"``, ``"pointwise_kernel"``).
        activation: the activation found (``"leaky_relu(0.3)"``), or `None`
            when it could not be determined.
        found: where it was found, or why it could not be.
        fans: the kernel's true ``(fan_in, fan_out)``.
        before: the initializer before.
        after: the initializer after, or ``"unchanged"``.
        residual: whether the output feeds a residual ``Add``.
    """

    layer: str
    kernel: str
    activation: str | None
    found: str
    fans: tuple[int, int] | None
    before: str
    after: str
    residual: bool = False

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["fans"] = None if self.fans is None else list(self.fans)
        return out


class PairingReport(Report):
    """What `pair` did, one row per kernel; prints as a table.

    Attributes:
        rows: the `PairingRow` objects, in graph order.
    """

    _header = ("layer", "activation", "found", "before", "after")
    _noun = "kernels"

    @property
    def undetermined(self) -> list[PairingRow]:
        """Rows whose activation could not be determined (left unchanged)."""
        return [row for row in self.rows if row.activation is None]

    def _cells(self, row: PairingRow) -> tuple[str, ...]:
        name = row.layer
        if row.kernel != "kernel":
            name = f"{row.layer}.{row.kernel}"
        return (
            name,
            row.activation or "?",
            row.found,
            row.before,
            row.after,
        )


def _check_bias(bias: Any) -> Any:
    if bias is None or bias == "zeros":
        return bias
    if isinstance(bias, numbers.Real) and not isinstance(bias, bool):
        if math.isfinite(bias):
            return float(bias)
    raise ValueError(
        "Expected `bias` to be 'zeros', a finite number (a constant for "
        "every bias) or None (leave biases as they are). "
        f"Received: bias={bias!r}"
    )


def pair(
    model: keras.Model,
    *,
    distribution: str = "normal",
    bias: str | float | None = "zeros",
    residual_scaling: bool = False,
    num_residual_blocks: int | None = None,
    seed: int | None = None,
) -> PairingReport:
    """Re-initialize every kernel for the activation its output goes through.

    Users build a model and want all of it initialized right, not one
    layer at a time. For every kernel layer (``Dense``,
    ``EinsumDense``, ``Conv1D/2D/3D``, ``DepthwiseConv1D/2D``,
    ``SeparableConv1D/2D``, ``Conv1D/2D/3DTranspose``), `pair` finds the
    non-linearity its output goes through: a fused ``activation=``, else
    the next activation layer in the graph (a Keras activation layer, a
    kerasinit layer, an ``Activation``), looking through normalization,
    dropout, noise, reshaping, pooling and merge layers, into and out of
    nested Functional/Sequential models. It then draws the kernel from
    `kerasinit.initializers.ForActivation` with the layer's true fans
    (`kerasinit.initializers.fans_for_layer`) and sets the bias to zero.
    Slopes are read from the layers: ``keras.layers.LeakyReLU()`` pairs with
    slope 0.3, ``activation="leaky_relu"`` with 0.2.

    Any spelling of an activation resolves the same way (``"relu"``,
    ``keras.activations.relu``, ``keras.ops.relu``, ``keras.layers.ReLU()``,
    ``kerasinit.layers.ReLU()``); a custom callable is paired by its
    second-moment gain (`kerasinit.gain`), ``Var(W) = gain^2 / fan_in``,
    and its row says so. Softmax and log-softmax are paired like logits
    (linear). A kernel whose output reaches another weighted layer or the
    model output without a non-linearity is paired with ``"linear"``.

    The other kernels kerasinit knows get a row too: a gated layer's
    (``kerasinit.layers.SwiGLU``...) gate kernel is paired with its gate
    activation and its value kernel with ``"linear"``; attention's query,
    key and value projections are linear and its output projection is
    paired with what follows the layer; embeddings are drawn from
    ``N(0, 0.02^2)``; a recurrent layer's input kernel from Glorot with
    the fans of one gate, its recurrent kernel from one orthogonal block
    per gate, and an LSTM's forget-gate bias is set to 1.

    A kernel whose activation cannot be determined (subclassed models
    without a fused activation, a layer kerasinit cannot see through,
    branches that disagree) is left as it is and reported with the reason;
    `pair` never guesses.

    With ``residual_scaling=True``, kernels whose output enters an ``Add``
    before any non-linearity (the output projections of residual branches)
    are drawn from `kerasinit.initializers.ScaledNormal` with the paired
    standard deviation and ``num_layers=N``: their variance is the paired
    one divided by ``2N`` (GPT-2). ``N`` is `num_residual_blocks`, or when
    `None`, half the number of such kernels, rounded up (two branches per
    transformer block).

    Each re-initialized layer's initializer attribute is set to the new
    initializer, so the model's config records what was drawn (a gated
    layer's is set to `None`, its own paired default; a recurrent kernel's
    is left as it was).

    Reference:
        - [He et al., 2015](https://arxiv.org/abs/1502.01852),
          [Glorot & Bengio, 2010](https://proceedings.mlr.press/v9/glorot10a),
          [Kumar, 2017](https://arxiv.org/abs/1704.08863),
          [Radford et al., 2019](https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf).

    Args:
        model: a built `keras.Model`.
        distribution: ``"normal"``, ``"uniform"`` or ``"truncated_normal"``.
            Defaults to `"normal"`.
        bias: ``"zeros"``, a constant for every bias, or `None` to leave
            biases alone. Defaults to `"zeros"`.
        residual_scaling: scale residual output projections as above.
            Defaults to `False`.
        num_residual_blocks: ``N`` for the residual scaling. Defaults to
            `None` (counted from the model).
        seed: an integer for reproducible kernels, or `None`. Defaults to
            `None`.

    Returns:
        A `PairingReport`: one row per kernel (layer, activation and where it
        was found, initializer before and after). ``print(report)`` shows a
        table; ``report.to_list()`` gives dicts.

    Raises:
        ValueError: if the model is not built, or an argument is invalid.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((32,)),
    ...     keras.layers.Dense(64), keras.layers.LeakyReLU(0.3),
    ...     keras.layers.Dense(10)])
    >>> print(kerasinit.pair(model, seed=0))
    """
    from kerasinit.initializers import ForActivation, ScaledNormal

    _kernels.require_built(model)
    bias = _check_bias(bias)
    if not isinstance(residual_scaling, bool):
        raise TypeError(
            "Expected `residual_scaling` to be True or False. "
            f"Received: residual_scaling={residual_scaling!r}"
        )
    if num_residual_blocks is not None and (
        isinstance(num_residual_blocks, bool)
        or not isinstance(num_residual_blocks, numbers.Integral)
        or num_residual_blocks < 1
    ):
        raise ValueError(
            "Expected `num_residual_blocks` to be None or an integer >= 1. "
            f"Received: num_residual_blocks={num_residual_blocks!r}"
        )
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
    ):
        raise TypeError(
            f"Expected `seed` to be an integer or None. Received: seed={seed!r}"
        )
    # Validates `distribution` before anything is changed.
    ForActivation("linear", distribution=distribution)

    kernels = _kernels.analyse(model)
    blocks = num_residual_blocks
    if residual_scaling and blocks is None:
        count = sum(1 for k in kernels if _residual_branch(k))
        blocks = max(1, math.ceil(count / 2))

    rows = []
    for index, kernel in enumerate(kernels):
        before = _initializer_facts.describe_initializer(kernel.initializer)
        if kernel.variable is None or kernel.activation is None:
            reason = kernel.where
            if kernel.variable is None:
                reason = (
                    "the kernel is not a single variable (LoRA or quantized)"
                )
            rows.append(_row(kernel, reason, before, "unchanged"))
            continue
        layer_seed = _seed.derive(seed, index)
        if kernel.role == "rnn_recurrent":
            after = _draw_recurrent(kernel, layer_seed)
        else:
            init = _kernels.paired_initializer(kernel, distribution, layer_seed)
            if residual_scaling and _residual_branch(kernel):
                stddev = math.sqrt(kernel.paired_variance())
                init = ScaledNormal(
                    stddev=stddev, num_layers=int(blocks), seed=layer_seed
                )
            variable = kernel.variable
            variable.assign(init(tuple(variable.shape), dtype=variable.dtype))
            after = _initializer_facts.describe_initializer(init)
            if _graph_gated(kernel):
                # The gated layers draw each kernel from its own paired
                # initializer when `kernel_initializer` is None; one shared
                # initializer attribute could not record both.
                kernel.owner.kernel_initializer = None
            else:
                setattr(kernel.owner, kernel.init_attr, init)
        if bias is not None:
            _set_biases(kernel, bias)
        rows.append(_row(kernel, kernel.where, before, after))
    return PairingReport(rows)


def _graph_gated(kernel: _kernels.Kernel) -> bool:
    return kernel.role in ("gate", "value")


def _residual_branch(kernel: _kernels.Kernel) -> bool:
    return (
        kernel.role == "kernel"
        and kernel.residual
        and kernel.activation is not None
    )


def _row(kernel, found: str, before: str, after: str) -> PairingRow:
    activation = None if kernel.activation is None else kernel.label
    return PairingRow(
        kernel.path,
        kernel.attr,
        activation,
        found,
        kernel.fans,
        before,
        after,
        kernel.role == "kernel" and kernel.residual,
    )


def _draw_recurrent(kernel: _kernels.Kernel, seed: int | None) -> str:
    # One orthogonal block per gate: each gate's recurrent map then keeps
    # the norm of the state (Saxe et al.); one orthogonal matrix over the
    # fused (units, gates * units) kernel would give each gate a quarter
    # of it (LSTM).
    from kerasinit.initializers import Orthogonal

    variable = kernel.variable
    rows, columns = (int(d) for d in variable.shape)
    width = columns // kernel.gates
    blocks = []
    for gate in range(kernel.gates):
        init = Orthogonal(gain=1.0, seed=_seed.derive(seed, gate))
        blocks.append(
            keras.ops.convert_to_numpy(init((rows, width), dtype="float32"))
        )
    value = np.concatenate(blocks, axis=-1).astype(variable.dtype)
    variable.assign(value)
    if kernel.gates == 1:
        return "Orthogonal"
    return f"Orthogonal per gate ({kernel.gates} blocks)"


def _set_biases(kernel: _kernels.Kernel, bias: Any) -> None:
    value = 0.0 if bias == "zeros" else float(bias)
    for attr in kernel.biases:
        variable = getattr(kernel.owner, attr)
        values = np.full(tuple(variable.shape), value, dtype="float64")
        if kernel.role == "rnn_input" and isinstance(
            kernel.owner, keras.layers.LSTMCell
        ):
            # The forget gate (second of Keras' i, f, c, o blocks) starts
            # open, so the cell remembers before it has learned to
            # (Jozefowicz et al., 2015).
            units = values.shape[-1] // kernel.gates
            values[..., units : 2 * units] = 1.0
        variable.assign(values.astype(variable.dtype))
