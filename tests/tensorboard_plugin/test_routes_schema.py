"""Routes over log directories written to the schema with known contents.

These pin the behaviours a real short run cannot show cheaply: exact event
counts, thinned scalars, hostile names, unreadable records, bad parameters.
"""

from __future__ import annotations

import os
import time

import pytest

from kerasinit_tensorboard import schema

from ._client import PluginClient, make_plugin
from ._events import _record_metadata, finding, write_run

HOSTILE = "<img src=x onerror=alert(1)>"
LAYERS = ["dense", HOSTILE, "block/dense_1"]
STEPS = [0, 5, 10, 15, 20, 25]


def _stats(event, layer):
    dead = 0.1 * event if layer == "dense" else 0.0
    return {
        "act_std": 1.0 + event,
        "dead_fraction": dead,
        "saturation_fraction": 0.0,
        "grad_norm": 10.0**-event,
        "act_mean": 0.5,
    }


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("logs")
    write_run(
        str(root / "broken"),
        LAYERS,
        STEPS,
        _stats,
        findings_at={
            2: [finding("dead_units", "dense", 10)],
            4: [finding("vanishing_gradients", HOSTILE, 20, value=1e-6)],
        },
    )
    write_run(str(root / HOSTILE), ["dense"], [0, 1], _stats)
    # A run of someone else's scalars: not a kerasinit run.
    write_run(str(root / "other"), [], [], _stats, histograms=False)
    return str(root)


@pytest.fixture(scope="module")
def client(logdir):
    return PluginClient(make_plugin(logdir))


def test_runs_lists_only_kerasinit_runs(client):
    runs = client.json("/runs")["runs"]
    by_name = {r["run"]: r for r in runs}
    broken = f"broken/{schema.RUN_SUBDIR}"
    hostile = f"{HOSTILE}/{schema.RUN_SUBDIR}"
    assert sorted(by_name) == sorted([broken, hostile])
    assert by_name[broken]["layers"] == LAYERS
    assert by_name[broken]["events"] == len(STEPS)
    assert by_name[broken]["step"] == STEPS[-1]
    assert by_name[broken]["findings"] == 2
    assert by_name[hostile]["findings"] == 0


def test_health_matrices_in_model_order(client):
    run = f"broken/{schema.RUN_SUBDIR}"
    health = client.json("/health", {"run": run})
    assert health["layers"] == LAYERS
    assert health["steps"] == STEPS
    assert set(health["metrics"]) == set(schema.HEATMAP_METRICS)
    dead = health["metrics"]["dead_fraction"]["values"]
    assert len(dead) == len(LAYERS)
    assert all(len(row) == len(STEPS) for row in dead)
    assert dead[0] == pytest.approx([0.1 * e for e in range(len(STEPS))])
    assert dead[1] == [0.0] * len(STEPS)
    grad = health["metrics"]["grad_norm"]
    assert grad["transform"] == "log10"
    assert grad["values"][2] == pytest.approx(
        [10.0**-e for e in range(len(STEPS))], rel=1e-6
    )
    assert health["events"] == health["points"] == len(STEPS)
    assert health["thinned"] is False
    assert health["fix"] is None


def test_health_detects_thinned_scalars(logdir):
    # Keep 3 scalar points per tag, as a small reservoir would.
    client = PluginClient(
        make_plugin(logdir, size_guidance={"scalars": 3, "tensors": 3})
    )
    run = f"broken/{schema.RUN_SUBDIR}"
    health = client.json("/health", {"run": run})
    assert health["events"] == len(STEPS)
    assert health["points"] == 3
    assert health["thinned"] is True
    assert health["fix"] == "--samples_per_plugin=scalars=10"
    # The newest record survives thinning, and it carries every finding.
    found = client.json("/findings", {"run": run})["findings"]
    assert [f["kind"] for f in found] == [
        "dead_units",
        "vanishing_gradients",
    ]


def test_findings_cumulative_and_filtered(client):
    run = f"broken/{schema.RUN_SUBDIR}"
    found = client.json("/findings", {"run": run})["findings"]
    assert [(f["step"], f["layer"], f["kind"]) for f in found] == [
        (10, "dense", "dead_units"),
        (20, HOSTILE, "vanishing_gradients"),
    ]
    assert found[1]["value"] == pytest.approx(1e-6)
    assert found[1]["threshold"] == 0.5
    assert found[1]["advice"] == "Use He init."
    only = client.json("/findings", {"run": run, "kind": "dead_units"})
    assert [f["layer"] for f in only["findings"]] == ["dense"]


def test_verdicts_group_adjacent_layers(client):
    run = f"broken/{schema.RUN_SUBDIR}"
    body = client.json("/verdicts", {"run": run})
    assert body["source"] == "findings"
    assert [(v["kind"], v["layers"]) for v in body["verdicts"]] == [
        ("dead_units", ["dense"]),
        ("vanishing_gradients", [HOSTILE]),
    ]
    assert body["verdicts"][1]["value"] == pytest.approx(1e-6)


def test_newest_record_at_a_step_wins(tmp_path):
    # A record rewritten at the last step (with diagnoses) supersedes the
    # one written there before, whichever file the provider reads first.
    import tensorflow as tf

    run_dir = tmp_path / "r"
    write_run(str(run_dir), ["a", "b", "c"], [0, 4], _stats)
    diagnosis = {
        "kind": "dead_units",
        "severity": "error",
        "first_layer": "b",
        "layers": ["b", "c"],
        "step": 4,
        "value": 0.5,
        "threshold": 0.25,
        "message": "dead units from 'b'",
        "evidence": "0.5 at b",
        "cause": "kernel std 1e-3",
        "advice": "Use He init.",
        "findings": [finding("dead_units", "b", 4)],
    }
    # Event files are read in name order, and the name starts with the
    # second it was created in: a second later, this file sorts last, as a
    # resumed run's does.
    time.sleep(1.1)
    writer = tf.summary.create_file_writer(str(run_dir / schema.RUN_SUBDIR))
    with writer.as_default():
        tf.summary.write(
            schema.RECORD_TAG,
            tf.constant(
                schema.record(
                    step=4,
                    event=1,
                    epoch=1,
                    phase="step",
                    layers=[{"name": n} for n in "abc"],
                    stats={},
                    findings=[finding("dead_units", "b", 4)],
                    diagnoses=[diagnosis],
                )
            ),
            step=4,
            metadata=_record_metadata(),
        )
    writer.close()
    client = PluginClient(make_plugin(str(tmp_path)))
    run = f"r/{schema.RUN_SUBDIR}"
    body = client.json("/verdicts", {"run": run})
    assert body["source"] == "diagnoses"
    assert body["verdicts"][0]["layers"] == ["b", "c"]
    assert body["verdicts"][0]["cause"] == "kernel std 1e-3"
    (row,) = client.json("/runs")["runs"]
    assert row["severity"] == "error"
    assert row["verdicts"] == [
        {
            "kind": "dead_units",
            "severity": "error",
            "first_layer": "b",
            "span": 2,
        }
    ]


def test_layer_detail(client):
    run = f"broken/{schema.RUN_SUBDIR}"
    detail = client.json("/layer", {"run": run, "layer": HOSTILE})
    assert detail["layer"] == HOSTILE
    acts = detail["activations"]
    assert acts["steps"] == STEPS
    assert len(acts["edges"]) == len(acts["density"][0]) + 1
    for column in acts["density"]:
        assert sum(column) == pytest.approx(1.0)
    assert detail["gradients"]["steps"] == STEPS
    assert [s for s, _ in detail["grad_norm"]] == STEPS
    assert detail["grad_norm"][1][1] == pytest.approx(0.1)


def test_static_files_whitelisted(client):
    js = client.get("/index.js")
    assert js.status_code == 200
    assert js.mimetype == "application/javascript"
    assert "export async function render" in js.get_data(as_text=True)
    css = client.get("/style.css")
    assert css.status_code == 200
    assert css.mimetype == "text/css"
    routes = set(client.plugin.get_plugin_apps())
    assert routes == {
        "/runs",
        "/health",
        "/verdicts",
        "/findings",
        "/layer",
        "/index.js",
        "/style.css",
    }


RUN = f"broken/{schema.RUN_SUBDIR}"


@pytest.mark.parametrize(
    "route,query,fragment",
    [
        ("/health", {}, "Missing query parameter `run`"),
        ("/health", {"run": ""}, "Missing query parameter `run`"),
        ("/health", {"run": "nope"}, "Received: run='nope'"),
        ("/health", [("run", RUN), ("run", RUN)], "Expected one `run`"),
        ("/health", {"run": RUN, "x": "1"}, "Received: ['x']"),
        ("/health", {"run": "a" * 5000}, "Expected `run`"),
        ("/health", {"run": "a\x00b"}, "Expected `run`"),
        ("/findings", {}, "Missing query parameter `run`"),
        ("/findings", {"run": RUN, "kind": "bogus"}, "kind='bogus'"),
        ("/findings", {"run": "../../etc"}, "Received: run="),
        ("/layer", {"run": RUN}, "Missing query parameter `layer`"),
        ("/layer", {"layer": "dense"}, "Missing query parameter `run`"),
        ("/layer", {"run": RUN, "layer": "nope"}, "layer='nope'"),
        ("/runs", {"run": RUN}, "Received: ['run']"),
        ("/verdicts", {}, "Missing query parameter `run`"),
        ("/verdicts", {"run": "nope"}, "Received: run='nope'"),
    ],
)
def test_bad_params_are_400(client, route, query, fragment):
    response = client.get(route, query)
    assert response.status_code == 400
    assert fragment in response.get_json()["error"]


def test_unreadable_record_is_reported_not_500(tmp_path):
    import tensorflow as tf

    from ._client import PluginClient, make_plugin

    run_dir = tmp_path / "bad" / schema.RUN_SUBDIR
    writer = tf.summary.create_file_writer(str(run_dir))
    with writer.as_default():
        tf.summary.write(
            schema.RECORD_TAG,
            tf.constant("not json"),
            step=0,
            metadata=_record_metadata(),
        )
    writer.close()
    client = PluginClient(make_plugin(str(tmp_path)))
    runs = client.json("/runs")["runs"]
    assert runs[0]["run"] == f"bad/{schema.RUN_SUBDIR}"
    assert "unreadable kerasinit record" in runs[0]["error"]
    response = client.get("/health", {"run": runs[0]["run"]})
    assert response.status_code == 400
    assert "unreadable" in response.get_json()["error"]


def test_is_active(logdir, tmp_path):
    assert make_plugin(logdir).is_active() is True
    os.makedirs(tmp_path / "empty")
    assert make_plugin(str(tmp_path / "empty")).is_active() is False


def test_frontend_metadata(client):
    meta = client.plugin.frontend_metadata()
    assert meta.es_module_path == "/index.js"
    assert client.plugin.plugin_name == schema.PLUGIN_NAME
