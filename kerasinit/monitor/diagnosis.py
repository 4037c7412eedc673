class Thresholds:  # placeholder, replaced by the monitor implementation
    pass
