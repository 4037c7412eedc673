"""Fixtures of the monitor's tests."""

import pytest

from kerasinit.callbacks import HealthMonitor


@pytest.fixture(autouse=True)
def _a_record_every_batch_event(request, monkeypatch):
    """The training-batch tests read one record per event.

    A monitor writes the record of training-batch events at most once a
    second; these tests count and read the records of every event, so the
    interval is 0 here (`test_in_step_dispatch.py` tests the interval
    itself, on a monitor's own attribute).
    """
    if request.module.__name__.rsplit(".", 1)[-1].startswith("test_in_step"):
        monkeypatch.setattr(HealthMonitor, "BATCH_RECORD_INTERVAL_S", 0.0)
