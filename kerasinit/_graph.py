"""Walk a Keras model's layer graph through public attributes only.

`kerasinit.pair`, `kerasinit.check` and `kerasinit.lsuv` need to know, for
each kernel, which non-linearity its output goes through and what feeds it.
Keras records the graph in private node objects, so this module rebuilds it
from what Keras documents instead: a Functional or Sequential model lists
its layers in ``model.layers``, each layer called once exposes the
`KerasTensor` objects it consumed and produced as ``layer.input`` and
``layer.output``, and ``model.inputs`` / ``model.outputs`` are the graph's
ends. The consumers of a tensor are the layers whose ``input`` contains that
very object. A nested model is a layer of its parent whose ``input`` and
``output`` are tensors of the parent's graph while its ``inputs`` and
``outputs`` are tensors of its own, which is how a walk crosses into and out
of it.

A position in the graph is a *context* (the chain of models from the outer
one to the one holding the layer) and a layer. What an activation met on
the way is (its gains-table entry, or a custom callable's gain) is
resolved by `kerasinit._activation`.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import keras

from kerasinit._activation import (
    LINEAR,
    Activation,
    function_name,
    is_softmax,
    resolve_activation,
)

_L = keras.layers


def _types(*names: str) -> tuple[type, ...]:
    # Some layers only exist in newer Keras releases.
    return tuple(getattr(_L, n) for n in names if hasattr(_L, n))


KERNEL_LAYERS = _types(
    "Dense",
    "EinsumDense",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "SeparableConv1D",
    "SeparableConv2D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
)
SEPARABLE = _types("SeparableConv1D", "SeparableConv2D")
DEPTHWISE = _types("DepthwiseConv1D", "DepthwiseConv2D")
# Layers whose first operation on each input is a learned linear projection
# (query, key and value): to the kernel feeding them they are a linear
# consumer, like the next Dense.
PROJECTING = _types("MultiHeadAttention", "GroupQueryAttention")
# Recurrent layers project their input with a kernel before any gate: to the
# kernel feeding them they are a linear consumer too.
RECURRENT = _types("LSTM", "GRU", "SimpleRNN", "Bidirectional")
EMBEDDING = _types("Embedding")
NORMALIZATION = _types(
    "BatchNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "RMSNormalization",
    "UnitNormalization",
)
# Layers that neither mix units nor apply a non-linearity of their own, so
# the activation after them is the one that acts on the kernel's output.
PASS_THROUGH = _types(
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "Identity",
    "Reshape",
    "Flatten",
    "Permute",
    "RepeatVector",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "Concatenate",
    "Average",
    "Subtract",
)
RESIDUAL_MERGE = _types("Add")
_MERGES = _types("Concatenate", "Average", "Subtract")

#: Marker for "the model's output": nothing non-linear follows.
OUTPUT = "output"


def kernels(layer: Any) -> list[tuple[str, str]]:
    """``(kernel attribute, initializer attribute)`` pairs of a kernel layer.

    The first entry is the kernel whose output the layer's activation acts
    on.
    """
    if isinstance(layer, SEPARABLE):
        return [
            ("pointwise_kernel", "pointwise_initializer"),
            ("depthwise_kernel", "depthwise_initializer"),
        ]
    if isinstance(layer, DEPTHWISE):
        return [("kernel", "depthwise_initializer")]
    return [("kernel", "kernel_initializer")]


def kernel_variable(layer: Any, attr: str):
    """The layer's kernel as a `keras.Variable`, or `None` when it is not one.

    LoRA-enabled and quantized layers compute their kernel from several
    variables, so there is no single variable to re-initialize.
    """
    value = getattr(layer, attr, None)
    return value if isinstance(value, keras.Variable) else None


def has_graph(model: Any) -> bool:
    """Whether `model` is a Functional or Sequential model with a graph."""
    if not isinstance(model, keras.Model):
        return False
    try:
        return bool(model.inputs) and bool(model.outputs)
    except (AttributeError, ValueError):
        return False


def is_gated(layer: Any) -> bool:
    """Whether `layer` is a kerasinit gated layer owning two kernels."""
    return bool(getattr(layer, "gated", False))


def is_weighted(layer: Any) -> bool:
    """Whether `layer` starts with a learned projection of its input."""
    return isinstance(layer, KERNEL_LAYERS + PROJECTING + RECURRENT) or (
        is_gated(layer)
    )


def is_activation_layer(layer: Any) -> bool:
    return not is_weighted(layer) and not isinstance(layer, EMBEDDING)


def resolve_layer(layer: Any) -> Activation | None:
    """The `Activation` of an activation layer, else `None`."""
    if not is_activation_layer(layer) or isinstance(layer, keras.Model):
        return None
    return resolve_activation(layer)


def flat(structure: Any) -> list:
    return list(keras.tree.flatten(structure))


Context = tuple  # of models, outermost first


def path(ctx: Context, layer: Any) -> str:
    """``"block/dense"``: the layer's name under the nested models."""
    return "/".join([m.name for m in ctx[1:]] + [layer.name])


class _Index:
    """Consumers of each tensor of one model's own graph."""

    def __init__(self, model: Any) -> None:
        self.consumers: dict[int, list] = defaultdict(list)
        self.opaque: set[int] = set()
        for layer in model.layers:
            try:
                inputs = flat(layer.input)
            except (AttributeError, ValueError):
                # A layer called more than once has no single `input`.
                self.opaque.add(id(layer))
                continue
            for tensor in inputs:
                self.consumers[id(tensor)].append(layer)
        self.outputs = [id(t) for t in flat(model.outputs)]


class Graph:
    """Consumers of tensors across a model and the graph models it nests."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._index: dict[int, _Index] = {}

    def index(self, model: Any) -> _Index:
        key = id(model)
        if key not in self._index:
            self._index[key] = _Index(model)
        return self._index[key]

    def consumers(self, ctx: Context, tensor: Any) -> list:
        """``(ctx, layer)`` pairs consuming `tensor`, or `OUTPUT`."""
        container = ctx[-1]
        index = self.index(container)
        found: list = []
        for layer in index.consumers.get(id(tensor), []):
            if has_graph(layer):
                try:
                    position = [id(t) for t in flat(layer.input)].index(
                        id(tensor)
                    )
                    inner = flat(layer.inputs)[position]
                except (AttributeError, ValueError, IndexError):
                    found.append((ctx, layer))
                    continue
                found.extend(self.consumers(ctx + (layer,), inner))
            else:
                found.append((ctx, layer))
        if id(tensor) in index.outputs:
            if len(ctx) == 1:
                found.append(OUTPUT)
            else:
                position = index.outputs.index(id(tensor))
                try:
                    outer = flat(container.output)[position]
                except (AttributeError, ValueError, IndexError):
                    return found + [(ctx[:-1], container)]
                found.extend(self.consumers(ctx[:-1], outer))
        return found

    def successors(self, ctx: Context, layer: Any) -> list | None:
        """What consumes `layer`'s output, or `None` if that is unknowable."""
        if id(layer) in self.index(ctx[-1]).opaque:
            return None
        try:
            outputs = flat(layer.output)
        except (AttributeError, ValueError):
            return None
        found: list = []
        for tensor in outputs:
            found.extend(self.consumers(ctx, tensor))
        return found


def kernel_layers(model: Any, ctx: Context = ()) -> list[tuple[Context, Any]]:
    """Every kernel layer, in graph order, with its context."""
    ctx = ctx + (model,)
    found = []
    for layer in model.layers:
        if isinstance(layer, KERNEL_LAYERS):
            found.append((ctx, layer))
        elif isinstance(layer, keras.Model):
            found.extend(kernel_layers(layer, ctx))
    return found


def in_graph(ctx: Context) -> bool:
    """Whether every model of the context has a graph to walk."""
    return all(has_graph(m) for m in ctx)


@dataclasses.dataclass
class Walk:
    """Where a kernel's output goes before anything non-linear happens.

    Attributes:
        activation: the `Activation`, or `None` if undetermined.
        where: how it was found, in words (or why it was not).
        at: ``(ctx, layer)`` of the activation layer, or `None` when fused,
            linear or undetermined.
        residual: whether the output enters an ``Add`` on the way.
        normalized: whether a normalization layer is on the way.
        scale_free: whether, on every branch, a normalization layer comes
            before any merge: the kernel's scale is then divided out.
    """

    activation: Activation | None
    where: str
    at: Any = None
    residual: bool = False
    normalized: bool = False
    scale_free: bool = False


def _describe(layer: Any) -> str:
    return f"{type(layer).__name__} {layer.name!r}"


def find_activation(graph: Graph | None, ctx: Context, layer: Any) -> Walk:
    """The non-linearity the output of kernel layer `layer` goes through."""
    fused = getattr(layer, "activation", None)
    if fused is not None and is_softmax(fused):
        return Walk(LINEAR, "fused softmax (logits)")
    found = resolve_activation(fused) if fused is not None else None
    if fused is not None and found is None:
        return Walk(
            None,
            f"fused activation {function_name(fused)!r} is not element-wise or "
            "cannot be evaluated",
        )
    if found is not None and not found.linear:
        how = "fused"
        if found.custom:
            how = "fused custom callable, gain by the second-moment rule"
        return Walk(found, how)
    if graph is None or not in_graph(ctx):
        return Walk(
            None,
            "no layer graph to follow (subclassed model) and no fused "
            "activation",
        )
    ends: list[Walk] = []
    _follow(graph, ctx, layer, [], ends, depth=0)
    undetermined = [w for w in ends if w.activation is None]
    residual = any(w.residual for w in ends)
    normalized = any(w.normalized for w in ends)
    scale_free = bool(ends) and all(w.scale_free for w in ends)
    if undetermined:
        walk = undetermined[0]
        walk.residual, walk.normalized = residual, normalized
        walk.scale_free = scale_free
        return walk
    keys = {(w.activation.name, w.activation.param) for w in ends}
    if len(keys) > 1:
        return Walk(
            None,
            "branches disagree: "
            + "; ".join(
                sorted({f"{w.activation.name} ({w.where})" for w in ends})
            ),
            residual=residual,
            normalized=normalized,
        )
    walk = ends[0]
    if len(ends) > 1:
        walk = dataclasses.replace(
            walk, where=walk.where + f" (and {len(ends) - 1} more branches)"
        )
    walk.residual, walk.normalized = residual, normalized
    walk.scale_free = scale_free
    return walk


def _via(passed: list) -> str:
    if not passed:
        return ""
    return " after " + ", ".join(_describe(p) for p in passed)


def _scale_free(passed: list) -> bool:
    for layer in passed:
        if isinstance(layer, NORMALIZATION):
            return True
        if isinstance(layer, RESIDUAL_MERGE + _MERGES):
            return False
    return False


def _follow(graph, ctx, layer, passed, ends, depth) -> None:
    # Depth guard against pathological graphs; a real model never nears it.
    if depth > 256:
        ends.append(Walk(None, "graph too deep to follow"))
        return
    successors = graph.successors(ctx, layer)
    if successors is None:
        ends.append(Walk(None, f"{_describe(layer)} is called more than once"))
        return
    for item in successors:
        residual = any(isinstance(p, RESIDUAL_MERGE) for p in passed)
        normalized = any(isinstance(p, NORMALIZATION) for p in passed)
        scale_free = _scale_free(passed)
        if item == OUTPUT:
            ends.append(
                Walk(
                    LINEAR,
                    "model output" + _via(passed),
                    residual=residual,
                    normalized=normalized,
                    scale_free=scale_free,
                )
            )
            continue
        next_ctx, nxt = item
        if is_weighted(nxt):
            ends.append(
                Walk(
                    LINEAR,
                    f"next layer is {_describe(nxt)}" + _via(passed),
                    residual=residual,
                    normalized=normalized,
                    scale_free=scale_free,
                )
            )
            continue
        if isinstance(nxt, NORMALIZATION + PASS_THROUGH + RESIDUAL_MERGE):
            _follow(graph, next_ctx, nxt, passed + [nxt], ends, depth + 1)
            continue
        if is_softmax(nxt):
            ends.append(
                Walk(
                    LINEAR,
                    f"softmax {_describe(nxt)} (logits)" + _via(passed),
                    residual=residual,
                    normalized=normalized,
                    scale_free=scale_free,
                )
            )
            continue
        found = resolve_layer(nxt)
        if found is not None:
            ends.append(
                Walk(
                    found,
                    f"{_describe(nxt)}" + _via(passed),
                    at=(next_ctx, nxt),
                    residual=residual,
                    normalized=normalized,
                    scale_free=scale_free,
                )
            )
            continue
        ends.append(
            Walk(
                None,
                f"output goes into {_describe(nxt)}, which kerasinit "
                "cannot see through",
                residual=residual,
                normalized=normalized,
                scale_free=scale_free,
            )
        )


def next_kernels(graph: Graph, ctx: Context, start: Any) -> list:
    """Kernel layers reached from `start` through activations and pass-through
    layers, each as ``(ctx, layer, normalized_on_the_way)``."""
    found: list = []
    seen: set[int] = set()

    def visit(c, layer, normalized, depth):
        if depth > 256:
            return
        successors = graph.successors(c, layer)
        for item in successors or []:
            if item == OUTPUT:
                continue
            nc, nxt = item
            if isinstance(nxt, KERNEL_LAYERS):
                found.append((nc, nxt, normalized))
                continue
            if id(nxt) in seen:
                continue
            seen.add(id(nxt))
            norm = normalized or isinstance(nxt, NORMALIZATION)
            if (
                isinstance(nxt, NORMALIZATION + PASS_THROUGH + RESIDUAL_MERGE)
                or resolve_layer(nxt) is not None
            ):
                visit(nc, nxt, norm, depth + 1)

    visit(ctx, start, False, 0)
    return found


def is_head(graph: Graph | None, ctx: Context, start: Any) -> bool:
    """Whether `start`'s output reaches only the model's outputs.

    Walks through activations, softmax, normalization, pass-through and
    merge layers: the layer is an output head when no layer with weights of
    its own (and nothing kerasinit cannot see through) lies beyond it.
    Without a graph to walk the answer is `False`: the layer is then held
    to the hidden layers' rule.
    """
    if graph is None or not in_graph(ctx):
        return False
    seen: set[int] = set()

    def hidden(c, layer, depth) -> bool:
        if depth > 256:
            return True
        successors = graph.successors(c, layer)
        if successors is None:
            return True
        for item in successors:
            if item == OUTPUT:
                continue
            nc, nxt = item
            if is_weighted(nxt) or isinstance(nxt, EMBEDDING):
                return True
            if id(nxt) in seen:
                continue
            seen.add(id(nxt))
            passes = isinstance(
                nxt, NORMALIZATION + PASS_THROUGH + RESIDUAL_MERGE
            ) or (is_softmax(nxt) or resolve_layer(nxt) is not None)
            if not passes or hidden(nc, nxt, depth + 1):
                return True
        return False

    return not hidden(ctx, start, 0)


def weighted_layers(model: Any, ctx: Context = ()) -> list[tuple[Context, Any]]:
    """Every layer with weights `pair` knows, in graph order, with context.

    Kernel layers, kerasinit's gated layers, attention, recurrent layers
    and embeddings; nested models are entered.
    """
    ctx = ctx + (model,)
    found = []
    for layer in model.layers:
        if is_weighted(layer) or isinstance(layer, EMBEDDING):
            found.append((ctx, layer))
        elif isinstance(layer, keras.Model):
            found.extend(weighted_layers(layer, ctx))
    return found


def tensor_function(ctx: Context, tensor: Any) -> Callable[[Any], Any]:
    """``x -> value of tensor`` for inputs `x` of the outer model.

    A tensor inside a nested model is computed by the nested model's own
    sub-model, fed by the parent's sub-model up to the nested model's
    input. The sub-models share the layers (and so the weights) of the
    model, so a weight changed afterwards is seen by the next call.
    """
    inputs = flat(ctx[-1].inputs)
    # A single input is passed bare, as Keras expects for one-input models.
    inner = keras.Model(inputs[0] if len(inputs) == 1 else inputs, tensor)
    if len(ctx) == 1:
        return lambda x: inner(x, training=False)
    feed = tensor_function(ctx[:-1], ctx[-1].input)
    return lambda x: inner(feed(x), training=False)
