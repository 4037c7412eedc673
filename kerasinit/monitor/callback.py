class HealthMonitor:  # placeholder, replaced by the monitor implementation
    pass
