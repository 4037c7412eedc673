"""The current diagnosis rules: thresholds, per-layer findings, rate limits."""

import re

import pytest

from kerasinit.callbacks import Thresholds
from kerasinit.monitor import diagnosis


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dead_fraction": 0.0},
        {"dead_fraction": 1.5},
        {"saturation_fraction": float("nan")},
        {"saturation_derivative": "0.1"},
        {"vanishing_ratio": 2.0},
        {"exploding_ratio": 0.5},
        {"exploding_ratio": float("inf")},
        {"dead_min_examples": 0},
    ],
)
def test_thresholds_reject_bad_values(kwargs):
    (name,) = kwargs
    with pytest.raises(ValueError, match=re.escape(f"`{name}`")):
        Thresholds(**kwargs)


def test_thresholds_defaults_round_trip():
    t = Thresholds()
    assert Thresholds(**t.get_config()).get_config() == t.get_config()


def _stats(**layers):
    return {name: dict(values) for name, values in layers.items()}


def test_diagnose_rules_and_first_nonfinite_layer():
    t = Thresholds()
    layer_stats = _stats(
        a={"dead_fraction": 0.5, "grad_norm": 1e-5, "act_nonfinite": 0},
        b={"saturation_fraction": 0.9, "grad_norm": 1e4, "act_nonfinite": 3},
        c={"act_nonfinite": 7, "grad_norm": 1.0},
        out={"grad_norm": 1.0},
    )
    found = diagnosis.diagnose(
        layer_stats,
        ["a", "b", "c", "out"],
        step=5,
        thresholds=t,
        reference_grad_norm=1.0,
        reference_layer="out",
        dead_applies=["a"],
        saturation_applies=["b"],
    )
    kinds = [(f.kind, f.layer) for f in found]
    assert kinds == [
        ("nonfinite", "b"),
        ("dead_units", "a"),
        ("vanishing_gradients", "a"),
        ("saturation", "b"),
    ]
    for f in found:
        assert f.step == 5 and f"'{f.layer}'" in f.message
        assert "step 5" in f.message and f.advice
    # The dead rule needs enough probe examples to mean anything.
    few = diagnosis.diagnose(
        layer_stats,
        ["a"],
        step=0,
        thresholds=t,
        probe_examples=8,
        dead_applies=["a"],
    )
    assert [f.kind for f in few] == []


def test_thresholds_take_numpy_scalars_and_refuse_non_integers():
    import numpy as np

    t = Thresholds(
        persistence=np.int64(3),
        dead_min_examples=np.int32(8),
        dead_fraction=np.float32(0.5),
    )
    assert (t.persistence, t.dead_min_examples) == (3, 8)
    assert type(t.persistence) is int and t.dead_fraction == 0.5
    for bad in ({"persistence": 2.0}, {"dead_min_examples": True}):
        with pytest.raises(ValueError, match="positive integer"):
            Thresholds(**bad)
