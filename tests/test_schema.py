import json
import subprocess
import sys

import pytest

from kerasinit_tensorboard import schema


def test_record_round_trip():
    text = schema.record(
        step=40,
        event=3,
        epoch=1,
        phase="epoch",
        layers=[{"name": "d/1", "class": "Dense", "activation": "relu"}],
        stats={"d/1": {"dead_fraction": 0.25, "act_std": None}},
        findings=[{"kind": "dead_units", "layer": "d/1"}],
    )
    data = schema.parse_record(text.encode("utf-8"))
    assert data["version"] == schema.SCHEMA_VERSION
    assert data["step"] == 40 and data["event"] == 3
    assert data["stats"]["d/1"]["act_std"] is None


def test_record_refuses_nan():
    with pytest.raises(ValueError):
        schema.record(
            step=0,
            event=0,
            epoch=None,
            phase="preflight",
            layers=[],
            stats={"a": {"act_std": float("nan")}},
            findings=[],
        )


def test_newer_or_foreign_records_are_refused():
    with pytest.raises(ValueError, match="newer"):
        schema.parse_record(json.dumps({"version": schema.SCHEMA_VERSION + 1}))
    with pytest.raises(ValueError, match="not a kerasinit record"):
        schema.parse_record("[1, 2]")


def test_scalar_tags_split_on_the_first_slash_only():
    tag = schema.scalar_tag("dead_fraction", "encoder/dense_1")
    assert tag == "dead_fraction/encoder/dense_1"
    assert schema.split_scalar_tag(tag) == ("dead_fraction", "encoder/dense_1")
    assert schema.split_scalar_tag("epoch_loss") is None
    assert schema.split_scalar_tag("loss/dense") is None


def test_metric_names_are_unique_and_heatmap_ones_exist():
    metrics = schema.ACTIVATION_METRICS + schema.GRADIENT_METRICS
    assert len(set(metrics)) == len(metrics)
    assert set(schema.HEATMAP_METRICS) <= set(metrics)
    assert set(schema.METRIC_LABELS) == set(metrics)


def test_heatmap_scales():
    for metric, spec in schema.HEATMAP_METRICS.items():
        assert spec["scale"] in ("log", "fraction")
        # Fractions live in [0, 1]; the others span decades.
        assert (spec["scale"] == "fraction") == metric.endswith("_fraction")
        assert spec["transform"] == (
            "log10" if spec["scale"] == "log" else "identity"
        )


def test_severities_match_the_findings():
    from kerasinit.findings import SEVERITIES

    assert schema.SEVERITIES == SEVERITIES


def test_version_1_record_has_no_diagnoses():
    data = schema.parse_record(
        json.dumps({"version": 1, "step": 0, "findings": []})
    )
    assert data["diagnoses"] == []


def test_finding_kinds_match_the_warning_classes():
    from kerasinit.findings import WARNING_CLASSES

    assert set(schema.FINDING_KINDS) <= set(WARNING_CLASSES)


def test_schema_imports_no_tensorflow():
    code = (
        "import sys, kerasinit_tensorboard.schema; "
        "print([m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
