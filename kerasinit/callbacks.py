"""Keras callbacks: `HealthMonitor` and what it reports.

`HealthMonitor` and `Thresholds` load on first access: the monitor package
imports its backend's machinery, and a JAX or PyTorch process that only
uses the initializers and layers must not pay for it (TensorFlow, once
imported, reserves GPU memory that a JAX or PyTorch process needs).
"""

import importlib
from typing import TYPE_CHECKING, Any

from kerasinit.findings import (
    DeadUnitsWarning,
    ExplodingGradientsWarning,
    Finding,
    HealthWarning,
    NonFiniteWarning,
    SaturationWarning,
    VanishingGradientsWarning,
)

if TYPE_CHECKING:
    from kerasinit.monitor.callback import HealthMonitor
    from kerasinit.monitor.diagnosis import Thresholds

_LAZY = {
    "HealthMonitor": "kerasinit.monitor.callback",
    "Thresholds": "kerasinit.monitor.diagnosis",
}

__all__ = [
    "DeadUnitsWarning",
    "ExplodingGradientsWarning",
    "Finding",
    "HealthMonitor",
    "HealthWarning",
    "NonFiniteWarning",
    "SaturationWarning",
    "Thresholds",
    "VanishingGradientsWarning",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    # Cached so that later lookups are plain attribute reads.
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
