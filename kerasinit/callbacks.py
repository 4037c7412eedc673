"""Keras callbacks: `HealthMonitor` and what it reports."""

from kerasinit.findings import (
    DeadUnitsWarning,
    ExplodingGradientsWarning,
    Finding,
    HealthWarning,
    NonFiniteWarning,
    SaturationWarning,
    VanishingGradientsWarning,
)
from kerasinit.monitor.callback import HealthMonitor
from kerasinit.monitor.diagnosis import Thresholds

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
