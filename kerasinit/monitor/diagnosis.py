"""`Diagnoser`: per-layer findings grouped into one verdict per problem.

`kerasinit.monitor.layer_rules.diagnose` and the rules of
`kerasinit.monitor.event_rules` give the `kerasinit.findings.Finding`
objects of one event (the evidence); the `Diagnoser` groups them into one
`kerasinit.findings.Diagnosis` per problem, says where it starts, takes its
cause from `kerasinit.monitor.causes`, and keeps the only state: how long
each condition has lasted and which are reported. `Thresholds`,
`diagnose`, `ProbeEvent`, the margins and the ReLU correlation functions
are re-exported here. The reasoning behind every rule and default
threshold is in ``docs/diagnosis.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from kerasinit.findings import Diagnosis, Finding
from kerasinit.monitor.causes import (
    INPUT_OFFSET_COSINE as INPUT_OFFSET_COSINE,
)
from kerasinit.monitor.causes import explain, fmt
from kerasinit.monitor.event_rules import (
    FRACTION_MARGIN,
    RATIO_MARGIN,
    SEVERITY,
    dead_explained,
    harmless_saturation,
    past_margin,
    signal_findings,
    update_findings,
)
from kerasinit.monitor.event_rules import (
    RECURRENT_TANH_RMS as RECURRENT_TANH_RMS,
)
from kerasinit.monitor.layer_rules import diagnose, is_finite
from kerasinit.monitor.model_view import ModelView
from kerasinit.monitor.probe_event import ProbeEvent, metric
from kerasinit.monitor.relu_correlation import (
    expected_dead_fraction,
    relu_cosine,
    relu_input_cosine,
)
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


@dataclasses.dataclass
class _Root:
    kind: str
    index: int
    members: list[Finding]


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
        self._view = ModelView(specs, facts)
        self.specs = self._view.specs
        self.thresholds = thresholds
        self.facts = facts
        self.reference_layer = reference_layer
        self.order = self._view.order
        self._index = self._view.index
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
        view = self._view
        view.start_event(event.step)
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
                if past_margin(f) and not harmless_saturation(f, event, t)
            ]
        # Units off because the examples became alike are a symptom of
        # collapse, not broken units.
        regrouped = []
        for f in found:
            if f.kind == "dead_units":
                explained = dead_explained(f, event, view)
                if explained is not None:
                    f = explained
            regrouped.append(f)
        found = regrouped
        found += signal_findings(event, view, t)
        last, self._last_step = self._last_step, event.step
        found += update_findings(event, last, view, t)
        return found

    # -- grouping ------------------------------------------------------------

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
        explained = explain(
            kind, first, head, event, self._view, self.thresholds
        )
        return Diagnosis(
            kind=kind,
            severity=SEVERITY[kind],
            first_layer=first,
            layers=tuple(layers),
            step=event.step,
            value=head.value,
            threshold=head.threshold,
            evidence=evidence,
            cause=explained.cause,
            advice=explained.advice,
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
                value = metric(prev, "saturation_fraction")
                if value is None or value < floor:
                    break
                i -= 1
            return self.order[i]
        if head.kind not in ("exploding_signal", "vanishing_signal"):
            return head.layer
        g = self.thresholds.signal_gain
        i = self._index[head.layer]
        while i > 0:
            gain = metric(event.layers.get(self.order[i]), "signal_gain")
            prev = self.order[i - 1]
            prev_gain = metric(event.layers.get(prev), "signal_gain")
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
                f"output RMS {fmt(metric(stats, 'act_rms'))} at "
                f"'{first}', {fmt(metric(stats, 'signal_gain'))}x its input"
            )
            if head.layer != first:
                words += f", {fmt(value)} at '{head.layer}'"
            words += f" (threshold {fmt(head.threshold)})"
        else:
            # "Layer 'x': what = v (threshold t)" without its step.
            words = head.message.rsplit(" at step", 1)[0]
        others = len({f.layer for f in group}) - 1
        if others > 0:
            words += (
                f"; {len(group) - 1} related finding(s) on {others} layer(s)"
            )
        return f"{words} at step {event.step}."


def _extreme(d: Diagnosis) -> bool:
    """A condition too far past its threshold to wait for a second event."""
    if d.kind in ("nonfinite", "symmetric_weights"):
        return True
    if d.kind == "representation_collapse":
        return False
    v, thr = d.value, d.threshold
    if not (is_finite(v) and is_finite(thr)):
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
