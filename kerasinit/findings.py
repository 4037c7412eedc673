"""`Finding`, the result type of every kerasinit diagnosis, and its warnings.

The health monitor (`kerasinit.callbacks.HealthMonitor`) and the static model
check (`kerasinit.check`) both report problems as `Finding` objects. Each
kind of finding has its own warning class, all under `HealthWarning`, so a
user can silence or escalate exactly one kind::

    import warnings, kerasinit as ki
    warnings.simplefilter("error", ki.callbacks.DeadUnitsWarning)
"""

from __future__ import annotations

import dataclasses
import math

__all__ = [
    "Finding",
    "Diagnosis",
    "HealthWarning",
    "DeadUnitsWarning",
    "SaturationWarning",
    "VanishingGradientsWarning",
    "ExplodingGradientsWarning",
    "NonFiniteWarning",
    "InitMismatchWarning",
    "SymmetricWeightsWarning",
    "DeepSaturatingStackWarning",
    "SignalPropagationWarning",
    "CollapseWarning",
    "LearningRateWarning",
    "WARNING_CLASSES",
    "SEVERITIES",
]

SEVERITIES = ("info", "warning", "error")


class HealthWarning(UserWarning):
    """Base class of every warning kerasinit raises about a model's health."""


class DeadUnitsWarning(HealthWarning):
    """Units output their dead value (0 for ReLU) for every probe example."""


class SaturationWarning(HealthWarning):
    """Outputs sit where the activation's derivative is nearly zero."""


class VanishingGradientsWarning(HealthWarning):
    """A layer's gradient norm is orders of magnitude below the output's."""


class ExplodingGradientsWarning(HealthWarning):
    """A layer's gradient norm is orders of magnitude above the output's."""


class NonFiniteWarning(HealthWarning):
    """NaN or infinity in activations or gradients."""


class InitMismatchWarning(HealthWarning):
    """A kernel's initializer does not match the activation it feeds."""


class SymmetricWeightsWarning(HealthWarning):
    """A zero or constant kernel: every unit computes the same thing."""


class DeepSaturatingStackWarning(HealthWarning):
    """Many sigmoid/tanh layers in a row with no normalization between."""


class SignalPropagationWarning(HealthWarning):
    """The forward signal explodes or vanishes through the model at init."""


class CollapseWarning(HealthWarning):
    """Layer outputs become the same for every example (rank collapse)."""


class LearningRateWarning(HealthWarning):
    """Weight updates are far too large or far too small for the weights."""


#: Finding kind -> warning class. Kinds are stable identifiers: they appear in
#: TensorBoard records, the dashboard and `Finding.kind`.
WARNING_CLASSES: dict[str, type[HealthWarning]] = {
    "dead_units": DeadUnitsWarning,
    "saturation": SaturationWarning,
    "vanishing_gradients": VanishingGradientsWarning,
    "exploding_gradients": ExplodingGradientsWarning,
    "nonfinite": NonFiniteWarning,
    "init_mismatch": InitMismatchWarning,
    "symmetric_weights": SymmetricWeightsWarning,
    "deep_saturating_stack": DeepSaturatingStackWarning,
    "exploding_signal": SignalPropagationWarning,
    "vanishing_signal": SignalPropagationWarning,
    "representation_collapse": CollapseWarning,
    "learning_rate_high": LearningRateWarning,
    "learning_rate_low": LearningRateWarning,
}


def _check_kind_and_severity(kind: str, severity: str) -> None:
    if kind not in WARNING_CLASSES:
        raise ValueError(
            f"Expected `kind` to be one of {sorted(WARNING_CLASSES)}. "
            f"Received: kind={kind!r}"
        )
    if severity not in SEVERITIES:
        raise ValueError(
            f"Expected `severity` to be one of {SEVERITIES}. "
            f"Received: severity={severity!r}"
        )


@dataclasses.dataclass(frozen=True)
class Finding:
    """One diagnosed problem: what, where, when, how bad, and the fix.

    Attributes:
        kind: one of `WARNING_CLASSES`' keys.
        layer: the layer's path in the model (``"block1/dense"``), or ``""``
            for a model-wide finding.
        step: the global training step it was measured at (0 before
            training), or ``None`` for a static check.
        value: the measured value.
        threshold: the threshold it crossed.
        message: one sentence: layer, value, threshold, step.
        advice: the concrete fix.
        severity: ``"info"``, ``"warning"`` or ``"error"``.
    """

    kind: str
    layer: str
    step: int | None
    value: float
    threshold: float
    message: str
    advice: str
    severity: str = "warning"

    def __post_init__(self):
        _check_kind_and_severity(self.kind, self.severity)

    @property
    def warning_class(self) -> type[HealthWarning]:
        return WARNING_CLASSES[self.kind]

    def __str__(self) -> str:
        return f"{self.message} Fix: {self.advice}"

    def to_dict(self) -> dict:
        """JSON-safe dict (non-finite numbers become ``None``)."""
        out = dataclasses.asdict(self)
        for key in ("value", "threshold"):
            v = out[key]
            out[key] = float(v) if v is not None and math.isfinite(v) else None
        return out


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """One problem, once: where it starts, how far it spreads, why, the fix.

    Per-layer `Finding` objects are the evidence; a `Diagnosis` is what a
    user reads. Conditions that follow from an earlier layer's (units dead
    below a collapsed layer, gradients vanishing below a dead one) are part
    of the earlier layer's diagnosis, not diagnoses of their own.

    Attributes:
        kind: one of `WARNING_CLASSES`' keys: the root condition.
        severity: ``"info"``, ``"warning"`` or ``"error"``.
        first_layer: the path of the layer where the problem starts, or
            ``""`` for a model-wide diagnosis.
        layers: every layer the problem covers, in model order, starting
            with `first_layer`.
        step: the global step at which it was first diagnosed.
        value: the measured value at `first_layer` (the evidence's headline).
        threshold: the threshold that value crossed.
        evidence: one sentence of numbers: what was measured where.
        cause: the most likely cause, read from the model, the inputs or the
            optimizer (e.g. "kernel std 1.0 is 16x the He std 0.0625").
        advice: one concrete fix.
        findings: the per-layer findings this diagnosis groups.
        source: what was measured: ``"probe"`` (the monitor's fixed probe
            batch) or ``"batch"`` (the training batch, inside the train
            step).
    """

    kind: str
    severity: str
    first_layer: str
    layers: tuple[str, ...]
    step: int | None
    value: float
    threshold: float
    evidence: str
    cause: str
    advice: str
    findings: tuple[Finding, ...] = ()
    source: str = "probe"

    def __post_init__(self):
        _check_kind_and_severity(self.kind, self.severity)
        if self.source not in ("probe", "batch"):
            raise ValueError(
                'Expected `source` to be "probe" or "batch". '
                f"Received: source={self.source!r}"
            )

    @property
    def warning_class(self) -> type[HealthWarning]:
        return WARNING_CLASSES[self.kind]

    @property
    def message(self) -> str:
        """One line: kind, where it starts, how far it spreads, evidence."""
        where = self.first_layer or "the model"
        span = (
            f" and {len(self.layers) - 1} layer(s) after it"
            if len(self.layers) > 1
            else ""
        )
        kind = self.kind.replace("_", " ")
        on = " (on the training batch)" if self.source == "batch" else ""
        return f"{kind} from '{where}'{span}{on}: {self.evidence}"

    def __str__(self) -> str:
        return f"{self.message} Likely cause: {self.cause} Fix: {self.advice}"

    def to_dict(self) -> dict:
        """JSON-safe dict (non-finite numbers become ``None``)."""

        def num(v):
            return float(v) if v is not None and math.isfinite(v) else None

        return {
            "kind": self.kind,
            "severity": self.severity,
            "first_layer": self.first_layer,
            "layers": list(self.layers),
            "step": self.step,
            "value": num(self.value),
            "threshold": num(self.threshold),
            "message": self.message,
            "evidence": self.evidence,
            "cause": self.cause,
            "advice": self.advice,
            "findings": [f.to_dict() for f in self.findings],
            "source": self.source,
        }
