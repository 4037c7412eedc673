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
}


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
        if self.kind not in WARNING_CLASSES:
            raise ValueError(
                f"Expected `kind` to be one of {sorted(WARNING_CLASSES)}. "
                f"Received: kind={self.kind!r}"
            )
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"Expected `severity` to be one of {SEVERITIES}. "
                f"Received: severity={self.severity!r}"
            )

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
