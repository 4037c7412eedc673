"""Routes over real 50-layer training runs (Python loader): the overview,
the verdicts and the values the depth profile and the health map draw."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kerasinit_tensorboard import schema

from ._client import PluginClient, make_plugin


@pytest.fixture(scope="module")
def client(dash_runs):
    return PluginClient(make_plugin(dash_runs.logdir))


def _adjacent_spans(layers, order):
    """Runs of adjacent layers in model order, recomputed for the test."""
    spans = []
    for index in sorted(order.index(layer) for layer in set(layers)):
        if spans and index == spans[-1][-1] + 1:
            spans[-1].append(index)
        else:
            spans.append([index])
    return [[order[i] for i in span] for span in spans]


def test_runs_overview(client, dash_runs):
    body = client.json("/runs")
    runs = {r["run"]: r for r in body["runs"]}
    assert set(runs) == {
        dash_runs.healthy.name,
        dash_runs.vanishing.name,
        dash_runs.saturating.name,
        dash_runs.nonfinite.name,
        dash_runs.hostile,
        dash_runs.hostile_dir,
    }
    for run in (
        dash_runs.healthy,
        dash_runs.vanishing,
        dash_runs.saturating,
        dash_runs.nonfinite,
    ):
        row = runs[run.name]
        assert row["layers"] == run.layers
        assert row["events"] == len(run.steps)
        assert row["step"] == run.steps[-1]
        assert row["findings"] == len(run.findings)
        severities = {f.severity for f in run.findings}
        expected = next(
            (s for s in ("error", "warning", "info") if s in severities), None
        )
        assert row["severity"] == expected
    assert runs[dash_runs.nonfinite.name]["severity"] == "error"
    assert runs[dash_runs.hostile_dir]["verdicts"] == []
    assert runs[dash_runs.hostile_dir]["severity"] is None
    assert runs[dash_runs.vanishing.name]["source"] == "diagnoses"
    assert runs[dash_runs.saturating.name]["source"] == "findings"
    brief = runs[dash_runs.vanishing.name]["verdicts"]
    assert sorted((v["kind"], v["first_layer"], v["span"]) for v in brief) == (
        sorted(
            (d.kind, d.first_layer, len(d.layers))
            for d in dash_runs.vanishing.diagnoses
        )
    )
    # The page takes every list it shows from here, not from its own copy.
    assert list(body["metrics"]) == list(schema.HEATMAP_METRICS)
    assert body["metrics"]["act_std"]["scale"] == "log"
    assert body["severities"] == list(schema.SEVERITIES)


def test_verdicts_are_the_diagnoses(client, dash_runs):
    run = dash_runs.vanishing
    body = client.json("/verdicts", {"run": run.name})
    assert body["source"] == "diagnoses"
    assert body["layers"] == run.layers
    got = {v["kind"]: v for v in body["verdicts"]}
    assert len(got) == len(body["verdicts"]) == len(run.diagnoses)
    for diagnosis in run.diagnoses:
        verdict = got[diagnosis.kind]
        expected = diagnosis.to_dict()
        for key in ("first_layer", "layers", "step", "evidence", "cause"):
            assert verdict[key] == expected[key]
        assert verdict["advice"] == diagnosis.advice
        assert [f["layer"] for f in verdict["findings"]] == [
            f.layer for f in diagnosis.findings
        ]
    # Gradients vanish from the first layer on: that verdict covers every
    # layer, and the units die further down.
    assert got["vanishing_gradients"]["layers"] == run.layers
    assert got["dead_units"]["first_layer"] != run.layers[0]


def test_verdicts_group_findings_without_diagnoses(client, dash_runs):
    run = dash_runs.saturating
    body = client.json("/verdicts", {"run": run.name})
    assert body["source"] == "findings"
    expected = set()
    for kind in {f.kind for f in run.findings}:
        layers = [f.layer for f in run.findings if f.kind == kind]
        for span in _adjacent_spans(layers, run.layers):
            expected.add((kind, tuple(span)))
    got = {(v["kind"], tuple(v["layers"])) for v in body["verdicts"]}
    assert got == expected
    # One row per problem, not one per layer.
    assert len(body["verdicts"]) < len(run.findings)
    # Most severe first.
    ranks = [schema.SEVERITIES.index(v["severity"]) for v in body["verdicts"]]
    assert ranks == sorted(ranks, reverse=True)
    for verdict in body["verdicts"]:
        values = {f["layer"]: f["value"] for f in verdict["findings"]}
        assert set(values) == set(verdict["layers"])
        head = next(
            f
            for f in run.findings
            if f.kind == verdict["kind"] and f.layer == verdict["first_layer"]
        )
        assert verdict["value"] == pytest.approx(head.value, rel=1e-6)
        assert verdict["advice"] == head.advice


def test_health_keeps_zero_and_nonfinite(client, dash_runs):
    # What the depth profile and the health map draw, value by value.
    for run in (dash_runs.vanishing, dash_runs.nonfinite):
        health = client.json("/health", {"run": run.name})
        assert health["steps"] == run.steps
        for metric, spec in schema.HEATMAP_METRICS.items():
            assert health["metrics"][metric]["scale"] == spec["scale"]
            values = health["metrics"][metric]["values"]
            for i, layer in enumerate(run.layers):
                for event, stats in enumerate(run.stats):
                    want = np.float32(stats[layer][metric])
                    got = values[i][event]
                    if np.isnan(want):
                        assert got == "nan"
                    elif np.isinf(want):
                        assert got == ("inf" if want > 0 else "-inf")
                    else:
                        assert got == pytest.approx(float(want), rel=1e-6)
    # Both kinds of value are really there to be drawn.
    vanishing = client.json("/health", {"run": dash_runs.vanishing.name})
    grads = vanishing["metrics"]["grad_norm"]["values"]
    assert any(v == 0.0 for row in grads for v in row)
    broken = client.json("/health", {"run": dash_runs.nonfinite.name})
    stds = broken["metrics"]["act_std"]["values"]
    assert any(v == "nan" for row in stds for v in row)
    # At pre-flight, before the update that diverges, every layer is finite.
    assert all(
        isinstance(row[0], float) and math.isfinite(row[0]) and row[0] > 0
        for row in stds
    )


def test_verdicts_bad_params(client, dash_runs):
    for query, fragment in (
        ({}, "Missing query parameter `run`"),
        ({"run": "nope"}, "Received: run='nope'"),
        ({"run": dash_runs.vanishing.name, "kind": "x"}, "Received: ['kind']"),
    ):
        response = client.get("/verdicts", query)
        assert response.status_code == 400
        assert fragment in response.get_json()["error"]
