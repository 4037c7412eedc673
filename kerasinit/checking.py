"""`check`: find a model's initialization problems without changing it.

Reads the same analysis as `kerasinit.pair` (`kerasinit._kernels`): each
kernel with the activation its output goes through and the variance that
activation pairs with. `kernel_scales` exposes that comparison as values,
one `KernelScale` per kernel, for other parts of kerasinit (the monitor's
diagnosis reads a kernel's scale against the gains table through it). The
forward probe the signal rules read (`signal_points`, `measure`) is
`kerasinit._signal_probe`; its names stay importable from here.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import keras
import numpy as np

from kerasinit import _graph, _initializer_facts, _kernels
from kerasinit._signal_probe import (
    SignalPoint,
    measure,
    probe_inputs,
    signal_points,
)
from kerasinit.findings import Finding

__all__ = [
    "KernelScale",
    "SignalPoint",
    "check",
    "kernel_scales",
    "measure",
    "probe_inputs",
    "signal_points",
]


@dataclasses.dataclass(frozen=True)
class KernelScale:
    """One kernel's scale against the one its activation pairs with.

    Attributes:
        layer: the layer's path in the model (``"block/dense"``).
        kernel: the kernel's name within the layer (``"kernel"``,
            ``"gate_kernel"``, ``"cell.recurrent_kernel"``).
        role: what the kernel is (``"kernel"``, ``"depthwise"``,
            ``"gate"``, ``"value"``, ``"attention"``, ``"embedding"``,
            ``"rnn_input"``, ``"rnn_recurrent"``).
        activation: the activation its output goes through, as printed
            (``"relu"``, ``"leaky_relu(0.3)"``, ``"my_act (custom, moment
            gain 1.2)"``).
        fans: the true ``(fan_in, fan_out)``.
        std: the kernel's measured standard deviation (root mean square,
            about zero).
        paired_std: the standard deviation `kerasinit.pair` draws it with.
        ratio: ``std / paired_std``.
        gain: the activation's gain the pairing uses (the table's, or a
            custom callable's second-moment gain; 1 for embeddings and
            recurrent kernels).
        head: whether the output reaches only the model's outputs.
    """

    layer: str
    kernel: str
    role: str
    activation: str
    fans: tuple[int, int]
    std: float
    paired_std: float
    ratio: float
    gain: float = 1.0
    head: bool = False


def kernel_scales(model: keras.Model) -> list[KernelScale]:
    """Each kernel's measured scale against its paired scale.

    Kernels whose activation cannot be determined, or that are not a single
    variable (LoRA, quantized), are left out: they have no paired scale.

    Args:
        model: a built `keras.Model`.

    Returns:
        One `KernelScale` per kernel, in graph order.

    Example:

    >>> for scale in kerasinit.checking.kernel_scales(model):
    ...     print(scale.layer, scale.kernel, round(scale.ratio, 2))
    """
    _kernels.require_built(model)
    scales = []
    for kernel in _kernels.analyse(model):
        if kernel.variable is None or kernel.activation is None:
            continue
        values = np.asarray(kernel.variable.numpy(), dtype=np.float64)
        std = float(np.sqrt(np.mean(values * values)))
        paired = math.sqrt(kernel.paired_variance())
        scales.append(
            KernelScale(
                layer=kernel.path,
                kernel=kernel.attr,
                role=kernel.role,
                activation=kernel.label,
                fans=kernel.fans,
                std=std,
                paired_std=paired,
                ratio=std / paired,
                gain=(
                    1.0
                    if kernel.role.startswith(("rnn", "embedding"))
                    else kernel.activation.gain
                ),
                head=kernel.head,
            )
        )
    return scales


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

    Every kernel `kerasinit.pair` knows is inspected: kernel layers, the
    gated layers' gate and value kernels, attention projections,
    embeddings and recurrent kernels. The rules (see ``docs/pairing.md``
    for the details):

    * ``init_mismatch``: the kernel's variance (implied by its initializer
      when kerasinit recognises it, else measured) differs from the paired
      one (what `kerasinit.pair` draws, see `kernel_scales`) by more than
      `mismatch_factor` either way. For tanh, sigmoid and the other
      saturating activations plain Glorot is accepted too, for recurrent
      kernels Keras' fused-gate defaults. Output heads (whose output
      reaches only the model's outputs: softmax, sigmoid or linear),
      residual branches, attention's query/key/value projections and
      embeddings are only held to the upper bound: each may start smaller
      than paired (an embedding up to unit variance). Severity
      ``"warning"`` in a model with at least `deep_stack` weighted layers
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
      (or not finite). Hidden activations are the outputs of non-linear
      activations, gated and recurrent layers that feed another weighted
      layer: an output head (softmax probabilities, a sigmoid, logits) has
      the scale of its task, not of the hidden layers, and is left out.

    Args:
        model: a built `keras.Model`.
        probe: run the forward probe. Defaults to `True`.
        probe_batch: examples in the probe batch. Defaults to `256`.
        seed: seed of the probe inputs. Defaults to `0`.
        mismatch_factor: variance ratio beyond which an initializer does
            not match. Defaults to `1.5`.
        deep_stack: weighted layers from which a mismatch is a warning.
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
    _kernels.require_built(model)
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
    kernels = _kernels.analyse(model)
    findings: list[Finding] = []
    findings.extend(_symmetric(kernels))
    findings.extend(_mismatches(kernels, mismatch_factor, deep_stack))
    findings.extend(_saturating_stacks(kernels, saturating_depth))
    findings.extend(_closed_forget_gates(kernels))
    if probe:
        findings.extend(
            _signal(model, kernels, probe_batch, seed, signal_factor)
        )
    return findings


def _pairable(kernel: _kernels.Kernel) -> bool:
    return kernel.variable is not None and kernel.activation is not None


def _symmetric(kernels: list[_kernels.Kernel]) -> list[Finding]:
    found = []
    for kernel in kernels:
        if kernel.variable is None:
            continue
        values = np.asarray(kernel.variable.numpy())
        if values.size < 2 or np.ptp(values) != 0:
            continue
        constant = float(values.flat[0])
        advice = (
            "Draw the kernel at random: remove the zeros/ones/constant "
            "initializer"
        )
        if _pairable(kernel):
            advice += ", or run `kerasinit.pair(model)`."
        else:
            # `pair` leaves a kernel it cannot pair as it is; saying
            # otherwise would send the user round in a loop.
            advice += f" (`kerasinit.pair` cannot pair it: {kernel.where})."
        found.append(
            Finding(
                kind="symmetric_weights",
                layer=kernel.path,
                step=None,
                value=constant,
                threshold=0.0,
                message=(
                    f"Layer {kernel.path!r}: every entry of `{kernel.attr}` "
                    f"equals {constant:g}, so all its units compute the same "
                    "function and receive the same gradient; they can never "
                    "become different."
                ),
                advice=advice,
                severity="error",
            )
        )
    return found


def _closed_forget_gates(kernels: list[_kernels.Kernel]) -> list[Finding]:
    """LSTMs whose forget-gate bias starts at 0 instead of 1.

    Only a forget block that is exactly zero is reported: that is the
    signature of ``unit_forget_bias=False`` with zero biases, never of a
    trained bias, so `check` stays silent on trained models.
    """
    found = []
    for kernel in kernels:
        if kernel.role != "rnn_input" or not isinstance(
            kernel.owner, keras.layers.LSTMCell
        ):
            continue
        for attr in kernel.biases:
            values = np.asarray(
                keras.ops.convert_to_numpy(getattr(kernel.owner, attr))
            )
            units = values.shape[-1] // kernel.gates
            forget = values[..., units : 2 * units]
            if forget.size == 0 or np.any(forget != 0.0):
                continue
            found.append(
                Finding(
                    kind="init_mismatch",
                    layer=kernel.path,
                    step=None,
                    value=0.0,
                    threshold=1.0,
                    message=(
                        f"Layer {kernel.path!r}: the LSTM forget-gate bias "
                        "is 0, so the gate starts half closed and the cell "
                        "forgets most of its state at every step before it "
                        "has learned what to keep (Jozefowicz et al., 2015)."
                    ),
                    advice=(
                        "Build the LSTM with `unit_forget_bias=True` "
                        "(Keras's default), or run `kerasinit.pair(model)`, "
                        "which sets the forget-gate bias to 1."
                    ),
                    severity="warning",
                )
            )
    return found


def _advice(kernel: _kernels.Kernel) -> str:
    act = kernel.activation
    if kernel.role == "embedding":
        suggestion = (
            "embeddings_initializer=keras.initializers.RandomNormal("
            f"stddev={_kernels.EMBEDDING_STDDEV:g})"
        )
    elif kernel.role == "rnn_input":
        suggestion = "kernel_initializer='glorot_uniform'"
    elif kernel.role == "rnn_recurrent":
        suggestion = "recurrent_initializer='orthogonal'"
    elif act.custom:
        stddev = math.sqrt(kernel.paired_variance())
        suggestion = (
            f"kernel_initializer=keras.initializers.RandomNormal("
            f"stddev={stddev:.3g}) (the moment gain {act.gain:.4g} of "
            f"{act.name} over sqrt(fan_in))"
        )
    else:
        entry = act.entry
        suggestion = (
            "kernel_initializer=kerasinit.initializers.ForActivation("
            f"{entry.name!r}"
            + (f", {act.param!r}" if entry.param_name else "")
            + ")"
        )
    return f"Use {suggestion}, or run `kerasinit.pair(model)`."


def _mismatches(
    kernels: list[_kernels.Kernel], factor: float, deep_stack: int
) -> list[Finding]:
    depth = len({id(k.layer) for k in kernels if k.variable is not None})
    severity = "warning" if depth >= deep_stack else "info"
    found = []
    for kernel in kernels:
        if not _pairable(kernel):
            continue
        if kernel.role == "kernel" and kernel.scale_free:
            # Normalization before the activation divides out the kernel's
            # scale, so its variance cannot be wrong.
            continue
        init = kernel.initializer
        current, how = _kernels.current_variance(kernel)
        if current <= 0:
            continue  # A zero kernel is the symmetry finding's business.
        targets = kernel.accepted_variances()
        if kernel.bound == "upper":
            ratio = current / max(targets)
            if ratio <= factor:
                continue
        else:
            ratio = min(
                (current / t for t in targets),
                key=lambda r: abs(math.log(r)),
            )
        act = kernel.activation
        init_name = _initializer_facts.describe_initializer(init)
        if how == "measured for" and init is None:
            init_name = "its initial values"
        entry = act.entry
        if (
            kernel.role == "kernel"
            and entry is not None
            and entry.name == "selu"
            and _initializer_facts.is_lecun(init) is False
        ):
            found.append(
                Finding(
                    kind="init_mismatch",
                    layer=kernel.path,
                    step=None,
                    value=current / targets[0],
                    threshold=1.0,
                    message=(
                        f"Layer {kernel.path!r} feeds SELU but its kernel "
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
        name = "" if kernel.attr == "kernel" else f" `{kernel.attr}`"
        head = " (an output head: only a larger scale is flagged)"
        found.append(
            Finding(
                kind="init_mismatch",
                layer=kernel.path,
                step=None,
                value=ratio,
                threshold=factor if ratio > 1 else 1.0 / factor,
                message=(
                    f"Layer {kernel.path!r}{name} feeds {kernel.label} "
                    f"({kernel.where}){head if kernel.head else ''}; the "
                    f"kernel variance {how} {init_name} is {ratio:.3g}x "
                    f"the paired {_kernels.describe_variance(kernel)} "
                    f"({direction}; allowed factor {factor:g})."
                ),
                advice=_advice(kernel),
                severity=severity,
            )
        )
    return found


def _saturating_stacks(
    kernels: list[_kernels.Kernel], depth: int
) -> list[Finding]:
    by_layer: dict[int, _kernels.Kernel] = {}
    for kernel in kernels:
        # A sigmoid or softmax head does not shrink the gradient: with its
        # matching loss, the gradient at its logits is prediction - target.
        if kernel.role == "kernel" and not kernel.head:
            by_layer.setdefault(id(kernel.layer), kernel)
    run: dict[int, int] = {}
    continues: set[int] = set()
    graph = None
    for kernel in by_layer.values():
        if not _kernels.saturating(kernel.activation):
            continue
        key = id(kernel.layer)
        run.setdefault(key, 1)
        if not _graph.in_graph(kernel.ctx):
            continue
        if graph is None:
            graph = _graph.Graph(kernel.ctx[0])
        for _, nxt, normalized in _graph.next_kernels(
            graph, kernel.ctx, kernel.layer
        ):
            following = by_layer.get(id(nxt))
            if (
                normalized
                or following is None
                or not _kernels.saturating(following.activation)
                or following.walk is None
                or following.walk.normalized
            ):
                continue
            run[id(nxt)] = max(run.get(id(nxt), 1), run[key] + 1)
            continues.add(key)
    found = []
    for kernel in by_layer.values():
        key = id(kernel.layer)
        length = run.get(key, 0)
        if length < depth or key in continues:
            continue
        found.append(
            Finding(
                kind="deep_saturating_stack",
                layer=kernel.path,
                step=None,
                value=float(length),
                threshold=float(depth),
                message=(
                    f"{length} saturating layers in a row end at "
                    f"{kernel.path!r} with no normalization between them "
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


def _signal(
    model: Any,
    kernels: list[_kernels.Kernel],
    batch: int,
    seed: int,
    factor: float,
) -> list[Finding]:
    if not _graph.has_graph(model):
        return []
    points = signal_points(model, kernels)
    if len(points) < 2:
        return []
    stds = measure(model, points, batch, seed)
    first, last = stds[0], stds[-1]
    if first == 0:
        # A signal that is zero from the first hidden layer on has no
        # ratio: a constant kernel or dead units explain it, and those
        # findings name the layer.
        return []
    ratio = last / first if math.isfinite(first) else math.inf
    path = points[-1].path
    undetermined = [k.path for k in kernels if not _pairable(k)]
    if undetermined:
        fix = (
            "Initialize each kernel for its activation (`kerasinit.pair` "
            "cannot pair "
            + ", ".join(repr(p) for p in dict.fromkeys(undetermined))
            + ")"
        )
    else:
        fix = "Initialize each kernel for its activation with " + (
            "`kerasinit.pair(model)`"
        )
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
                    f"{first:.3g} at {points[0].path!r} to {last:.3g} at "
                    f"{path!r} ({ratio:.3g}x; limit {factor:g}x)."
                ),
                advice=(
                    f"{fix}, or `kerasinit.lsuv(model, x)`; normalization "
                    "layers also bound the signal."
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
                    f"{first:.3g} at {points[0].path!r} to {last:.3g} at "
                    f"{path!r} ({ratio:.3g}x; limit {1.0 / factor:g}x)."
                ),
                advice=f"{fix}, or `kerasinit.lsuv(model, x)`.",
                severity="error",
            )
        ]
    return []
