import math
import warnings

import pytest

from kerasinit import findings
from kerasinit.findings import Finding


def _finding(**overrides):
    fields = dict(
        kind="dead_units",
        layer="dense_1",
        step=120,
        value=0.62,
        threshold=0.5,
        message="62% of units in `dense_1` are dead at step 120 "
        "(threshold 50%).",
        advice="Use He initialization or LeakyReLU.",
    )
    fields.update(overrides)
    return Finding(**fields)


def test_every_kind_has_its_own_warning_under_one_base():
    for kind, cls in findings.WARNING_CLASSES.items():
        assert issubclass(cls, findings.HealthWarning), kind
        assert _finding(kind=kind).warning_class is cls


def test_one_kind_can_be_escalated_alone():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", findings.HealthWarning)
        warnings.simplefilter("error", findings.DeadUnitsWarning)
        warnings.warn("fine", findings.SaturationWarning, stacklevel=1)
        with pytest.raises(findings.DeadUnitsWarning):
            warnings.warn("dead", findings.DeadUnitsWarning, stacklevel=1)


def test_bad_kind_or_severity_is_rejected():
    with pytest.raises(ValueError, match="kind='dead'"):
        _finding(kind="dead")
    with pytest.raises(ValueError, match="severity='fatal'"):
        _finding(severity="fatal")


def test_to_dict_is_json_safe_and_str_has_the_fix():
    f = _finding(value=math.inf, threshold=math.nan)
    d = f.to_dict()
    assert d["value"] is None and d["threshold"] is None
    assert d["layer"] == "dense_1" and d["step"] == 120
    assert str(f).endswith("Fix: Use He initialization or LeakyReLU.")
