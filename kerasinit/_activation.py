"""Resolve any spelling of a non-linearity to its gains-table facts.

`kerasinit.pair`, `kerasinit.check` and the layer graph's walk
(`kerasinit._graph`) meet activations spelled every way Keras accepts: a
name, a ``keras.activations`` or ``keras.ops`` function, an activation
layer, a kerasinit layer, or a user's own callable. Each resolves here to
one `Activation`: the gains-table entry with its parameter, or a custom
callable with its second-moment gain.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import weakref
from typing import Any

import keras

from kerasinit import gains

_L = keras.layers


@dataclasses.dataclass(frozen=True)
class Activation:
    """A resolved non-linearity: a gains-table entry or a custom callable.

    Attributes:
        entry: the `kerasinit.gains.ActivationInfo`, or `None` for a custom
            callable the table does not describe.
        param: the entry's shape parameter (leaky slope, ELU alpha...).
        fn: the custom callable when `entry` is `None`.
        gain: the gain `pair` scales the kernel by: the table's for an
            entry, the second-moment gain ``1 / sqrt(E[f(z)^2])`` of a
            custom callable (computed once per callable).
    """

    entry: Any
    param: float | None = None
    fn: Any = dataclasses.field(default=None, compare=False)
    gain: float = 1.0

    @property
    def custom(self) -> bool:
        return self.entry is None

    @property
    def name(self) -> str:
        if self.entry is None:
            return function_name(self.fn)
        return self.entry.name

    @property
    def label(self) -> str:
        if self.entry is None:
            return f"{self.name} (custom, moment gain {self.gain:.4g})"
        if self.entry.param_name is None or self.param is None:
            return self.entry.name
        return f"{self.entry.name}({self.param:g})"

    @property
    def linear(self) -> bool:
        return self.entry is not None and self.entry.name == "linear"


def table_activation(name: str, param: float | None = None) -> Activation:
    """The `Activation` of a gains-table name."""
    entry = gains.info(name)
    param = entry.param_or_default(param)
    return Activation(entry, param, gain=entry.gain(param))


LINEAR = table_activation("linear")


@functools.cache
def _ops_functions() -> dict[Any, tuple[str, str | None]]:
    # `keras.ops` has its own activation functions, distinct objects from
    # `keras.activations` and with their own defaults (`keras.ops.gelu` is
    # the tanh approximation), so they are resolved by identity here.
    ops = keras.ops
    table = {}
    for attr, name, arg in (
        ("relu", "relu", None),
        ("relu6", "relu6", None),
        ("sigmoid", "sigmoid", None),
        ("tanh", "tanh", None),
        ("leaky_relu", "leaky_relu", "negative_slope"),
        ("elu", "elu", "alpha"),
        ("selu", "selu", None),
        ("gelu", "gelu", None),
        ("silu", "silu", None),
        ("swish", "silu", None),
        ("hard_sigmoid", "hard_sigmoid", None),
        ("hard_silu", "hard_swish", None),
        ("hard_swish", "hard_swish", None),
        ("softplus", "softplus", None),
        ("softsign", "softsign", None),
    ):
        fn = getattr(ops, attr, None)
        if fn is not None:
            table[fn] = (name, arg)
    return table


def _resolve_ops_function(fn: Any) -> Activation | None:
    try:
        found = _ops_functions().get(fn)
    except TypeError:  # an unhashable callable
        return None
    if found is None:
        return None
    name, arg = found
    signature = inspect.signature(fn).parameters
    param = None
    if arg is not None:
        param = float(signature[arg].default)
    if name == "gelu":
        approximate = signature.get("approximate")
        if approximate is not None and approximate.default is True:
            name = "gelu_tanh"
    return table_activation(name, param)


# Moment gains of custom callables, computed once per callable: quadrature
# calls the function on a few hundred points, too slow to repeat for every
# layer of every `pair`/`check` call.
_CUSTOM_GAINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _custom(fn: Any) -> Activation | None:
    try:
        cached = _CUSTOM_GAINS.get(fn)
    except TypeError:
        cached = None
    if cached is None:
        try:
            value = float(gains.gain(fn))
        except Exception:  # noqa: BLE001
            # The user's function runs on a NumPy grid here; whatever it
            # raises (not element-wise, needs a tensor of a given shape...)
            # means kerasinit cannot pair it, which `pair` reports.
            return None
        if not math.isfinite(value) or value <= 0:
            return None
        cached = value
        try:
            _CUSTOM_GAINS[fn] = cached
        except TypeError:
            pass  # not weak-referenceable: recomputed next time
    return Activation(None, None, fn=fn, gain=cached)


def resolve_activation(obj: Any) -> Activation | None:
    """The `Activation` of any spelling Keras accepts, or `None`.

    ``None``, a name, a ``keras.activations`` or ``keras.ops`` function, a
    Keras activation layer (``ReLU``, ``Activation(...)``...) and a kerasinit
    layer all resolve to the table entry; any other plain callable is a
    custom activation paired by its second-moment gain. Softmax is not an
    element-wise activation and resolves to `None` here (see `is_softmax`).
    """
    if is_softmax(obj):
        return None
    if isinstance(obj, _L.Activation):
        return resolve_activation(obj.activation)
    try:
        found = gains.resolve(obj)
    except (TypeError, ValueError):
        found = None
    if found is not None:
        entry, param = found
        return Activation(entry, param, gain=entry.gain(param))
    if isinstance(obj, _L.Layer):
        return None
    if callable(obj):
        return _resolve_ops_function(obj) or _custom(obj)
    return None


def is_softmax(obj: Any) -> bool:
    """Whether `obj` is softmax or log-softmax, in any spelling.

    Softmax normalizes logits across units rather than acting on each one;
    what its input needs is what any logits need, the linear pairing.
    """
    if isinstance(obj, _L.Softmax):
        return True
    if isinstance(obj, _L.Activation):
        obj = obj.activation
    candidates = (
        keras.activations.softmax,
        getattr(keras.activations, "log_softmax", None),
        keras.ops.softmax,
        getattr(keras.ops, "log_softmax", None),
    )
    return any(obj is c for c in candidates if c is not None)


def function_name(fn: Any) -> str:
    """A callable's ``__name__``, else its type's name."""
    return getattr(fn, "__name__", None) or type(fn).__name__
