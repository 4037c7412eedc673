"""`ModelView`: what a diagnosis rule reads beyond one layer's statistics.

A rule over one layer also needs its place among the monitored layers, the
statistics of the layer before it, and its kernel as the model holds it
now. The kernels come from `kerasinit.monitor.model_facts`, read at most
once per event and only when a rule asks, since reading them syncs the
model's weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kerasinit.monitor.probe_event import ProbeEvent, metric
from kerasinit.monitor.relu_correlation import relu_input_cosine

__all__ = ["ModelView"]


class ModelView:
    """The monitored layers in model order, with the model's facts on demand.

    Args:
        specs: the monitored layers in model order (each a
            `kerasinit.monitor.probe.LayerSpec`).
        facts: a `kerasinit.monitor.model_facts.ModelFacts`, a function
            returning one (called at most once per event, see
            `start_event`), or `None` (no facts).
    """

    def __init__(self, specs: Sequence[Any], facts: Any = None):
        self.specs = list(specs)
        self.facts = facts
        self.order = [s.path for s in self.specs]
        self.index = {p: i for i, p in enumerate(self.order)}
        self.spec = {s.path: s for s in self.specs}
        self._facts_step: int | None = None
        self._step: int | None = None
        self._facts_value = None if callable(facts) else facts

    def start_event(self, step: int) -> None:
        """Mark a new event: facts asked for from now on are read anew."""
        self._step = step

    def model_facts(self):
        """The model's facts at this event, or `None` without any."""
        # Only asked for while explaining a finding: read once per event.
        if callable(self.facts) and self._facts_step != self._step:
            self._facts_value = self.facts()
            self._facts_step = self._step
        return self._facts_value

    def kernel(self, spec):
        """The facts of the kernel feeding `spec`, or `None`."""
        facts = self.model_facts()
        if facts is None:
            return None
        owner = getattr(spec, "weight_owner", None) or spec.path
        return facts.kernel(owner)

    def previous(self, path: str, event: ProbeEvent, name: str):
        """Metric `name` of the monitored layer before `path`, or `None`."""
        i = self.index[path]
        if i == 0:
            return None
        return metric(event.layers.get(self.order[i - 1]), name)

    def fed_by_inputs(self, spec) -> bool:
        """Whether only the first kernel stands between inputs and `spec`."""
        if self.index.get(spec.path) == 0:
            return True
        facts = self.model_facts()
        if facts is None or not facts.kernels:
            return False
        owner = getattr(spec, "weight_owner", None) or spec.path
        return owner == facts.kernels[0].path

    def input_cosine(self, path: str, event: ProbeEvent) -> float | None:
        """How alike the examples are where they enter the layer at `path`.

        The previous monitored layer's cosine is that, when it is the
        layer just before; when only every n-th layer is monitored it is a
        lower bound, since a ReLU stack only aligns examples further. A
        ReLU layer's own output cosine gives its input's exactly through
        the inverse arc-cosine map, so the larger of the two is used.
        """
        found = [self.previous(path, event, "cosine_similarity")]
        name = getattr(self.spec[path].activation, "name", None)
        if name in ("relu", "relu6"):
            own = metric(event.layers.get(path), "cosine_similarity")
            if own is not None:
                found.append(relu_input_cosine(own))
        found = [c for c in found if c is not None]
        return max(found) if found else None

    def inputs_cosine(self, event: ProbeEvent) -> float | None:
        """The probe inputs' mean cosine: measured, or read back.

        Read back from the first monitored layer when it is fed by the
        inputs: through the inverse ReLU map for a ReLU layer, as is for
        any other (a linear layer keeps the cosine in expectation).
        """
        if event.input_cosine is not None:
            return event.input_cosine
        if not self.specs or not self.fed_by_inputs(self.specs[0]):
            return None
        spec = self.specs[0]
        cosine = metric(event.layers.get(spec.path), "cosine_similarity")
        if cosine is None:
            return None
        if getattr(spec.activation, "name", None) in ("relu", "relu6"):
            return relu_input_cosine(cosine)
        return cosine
