"""`Diagnoser`: per-layer findings grouped into one verdict per problem.

`kerasinit.monitor.layer_rules.diagnose` gives the per-layer
`kerasinit.findings.Finding` objects of one event (the evidence); the
`Diagnoser` adds the forward-signal, collapse, symmetry and update-size
rules, groups the findings into one `kerasinit.findings.Diagnosis` per
problem with its cause read from the model, and keeps the only state: how
long each condition has lasted and which are reported. `Thresholds` and
`diagnose` are re-exported here. The reasoning behind every rule and
default threshold is in ``docs/diagnosis.md``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kerasinit.findings import Diagnosis, Finding
from kerasinit.monitor.layer_rules import _finding, _finite, diagnose
from kerasinit.monitor.thresholds import Thresholds

__all__ = [
    "Thresholds",
    "diagnose",
    "Diagnoser",
    "ProbeEvent",
    "expected_dead_fraction",
    "relu_cosine",
    "relu_input_cosine",
]


# ---------------------------------------------------------------------------
# Verdicts: per-layer findings grouped into one diagnosis per problem.

_GRADIENT_KINDS = frozenset({"vanishing_gradients", "exploding_gradients"})
#: Grouped first, as the cause of what comes with it; barely moving
#: weights are instead a consequence (of dead units, vanishing gradients).
_UPDATE_KINDS = frozenset({"learning_rate_high"})

#: At one layer, the condition that explains the others comes first.
_PRIORITY = (
    "nonfinite",
    "symmetric_weights",
    "exploding_signal",
    "representation_collapse",
    "dead_units",
    "vanishing_signal",
    "saturation",
    "learning_rate_high",
    "learning_rate_low",
    "exploding_gradients",
    "vanishing_gradients",
)

_EVERYTHING = frozenset(_PRIORITY)
_ANYWHERE_KINDS = _GRADIENT_KINDS | {"learning_rate_low"}
_FORWARD_KINDS = _EVERYTHING - _ANYWHERE_KINDS - _UPDATE_KINDS

#: Root kind -> the conditions that follow from it. Gradient conditions
#: belong to a root wherever they are (gradients vanish *above* a dead
#: layer); the others only at or below the root's layer.
_ABSORBS = {
    "nonfinite": _EVERYTHING,
    "symmetric_weights": _EVERYTHING,
    "exploding_signal": _EVERYTHING - {"symmetric_weights"},
    "vanishing_signal": _EVERYTHING - {"symmetric_weights", "exploding_signal"},
    "representation_collapse": frozenset(
        {
            "representation_collapse",
            "dead_units",
            "vanishing_signal",
            "saturation",
            "vanishing_gradients",
            "learning_rate_low",
        }
    ),
    "dead_units": frozenset(
        {
            "dead_units",
            "representation_collapse",
            "vanishing_signal",
            "saturation",
            "vanishing_gradients",
            "learning_rate_low",
        }
    ),
    "saturation": frozenset(
        {"saturation", "vanishing_gradients", "learning_rate_low"}
    ),
    "exploding_gradients": frozenset({"exploding_gradients", "nonfinite"}),
    "vanishing_gradients": frozenset(
        {"vanishing_gradients", "learning_rate_low"}
    ),
    # Measured only while training: an update this large explains what
    # the weights then do to the signal.
    "learning_rate_high": _EVERYTHING - {"symmetric_weights"},
    "learning_rate_low": frozenset({"learning_rate_low"}),
}

_SEVERITY = {
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

#: Inputs whose mean pairwise cosine is above this are not centered: for
#: features with common mean ``mu`` and spread ``sigma`` the cosine is about
#: ``|mu|^2 / (|mu|^2 + d sigma^2)``, the share of the inputs' energy in
#: their common offset; above 1/2 the offset outweighs all the variation.
#: Centered inputs have a cosine near 0.
INPUT_OFFSET_COSINE = 0.5

#: A tanh state bounded by 1 with this RMS has at least
#: ``(0.81 - a**2) / (1 - a**2)`` of its entries beyond ``a`` in magnitude:
#: over half beyond 0.75, where tanh' is below 0.44 and shrinks each step.
RECURRENT_TANH_RMS = 0.9


@dataclasses.dataclass(frozen=True)
class ProbeEvent:
    """One logging event's statistics, as the diagnosis reads them.

    Attributes:
        step: the global step (0 at the pre-flight).
        phase: ``"preflight"``, ``"step"`` or ``"epoch"``.
        layers: ``{layer path: {metric: value}}``; a missing metric or a
            `None`/NaN value means "not measured".
        reference_grad_norm: the output layer's gradient norm, or `None`.
        input_rms: the RMS of the probe inputs, or `None`.
        probe_examples: the number of probe examples, or `None`.
        input_cosine: the mean pairwise cosine similarity of the flattened
            probe inputs, or `None` when not measured.
        update_steps: how many steps each layer's ``update_ratio`` spans
            (1 on the training batch, where it is one step's update), or
            `None`: the steps since the previous event.
    """

    step: int
    phase: str
    layers: Mapping[str, Mapping[str, Any]]
    reference_grad_norm: float | None = None
    input_rms: float | None = None
    probe_examples: int | None = None
    input_cosine: float | None = None
    update_steps: int | None = None

    @classmethod
    def from_result(
        cls,
        result: Any,
        *,
        step: int,
        phase: str,
        probe_examples: int | None = None,
        update_steps: int | None = None,
    ) -> ProbeEvent:
        """The event of one probe result.

        Args:
            result: a `kerasinit.monitor.result.ProbeResult`, or a mapping
                with the same ``layers``, ``reference_grad_norm`` and
                ``input_rms`` entries.
            step: the global step of the event.
            phase: ``"preflight"``, ``"step"`` or ``"epoch"``.
            probe_examples: the probe's example count. Defaults to `None`.
            update_steps: the steps each ``update_ratio`` spans, or
                `None` for the steps since the previous event. Defaults to
                `None`.
        """
        if isinstance(result, Mapping):
            get = result.get
        else:

            def get(name):
                return getattr(result, name, None)

        return cls(
            step=int(step),
            phase=phase,
            layers=get("layers"),
            reference_grad_norm=_num(get("reference_grad_norm")),
            input_rms=_num(get("input_rms")),
            probe_examples=probe_examples,
            # Measured by newer probes only: without it the collapse rule
            # reads the inputs' cosine back from the first layer's.
            input_cosine=_num(get("input_cosine")),
            update_steps=update_steps,
        )

    @property
    def preflight(self) -> bool:
        return self.phase == "preflight"


def _num(value) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _metric(stats: Mapping[str, Any] | None, name: str) -> float | None:
    if not stats:
        return None
    return _num(stats.get(name))


def relu_cosine(rho: float) -> float:
    """The cosine of two ReLU outputs whose pre-activations correlate at `rho`.

    The arc-cosine map of Cho & Saul (2009): for jointly Gaussian
    pre-activations with correlation ``rho`` (a random zero-bias layer
    gives them the cosine of its inputs),
    ``E[relu(u) relu(v)] / E[relu(u)^2]`` is
    ``(sqrt(1 - rho^2) + (pi - arccos(rho)) rho) / pi``.

    Args:
        rho: the pre-activations' correlation, in ``[-1, 1]``.

    Returns:
        The outputs' cosine, in ``[0, 1]``.
    """
    rho = min(max(float(rho), -1.0), 1.0)
    return (
        math.sqrt(1.0 - rho * rho) + (math.pi - math.acos(rho)) * rho
    ) / math.pi


def relu_input_cosine(cosine: float) -> float:
    """The inverse of `relu_cosine`: the correlation behind an output cosine.

    Args:
        cosine: the mean cosine of a ReLU layer's outputs.

    Returns:
        The pre-activations' correlation, in ``[-1, 1]``.
    """
    cosine = min(max(float(cosine), 0.0), 1.0)
    lo, hi = -1.0, 1.0
    # The map is increasing: 60 halvings reach float64 resolution.
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if relu_cosine(mid) < cosine:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def expected_dead_fraction(cosine: float, examples: int) -> float:
    """Fraction of healthy ReLU units off for every example, by correlation.

    A unit's pre-activations ``w . x_i`` over random weights are Gaussian
    with the correlation of the inputs ``x_i``; with equicorrelation ``rho``
    they are ``sqrt(rho) t + sqrt(1 - rho) e_i``, so the chance that all
    ``n`` are negative is ``E_t[Phi(-sqrt(rho / (1 - rho)) t) ** n]``.
    Examples that have become alike (``rho -> 1``) switch units off
    together: up to half of the units look dead without any being broken.

    Args:
        cosine: the mean cosine similarity of the layer's inputs.
        examples: the number of probe examples.

    Returns:
        The expected dead fraction, in ``[2 ** -examples, 0.5]``.
    """
    rho = min(max(float(cosine), 0.0), 1.0)
    if rho >= 1.0:
        return 0.5
    a = math.sqrt(rho / (1.0 - rho))
    t = np.linspace(-9.0, 9.0, 3601)
    phi = np.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)
    cdf = 0.5 * np.vectorize(math.erfc)(a * t / math.sqrt(2.0))
    return float(np.trapezoid(phi * cdf**examples, t))


@dataclasses.dataclass
class _Root:
    kind: str
    index: int
    members: list[Finding]


def _layer_finding(kind, layer, step, value, threshold, what):
    return _finding(kind, layer, step, value, threshold, what, _SEVERITY[kind])


class Diagnoser:
    """Turns each event's statistics into the new diagnoses to report.

    Built once per run; `update` is called with every logging event and
    returns only what is new: a pre-flight condition at once, a
    training-time condition once it passes its threshold by the documented
    margin for `Thresholds.persistence` consecutive events (at once when
    extreme: a whole layer dead, non-finite values, a hundredfold miss).
    One diagnosis per root condition is reported until that condition
    clears. The reasoning behind each rule is in ``docs/diagnosis.md``.

    Args:
        specs: the monitored layers in model order, each with ``path``,
            ``dead_value``, ``saturation()`` and ``activation`` (a
            `kerasinit.monitor.probe.LayerSpec`).
        thresholds: a `Thresholds`. Defaults to `None` (the defaults).
        facts: a `kerasinit.monitor.model_facts.ModelFacts` for causes, or
            a function returning one (e.g. ``lambda: model_facts(model)``),
            called at most once per event and only when the event has a
            finding, so that causes read the weights as they are then.
            Defaults to `None` (causes from statistics only).
        reference_layer: the output layer's path, not compared with itself
            for gradients. Defaults to `None`.

    Example:

    >>> diagnoser = Diagnoser(specs, facts=model_facts(model))
    >>> for d in diagnoser.update(ProbeEvent.from_result(
    ...         result, step=0, phase="preflight")):
    ...     print(d)
    """

    def __init__(
        self,
        specs: Sequence[Any],
        thresholds: Thresholds | None = None,
        facts: Any = None,
        reference_layer: str | None = None,
    ):
        if thresholds is None:
            thresholds = Thresholds()
        if not isinstance(thresholds, Thresholds):
            raise TypeError(
                "Expected `thresholds` to be a Thresholds. "
                f"Received: thresholds={thresholds!r}"
            )
        self.specs = list(specs)
        self.thresholds = thresholds
        self.facts = facts
        self._facts_step: int | None = None
        self._step: int | None = None
        self._facts_value = None if callable(facts) else facts
        self.reference_layer = reference_layer
        self.order = [s.path for s in self.specs]
        self._index = {p: i for i, p in enumerate(self.order)}
        self._spec = {s.path: s for s in self.specs}
        self.diagnoses: list[Diagnosis] = []
        self.findings: list[Finding] = []
        self._active: set[str] = set()
        self._streak: dict[str, int] = {}
        self._last_step: int | None = None

    @property
    def active(self) -> frozenset[str]:
        """The kinds reported and not yet cleared."""
        return frozenset(self._active)

    def covers(self, kind: str) -> bool:
        """Whether a reported, not yet cleared diagnosis explains `kind`
        (the same kind, or one that follows from an active one)."""
        return any(kind == a or kind in _ABSORBS[a] for a in self._active)

    # -- per-layer evidence ------------------------------------------------

    def layer_findings(self, event: ProbeEvent) -> list[Finding]:
        """Every per-layer condition of one event, before any grouping."""
        t = self.thresholds
        specs = self.specs
        self._step = event.step
        found = diagnose(
            event.layers,
            self.order,
            step=event.step,
            thresholds=t,
            reference_grad_norm=event.reference_grad_norm,
            reference_layer=self.reference_layer,
            probe_examples=event.probe_examples,
            dead_applies=[s.path for s in specs if s.dead_value is not None],
            saturation_applies=[s.path for s in specs if s.saturation()],
        )
        if not event.preflight:
            found = [
                f
                for f in found
                if _past_margin(f) and not self._harmless_saturation(f, event)
            ]
        # Units off because the examples became alike are a symptom of
        # collapse, not broken units.
        regrouped = []
        for f in found:
            if f.kind == "dead_units":
                explained = self._dead_explained(f, event)
                if explained is not None:
                    f = explained
            regrouped.append(f)
        found = regrouped
        found += self._signal_findings(event)
        found += self._update_findings(event)
        return found

    def _harmless_saturation(self, f: Finding, event: ProbeEvent) -> bool:
        """Trained saturated units that still pass gradient are features.

        Saturation predicts, at initialization, that gradients will not
        flow; during training the gradient is measured, so saturation
        counts only where the layer's gradient is also two orders of
        magnitude below the output layer's.
        """
        if f.kind != "saturation":
            return False
        grad = _metric(event.layers.get(f.layer), "grad_norm")
        ref = event.reference_grad_norm
        if grad is None or ref is None or ref <= 0.0:
            return False
        limit = self.thresholds.vanishing_ratio * RATIO_MARGIN
        return grad / ref >= limit

    def _previous(self, path: str, event: ProbeEvent, metric: str):
        i = self._index[path]
        if i == 0:
            return None
        return _metric(event.layers.get(self.order[i - 1]), metric)

    def _dead_explained(self, f: Finding, event: ProbeEvent):
        cosine = self._input_cosine(f.layer, event)
        n = event.probe_examples
        if cosine is None or not n:
            return None
        expected = expected_dead_fraction(cosine, n)
        # Twice the expectation: the dead count of m units is binomial, and
        # a broken layer (a shifted bias) sits far above it.
        if f.value > max(2.0 * expected, expected + 0.1):
            return None
        return _layer_finding(
            "representation_collapse",
            f.layer,
            f.step,
            f.value,
            expected,
            f"dead unit fraction, where input cosine {cosine:.3f} alone "
            "predicts the threshold's value,",
        )

    def _input_cosine(self, path: str, event: ProbeEvent) -> float | None:
        """How alike the examples are where they enter the layer at `path`.

        The previous monitored layer's cosine is that, when it is the
        layer just before; when only every n-th layer is monitored it is a
        lower bound, since a ReLU stack only aligns examples further. A
        ReLU layer's own output cosine gives its input's exactly through
        the inverse arc-cosine map, so the larger of the two is used.
        """
        found = [self._previous(path, event, "cosine_similarity")]
        name = getattr(self._spec[path].activation, "name", None)
        if name in ("relu", "relu6"):
            own = _metric(event.layers.get(path), "cosine_similarity")
            if own is not None:
                found.append(relu_input_cosine(own))
        found = [c for c in found if c is not None]
        return max(found) if found else None

    def _signal_findings(self, event: ProbeEvent) -> list[Finding]:
        t = self.thresholds
        # Training grows weights legitimately: only a tenfold miss counts.
        margin = 1.0 if event.preflight else RATIO_MARGIN
        high, low = t.signal_high * margin, t.signal_low / margin
        found = []
        for spec in self.specs:
            s = event.layers.get(spec.path)
            rms = _metric(s, "act_rms")
            nonfinite = _metric(s, "act_nonfinite")
            if nonfinite:
                continue
            if rms is not None and rms > high:
                found.append(
                    _layer_finding(
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
                    _layer_finding(
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
                    _layer_finding(
                        "saturation",
                        spec.path,
                        event.step,
                        rms,
                        RECURRENT_TANH_RMS,
                        "recurrent tanh state RMS",
                    )
                )
            cosine = _metric(s, "cosine_similarity")
            cos_limit = t.collapse_cosine
            if not event.preflight:
                cos_limit = 1.0 - (1.0 - cos_limit) / RATIO_MARGIN
            family = getattr(spec.activation, "family", None)
            # Sigmoid-like outputs share a mean of 1/2, so their raw cosine
            # is high for distinct examples; the rule does not apply.
            if cosine is not None and cosine > cos_limit and family != "kumar":
                collapse = self._collapse_finding(
                    spec, event, cosine, cos_limit
                )
                if collapse is not None:
                    found.append(collapse)
            dup = _metric(s, "duplicate_fraction")
            if dup is not None and self._symmetric(spec, s, dup):
                found.append(
                    _layer_finding(
                        "symmetric_weights",
                        spec.path,
                        event.step,
                        dup,
                        t.duplicate_fraction,
                        "fraction of units duplicating another unit",
                    )
                )
        return found

    def _collapse_finding(self, spec, event, cosine, limit):
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
        if self._fed_by_inputs(spec):
            implied = event.input_cosine
            if implied is None:
                name = getattr(spec.activation, "name", None)
                implied = (
                    relu_input_cosine(cosine)
                    if name in ("relu", "relu6")
                    else cosine
                )
            far = 1.0 - (1.0 - self.thresholds.collapse_cosine) / RATIO_MARGIN
            if implied <= far:
                return None
            limit = far
            what = f"{what} (the inputs' cosine is {implied:.4g})"
        return _layer_finding(
            "representation_collapse",
            spec.path,
            event.step,
            cosine,
            limit,
            what,
        )

    def _inputs_cosine(self, event: ProbeEvent) -> float | None:
        """The probe inputs' mean cosine: measured, or read back.

        Read back from the first monitored layer when it is fed by the
        inputs: through the inverse ReLU map for a ReLU layer, as is for
        any other (a linear layer keeps the cosine in expectation).
        """
        if event.input_cosine is not None:
            return event.input_cosine
        if not self.specs or not self._fed_by_inputs(self.specs[0]):
            return None
        spec = self.specs[0]
        cosine = _metric(event.layers.get(spec.path), "cosine_similarity")
        if cosine is None:
            return None
        if getattr(spec.activation, "name", None) in ("relu", "relu6"):
            return relu_input_cosine(cosine)
        return cosine

    def _fed_by_inputs(self, spec) -> bool:
        """Whether only the first kernel stands between inputs and `spec`."""
        if self._index.get(spec.path) == 0:
            return True
        facts = self._facts()
        if facts is None or not facts.kernels:
            return False
        owner = getattr(spec, "weight_owner", None) or spec.path
        return owner == facts.kernels[0].path

    def _symmetric(self, spec, stats, dup: float) -> bool:
        t = self.thresholds
        if dup <= t.duplicate_fraction:
            return False
        kernel = self._kernel(spec)
        if kernel is not None:
            return kernel.duplicate_columns > t.duplicate_fraction
        # Dead units all output the same constant: duplicates beyond them
        # are what symmetric weights add.
        dead = _metric(stats, "dead_fraction") or 0.0
        return dup - dead > t.duplicate_fraction

    def _update_findings(self, event: ProbeEvent) -> list[Finding]:
        t = self.thresholds
        last, self._last_step = self._last_step, event.step
        if event.preflight:
            return []
        if event.update_steps is not None:
            k = event.update_steps
        elif last is None or event.step <= last:
            return []
        else:
            k = event.step - last
        # Between events k steps passed: a coherent drift moves k times a
        # step, a random walk sqrt(k) times, so the per-step ratio lies in
        # [ratio / k, ratio / sqrt(k)].
        lows, highs = [], []
        for path in self.order:
            ratio = _metric(event.layers.get(path), "update_ratio")
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
            lows = [(p, v * self._below_scale(p, v * k)) for p, v in lows]
            too_fast = np.median([v for _, v in lows]) > high
        for path, per_step in lows if too_fast else ():
            if per_step > high:
                found.append(
                    _layer_finding(
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
                    _layer_finding(
                        "learning_rate_low",
                        highs[0][0],
                        event.step,
                        median,
                        t.update_ratio_low,
                        "median weight update per step / weight norm (at most)",
                    )
                )
        return found

    def _below_scale(self, path: str, moved: float) -> float:
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
        kernel = self._kernel(self._spec[path])
        scale = None if kernel is None else kernel.scale_ratio
        if scale is None or not math.isfinite(scale) or scale <= 0.0:
            return 1.0
        gap = abs(moved - 1.0)
        if gap == 0.0:
            return 1.0
        return min(1.0, scale / gap)

    # -- grouping ------------------------------------------------------------

    def _kernel(self, spec):
        facts = self._facts()
        if facts is None:
            return None
        owner = getattr(spec, "weight_owner", None) or spec.path
        return facts.kernel(owner)

    def _facts(self):
        # Only asked for while explaining a finding: read once per event.
        if callable(self.facts) and self._facts_step != self._step:
            self._facts_value = self.facts()
            self._facts_step = self._step
        return self._facts_value

    def group(self, findings: Sequence[Finding]) -> list[list[Finding]]:
        """Per-layer findings grouped by root: each group starts with it."""
        pos = self._index
        rank = {k: i for i, k in enumerate(_PRIORITY)}

        def key(f):
            return (pos.get(f.layer, len(pos)), rank[f.kind])

        ordered = sorted(findings, key=key)
        roots: list[_Root] = []
        # Update sizes first: they are causes of what they come with, then
        # forward conditions in model order, then gradients anywhere.
        passes = (_UPDATE_KINDS, _FORWARD_KINDS, _ANYWHERE_KINDS)
        for kinds in passes:
            anywhere = kinds is not _FORWARD_KINDS
            for f in ordered:
                if f.kind not in kinds:
                    continue
                i = pos.get(f.layer, len(pos))
                for root in roots:
                    # A gradient condition at a root's own layer shares
                    # the root's cause.
                    same = kinds is _ANYWHERE_KINDS and i == root.index
                    if same or (
                        f.kind in _ABSORBS[root.kind]
                        and (anywhere or i >= root.index)
                    ):
                        root.members.append(f)
                        break
                else:
                    roots.append(_Root(f.kind, i, [f]))
        groups = []
        for root in sorted(roots, key=lambda r: (r.index, rank[r.kind])):
            head, rest = root.members[0], root.members[1:]
            groups.append([head] + sorted(rest, key=key))
        return groups

    def diagnose_event(self, event: ProbeEvent) -> list[Diagnosis]:
        """Every diagnosis present in one event, ignoring persistence."""
        groups = self.group(self.layer_findings(event))
        return [self._diagnosis(group, event) for group in groups]

    # -- persistence -----------------------------------------------------

    def update(self, event: ProbeEvent) -> list[Diagnosis]:
        """The new diagnoses of one event; also kept in `diagnoses`.

        Args:
            event: a `ProbeEvent`.

        Returns:
            The diagnoses to report now, in model order.
        """
        current = self.diagnose_event(event)
        present = {d.kind for d in current}
        for kind in list(self._streak):
            if kind not in present:
                del self._streak[kind]
        # A reported problem lasts while it or a consequence of it does:
        # an explosion that turns into NaN is still the one explosion.
        self._active = {
            a for a in self._active if a in present or present & _ABSORBS[a]
        }
        new = []
        for d in current:
            self._streak[d.kind] = self._streak.get(d.kind, 0) + 1
            if any(d.kind == a or d.kind in _ABSORBS[a] for a in self._active):
                continue
            due = (
                event.preflight
                or _extreme(d)
                or self._streak[d.kind] >= self.thresholds.persistence
            )
            if due:
                self._active.add(d.kind)
                new.append(d)
        self.diagnoses.extend(new)
        for d in new:
            self.findings.extend(d.findings)
        return new

    # -- the words ---------------------------------------------------------

    def _diagnosis(self, group: list[Finding], event: ProbeEvent) -> Diagnosis:
        head = group[0]
        kind = head.kind
        first = self._span_start(head, event)
        i0 = self._index.get(first, 0)
        layers = [first]
        for f in group:
            if (
                f.layer not in layers
                and self._index.get(f.layer, -1) >= i0
                and f.kind not in _ANYWHERE_KINDS
            ):
                layers.append(f.layer)
        if len(layers) == 1:
            layers += [f.layer for f in group if f.layer not in layers]
        layers.sort(key=lambda p: self._index.get(p, len(self._index)))
        layers.remove(first)
        layers.insert(0, first)
        evidence = self._evidence(head, first, group, event)
        cause, advice = self._cause(kind, first, head, event)
        return Diagnosis(
            kind=kind,
            severity=_SEVERITY[kind],
            first_layer=first,
            layers=tuple(layers),
            step=event.step,
            value=head.value,
            threshold=head.threshold,
            evidence=evidence,
            cause=cause,
            advice=advice,
            findings=tuple(group),
        )

    def _span_start(self, head: Finding, event: ProbeEvent) -> str:
        """Walk a crossing back to the layer where the problem begins."""
        if head.kind == "saturation":
            # Layers leading into it that are saturated at half the
            # threshold are where it begins (the same margin as training).
            floor = self.thresholds.saturation_fraction / FRACTION_MARGIN
            i = self._index[head.layer]
            while i > 0:
                prev = event.layers.get(self.order[i - 1])
                value = _metric(prev, "saturation_fraction")
                if value is None or value < floor:
                    break
                i -= 1
            return self.order[i]
        if head.kind not in ("exploding_signal", "vanishing_signal"):
            return head.layer
        g = self.thresholds.signal_gain
        i = self._index[head.layer]
        while i > 0:
            gain = _metric(event.layers.get(self.order[i]), "signal_gain")
            prev = self.order[i - 1]
            prev_gain = _metric(event.layers.get(prev), "signal_gain")
            if gain is None or prev_gain is None:
                break
            if head.kind == "exploding_signal" and not prev_gain > g:
                break
            if head.kind == "vanishing_signal" and not prev_gain < 1.0 / g:
                break
            i -= 1
        return self.order[i]

    def _evidence(self, head, first, group, event) -> str:
        stats = event.layers.get(first, {})
        value = head.value
        if head.kind in ("exploding_signal", "vanishing_signal"):
            words = (
                f"output RMS {_fmt(_metric(stats, 'act_rms'))} at "
                f"'{first}', {_fmt(_metric(stats, 'signal_gain'))}x its input"
            )
            if head.layer != first:
                words += f", {_fmt(value)} at '{head.layer}'"
            words += f" (threshold {_fmt(head.threshold)})"
        else:
            # "Layer 'x': what = v (threshold t)" without its step.
            words = head.message.rsplit(" at step", 1)[0]
        others = len({f.layer for f in group}) - 1
        if others > 0:
            words += (
                f"; {len(group) - 1} related finding(s) on {others} layer(s)"
            )
        return f"{words} at step {event.step}."

    def _cause(self, kind, first, head, event) -> tuple[str, str]:
        spec = self._spec.get(first)
        kernel = self._kernel(spec) if spec is not None else None
        facts = self._facts()
        t = self.thresholds
        input_rms = event.input_rms
        pair_helps = facts is not None and bool(facts.mismatched)
        init_fix = (
            "re-initialize every kernel for the activation it feeds: "
            "kerasinit.pair(model)."
            if pair_helps
            else "initialize each kernel for the activation it feeds "
            "(kerasinit.initializers.ForActivation)."
        )
        scale = _scale_text(kernel)
        if kind in ("exploding_signal", "vanishing_signal"):
            too = kind == "exploding_signal"
            first_index = self._index.get(first, 0)
            if (
                input_rms is not None
                and first_index == 0
                and (
                    input_rms > t.signal_high
                    if too
                    else input_rms < t.signal_low
                )
                and (kernel is None or kernel.matched is not False)
            ):
                return (
                    f"the inputs have RMS {_fmt(input_rms)}; the model "
                    "expects standardized inputs (RMS near 1).",
                    "standardize the inputs (e.g. a keras.layers."
                    "Normalization layer adapted to the training data).",
                )
            if kernel is not None and kernel.matched is False:
                return scale, init_fix
            return (
                "the kernels match the gain table, so the scale comes from "
                "the architecture (biases, skip sums or width changes).",
                "add normalization (keras.layers.LayerNormalization) "
                "where the scale drifts.",
            )
        if kind == "representation_collapse":
            inputs = self._inputs_cosine(event)
            if (spec is not None and self._fed_by_inputs(spec)) or (
                inputs is not None and inputs > INPUT_OFFSET_COSINE
            ):
                said = f" (cosine {_fmt(inputs)})" if inputs is not None else ""
                return (
                    f"the inputs are alike or not centered{said}: a layer "
                    "fed by them cannot tell their examples apart.",
                    "standardize the inputs (subtract the mean, e.g. a "
                    "keras.layers.Normalization layer adapted to the "
                    "training data), and check that the examples differ.",
                )
            where = []
            if facts is not None and not facts.has_residual:
                where.append("no residual connections")
            if facts is not None and not facts.has_normalization:
                where.append("no normalization")
            # Named by layer: the monitored order skips layers when only
            # every n-th is watched, so its index is not the depth.
            return (
                f"from '{first}' on, the outputs of different examples point "
                "the same way"
                + (f" ({', '.join(where)})" if where else "")
                + "; units off for one example are off for all, which "
                "looks like dead units.",
                "add residual connections or normalization "
                "(keras.layers.BatchNormalization), or use fewer layers.",
            )
        if kind == "symmetric_weights":
            desc = (
                f"the kernel of '{kernel.path}' ({kernel.initializer}) has "
                f"{kernel.duplicate_columns:.0%} identical columns, so its "
                "units compute, and learn, the same thing."
                if kernel is not None
                else "units of this layer compute identical outputs."
            )
            return desc, init_fix if pair_helps else (
                "use a random initializer "
                "(kerasinit.initializers.ForActivation)."
            )
        if kind == "dead_units":
            bias = kernel.bias_mean if kernel is not None else None
            prev = self._previous(first, event, "act_rms")
            if prev is None:
                prev = input_rms
            if (
                bias is not None
                and kernel is not None
                and prev is not None
                and bias < -2.0 * kernel.std * math.sqrt(kernel.fan_in) * prev
            ):
                return (
                    f"the bias of '{kernel.path}' has mean {_fmt(bias)}, "
                    "below the pre-activations' spread "
                    f"({_fmt(kernel.std * math.sqrt(kernel.fan_in) * prev)}),"
                    " so the units never turn on.",
                    f"reset the bias of '{kernel.path}' to zero and find "
                    "what drives it negative (often a learning rate too "
                    "high).",
                )
            if kernel is not None and kernel.matched is False:
                return scale, init_fix
            if event.preflight:
                return (
                    "the kernel matches the gain table; these units start "
                    "off for every example.",
                    "use an activation that cannot die (LeakyReLU(0.1), ELU).",
                )
            return (
                "units were switched off during training, typically by "
                "large updates.",
                "lower the learning rate.",
            )
        if kind == "saturation":
            if kernel is not None and kernel.matched is False:
                return scale, init_fix
            return (
                "the pre-activations are too wide for the activation.",
                "add normalization before the activation "
                "(keras.layers.BatchNormalization).",
            )
        if kind in ("vanishing_gradients", "exploding_gradients"):
            if facts is not None and facts.mismatched:
                k = facts.mismatched[0]
                return _scale_text(k), init_fix
            if kind == "exploding_gradients":
                return (
                    "gradients grow from the output towards the input.",
                    "clip gradients (optimizer clipnorm=1.0).",
                )
            return (
                "each layer shrinks the gradient it passes back (saturating "
                "derivatives or depth).",
                "add residual connections or normalization "
                "(keras.layers.BatchNormalization).",
            )
        if kind == "nonfinite":
            if kernel is not None and kernel.dtype == "float16":
                return (
                    f"'{first}' computes in float16, whose largest finite "
                    "value is 65504.",
                    f"compute '{first}' in float32 (dtype='float32') or "
                    "keep activations small (normalization).",
                )
            return (
                "values overflowed or a NaN entered through the inputs, "
                "the targets or a too-large update.",
                "lower the learning rate and clip gradients "
                "(optimizer clipnorm=1.0).",
            )
        rate = facts.learning_rate if facts is not None else None
        said = f" (learning rate {_fmt(rate)})" if rate is not None else ""
        if kind == "learning_rate_high":
            return (
                f"weights move by {_fmt(head.value)} of their norm per "
                f"step{said}; about 1e-3 is typical.",
                "lower the learning rate by about 10x.",
            )
        return (
            f"weights move by at most {_fmt(head.value)} of their norm per "
            f"step{said}; about 1e-3 is typical.",
            "raise the learning rate by about 10x.",
        )


def _past_margin(f: Finding) -> bool:
    """Whether a training-time finding passes its threshold by the margin."""
    if f.kind in ("dead_units", "saturation"):
        return f.value >= FRACTION_MARGIN * f.threshold
    if f.kind == "vanishing_gradients":
        return f.value <= f.threshold / RATIO_MARGIN
    if f.kind == "exploding_gradients":
        return f.value >= f.threshold * RATIO_MARGIN
    return True


def _extreme(d: Diagnosis) -> bool:
    """A condition too far past its threshold to wait for a second event."""
    if d.kind in ("nonfinite", "symmetric_weights"):
        return True
    if d.kind == "representation_collapse":
        return False
    v, thr = d.value, d.threshold
    if not (_finite(v) and _finite(thr)):
        return True
    if d.kind in ("dead_units", "saturation"):
        return v >= 0.9
    if d.kind == "learning_rate_high":
        # Half the weights' norm per step replaces them within two steps;
        # the next event may already show only the wreck. Any layer counts:
        # the rate is shared.
        moves = [f.value for f in d.findings if f.kind == d.kind]
        return max(moves, default=v) >= 0.5
    if d.kind in ("vanishing_signal", "vanishing_gradients"):
        return v <= thr / RATIO_MARGIN
    if d.kind == "learning_rate_low":
        # A slow run costs time, not the model: only weights that stand
        # still (ten times below the threshold) are said at once.
        return v <= thr / RATIO_MARGIN
    return v >= thr * RATIO_MARGIN


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _scale_text(kernel) -> str:
    if kernel is None or kernel.scale_ratio is None:
        return "the kernel scale does not match the activation."
    return (
        f"the kernel of '{kernel.path}' ({kernel.initializer}) has std "
        f"{_fmt(kernel.std)}, {_fmt(kernel.scale_ratio)}x the std "
        f"{_fmt(kernel.target_std)} the gain table gives for "
        f"{kernel.activation}."
    )
