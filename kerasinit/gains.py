"""The activation table: one entry per non-linearity, its facts in one place.

Every other part of kerasinit reads this module and none repeats a number
from it:

* initializers read an activation's *gain* and its *family* (which
  variance-preserving scheme it is derived for);
* layers read their gain, paired family and health rules from here;
* pairing reads the family to choose an initializer;
* the health monitor reads the *dead* and *saturation* rules.

Gains follow two rules, and the table records which one gives each value:

* ``"pytorch"``: for the names PyTorch's ``torch.nn.init.calculate_gain``
  defines (linear and the conv/identity aliases, sigmoid, tanh, relu,
  leaky_relu, selu), the same number, so results carry over between the two
  frameworks.
* ``"second_moment"``: for every other activation, and for any callable,
  ``gain = 1 / sqrt(E[f(z)^2])`` with ``z ~ N(0, 1)``, the factor that keeps
  the second moment of a unit-variance pre-activation at 1 after ``f``.
  ``E[f(z)^2]`` is computed by Gauss-Legendre quadrature against the normal
  density, split at the activation's kinks so that piecewise definitions
  (ReLU6, hard sigmoid) are integrated exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "ActivationInfo",
    "SaturationRule",
    "gain",
    "info",
    "names",
    "resolve",
    "second_moment",
    "kumar_variance_factor",
    "FAMILIES",
]

#: Initializer families an activation can pair with. ``"glorot"``: fan-average
#: variance times gain^2; ``"he"``: gain^2 / fan; ``"lecun"``: 1 / fan_in;
#: ``"kumar"``: 1 / (fan_in * g'(0)^2 * (1 + g(0)^2)).
FAMILIES = ("glorot", "he", "lecun", "kumar")

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _erf(x):
    return np.vectorize(math.erf, otypes=[float])(x)


def _sigmoid(z):
    # The two branches avoid overflow of exp for large |z|.
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _softplus(z):
    return np.logaddexp(0.0, z)


def _relu6(z):
    return np.clip(z, 0.0, 6.0)


@dataclasses.dataclass(frozen=True)
class SaturationRule:
    """Where an activation's local derivative blocks the gradient.

    The derivative is written as a function of the activation's *output*
    ``y`` (the only tensor a monitor sees), with array operations taken from
    ``xp`` (``numpy`` or ``keras.ops``), so the same rule runs on the host in
    tests and on the device in the monitor. An output is *saturated* where
    ``derivative(y, param, xp) < threshold * peak``: the threshold is relative
    to the activation's largest derivative, so one default fits sigmoid
    (peak 1/4) and tanh (peak 1) alike. For an activation that can die
    (`ActivationInfo.dead_value` set, e.g. ReLU6), outputs equal to the dead
    value are *dead*, not saturated: the rule covers the rest of the range.

    Attributes:
        derivative: ``(y, param, xp) -> f'(f^{-1}(y))``.
        peak: the largest value the derivative takes.
        description: the rule in words, for docs and warnings.
    """

    derivative: Callable[[Any, float | None, Any], Any]
    peak: Callable[[float | None], float]
    description: str


@dataclasses.dataclass(frozen=True)
class ActivationInfo:
    """Everything kerasinit knows about one activation.

    Attributes:
        name: canonical name.
        aliases: other names accepted for it (Keras and PyTorch spellings).
        fn: NumPy reference ``fn(z, param) -> f(z)``.
        family: the initializer family it pairs with (one of `FAMILIES`).
        param_name: name of its shape parameter (``"negative_slope"``,
            ``"alpha"``, ``"beta"``), or ``None``.
        default_param: the parameter's value when none is given.
        pytorch_gain: ``param -> gain`` for the names PyTorch defines,
            else ``None`` (the second-moment rule applies).
        kinks: points where ``fn`` is not smooth, for exact quadrature.
        dead_value: the output value of an inactive unit whose derivative
            is zero (0.0 for the ReLU family), or ``None`` when the activation
            cannot die.
        saturation: where the derivative vanishes, or ``None``.
        summary: one line for the docs.
    """

    name: str
    aliases: tuple[str, ...]
    fn: Callable[[np.ndarray, float | None], np.ndarray] = dataclasses.field(
        repr=False
    )
    family: str
    summary: str = dataclasses.field(repr=False)
    param_name: str | None = None
    default_param: float | None = None
    pytorch_gain: Callable[[float | None], float] | None = dataclasses.field(
        default=None, repr=False
    )
    kinks: tuple[float, ...] = dataclasses.field(default=(), repr=False)
    dead_value: float | None = None
    saturation: SaturationRule | None = dataclasses.field(
        default=None, repr=False
    )

    def __call__(self, z, param: float | None = None) -> np.ndarray:
        return self.fn(
            np.asarray(z, dtype=np.float64), self.param_or_default(param)
        )

    def param_or_default(self, param: float | None) -> float | None:
        if self.param_name is None:
            if param is not None:
                raise ValueError(
                    f"Activation `{self.name}` takes no parameter. "
                    f"Received: param={param!r}"
                )
            return None
        return self.default_param if param is None else float(param)

    def gain(self, param: float | None = None) -> float:
        """The gain for this activation (see the module docstring)."""
        param = self.param_or_default(param)
        if self.pytorch_gain is not None:
            return float(self.pytorch_gain(param))
        return 1.0 / math.sqrt(second_moment(self, param))

    @property
    def gain_rule(self) -> str:
        """``"pytorch"`` or ``"second_moment"``: where `gain` comes from."""
        return "second_moment" if self.pytorch_gain is None else "pytorch"

    def can_die(self, param: float | None = None) -> bool:
        """Whether a unit can get stuck at `dead_value` with zero gradient."""
        if self.dead_value is None:
            return False
        if self.name == "leaky_relu":
            return self.param_or_default(param) == 0.0
        return True


def _leaky_fn(z, a):
    return np.where(z > 0, z, a * z)


def _elu_fn(z, alpha):
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))


_SIGMOID_SAT = SaturationRule(
    derivative=lambda y, p, xp: y * (1.0 - y),
    peak=lambda p: 0.25,
    description="derivative y(1-y) (outputs pinned near 0 or 1)",
)
_TANH_SAT = SaturationRule(
    derivative=lambda y, p, xp: 1.0 - y * y,
    peak=lambda p: 1.0,
    description="derivative 1-y^2 (outputs pinned near -1 or 1)",
)
_ELU_SAT = SaturationRule(
    # For x <= 0, y = alpha (e^x - 1) so f'(x) = alpha e^x = y + alpha.
    derivative=lambda y, p, xp: xp.where(y > 0, 1.0, y + p),
    peak=lambda p: max(1.0, p),
    description="derivative y+alpha on the negative side (outputs pinned "
    "near -alpha)",
)
_SELU_SAT = SaturationRule(
    derivative=lambda y, p, xp: xp.where(
        y > 0, _SELU_SCALE, y + _SELU_SCALE * _SELU_ALPHA
    ),
    peak=lambda p: _SELU_SCALE * _SELU_ALPHA,
    description="derivative y+scale*alpha on the negative side (outputs "
    "pinned near -1.758)",
)
_HARD_SIGMOID_SAT = SaturationRule(
    derivative=lambda y, p, xp: xp.where((y > 0.0) & (y < 1.0), 1.0 / 6.0, 0.0),
    peak=lambda p: 1.0 / 6.0,
    description="derivative 0 where the output is clipped at 0 or 1",
)
_RELU6_SAT = SaturationRule(
    derivative=lambda y, p, xp: xp.where(y >= 6.0, 0.0, 1.0),
    peak=lambda p: 1.0,
    description="derivative 0 where the output is clipped at 6 (zeros count "
    "as dead, not saturated)",
)
_SOFTPLUS_SAT = SaturationRule(
    # softplus'(x) = sigmoid(x) = 1 - exp(-softplus(x)).
    derivative=lambda y, p, xp: 1.0 - xp.exp(-y),
    peak=lambda p: 1.0,
    description="derivative 1-exp(-y) (outputs pinned near 0)",
)
_SOFTSIGN_SAT = SaturationRule(
    # softsign'(x) = 1/(1+|x|)^2 = (1-|y|)^2.
    derivative=lambda y, p, xp: (1.0 - xp.abs(y)) ** 2,
    peak=lambda p: 1.0,
    description="derivative (1-|y|)^2 (outputs pinned near -1 or 1)",
)

_TABLE: tuple[ActivationInfo, ...] = (
    ActivationInfo(
        name="linear",
        aliases=(
            "identity",
            "none",
            "conv1d",
            "conv2d",
            "conv3d",
            "conv_transpose1d",
            "conv_transpose2d",
            "conv_transpose3d",
        ),
        fn=lambda z, p: z,
        family="glorot",
        pytorch_gain=lambda p: 1.0,
        summary="No non-linearity.",
    ),
    ActivationInfo(
        name="sigmoid",
        aliases=("logistic",),
        fn=lambda z, p: _sigmoid(z),
        family="kumar",
        pytorch_gain=lambda p: 1.0,
        saturation=_SIGMOID_SAT,
        summary="Logistic function 1/(1+e^-x).",
    ),
    ActivationInfo(
        name="tanh",
        aliases=(),
        fn=lambda z, p: np.tanh(z),
        family="glorot",
        pytorch_gain=lambda p: 5.0 / 3.0,
        saturation=_TANH_SAT,
        summary="Hyperbolic tangent.",
    ),
    ActivationInfo(
        name="relu",
        aliases=(),
        fn=lambda z, p: np.maximum(z, 0.0),
        family="he",
        pytorch_gain=lambda p: math.sqrt(2.0),
        kinks=(0.0,),
        dead_value=0.0,
        summary="max(x, 0).",
    ),
    ActivationInfo(
        name="leaky_relu",
        aliases=("leakyrelu", "lrelu"),
        fn=_leaky_fn,
        family="he",
        param_name="negative_slope",
        # PyTorch's default; Keras layers carry their own slope (0.3 for
        # keras.layers.LeakyReLU, 0.2 for keras.activations.leaky_relu), which
        # `resolve` reads from the object.
        default_param=0.01,
        pytorch_gain=lambda a: math.sqrt(2.0 / (1.0 + a * a)),
        kinks=(0.0,),
        dead_value=0.0,
        summary="x for x > 0, a*x otherwise.",
    ),
    ActivationInfo(
        name="prelu",
        aliases=(),
        fn=_leaky_fn,
        family="he",
        param_name="negative_slope",
        # PyTorch's initial slope; a built Keras PReLU layer reports its own.
        default_param=0.25,
        kinks=(0.0,),
        summary="Leaky ReLU with a learned slope.",
    ),
    ActivationInfo(
        name="elu",
        aliases=(),
        fn=_elu_fn,
        family="he",
        param_name="alpha",
        default_param=1.0,
        kinks=(0.0,),
        saturation=_ELU_SAT,
        summary="x for x > 0, alpha*(e^x - 1) otherwise.",
    ),
    ActivationInfo(
        name="selu",
        aliases=(),
        fn=lambda z, p: _SELU_SCALE * _elu_fn(z, _SELU_ALPHA),
        family="lecun",
        pytorch_gain=lambda p: 0.75,
        kinks=(0.0,),
        saturation=_SELU_SAT,
        summary="Scaled ELU with the self-normalizing constants.",
    ),
    ActivationInfo(
        name="gelu",
        aliases=("gelu_exact",),
        fn=lambda z, p: 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0))),
        family="he",
        summary="x * Phi(x), the exact Gaussian error linear unit.",
    ),
    ActivationInfo(
        name="gelu_tanh",
        aliases=("gelu_approximate", "approximate_gelu", "gelu_new"),
        fn=lambda z, p: (
            0.5
            * z
            * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z**3)))
        ),
        family="he",
        summary="GELU with the tanh approximation.",
    ),
    ActivationInfo(
        name="silu",
        aliases=("swish",),
        fn=lambda z, b: z * _sigmoid(b * z),
        family="he",
        param_name="beta",
        default_param=1.0,
        summary="x * sigmoid(beta * x).",
    ),
    ActivationInfo(
        name="mish",
        aliases=(),
        fn=lambda z, p: z * np.tanh(_softplus(z)),
        family="he",
        summary="x * tanh(softplus(x)).",
    ),
    ActivationInfo(
        name="softplus",
        aliases=(),
        fn=lambda z, p: _softplus(z),
        family="he",
        saturation=_SOFTPLUS_SAT,
        summary="log(1 + e^x).",
    ),
    ActivationInfo(
        name="hard_sigmoid",
        aliases=("hardsigmoid",),
        fn=lambda z, p: _relu6(z + 3.0) / 6.0,
        family="kumar",
        kinks=(-3.0, 3.0),
        saturation=_HARD_SIGMOID_SAT,
        summary="relu6(x + 3) / 6 (the Keras 3 definition).",
    ),
    ActivationInfo(
        name="hard_swish",
        aliases=("hardswish", "hard_silu", "hardsilu"),
        fn=lambda z, p: z * _relu6(z + 3.0) / 6.0,
        family="he",
        kinks=(-3.0, 3.0),
        dead_value=0.0,
        summary="x * relu6(x + 3) / 6.",
    ),
    ActivationInfo(
        name="relu6",
        aliases=(),
        fn=lambda z, p: _relu6(z),
        family="he",
        kinks=(0.0, 6.0),
        dead_value=0.0,
        saturation=_RELU6_SAT,
        summary="min(max(x, 0), 6).",
    ),
    ActivationInfo(
        name="softsign",
        aliases=(),
        fn=lambda z, p: z / (1.0 + np.abs(z)),
        family="kumar",
        kinks=(0.0,),
        saturation=_SOFTSIGN_SAT,
        summary="x / (1 + |x|).",
    ),
)

_BY_NAME: dict[str, ActivationInfo] = {}
for _entry in _TABLE:
    for _key in (_entry.name, *_entry.aliases):
        _BY_NAME[_key] = _entry
del _entry, _key


def names() -> tuple[str, ...]:
    """Canonical names of every activation in the table, in table order."""
    return tuple(entry.name for entry in _TABLE)


def _normalize(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def info(activation: str) -> ActivationInfo:
    """The table entry for an activation name or alias.

    Raises:
        ValueError: for a name the table does not know; the message lists
            the names it does know.
    """
    if not isinstance(activation, str):
        raise TypeError(
            "Expected `activation` to be a string naming an activation. "
            f"Received: activation={activation!r}"
        )
    entry = _BY_NAME.get(_normalize(activation))
    if entry is None:
        raise ValueError(
            f"Unknown activation {activation!r}. Known activations: "
            f"{', '.join(names())} (aliases: "
            f"{', '.join(sorted(k for k in _BY_NAME if k not in names()))}). "
            f"Received: activation={activation!r}"
        )
    return entry


# ---------------------------------------------------------------------------
# Quadrature


_QUAD_HALF_WIDTH = 12.0  # beyond 12 sigma the normal density is < 1e-31
_QUAD_NODES = 96  # per smooth piece; exact to ~1e-12 for these integrands


@functools.cache
def _legendre(n: int):
    return np.polynomial.legendre.leggauss(n)


def _expect(fn: Callable[[np.ndarray], np.ndarray], kinks=()) -> float:
    """E[fn(z)] for z ~ N(0, 1), split at `kinks` so each piece is smooth."""
    cuts = sorted(
        {-_QUAD_HALF_WIDTH, _QUAD_HALF_WIDTH}
        | {float(k) for k in kinks if abs(k) < _QUAD_HALF_WIDTH}
        | {-4.0, -1.0, 0.0, 1.0, 4.0}
    )
    x, w = _legendre(_QUAD_NODES)
    total = 0.0
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        z = 0.5 * (hi - lo) * x + 0.5 * (hi + lo)
        density = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        values = np.asarray(fn(z), dtype=np.float64)
        total += 0.5 * (hi - lo) * float(np.sum(w * values * density))
    return total


def second_moment(activation, param: float | None = None) -> float:
    """E[f(z)^2] for z ~ N(0, 1), by quadrature.

    Args:
        activation: a table name, an `ActivationInfo`, or any callable that
            maps an array to an array (NumPy, or a Keras activation, whose
            tensor result is converted back to NumPy).
        param: the activation's shape parameter, for table entries.
    """
    if isinstance(activation, ActivationInfo):
        entry = activation
    elif isinstance(activation, str):
        entry = info(activation)
    else:
        fn = _numpy_callable(activation)
        return _expect(lambda z: fn(z) ** 2, kinks=(0.0,))
    p = entry.param_or_default(param)
    return _expect(lambda z: entry.fn(z, p) ** 2, kinks=entry.kinks)


def _numpy_callable(fn: Callable) -> Callable[[np.ndarray], np.ndarray]:
    if not callable(fn):
        raise TypeError(
            "Expected `activation` to be a name or a callable. "
            f"Received: activation={fn!r}"
        )

    def call(z):
        out = fn(z)
        if not isinstance(out, np.ndarray):
            import keras

            out = keras.ops.convert_to_numpy(out)
        return np.asarray(out, dtype=np.float64)

    return call


def kumar_variance_factor(activation, param: float | None = None) -> float:
    """``1 / (g'(0)^2 * (1 + g(0)^2))``: Kumar's Var(W) times fan_in.

    Kumar (2017) derives Var(W) = 1 / (N g'(0)^2 (1 + g(0)^2)) for an
    activation ``g`` differentiable at 0: sigmoid gives 12.8 / N and tanh
    1 / N.

    Raises:
        ValueError: when ``g`` is not differentiable at 0 (ReLU and its
            family), where the derivation does not hold and He applies; or
            when ``g'(0) = 0``.
    """
    entry = info(activation) if isinstance(activation, str) else activation
    p = entry.param_or_default(param)
    h = 1e-6
    g0 = float(entry.fn(np.array([0.0]), p)[0])
    right = (float(entry.fn(np.array([h]), p)[0]) - g0) / h
    left = (g0 - float(entry.fn(np.array([-h]), p)[0])) / h
    if abs(right - left) > 1e-4 * max(1.0, abs(right), abs(left)):
        raise ValueError(
            f"Kumar initialization needs an activation differentiable at 0, "
            f"but `{entry.name}` has slope {left:.4g} left of 0 and "
            f"{right:.4g} right of it. Use `kerasinit.initializers.He("
            f"{entry.name!r})` for the ReLU family. "
            f"Received: activation={entry.name!r}"
        )
    slope = 0.5 * (left + right)
    if abs(slope) < 1e-8:
        raise ValueError(
            f"Kumar initialization needs g'(0) != 0; `{entry.name}` has "
            f"g'(0) = 0. Received: activation={entry.name!r}"
        )
    return 1.0 / (slope * slope * (1.0 + g0 * g0))


# ---------------------------------------------------------------------------
# Resolution of names, Keras activation functions and layers


@functools.cache
def _keras_functions() -> dict[Any, str]:
    # Built once: resolve() runs for every layer of every model inspected.
    import keras

    acts = keras.activations
    table = {}
    for attr, name in (
        ("linear", "linear"),
        ("sigmoid", "sigmoid"),
        ("tanh", "tanh"),
        ("relu", "relu"),
        ("leaky_relu", "leaky_relu"),
        ("elu", "elu"),
        ("selu", "selu"),
        ("gelu", "gelu"),
        ("silu", "silu"),
        ("swish", "silu"),
        ("mish", "mish"),
        ("softplus", "softplus"),
        ("hard_sigmoid", "hard_sigmoid"),
        ("hard_silu", "hard_swish"),
        ("hard_swish", "hard_swish"),
        ("relu6", "relu6"),
        ("softsign", "softsign"),
    ):
        fn = getattr(acts, attr, None)
        if fn is not None:
            table[fn] = name
    return table


_KERAS_PARAM_ARG = {"leaky_relu": "negative_slope", "elu": "alpha"}


def _resolve_keras_function(fn) -> tuple[ActivationInfo, float | None] | None:
    name = _keras_functions().get(fn)
    if name is None:
        return None
    entry = info(name)
    param = None
    arg = _KERAS_PARAM_ARG.get(name)
    if arg is not None:
        default = inspect.signature(fn).parameters[arg].default
        param = float(default)
    param = entry.param_or_default(param)
    if name == "gelu":
        approximate = inspect.signature(fn).parameters.get("approximate")
        if approximate is not None and approximate.default is True:
            entry = info("gelu_tanh")
    return entry, param


def _resolve_keras_layer(layer) -> tuple[ActivationInfo, float | None] | None:
    import keras

    kl = keras.layers
    if isinstance(layer, kl.LeakyReLU):
        return info("leaky_relu"), float(layer.negative_slope)
    if isinstance(layer, kl.ReLU):
        slope = float(layer.negative_slope or 0.0)
        if getattr(layer, "threshold", 0.0) not in (0, 0.0, None):
            return None
        if layer.max_value is not None:
            if float(layer.max_value) == 6.0 and slope == 0.0:
                return info("relu6"), None
            return None
        if slope:
            return info("leaky_relu"), slope
        return info("relu"), None
    if isinstance(layer, kl.ELU):
        return info("elu"), float(layer.alpha)
    if isinstance(layer, kl.PReLU):
        if layer.built:
            alpha = keras.ops.convert_to_numpy(layer.alpha)
            return info("prelu"), float(np.mean(alpha))
        return info("prelu"), 0.0
    if isinstance(layer, kl.Activation):
        return resolve(layer.activation)
    return None


def resolve(activation) -> tuple[ActivationInfo, float | None] | None:
    """Find the table entry and parameter for an activation-like object.

    Understands, in this order: ``None`` (linear); a table name or alias; a
    kerasinit activation layer (anything with a ``kerasinit_activation``
    property returning ``(name, param)``); a Keras activation function
    (``keras.activations.relu``...), reading parameter defaults from its
    signature; a Keras activation layer (``ReLU``, ``LeakyReLU``, ``PReLU``,
    ``ELU``, ``Activation``), reading its slope from the layer.

    Returns:
        ``(ActivationInfo, param)``, or ``None`` for an object the table
        does not describe (softmax, a custom function, a non-activation
        layer). An unknown *string* raises instead, since it is a typo.
    """
    if activation is None:
        return info("linear"), None
    if isinstance(activation, str):
        entry = info(activation)
        return entry, entry.param_or_default(None)
    spec = getattr(activation, "kerasinit_activation", None)
    if spec is not None:
        name, param = spec
        entry = info(name)
        return entry, entry.param_or_default(param)
    if callable(activation) and not hasattr(activation, "weights"):
        found = _resolve_keras_function(activation)
        if found is not None:
            return found
        return None
    return _resolve_keras_layer(activation)


def gain(activation, param: float | None = None) -> float:
    """The recommended gain for an activation.

    For the names PyTorch's ``calculate_gain`` defines (linear, the conv
    aliases, sigmoid, tanh, relu, leaky_relu, selu) this is PyTorch's value;
    for every other activation in the table, and for any callable, it is the
    second-moment gain ``1 / sqrt(E[f(z)^2])``, ``z ~ N(0, 1)``, computed by
    quadrature.

    Args:
        activation: a name or alias (``"relu"``, ``"swish"``), a Keras
            activation function or layer, a kerasinit layer, or any callable
            on arrays.
        param: the activation's parameter (leaky slope, ELU alpha, SiLU
            beta). Defaults to the one carried by `activation`, else the
            table's default (leaky_relu: PyTorch's 0.01).

    Returns:
        The gain, a Python float.

    Example:

    >>> round(kerasinit.gain("tanh"), 4)
    1.6667
    >>> round(kerasinit.gain("leaky_relu", 0.2), 4)
    1.3868
    """
    if isinstance(activation, str):
        return info(activation).gain(param)
    found = resolve(activation)
    if found is not None:
        entry, carried = found
        return entry.gain(carried if param is None else param)
    if param is not None:
        raise ValueError(
            "`param` only applies to activations in the table; a custom "
            f"callable carries its own. Received: param={param!r}"
        )
    return 1.0 / math.sqrt(second_moment(activation))
