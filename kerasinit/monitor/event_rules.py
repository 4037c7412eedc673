"""The conditions that need more than one layer's statistics of one event.

`kerasinit.monitor.layer_rules.diagnose` judges each layer by its own
numbers. The rules here also read the layer before it, the model's kernels
(through a `kerasinit.monitor.model_view.ModelView`) or the previous
event: the forward signal's scale, representation collapse, symmetric
weights and the size of the weight updates, and the training-time margins
that every finding must pass. The reasoning behind each rule is in
``docs/diagnosis.md``.
"""

from __future__ import annotations

import math

import numpy as np

from kerasinit.findings import Finding
from kerasinit.monitor.layer_rules import make_finding
from kerasinit.monitor.model_view import ModelView
from kerasinit.monitor.probe_event import ProbeEvent, metric
from kerasinit.monitor.relu_correlation import (
    expected_dead_fraction,
    relu_input_cosine,
)
from kerasinit.monitor.thresholds import Thresholds

__all__ = [
    "FRACTION_MARGIN",
    "RATIO_MARGIN",
    "RECURRENT_TANH_RMS",
    "SEVERITY",
    "dead_explained",
    "harmless_saturation",
    "layer_finding",
    "past_margin",
    "signal_findings",
    "update_findings",
]

SEVERITY = {
    "nonfinite": "error",
    "symmetric_weights": "error",
    "exploding_signal": "error",
    "vanishing_signal": "error",
    "representation_collapse": "warning",
    "dead_units": "warning",
    "saturation": "warning",
    "exploding_gradients": "warning",
    "vanishing_gradients": "warning",
    "learning_rate_high": "warning",
    "learning_rate_low": "info",
}

#: During training a fraction must reach this multiple of its threshold, and
#: a ratio, RMS or update size this factor beyond it, to count at all.
FRACTION_MARGIN = 2.0
RATIO_MARGIN = 10.0

#: A tanh state bounded by 1 with this RMS has at least
#: ``(0.81 - a**2) / (1 - a**2)`` of its entries beyond ``a`` in magnitude:
#: over half beyond 0.75, where tanh' is below 0.44 and shrinks each step.
RECURRENT_TANH_RMS = 0.9


def layer_finding(kind, layer, step, value, threshold, what) -> Finding:
    """A `Finding` of `kind` with the severity `SEVERITY` gives it."""
    return make_finding(
        kind, layer, step, value, threshold, what, SEVERITY[kind]
    )


def past_margin(f: Finding) -> bool:
    """Whether a training-time finding passes its threshold by the margin."""
    if f.kind in ("dead_units", "saturation"):
        return f.value >= FRACTION_MARGIN * f.threshold
    if f.kind == "vanishing_gradients":
        return f.value <= f.threshold / RATIO_MARGIN
    if f.kind == "exploding_gradients":
        return f.value >= f.threshold * RATIO_MARGIN
    return True


def harmless_saturation(
    f: Finding, event: ProbeEvent, thresholds: Thresholds
) -> bool:
    """Trained saturated units that still pass gradient are features.

    Saturation predicts, at initialization, that gradients will not
    flow; during training the gradient is measured, so saturation
    counts only where the layer's gradient is also two orders of
    magnitude below the output layer's.
    """
    if f.kind != "saturation":
        return False
    grad = metric(event.layers.get(f.layer), "grad_norm")
    ref = event.reference_grad_norm
    if grad is None or ref is None or ref <= 0.0:
        return False
    limit = thresholds.vanishing_ratio * RATIO_MARGIN
    return grad / ref >= limit


def dead_explained(
    f: Finding, event: ProbeEvent, view: ModelView
) -> Finding | None:
    """A dead-units finding as collapse, when alike examples explain it.

    Returns:
        The ``representation_collapse`` finding that replaces `f`, or
        `None` to keep `f`.
    """
    cosine = view.input_cosine(f.layer, event)
    n = event.probe_examples
    if cosine is None or not n:
        return None
    expected = expected_dead_fraction(cosine, n)
    # Twice the expectation: the dead count of m units is binomial, and
    # a broken layer (a shifted bias) sits far above it.
    if f.value > max(2.0 * expected, expected + 0.1):
        return None
    return layer_finding(
        "representation_collapse",
        f.layer,
        f.step,
        f.value,
        expected,
        f"dead unit fraction, where input cosine {cosine:.3f} alone "
        "predicts the threshold's value,",
    )


def signal_findings(
    event: ProbeEvent, view: ModelView, thresholds: Thresholds
) -> list[Finding]:
    """The forward signal's conditions: scale, collapse, symmetric units."""
    t = thresholds
    # Training grows weights legitimately: only a tenfold miss counts.
    margin = 1.0 if event.preflight else RATIO_MARGIN
    high, low = t.signal_high * margin, t.signal_low / margin
    found = []
    for spec in view.specs:
        s = event.layers.get(spec.path)
        rms = metric(s, "act_rms")
        nonfinite = metric(s, "act_nonfinite")
        if nonfinite:
            continue
        if rms is not None and rms > high:
            found.append(
                layer_finding(
                    "exploding_signal",
                    spec.path,
                    event.step,
                    rms,
                    high,
                    "output RMS",
                )
            )
        elif rms is not None and rms < low:
            found.append(
                layer_finding(
                    "vanishing_signal",
                    spec.path,
                    event.step,
                    rms,
                    low,
                    "output RMS",
                )
            )
        name = getattr(spec.activation, "name", None)
        if (
            not getattr(spec, "direct", True)
            and name == "tanh"
            and rms is not None
            and rms > RECURRENT_TANH_RMS
        ):
            # A recurrent layer's output is its tanh state: no per-entry
            # rule applies, but an RMS this close to the bound 1 puts
            # most states where tanh' is small.
            found.append(
                layer_finding(
                    "saturation",
                    spec.path,
                    event.step,
                    rms,
                    RECURRENT_TANH_RMS,
                    "recurrent tanh state RMS",
                )
            )
        cosine = metric(s, "cosine_similarity")
        cos_limit = t.collapse_cosine
        if not event.preflight:
            cos_limit = 1.0 - (1.0 - cos_limit) / RATIO_MARGIN
        family = getattr(spec.activation, "family", None)
        # Sigmoid-like outputs share a mean of 1/2, so their raw cosine
        # is high for distinct examples; the rule does not apply.
        if cosine is not None and cosine > cos_limit and family != "kumar":
            collapse = _collapse_finding(
                spec, event, cosine, cos_limit, view, t
            )
            if collapse is not None:
                found.append(collapse)
        dup = metric(s, "duplicate_fraction")
        if dup is not None and _symmetric(spec, s, dup, view, t):
            found.append(
                layer_finding(
                    "symmetric_weights",
                    spec.path,
                    event.step,
                    dup,
                    t.duplicate_fraction,
                    "fraction of units duplicating another unit",
                )
            )
    return found


def _collapse_finding(spec, event, cosine, limit, view, thresholds):
    """Collapse at `spec`, unless its examples arrived already alike.

    A random layer cannot make its examples much more alike than they
    arrive: a ReLU layer maps an input cosine ``rho`` to
    `relu_cosine` (``rho`` = 0 gives 0.318, 0.946 gives 0.95), a linear
    one keeps it. At a layer fed by the model's inputs a high cosine is
    the inputs' (all-ones, or features sharing a large offset), not
    depth: it is reported only when the inputs' cosine (measured, or
    read back through the ReLU map) is beyond the training-time margin
    of the threshold, ``1 - (1 - collapse_cosine) / 10``, and then with
    the inputs as its cause.
    """
    what = "mean cosine similarity across examples"
    if view.fed_by_inputs(spec):
        implied = event.input_cosine
        if implied is None:
            name = getattr(spec.activation, "name", None)
            implied = (
                relu_input_cosine(cosine)
                if name in ("relu", "relu6")
                else cosine
            )
        far = 1.0 - (1.0 - thresholds.collapse_cosine) / RATIO_MARGIN
        if implied <= far:
            return None
        limit = far
        what = f"{what} (the inputs' cosine is {implied:.4g})"
    return layer_finding(
        "representation_collapse",
        spec.path,
        event.step,
        cosine,
        limit,
        what,
    )


def _symmetric(spec, stats, dup: float, view, thresholds) -> bool:
    t = thresholds
    if dup <= t.duplicate_fraction:
        return False
    kernel = view.kernel(spec)
    if kernel is not None:
        return kernel.duplicate_columns > t.duplicate_fraction
    # Dead units all output the same constant: duplicates beyond them
    # are what symmetric weights add.
    dead = metric(stats, "dead_fraction") or 0.0
    return dup - dead > t.duplicate_fraction


def update_findings(
    event: ProbeEvent,
    last_step: int | None,
    view: ModelView,
    thresholds: Thresholds,
) -> list[Finding]:
    """Weight updates too large or too small for the learning rate.

    Args:
        event: the event.
        last_step: the step of the previous event, or `None` before the
            first.
        view: the monitored layers.
        thresholds: a `Thresholds`.
    """
    t = thresholds
    if event.preflight:
        return []
    if event.update_steps is not None:
        k = event.update_steps
    elif last_step is None or event.step <= last_step:
        return []
    else:
        k = event.step - last_step
    # Between events k steps passed: a coherent drift moves k times a
    # step, a random walk sqrt(k) times, so the per-step ratio lies in
    # [ratio / k, ratio / sqrt(k)].
    lows, highs = [], []
    for path in view.order:
        ratio = metric(event.layers.get(path), "update_ratio")
        if ratio is None:
            continue
        lows.append((path, ratio / k))
        highs.append((path, ratio / math.sqrt(k)))
    found = []
    high = t.update_ratio_high * RATIO_MARGIN
    # The learning rate is shared: one layer's jump (a bias reset) is
    # not it, so most layers must move too fast.
    too_fast = lows and np.median([v for _, v in lows]) > high
    if too_fast:
        # Weights far below their paired initializer's scale (N(0,
        # 1e-3)) move by many times their own norm at any sane rate:
        # a step is measured against the larger of the two norms.
        lows = [(p, v * _below_scale(p, v * k, view)) for p, v in lows]
        too_fast = np.median([v for _, v in lows]) > high
    for path, per_step in lows if too_fast else ():
        if per_step > high:
            found.append(
                layer_finding(
                    "learning_rate_high",
                    path,
                    event.step,
                    per_step,
                    high,
                    "weight update per step / weight norm (at least)",
                )
            )
    if highs:
        median = float(np.median([v for _, v in highs]))
        if median < t.update_ratio_low:
            found.append(
                layer_finding(
                    "learning_rate_low",
                    highs[0][0],
                    event.step,
                    median,
                    t.update_ratio_low,
                    "median weight update per step / weight norm (at most)",
                )
            )
    return found


def _below_scale(path: str, moved: float, view: ModelView) -> float:
    """How far below its paired scale the kernel at `path` started.

    `moved` is ``|W - W0| / |W0|`` since the last event. The kernel's
    scale then, ``s0 = |W0| / |W_paired|``, is not kept, but the
    triangle inequality bounds it by the scale now: ``s0 <= s /
    |moved - 1|``. The factor ``min(1, s / |moved - 1|)`` is therefore
    never below the true ``min(1, s0)``: weights that started at their
    scale keep a factor 1 (to move ``moved`` norms they must now be at
    least ``moved - 1`` norms), and weights that grew from near zero
    are measured against the paired norm.

    Returns:
        The factor, 1 when the kernel or its paired scale is unknown.
    """
    kernel = view.kernel(view.spec[path])
    scale = None if kernel is None else kernel.scale_ratio
    if scale is None or not math.isfinite(scale) or scale <= 0.0:
        return 1.0
    gap = abs(moved - 1.0)
    if gap == 0.0:
        return 1.0
    return min(1.0, scale / gap)
