"""Training-health monitor: probe -> stats -> diagnosis -> summaries.

The public entry points are `kerasinit.callbacks.HealthMonitor` and
`kerasinit.callbacks.Thresholds`.
"""

from kerasinit.monitor.callback import HealthMonitor
from kerasinit.monitor.diagnosis import Thresholds

__all__ = ["HealthMonitor", "Thresholds"]
