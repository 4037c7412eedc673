"""Routes over the event files of real short training runs (Python loader)."""

from __future__ import annotations

import math

import pytest

from kerasinit_tensorboard import schema

from ._client import PluginClient, make_plugin


@pytest.fixture(scope="module")
def client(real_runs):
    return PluginClient(make_plugin(real_runs.logdir))


def test_runs(client, real_runs):
    runs = {r["run"]: r for r in client.json("/runs")["runs"]}
    assert set(runs) == {real_runs.broken, real_runs.healthy, real_runs.hostile}
    for name in (real_runs.broken, real_runs.healthy):
        assert runs[name]["layers"] == real_runs.layers
        assert runs[name]["events"] == real_runs.events
    assert runs[real_runs.broken]["findings"] == len(real_runs.broken_findings)
    assert runs[real_runs.healthy]["findings"] == 0


def test_health_map_shape_and_values(client, real_runs):
    health = client.json("/health", {"run": real_runs.broken})
    assert health["layers"] == real_runs.layers
    assert len(health["steps"]) == real_runs.events
    assert health["steps"] == sorted(health["steps"])
    assert health["thinned"] is False
    for metric in schema.HEATMAP_METRICS:
        values = health["metrics"][metric]["values"]
        assert len(values) == len(real_runs.layers)
        assert all(len(row) == real_runs.events for row in values)
    # N(0, 0.001) kernels: each layer scales the gradient by about
    # sqrt(fan_in) * 0.001 * sqrt(1/2) ~ 4e-3, so the first layer's gradient
    # is many orders of magnitude below the last one's at every step.
    grad = health["metrics"]["grad_norm"]["values"]
    for column in range(real_runs.events):
        first, last = grad[0][column], grad[-1][column]
        assert last > 0
        assert first is not None and first < last * 1e-10


def test_findings_match_the_monitor(client, real_runs):
    found = client.json("/findings", {"run": real_runs.broken})["findings"]
    expected = {(f.layer, f.kind) for f in real_runs.broken_findings}
    assert {(f["layer"], f["kind"]) for f in found} == expected
    assert ("dense_0", "vanishing_gradients") in expected
    # One layer can hold two findings of a kind at a step (units off where
    # the examples are alike, and the examples' similarity itself): the
    # route returns the monitor's findings one for one, in its order.
    assert len(found) == len(real_runs.broken_findings)
    for f, source in zip(found, real_runs.broken_findings):
        assert (f["layer"], f["kind"], f["step"]) == (
            source.layer,
            source.kind,
            source.step,
        )
        assert f["advice"] == source.advice
        assert f["threshold"] == pytest.approx(source.threshold)
        if math.isfinite(source.value):
            assert f["value"] == pytest.approx(source.value, rel=1e-6)
    vanishing = client.json(
        "/findings", {"run": real_runs.broken, "kind": "vanishing_gradients"}
    )["findings"]
    assert vanishing and all(
        f["kind"] == "vanishing_gradients" for f in vanishing
    )
    assert client.json("/findings", {"run": real_runs.healthy})["findings"] == [
        f.to_dict() for f in real_runs.healthy_findings
    ]


def test_verdicts_of_the_monitor(client, real_runs):
    body = client.json("/verdicts", {"run": real_runs.broken})
    found = {(f.kind, f.layer) for f in real_runs.broken_findings}
    shown = [
        (f["kind"], f["layer"]) for v in body["verdicts"] for f in v["findings"]
    ]
    # The monitor's diagnoses, or its findings grouped: either way one row
    # per problem, each row's evidence the monitor's own findings.
    assert set(shown) <= found
    assert len(body["verdicts"]) < len(real_runs.broken_findings)
    assert all(v["first_layer"] == v["layers"][0] for v in body["verdicts"])
    healthy = client.json("/verdicts", {"run": real_runs.healthy})
    assert healthy["verdicts"] == []


def test_layer_detail(client, real_runs):
    detail = client.json(
        "/layer", {"run": real_runs.healthy, "layer": real_runs.layers[3]}
    )
    acts = detail["activations"]
    assert len(acts["steps"]) == real_runs.events
    for column in acts["density"]:
        assert sum(column) == pytest.approx(1.0)
    assert len(detail["grad_norm"]) == real_runs.events
    assert all(v is not None and v > 0 for _, v in detail["grad_norm"])


@pytest.mark.parametrize(
    "route,query",
    [
        ("/health", {}),
        ("/health", {"run": "broken"}),
        ("/findings", {"run": "broken/kerasinit", "kind": "dead"}),
        ("/layer", {"run": "broken/kerasinit", "layer": "logits"}),
        ("/layer", {"run": "broken/kerasinit"}),
    ],
)
def test_bad_params(client, route, query):
    response = client.get(route, query)
    assert response.status_code == 400
    assert response.get_json()["error"]
