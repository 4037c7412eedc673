"""Every kernel of a model, what it feeds, and the scale it pairs with.

`kerasinit.pair` and `kerasinit.check` both start from the same reading of
a model: one `Kernel` per weight matrix kerasinit knows, with its true fans,
the non-linearity its output goes through (found by `kerasinit._graph`)
and the variance that non-linearity pairs with. This module does that
reading once, for both. The rules are documented in ``docs/pairing.md``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import keras
import numpy as np

from kerasinit import _activation, _graph
from kerasinit._initializer_facts import (
    implied_variance,
    std_initializer,
)

#: Embeddings are drawn from N(0, EMBEDDING_STDDEV**2), GPT-2's choice.
EMBEDDING_STDDEV = 0.02
#: The largest embedding variance accepted: unit-variance rows, the input
#: scale every paired layer after them is derived for.
EMBEDDING_MAX_VARIANCE = 1.0

_LSTM_GATES = 4
_GRU_GATES = 3


@dataclasses.dataclass(frozen=True, eq=False)
class Kernel:
    """One weight matrix of a model and the scale it pairs with.

    Attributes:
        ctx: the chain of models holding `layer`, outermost first.
        layer: the layer of the model's graph (``Dense``, ``LSTM``...).
        owner: the object holding the variable and its initializer (the
            layer itself, an attention projection, a recurrent cell).
        path: the layer's path in the model (``"block/dense"``).
        attr: the kernel's name within the layer (``"kernel"``,
            ``"gate_kernel"``, ``"query_dense.kernel"``,
            ``"cell.recurrent_kernel"``).
        role: ``"kernel"`` (feeds `activation`), ``"depthwise"`` (feeds the
            pointwise kernel), ``"gate"``/``"value"`` (gated layers),
            ``"attention"`` (query, key and value projections),
            ``"embedding"``, ``"rnn_input"`` or ``"rnn_recurrent"``.
        variable_attr: the attribute of `owner` holding the variable.
        init_attr: the attribute of `owner` holding its initializer, or
            `None` when the owner keeps none of its own.
        variable: the `keras.Variable`, or `None` (LoRA, quantized).
        fans: the true ``(fan_in, fan_out)``, or `None`.
        activation: the `kerasinit._activation.Activation` the output goes
            through, or `None` when it could not be determined.
        where: how the activation was found, or why it was not.
        residual: whether the output enters a residual ``Add``.
        scale_free: whether normalization divides the kernel's scale out.
        head: whether the output reaches only the model's outputs.
        gates: gate blocks stored side by side in the kernel (4 for LSTM,
            3 for GRU, else 1).
        biases: attributes of `owner` holding the biases this kernel adds.
        walk: the graph walk, for the rules that follow the graph.
    """

    ctx: tuple
    layer: Any
    owner: Any
    path: str
    attr: str
    role: str
    variable_attr: str
    init_attr: str | None
    variable: Any
    fans: tuple[int, int] | None
    activation: _activation.Activation | None
    where: str
    residual: bool = False
    scale_free: bool = False
    head: bool = False
    gates: int = 1
    biases: tuple[str, ...] = ()
    walk: Any = None

    @property
    def initializer(self) -> Any:
        """The initializer the kernel was drawn from, or `None` if unknown.

        A gated layer whose ``kernel_initializer`` is `None` draws each
        kernel from its paired initializer, so that is what it reports.
        """
        if self.init_attr is None:
            return None
        init = getattr(self.owner, self.init_attr, None)
        if init is None and _graph.is_gated(self.owner):
            return paired_initializer(self)
        return init

    @property
    def bound(self) -> str:
        """``"both"``, or ``"upper"`` where only a too large scale harms.

        A probability or regression head's logits may start small (a
        uniform prediction is the usual start); a residual branch may start
        small (the skip path carries the signal: GPT-2 scales such branches
        down on purpose); attention's projections only set how flat the
        first attention is; an embedding's scale is a free choice below
        unit variance.
        """
        if self.role in ("attention", "embedding"):
            return "upper"
        if self.role == "kernel" and (self.head or self.residual):
            return "upper"
        return "both"

    def paired_variance(self) -> float:
        """The variance `pair` draws this kernel with."""
        if self.role == "embedding":
            return EMBEDDING_STDDEV**2
        fan_in, fan_out = self.fans
        if self.role == "rnn_input":
            return 2.0 / (fan_in + fan_out)
        if self.role == "rnn_recurrent":
            return 1.0 / fan_in
        act = self.activation
        if act.custom:
            return act.gain**2 / fan_in
        from kerasinit.initializers import ForActivation

        paired = ForActivation(
            act.entry.name, param=act.param if act.entry.param_name else None
        ).delegate
        return paired.variance(fan_in, fan_out)

    def accepted_variances(self) -> list[float]:
        """The paired variance first, then the alternatives also accepted."""
        targets = [self.paired_variance()]
        if self.role == "embedding":
            return targets + [EMBEDDING_MAX_VARIANCE]
        fan_in, fan_out = self.fans
        if self.role == "rnn_input":
            # Keras' default: Glorot over the fused gate blocks.
            return targets + [2.0 / (fan_in + self.gates * fan_out)]
        if self.role == "rnn_recurrent":
            # Keras' default: one orthogonal matrix over the fused blocks.
            return targets + [1.0 / (self.gates * fan_in)]
        entry = self.activation.entry
        if (
            entry is not None
            and entry.family in ("glorot", "kumar")
            and entry.name != "linear"
        ):
            # Plain Glorot is the textbook choice for tanh and sigmoid.
            targets.append(2.0 / (fan_in + fan_out))
        return targets

    @property
    def label(self) -> str:
        """The activation as printed (``"leaky_relu(0.3)"``)."""
        if self.role == "embedding":
            return "embedding"
        if self.role == "rnn_input":
            return "recurrent gates"
        if self.role == "rnn_recurrent":
            return "recurrent (orthogonal)"
        return "?" if self.activation is None else self.activation.label


def require_built(model: Any, argument: str = "model") -> None:
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Expected `{argument}` to be a `keras.Model`. "
            f"Received: {argument}={model!r}"
        )
    if not model.built:
        raise ValueError(
            f"Expected `{argument}` to be built, so that its kernels exist: "
            "start it with `keras.Input(...)`, call `model.build(input_shape)` "
            f"or call it on a batch first. Received: {argument}={model.name!r} "
            "(not built)"
        )


def _variable(owner: Any, attr: str) -> Any:
    return _graph.kernel_variable(owner, attr)


def _shape(variable: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in variable.shape)


def _bias_attrs(owner: Any, *names: str) -> tuple[str, ...]:
    return tuple(
        n for n in names if isinstance(getattr(owner, n, None), keras.Variable)
    )


def _conv_kernels(ctx, layer, graph) -> list[Kernel]:
    from kerasinit.initializers import fans_for_layer

    walk = _graph.find_activation(graph, ctx, layer)
    head = _graph.is_head(graph, ctx, layer)
    path = _graph.path(ctx, layer)
    out = []
    pairs = _graph.kernels(layer)
    for position, (attr, init_attr) in enumerate(pairs):
        variable = _variable(layer, attr)
        fans = None
        if variable is not None:
            fans = fans_for_layer(
                layer, kernel=attr if position or attr != "kernel" else None
            )
        common = dict(
            ctx=ctx,
            layer=layer,
            owner=layer,
            path=path,
            attr=attr,
            variable_attr=attr,
            init_attr=init_attr,
            variable=variable,
            fans=fans,
            walk=walk,
        )
        if position == 0:
            out.append(
                Kernel(
                    role="kernel",
                    activation=walk.activation,
                    where=walk.where,
                    residual=walk.residual,
                    scale_free=walk.scale_free,
                    head=head,
                    biases=_bias_attrs(layer, "bias"),
                    **common,
                )
            )
        else:
            # A separable convolution's depthwise kernel feeds its pointwise
            # kernel with nothing in between.
            out.append(
                Kernel(
                    role="depthwise",
                    activation=_activation.LINEAR,
                    where=f"feeds {layer.name}.{pairs[0][0]}",
                    **common,
                )
            )
    return out


def _gated_kernels(ctx, layer) -> list[Kernel]:
    from kerasinit.initializers import compute_fans

    gate = _activation.resolve_activation(layer)
    path = _graph.path(ctx, layer)
    out = []
    for branch, activation, where in (
        ("gate", gate, "the layer's gate"),
        ("value", _activation.LINEAR, "the layer's value path (multiplied)"),
    ):
        variable = _variable(layer, f"{branch}_kernel")
        out.append(
            Kernel(
                ctx=ctx,
                layer=layer,
                owner=layer,
                path=path,
                attr=f"{branch}_kernel",
                role=branch,
                variable_attr=f"{branch}_kernel",
                init_attr="kernel_initializer",
                variable=variable,
                fans=None
                if variable is None
                else compute_fans(_shape(variable)),
                activation=activation,
                where=where,
                biases=_bias_attrs(layer, f"{branch}_bias"),
            )
        )
    return out


def _attention_kernels(ctx, layer, graph) -> list[Kernel]:
    from kerasinit.initializers import fans_for_layer

    path = _graph.path(ctx, layer)
    out = []
    for name in ("query_dense", "key_dense", "value_dense", "output_dense"):
        owner = getattr(layer, name, None)
        variable = None if owner is None else _variable(owner, "kernel")
        if variable is None:
            continue
        fans = fans_for_layer(owner)
        common = dict(
            ctx=ctx,
            layer=layer,
            owner=owner,
            path=path,
            attr=f"{name}.kernel",
            variable_attr="kernel",
            init_attr="kernel_initializer",
            variable=variable,
            fans=fans,
            biases=_bias_attrs(owner, "bias"),
        )
        if name != "output_dense":
            out.append(
                Kernel(
                    role="attention",
                    activation=_activation.LINEAR,
                    where="attention scores and values (linear)",
                    **common,
                )
            )
            continue
        walk = _graph.find_activation(graph, ctx, layer)
        out.append(
            Kernel(
                role="kernel",
                activation=walk.activation,
                where=walk.where,
                residual=walk.residual,
                scale_free=walk.scale_free,
                head=_graph.is_head(graph, ctx, layer),
                walk=walk,
                **common,
            )
        )
    return out


def _recurrent_kernels(ctx, layer) -> list[Kernel]:
    path = _graph.path(ctx, layer)
    if isinstance(layer, keras.layers.Bidirectional):
        parts = [
            (layer.forward_layer, "forward_layer.cell"),
            (layer.backward_layer, "backward_layer.cell"),
        ]
    else:
        parts = [(layer, "cell")]
    out = []
    for rnn, prefix in parts:
        cell = getattr(rnn, "cell", None)
        if cell is None:
            continue
        units = int(getattr(cell, "units", 0) or 0)
        if isinstance(cell, keras.layers.LSTMCell):
            gates = _LSTM_GATES
        elif isinstance(cell, keras.layers.GRUCell):
            gates = _GRU_GATES
        else:
            gates = 1
        for attr, init_attr, role, where in (
            ("kernel", "kernel_initializer", "rnn_input", "the cell's gates"),
            (
                "recurrent_kernel",
                "recurrent_initializer",
                "rnn_recurrent",
                "the cell's own state",
            ),
        ):
            variable = _variable(cell, attr)
            fans = None
            if variable is not None and units:
                rows = _shape(variable)[0]
                fans = (rows, units)
            out.append(
                Kernel(
                    ctx=ctx,
                    layer=layer,
                    owner=cell,
                    path=path,
                    attr=f"{prefix}.{attr}",
                    role=role,
                    variable_attr=attr,
                    init_attr=init_attr,
                    variable=variable,
                    fans=fans,
                    activation=_activation.LINEAR,
                    where=where,
                    gates=gates,
                    biases=_bias_attrs(cell, "bias")
                    if role == "rnn_input"
                    else (),
                )
            )
    return out


def _embedding_kernels(ctx, layer) -> list[Kernel]:
    variable = _variable(layer, "embeddings")
    return [
        Kernel(
            ctx=ctx,
            layer=layer,
            owner=layer,
            path=_graph.path(ctx, layer),
            attr="embeddings",
            role="embedding",
            variable_attr="embeddings",
            init_attr="embeddings_initializer",
            variable=variable,
            fans=None if variable is None else tuple(_shape(variable)[:2]),
            activation=_activation.LINEAR,
            where="table lookup",
        )
    ]


def analyse(model: Any) -> list[Kernel]:
    """Every kernel of `model`, in graph order."""
    graph = _graph.Graph(model) if _graph.has_graph(model) else None
    kernels: list[Kernel] = []
    for ctx, layer in _graph.weighted_layers(model):
        if isinstance(layer, _graph.KERNEL_LAYERS):
            kernels.extend(_conv_kernels(ctx, layer, graph))
        elif _graph.is_gated(layer):
            kernels.extend(_gated_kernels(ctx, layer))
        elif isinstance(layer, _graph.PROJECTING):
            kernels.extend(_attention_kernels(ctx, layer, graph))
        elif isinstance(layer, _graph.RECURRENT):
            kernels.extend(_recurrent_kernels(ctx, layer))
        elif isinstance(layer, _graph.EMBEDDING):
            kernels.extend(_embedding_kernels(ctx, layer))
    return kernels


def paired_initializer(
    kernel: Kernel, distribution: str = "normal", seed: int | None = None
) -> keras.initializers.Initializer:
    """The initializer `pair` draws `kernel` from (not for recurrent ones)."""
    from kerasinit.initializers import ForActivation, Glorot

    if kernel.role == "embedding":
        return std_initializer(EMBEDDING_STDDEV, distribution, seed)
    if kernel.role == "rnn_input":
        return Glorot(distribution=distribution, fans=kernel.fans, seed=seed)
    act = kernel.activation
    if act.custom:
        stddev = math.sqrt(kernel.paired_variance())
        return std_initializer(stddev, distribution, seed)
    return ForActivation(
        act.entry.name,
        param=act.param if act.entry.param_name else None,
        distribution=distribution,
        fans=kernel.fans,
        seed=seed,
    )


def current_variance(kernel: Kernel) -> tuple[float, str]:
    """The kernel's variance and how it was read (drawn by / measured for).

    Recurrent kernels are always measured: their initializer attribute
    does not record how `pair` drew them (one orthogonal block per gate).
    """
    init = kernel.initializer
    implied = None
    if kernel.role != "rnn_recurrent":
        implied = implied_variance(init, _shape(kernel.variable))
    if implied is not None:
        return implied[0], "drawn by"
    values = np.asarray(kernel.variable.numpy(), dtype=np.float64)
    return float(np.mean(values * values)), "measured for"


def saturating(activation: Any) -> bool:
    """Sigmoid, tanh, hard sigmoid, softsign: bounded on both sides."""
    if activation is None or activation.entry is None:
        return False
    entry = activation.entry
    return entry.saturation is not None and entry.family in ("glorot", "kumar")


def describe_variance(kernel: Kernel) -> str:
    """What the paired variance is, in words, for messages."""
    if kernel.role == "embedding":
        return f"N(0, {EMBEDDING_STDDEV:g}^2) of embeddings"
    if kernel.role == "rnn_input":
        return "Glorot with one gate's fans"
    if kernel.role == "rnn_recurrent":
        return "orthogonal block per gate"
    act = kernel.activation
    if act.custom:
        return f"gain^2/fan_in for {act.name} (moment gain {act.gain:.4g})"
    from kerasinit.initializers import ForActivation

    paired = ForActivation(
        act.entry.name, param=act.param if act.entry.param_name else None
    ).delegate
    return f"{type(paired).__name__}({act.entry.name})"
