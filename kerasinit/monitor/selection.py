"""Which layers the monitor watches, and what it needs to know about each.

Gradient statistics belong to a layer's own trainable weights; a weightless
activation layer (``ReLU``, ``Activation``...) is credited with the weights of
the closest layer before it, in model order, that has trainable weights: the
layer whose pre-activation it receives in a plain stack.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import keras

from kerasinit import gains
from kerasinit.monitor.activation_stats import saturation_fn

__all__ = [
    "LayerSpec",
    "leaf_layers",
    "monitored_layers",
    "reference_layer",
    "walk_layers",
]


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One monitored layer and what the probe needs to know about it.

    Attributes:
        path: the layer's path in the model, nested models joined by ``/``.
        layer: the layer object.
        activation: the table entry of its non-linearity, or `None` when
            unknown (a custom function, softmax).
        param: the activation's parameter (leaky slope...).
        direct: whether the layer's output *is* the activation's output, so
            the dead and saturation rules apply (false for recurrent layers
            and gated units such as SwiGLU, whose output is a product).
        weight_owner: path of the layer whose weights give the gradient
            statistics, or `None` when there is none.
    """

    path: str
    layer: Any
    activation: gains.ActivationInfo | None
    param: float | None
    direct: bool
    weight_owner: str | None = None

    @property
    def activation_name(self) -> str:
        if self.activation is not None:
            return self.activation.name
        fn = getattr(self.layer, "activation", None)
        return getattr(fn, "__name__", type(self.layer).__name__)

    def record_entry(self) -> dict[str, str]:
        """The layer as an event's record lists it."""
        return {
            "name": self.path,
            "class": type(self.layer).__name__,
            "activation": self.activation_name,
        }

    @property
    def dead_value(self) -> float | None:
        act = self.activation
        if not self.direct or act is None or not act.can_die(self.param):
            return None
        return act.dead_value

    def saturation(self) -> tuple[Callable, float] | None:
        """``(derivative_fn, peak)`` or `None` when no rule applies."""
        act = self.activation
        if not self.direct or act is None or act.saturation is None:
            return None
        rule = act.saturation
        param = act.param_or_default(self.param)
        return saturation_fn(rule, param), float(rule.peak(param))


def walk_layers(model, prefix: str = ""):
    """Yield ``(path, layer)`` for every layer, depth first, in model order.

    Nested models are yielded themselves and then their layers, with paths
    joined by ``/``.
    """
    for layer in getattr(model, "layers", []):
        path = f"{prefix}{layer.name}"
        yield path, layer
        if isinstance(layer, keras.Model):
            yield from walk_layers(layer, prefix=f"{path}/")


def _activation_of(layer) -> tuple[Any, bool]:
    """``(resolve() result or None, has a non-linearity)``."""
    if isinstance(layer, keras.Model):
        return None, False
    found = gains.resolve(layer)
    if found is not None:
        return found, found[0].name != "linear"
    if isinstance(layer, keras.layers.Activation):
        return None, True
    fn = getattr(layer, "activation", None)
    if fn is None or not callable(fn):
        return None, False
    found = gains.resolve(fn)
    if found is not None:
        return found, found[0].name != "linear"
    return None, True


def monitored_layers(model, select=None) -> list[LayerSpec]:
    """The layers to monitor, in model order.

    Args:
        model: a built Keras model.
        select: `None` for every layer with a non-linearity; a list of layer
            names or paths; a compiled regular expression (or a string
            starting with ``"re:"``) matched against paths; or a predicate
            ``layer -> bool``. Defaults to `None`.

    Returns:
        A list of `LayerSpec`.

    Raises:
        ValueError: a requested name that is not in the model, or a
            selection (a pattern, a predicate) that matches no layer.
    """
    everything = list(walk_layers(model))
    leaves = [
        (p, lyr) for p, lyr in everything if not isinstance(lyr, keras.Model)
    ]
    if select is None:
        chosen = [(p, lyr) for p, lyr in leaves if _activation_of(lyr)[1]]
    elif isinstance(select, re.Pattern) or (
        isinstance(select, str) and select.startswith("re:")
    ):
        pattern = (
            select if isinstance(select, re.Pattern) else re.compile(select[3:])
        )
        chosen = [(p, lyr) for p, lyr in leaves if pattern.search(p)]
    elif callable(select):
        chosen = [(p, lyr) for p, lyr in leaves if select(lyr)]
    else:
        names = [select] if isinstance(select, str) else list(select)
        by_key = {}
        for p, lyr in leaves:
            by_key.setdefault(p, (p, lyr))
            by_key.setdefault(lyr.name, (p, lyr))
        missing = [n for n in names if n not in by_key]
        if missing:
            raise ValueError(
                f"Unknown layer names in `layers`: {missing}. Available "
                f"layers: {[p for p, _ in leaves]}. Received: layers={names!r}"
            )
        wanted = {by_key[n][0] for n in names}
        chosen = [(p, lyr) for p, lyr in leaves if p in wanted]
    if select is not None and not chosen:
        # A selection of nothing would train without a word of monitoring.
        raise ValueError(
            "Expected `layers` to select at least one layer of the model, "
            f"but {_selection_words(select)} none of its layers: "
            f"{[p for p, _ in leaves]}. Received: layers={select!r}"
        )
    specs = []
    owners = _weight_owners(leaves)
    for path, layer in chosen:
        found, _ = _activation_of(layer)
        info, param = found if found is not None else (None, None)
        specs.append(
            LayerSpec(
                path=path,
                layer=layer,
                activation=info,
                param=param,
                direct=not (
                    isinstance(layer, keras.layers.RNN)
                    or getattr(layer, "gated", False)
                ),
                weight_owner=owners.get(path),
            )
        )
    return specs


def _selection_words(select) -> str:
    if isinstance(select, re.Pattern) or isinstance(select, str):
        return "the regular expression matches"
    if callable(select):
        return "the predicate returns True for"
    return "the list names"


def _weight_owners(leaves) -> dict[str, str]:
    owners = {}
    last = None
    for path, layer in leaves:
        if layer.trainable_weights:
            last = path
        owners[path] = last
    return owners


def reference_layer(leaves) -> str | None:
    """The last layer with trainable weights: the gradients' yardstick."""
    ref = None
    for path, layer in leaves:
        if layer.trainable_weights:
            ref = path
    return ref


def leaf_layers(model) -> list[tuple[str, Any]]:
    """``(path, layer)`` of every layer that is not itself a model."""
    return [
        (p, lyr)
        for p, lyr in walk_layers(model)
        if not isinstance(lyr, keras.Model)
    ]
