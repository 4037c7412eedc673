"""Whole-model initialization: `pair` re-initializes, `check` diagnoses.

Both find, for every kernel-bearing layer, the non-linearity its output
goes through (see `kerasinit._graph` for how the layer graph is read), and
compare the kernel's initialization with the one the gains table pairs with
that activation. The exact rules and thresholds are in ``docs/pairing.md``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import keras
import numpy as np

from kerasinit import _graph, gains
from kerasinit._report import Report
from kerasinit.findings import Finding

__all__ = ["PairingReport", "PairingRow", "check", "pair"]


def _require_built(model: Any, argument: str = "model") -> None:
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


def _activation_label(found: Any) -> str:
    entry, param = found
    if entry.param_name is None or param is None:
        return entry.name
    return f"{entry.name}({param:g})"


def _describe_initializer(init: Any) -> str:
    if init is None:
        return "None"
    if isinstance(init, keras.initializers.VarianceScaling):
        # Keras' named schemes are VarianceScaling subclasses; the class
        # name says which one.
        name = type(init).__name__
        if name == "VarianceScaling":
            return (
                f"VarianceScaling(scale={init.scale:g}, mode={init.mode!r}, "
                f"distribution={init.distribution!r})"
            )
        return name
    from kerasinit.initializers import ForActivation, ScaledNormal

    if isinstance(init, ForActivation):
        d = init.delegate
        fans = d.fans if d.fans is not None else None
        std = "" if fans is None else f" std={math.sqrt(d.variance(*fans)):.3g}"
        return f"{type(d).__name__}({init.activation}){std}"
    if isinstance(init, ScaledNormal):
        return f"ScaledNormal(N={init.num_layers}) std={init.scaled_stddev:.3g}"
    text = repr(init)
    if text.startswith("<"):
        return type(init).__name__
    return text


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


def _layer_seed(seed: int | None, index: int) -> int | None:
    # Each kernel needs its own stream: one integer seed reused for
    # same-shaped kernels would make them identical.
    if seed is None:
        return None
    return int(seed) * 1_000_003 + index


def _analyse(model: Any) -> list[dict]:
    """Each kernel with its activation walk and true fans."""
    from kerasinit.initializers import fans_for_layer

    graph = _graph.Graph(model) if _graph.has_graph(model) else None
    entries = []
    for ctx, layer in _graph.kernel_layers(model):
        walk = _graph.find_activation(graph, ctx, layer)
        for position, (attr, init_attr) in enumerate(_graph.kernels(layer)):
            variable = _graph.kernel_variable(layer, attr)
            fans = None
            if variable is not None:
                fans = fans_for_layer(
                    layer, kernel=attr if position or attr != "kernel" else None
                )
            # Only the first kernel feeds the activation; a separable
            # convolution's depthwise kernel feeds its pointwise kernel.
            activation = walk.activation
            where = walk.where
            if position > 0:
                activation = (gains.info("linear"), None)
                where = f"feeds {layer.name}.{_graph.kernels(layer)[0][0]}"
            entries.append(
                {
                    "ctx": ctx,
                    "layer": layer,
                    "path": _graph.path(ctx, layer),
                    "attr": attr,
                    "init_attr": init_attr,
                    "variable": variable,
                    "fans": fans,
                    "activation": activation,
                    "where": where,
                    "walk": walk,
                    "residual": walk.residual and position == 0,
                    "graph": graph,
                }
            )
    return entries


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
    layer at a time. For every kernel-bearing layer (``Dense``,
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

    A kernel whose output reaches another kernel layer or the model output
    without a non-linearity is paired with ``"linear"``. A kernel whose
    activation cannot be determined (subclassed models without a fused
    activation, a layer kerasinit cannot see through, branches that
    disagree) is left as it is and reported with the reason; `pair` never
    guesses. Gated layers (``kerasinit.layers.SwiGLU``...) own their kernels
    and are not touched.

    With ``residual_scaling=True``, kernels whose output enters an ``Add``
    before any non-linearity (the output projections of residual branches)
    are drawn from `kerasinit.initializers.ScaledNormal` with the paired
    standard deviation and ``num_layers=N``: their variance is the paired
    one divided by ``2N`` (GPT-2). ``N`` is `num_residual_blocks`, or when
    `None`, half the number of such kernels, rounded up (two branches per
    transformer block).

    Each re-initialized layer's initializer attribute is set to the new
    initializer, so the model's config records what was drawn.

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

    _require_built(model)
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

    entries = _analyse(model)
    blocks = num_residual_blocks
    if residual_scaling and blocks is None:
        count = sum(1 for e in entries if e["residual"] and e["activation"])
        blocks = max(1, math.ceil(count / 2))

    rows = []
    biased: set[int] = set()
    for index, e in enumerate(entries):
        layer, variable = e["layer"], e["variable"]
        before = _describe_initializer(getattr(layer, e["init_attr"], None))
        found = e["activation"]
        if variable is None or found is None:
            reason = e["where"]
            if variable is None:
                reason = (
                    "the kernel is not a single variable (LoRA or quantized)"
                )
            rows.append(
                PairingRow(
                    e["path"],
                    e["attr"],
                    None if found is None else _activation_label(found),
                    reason,
                    e["fans"],
                    before,
                    "unchanged",
                    e["residual"],
                )
            )
            continue
        entry, param = found
        init = ForActivation(
            entry.name,
            param=param if entry.param_name else None,
            distribution=distribution,
            fans=e["fans"],
            seed=_layer_seed(seed, index),
        )
        if residual_scaling and e["residual"]:
            stddev = math.sqrt(init.delegate.variance(*e["fans"]))
            init = ScaledNormal(
                stddev=stddev,
                num_layers=int(blocks),
                seed=_layer_seed(seed, index),
            )
        variable.assign(init(tuple(variable.shape), dtype=variable.dtype))
        setattr(layer, e["init_attr"], init)
        if bias is not None and id(layer) not in biased:
            biased.add(id(layer))
            b = getattr(layer, "bias", None)
            if isinstance(b, keras.Variable):
                value = 0.0 if bias == "zeros" else bias
                b.assign(keras.ops.full(b.shape, value, dtype=b.dtype))
        rows.append(
            PairingRow(
                e["path"],
                e["attr"],
                _activation_label(found),
                e["where"],
                e["fans"],
                before,
                _describe_initializer(init),
                e["residual"],
            )
        )
    return PairingReport(rows)


# ---------------------------------------------------------------------------
# check


def _saturating(entry: Any) -> bool:
    """Sigmoid, tanh, hard sigmoid, softsign: bounded on both sides."""
    return entry.saturation is not None and entry.family in ("glorot", "kumar")


def _implied_variance(
    init: Any, shape: tuple[int, ...]
) -> tuple[float, str] | None:
    """The variance a recognised initializer draws for `shape`."""
    from kerasinit.initializers import ForActivation, ScaledNormal, compute_fans
    from kerasinit.initializers._base import (
        TRUNCATED_NORMAL_STDDEV,
        FanInitializer,
    )

    if isinstance(init, ForActivation):
        init = init.delegate
    if isinstance(init, FanInitializer):
        fan_in, fan_out = init.fans_for(shape)
        return init.variance(max(1, fan_in), max(1, fan_out)), "fan"
    if isinstance(init, ScaledNormal):
        return init.scaled_stddev**2, "scaled"
    ki = keras.initializers
    fan_in, fan_out = compute_fans(shape)
    if isinstance(init, ki.VarianceScaling):
        fan = {
            "fan_in": fan_in,
            "fan_out": fan_out,
            "fan_avg": (fan_in + fan_out) / 2.0,
        }[init.mode]
        return init.scale / max(1.0, fan), "variance_scaling"
    if isinstance(init, ki.RandomNormal):
        return init.stddev**2, "normal"
    if isinstance(init, ki.TruncatedNormal):
        # Keras truncates at two standard deviations without rescaling.
        return init.stddev**2 * TRUNCATED_NORMAL_STDDEV**2, "normal"
    if isinstance(init, ki.RandomUniform):
        return (init.maxval - init.minval) ** 2 / 12.0, "uniform"
    return None


def _is_lecun(init: Any) -> bool | None:
    """True/False for a recognised initializer, `None` when unknown."""
    from kerasinit.initializers import ForActivation, LeCun
    from kerasinit.initializers._base import FanInitializer

    if isinstance(init, ForActivation):
        init = init.delegate
    if isinstance(init, LeCun):
        return True
    if isinstance(init, FanInitializer):
        return False
    if isinstance(init, keras.initializers.VarianceScaling):
        return init.mode == "fan_in" and abs(init.scale - 1.0) < 1e-9
    if isinstance(
        init,
        (
            keras.initializers.RandomNormal,
            keras.initializers.RandomUniform,
            keras.initializers.TruncatedNormal,
            keras.initializers.Orthogonal,
        ),
    ):
        return False
    return None


def check(
    model: keras.Model,
    *,
    probe: bool = True,
    probe_batch: int = 256,
    seed: int = 0,
    mismatch_factor: float = 1.5,
    deep_stack: int = 4,
    saturating_depth: int = 5,
    signal_factor: float = 10.0,
) -> list[Finding]:
    """Find initialization problems in a model; change nothing.

    A model that will not train often says so before the first step: a
    kernel drawn for the wrong activation, a constant kernel, a deep stack
    of saturating layers, a signal that dies or blows up on the way
    through. `check` looks for each and returns `kerasinit.Finding` objects
    (the type `kerasinit.callbacks.HealthMonitor` reports), each with the
    fix. It reads weights and runs the model in inference mode on random
    inputs; no weight or state of the model changes.

    The rules (see ``docs/pairing.md`` for the details):

    * ``init_mismatch``: the kernel's variance (implied by its initializer
      when kerasinit recognises it, else measured) differs from the paired
      one (`kerasinit.initializers.ForActivation` with the true fans) by
      more than `mismatch_factor` either way. For tanh, sigmoid and the
      other saturating activations plain Glorot is accepted too. Severity
      ``"warning"`` in a model with at least `deep_stack` kernel layers
      (where the factor compounds), else ``"info"``. SELU also needs
      LeCun's ``1/fan_in`` scheme itself: any other recognised initializer
      is a mismatch.
    * ``symmetric_weights`` (error): a kernel whose entries are all equal.
    * ``deep_saturating_stack``: `saturating_depth` or more consecutive
      kernel layers with sigmoid/tanh/hard sigmoid/softsign and no
      normalization layer between them.
    * ``exploding_signal`` / ``vanishing_signal`` (with ``probe=True``):
      on `probe_batch` random inputs (N(0, 1) floats; integers in range for
      embeddings), the standard deviation of the last hidden activation
      over that of the first is above `signal_factor` or below its inverse
      (or not finite).

    Args:
        model: a built `keras.Model`.
        probe: run the forward probe. Defaults to `True`.
        probe_batch: examples in the probe batch. Defaults to `256`.
        seed: seed of the probe inputs. Defaults to `0`.
        mismatch_factor: variance ratio beyond which an initializer does
            not match. Defaults to `1.5`.
        deep_stack: kernel layers from which a mismatch is a warning.
            Defaults to `4`.
        saturating_depth: consecutive saturating layers that make a deep
            stack. Defaults to `5`.
        signal_factor: std ratio, last over first hidden layer, beyond
            which the signal explodes (or, inverted, vanishes). Defaults to
            `10.0`.

    Returns:
        A list of `kerasinit.Finding`, ``step=None``; empty for a healthy
        model.

    Example:

    >>> for finding in kerasinit.check(model):
    ...     print(finding)
    """
    _require_built(model)
    for name, value, low in (
        ("mismatch_factor", mismatch_factor, 1.0),
        ("signal_factor", signal_factor, 1.0),
    ):
        if not isinstance(value, numbers.Real) or not value > low:
            raise ValueError(
                f"Expected `{name}` to be a number > {low:g}. "
                f"Received: {name}={value!r}"
            )
    for name, value in (
        ("probe_batch", probe_batch),
        ("deep_stack", deep_stack),
        ("saturating_depth", saturating_depth),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Integral)
            or value < 1
        ):
            raise ValueError(
                f"Expected `{name}` to be an integer >= 1. "
                f"Received: {name}={value!r}"
            )
    entries = _analyse(model)
    findings: list[Finding] = []
    findings.extend(_symmetric(entries))
    findings.extend(_mismatches(entries, mismatch_factor, deep_stack))
    findings.extend(_saturating_stacks(entries, saturating_depth))
    if probe:
        findings.extend(
            _signal(model, entries, probe_batch, seed, signal_factor)
        )
    return findings


def _symmetric(entries: list[dict]) -> list[Finding]:
    found = []
    for e in entries:
        if e["variable"] is None:
            continue
        values = np.asarray(e["variable"].numpy())
        if values.size < 2 or np.ptp(values) != 0:
            continue
        constant = float(values.flat[0])
        found.append(
            Finding(
                kind="symmetric_weights",
                layer=e["path"],
                step=None,
                value=constant,
                threshold=0.0,
                message=(
                    f"Layer {e['path']!r}: every entry of `{e['attr']}` "
                    f"equals {constant:g}, so all its units compute the same "
                    "function and receive the same gradient; they can never "
                    "become different."
                ),
                advice=(
                    "Draw the kernel at random: remove the zeros/ones/"
                    "constant initializer, or run `kerasinit.pair(model)`."
                ),
                severity="error",
            )
        )
    return found


def _mismatches(
    entries: list[dict], factor: float, deep_stack: int
) -> list[Finding]:
    from kerasinit.initializers import ForActivation

    depth = sum(1 for e in entries if e["variable"] is not None)
    severity = "warning" if depth >= deep_stack else "info"
    found = []
    for e in entries:
        if e["variable"] is None or e["activation"] is None:
            continue
        if (
            e["walk"].scale_free
            and e["attr"] == _graph.kernels(e["layer"])[0][0]
        ):
            # Normalization before the activation divides out the kernel's
            # scale, so its variance cannot be wrong.
            continue
        entry, param = e["activation"]
        variable, layer = e["variable"], e["layer"]
        shape = tuple(int(d) for d in variable.shape)
        init = getattr(layer, e["init_attr"], None)
        implied = _implied_variance(init, shape)
        if implied is not None:
            current, how = implied[0], "drawn by"
        else:
            values = np.asarray(variable.numpy(), dtype=np.float64)
            current, how = float(np.mean(values * values)), "measured for"
        if current <= 0:
            continue  # A zero kernel is the symmetry finding's business.
        if e["residual"] and type(init).__name__ == "ScaledNormal":
            continue  # Scaled down on purpose (GPT-2 residual scaling).
        paired = ForActivation(
            entry.name, param=param if entry.param_name else None
        ).delegate
        fan_in, fan_out = e["fans"]
        targets = [paired.variance(fan_in, fan_out)]
        if entry.family in ("glorot", "kumar") and entry.name != "linear":
            targets.append(2.0 / (fan_in + fan_out))
        ratio = min(
            (current / t for t in targets), key=lambda r: abs(math.log(r))
        )
        label = _activation_label(e["activation"])
        init_name = _describe_initializer(init)
        if entry.name == "selu" and _is_lecun(init) is False:
            found.append(
                Finding(
                    kind="init_mismatch",
                    layer=e["path"],
                    step=None,
                    value=current / targets[0],
                    threshold=1.0,
                    message=(
                        f"Layer {e['path']!r} feeds SELU but its kernel "
                        f"comes from {init_name}: SELU self-normalizes only "
                        "with LeCun's Var(W) = 1/fan_in."
                    ),
                    advice=(
                        "Use kernel_initializer='lecun_normal' (or "
                        "`kerasinit.initializers.LeCun()`), or run "
                        "`kerasinit.pair(model)`."
                    ),
                    severity=severity,
                )
            )
            continue
        if 1.0 / factor <= ratio <= factor:
            continue
        direction = "too small" if ratio < 1 else "too large"
        found.append(
            Finding(
                kind="init_mismatch",
                layer=e["path"],
                step=None,
                value=ratio,
                threshold=factor if ratio > 1 else 1.0 / factor,
                message=(
                    f"Layer {e['path']!r} feeds {label} ({e['where']}); the "
                    f"kernel variance {how} {init_name} is {ratio:.3g}x the "
                    f"{type(paired).__name__}({entry.name}) it pairs with "
                    f"({direction}; allowed factor "
                    f"{factor:g})."
                ),
                advice=(
                    f"Use kernel_initializer=kerasinit.initializers."
                    f"ForActivation({entry.name!r}"
                    + (f", {param!r}" if entry.param_name else "")
                    + "), or run `kerasinit.pair(model)`."
                ),
                severity=severity,
            )
        )
    return found


def _saturating_stacks(entries: list[dict], depth: int) -> list[Finding]:
    by_layer: dict[int, dict] = {}
    for e in entries:
        by_layer.setdefault(id(e["layer"]), e)
    run: dict[int, int] = {}
    continues: set[int] = set()
    for e in by_layer.values():
        if e["activation"] is None or not _saturating(e["activation"][0]):
            continue
        key = id(e["layer"])
        run.setdefault(key, 1)
        graph = e["graph"]
        if graph is None or not _graph.in_graph(e["ctx"]):
            continue
        for _, nxt, normalized in _graph.next_kernels(
            graph, e["ctx"], e["layer"]
        ):
            following = by_layer.get(id(nxt))
            if (
                normalized
                or following is None
                or following["activation"] is None
                or not _saturating(following["activation"][0])
                or following["walk"].normalized
            ):
                continue
            run[id(nxt)] = max(run.get(id(nxt), 1), run[key] + 1)
            continues.add(key)
    found = []
    for e in by_layer.values():
        key = id(e["layer"])
        length = run.get(key, 0)
        if length < depth or key in continues:
            continue
        found.append(
            Finding(
                kind="deep_saturating_stack",
                layer=e["path"],
                step=None,
                value=float(length),
                threshold=float(depth),
                message=(
                    f"{length} saturating layers in a row end at "
                    f"{e['path']!r} with no normalization between them "
                    f"(limit {depth}): gradients shrink by the activation's "
                    "derivative at every one of them."
                ),
                advice=(
                    "Put BatchNormalization or LayerNormalization between "
                    "them, or switch to ReLU/GELU with He init."
                ),
            )
        )
    return found


def _probe_inputs(model: Any, batch: int, seed: int) -> list[np.ndarray]:
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


def _signal(
    model: Any, entries: list[dict], batch: int, seed: int, factor: float
) -> list[Finding]:
    if not _graph.has_graph(model):
        return []
    points = []
    seen: set[int] = set()
    for e in entries:
        walk = e["walk"]
        if id(e["layer"]) in seen or not _graph.in_graph(e["ctx"]):
            continue
        seen.add(id(e["layer"]))
        if walk.activation is None or walk.where.startswith("model output"):
            continue
        ctx, layer = (e["ctx"], e["layer"]) if walk.at is None else walk.at
        try:
            tensor = layer.output
        except (AttributeError, ValueError):
            continue
        points.append((e["path"], ctx, tensor))
    if len(points) < 2:
        return []
    x = _probe_inputs(model, batch, seed)
    x = x[0] if len(x) == 1 else x
    # One sub-model per model of the nesting chain, computing all of that
    # model's probe points in a single forward pass.
    groups: dict[tuple, list[int]] = {}
    for i, (_, ctx, _) in enumerate(points):
        groups.setdefault(tuple(id(m) for m in ctx), []).append(i)
    stds = [math.nan] * len(points)
    for members in groups.values():
        ctx = points[members[0]][1]
        tensors = [points[i][2] for i in members]
        values = _graph.tensor_function(ctx, tensors)(x)
        for i, value in zip(members, values):
            value = keras.ops.convert_to_numpy(value).astype(np.float64)
            finite = np.all(np.isfinite(value))
            stds[i] = float(np.std(value)) if finite else math.inf
    first, last = stds[0], stds[-1]
    if first == 0 or not math.isfinite(first):
        ratio = math.inf if not math.isfinite(first) else math.nan
    else:
        ratio = last / first
    path = points[-1][0]
    if not math.isfinite(ratio) or ratio > factor:
        return [
            Finding(
                kind="exploding_signal",
                layer=path,
                step=None,
                value=ratio,
                threshold=factor,
                message=(
                    f"On random inputs the activation std grows from "
                    f"{first:.3g} at {points[0][0]!r} to {last:.3g} at "
                    f"{path!r} ({ratio:.3g}x; limit {factor:g}x)."
                ),
                advice=(
                    "Initialize each kernel for its activation with "
                    "`kerasinit.pair(model)`, or `kerasinit.lsuv(model, x)`; "
                    "normalization layers also bound the signal."
                ),
                severity="error",
            )
        ]
    if ratio < 1.0 / factor:
        return [
            Finding(
                kind="vanishing_signal",
                layer=path,
                step=None,
                value=ratio,
                threshold=1.0 / factor,
                message=(
                    f"On random inputs the activation std shrinks from "
                    f"{first:.3g} at {points[0][0]!r} to {last:.3g} at "
                    f"{path!r} ({ratio:.3g}x; limit {1.0 / factor:g}x)."
                ),
                advice=(
                    "Initialize each kernel for its activation with "
                    "`kerasinit.pair(model)`, or `kerasinit.lsuv(model, x)`."
                ),
                severity="error",
            )
        ]
    return []
