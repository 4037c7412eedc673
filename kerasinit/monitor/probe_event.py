"""`ProbeEvent`: one logging event's statistics, as the diagnosis reads them.

Every rule reads its numbers through `metric`, so that a statistic that
was not measured (missing, `None` or not finite) reads as `None` alike.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["ProbeEvent", "metric"]


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


def metric(stats: Mapping[str, Any] | None, name: str) -> float | None:
    """One statistic of one layer, or `None` where it was not measured.

    Args:
        stats: a layer's ``{metric: value}`` from `ProbeEvent.layers`, or
            `None` for a layer the event does not hold.
        name: the metric's name.

    Returns:
        The value as a finite float, or `None`.
    """
    if not stats:
        return None
    return _num(stats.get(name))
