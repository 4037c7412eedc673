"""`kerasinit demo`: its experiments, re-initialization, runs and summary."""

import dataclasses
import glob
import io
import os
import re

import keras
import numpy as np
import pytest

from kerasinit import cli, datasets, demo
from kerasinit._seed import derive
from kerasinit.demo import experiments, report, running
from kerasinit_tensorboard import schema

# -- experiments and the summary --------------------------------------------


def test_experiments_are_frozen_and_hold_out_the_probe():
    config = demo.DemoConfig.quick()
    plan = experiments.experiments(config, seed=0)
    assert [e.name for e in plan] == ["mlp"] * len(demo.ACTIVATIONS) + [
        "mlp50",
        "cnn_bn",
    ]
    assert tuple(e.activation for e in plan[:6]) == demo.ACTIVATIONS
    for experiment in plan:
        assert isinstance(experiment, demo.Experiment)
        data = experiment.data
        assert len(data.x) == config.n_train
        assert len(data.x_val) == config.n_val
        assert len(data.x_probe) == config.n_probe
        # The probe comes from the held-out examples, never the training set.
        np.testing.assert_array_equal(
            data.x_probe, data.x_val[: len(data.x_probe)]
        )
        assert experiment.cost == (
            len(experiment.initializers) * experiment.layers
        )
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan[0].learning_rate = 1.0
    assert plan[0].run_names()[0] == "sigmoid-zeros"
    assert plan[-1].run_names() == ["normal_1", "normal_0.001", "glorot", "he"]


def test_unknown_initializer_key_is_refused():
    with pytest.raises(ValueError, match="initializer='orthogonal'"):
        experiments.make_initializer("orthogonal", "relu", seed=0)


def _result(experiment, activation, init, accuracy, verdicts):
    return running.RunResult(
        experiment=experiment,
        activation=activation,
        initializer=init,
        log_dir=os.path.join("runs", experiment, f"{activation}-{init}"),
        accuracy=accuracy,
        loss=1.0 - accuracy,
        verdicts=verdicts,
    )


def test_summary_tables_use_the_shared_report():
    results = [
        _result("mlp", "relu", "zeros", 0.333, ("symmetric_weights@dense",)),
        _result("mlp", "relu", "he", 0.9, ()),
        _result(
            "mlp",
            "tanh",
            "he",
            0.8,
            ("saturation@dense_1", "vanishing_gradients@dense"),
        ),
    ]
    runs = report.RunsReport(results)
    assert runs["mlp/relu-he"] is results[1]
    lines = str(runs).splitlines()
    assert lines[0].split() == ["run", "accuracy", "loss", "verdicts"]
    assert lines[2].split() == [
        "mlp/relu-zeros",
        "0.333",
        "0.667",
        "symmetric_weights@dense",
    ]
    assert lines[3].split()[3:] == ["-"]
    # Several verdicts in the order reported, not sorted.
    assert lines[4].split()[3:] == [
        "saturation@dense_1,",
        "vanishing_gradients@dense",
    ]
    assert runs.to_list()[1]["accuracy"] == 0.9

    grid = report.GridReport(results)
    assert grid.initializers == ["zeros", "he"]
    assert [row.activation for row in grid] == ["tanh", "relu"]
    assert grid["tanh"].accuracies == (None, 0.8)
    text = str(grid).splitlines()
    assert text[0].split() == ["zeros", "He"]
    assert text[3].split() == ["relu", "0.33", "0.90"]


# -- runs ----------------------------------------------------------------------


def test_reinitialized_model_trains_like_a_fresh_one():
    # The demo re-initializes one compiled model per run instead of building
    # a new one; that must give exactly what a fresh model would.
    x, y = datasets.spirals(256, seed=0)
    make = keras.initializers.GlorotNormal

    def fresh():
        layers = [keras.Input((16,))]
        for i in range(3):
            layers.append(
                keras.layers.Dense(
                    8,
                    activation="tanh",
                    kernel_initializer=make(seed=derive(5, i)),
                )
            )
        layers.append(
            keras.layers.Dense(3, kernel_initializer=make(seed=derive(5, 3)))
        )
        return keras.Sequential(layers)

    def train(model):
        keras.utils.set_random_seed(7)
        model.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)
        return model.get_weights()

    keras.utils.set_random_seed(7)
    reference = fresh()
    reference.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    expected = train(reference)

    reinit = running.Reinit(fresh(), 1e-2)
    # Dirty the model and the optimizer first, as a previous run would.
    train(reinit.model)
    reinit.reset(lambda i: make(seed=derive(5, i)))
    got = train(reinit.model)
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _events(path):
    """The `Event` protos of one event file."""
    # TODO(14): read through the package's public event reader instead.
    import tensorflow as tf
    from tensorboard.compat.proto import event_pb2

    for record in tf.data.TFRecordDataset(path):
        yield event_pb2.Event.FromString(record.numpy())


def _records(run_dir):
    import tensorflow as tf

    files = glob.glob(os.path.join(run_dir, schema.RUN_SUBDIR, "events.*"))
    records = []
    for path in files:
        for event in _events(path):
            for value in event.summary.value:
                if value.tag == schema.RECORD_TAG:
                    raw = tf.make_ndarray(value.tensor)
                    text = raw.item() if raw.shape == () else raw.ravel()[0]
                    records.append(schema.parse_record(text))
    return records


def test_demo_quick_end_to_end(tmp_path, capsys):
    logdir = tmp_path / "demo"
    code = cli.main(["demo", "--quick", "--logdir", str(logdir)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"tensorboard --logdir {logdir}" in out

    n_grid = len(demo.ACTIVATIONS) * len(demo.INITIALIZERS)
    run_dirs = sorted(
        os.path.relpath(p, logdir)
        for p in glob.glob(str(logdir / "*" / "*"))
        if os.path.isdir(p)
    )
    assert len([d for d in run_dirs if d.startswith("mlp/")]) == n_grid
    assert "mlp50/relu-he" in run_dirs
    assert "cnn_bn/he" in run_dirs

    # Every run has the monitor's records, and the summary's verdicts are
    # the diagnoses the monitor wrote (the latest record carries them all).
    table = dict(
        re.findall(
            r"^(\w+/[\w.-]+)\s+[\d.na]+\s+[\d.na]+\s+(\S.*?)\s*$", out, re.M
        )
    )
    assert len(table) == len(run_dirs)
    for run in run_dirs:
        records = _records(str(logdir / run))
        assert records, run
        latest = max(records, key=lambda r: r["event"])
        written = [
            f"{d['kind']}@{d['first_layer']}" for d in latest["diagnoses"]
        ]
        assert table[run] == (", ".join(written) or "-"), run
    # The grid shows what it is meant to: zeros never trains, and a run
    # with all-zero kernels is flagged as symmetric.
    zeros = _records(str(logdir / "mlp" / "relu-zeros"))
    latest = max(zeros, key=lambda r: r["event"])
    assert [d["kind"] for d in latest["diagnoses"]][:1] == ["symmetric_weights"]


def test_demo_results_do_not_depend_on_the_number_of_processes(tmp_path):
    config = dataclasses.replace(
        demo.DemoConfig.quick(epochs=1), n_train=256, n_val=64, n_probe=64
    )

    def only(experiment, activation, init):
        return (experiment, activation) in {
            ("mlp", "relu"),
            ("mlp", "tanh"),
            ("cnn_bn", "relu"),
        } and init in ("he", "glorot")

    runs = {}
    for jobs in (1, 2):
        out = io.StringIO()
        results = demo.run_demo(
            logdir=str(tmp_path / f"jobs{jobs}"),
            config=config,
            only=only,
            jobs=jobs,
            out=out,
        )
        text = out.getvalue()
        assert f"{jobs} process" in text
        # A progress line per run, then the summary in plan order.
        assert len(re.findall(r"^\[\s*\d+/6\] ", text, re.M)) == 6
        assert [r.name for r in results] == [
            "tanh-glorot",
            "tanh-he",
            "relu-glorot",
            "relu-he",
            "glorot",
            "he",
        ]
        assert not [r.error for r in results if r.error]
        runs[jobs] = [(r.accuracy, r.loss, r.verdicts) for r in results]
        for r in results:
            assert glob.glob(os.path.join(r.log_dir, "kerasinit", "*tfevents*"))
    # Every run is seeded on its own: which process runs it changes nothing.
    assert runs[1] == runs[2]


#: The seeds' story, one verdict kind per arm (`None`: quiet).
STORY = {
    ("mlp", "relu", "normal_1"): "exploding_signal",
    ("mlp", "relu", "normal_0.001"): "vanishing_signal",
    # Sigmoid's outputs sit at 1/2 whatever the scale: its gradients vanish.
    ("mlp", "sigmoid", "normal_0.001"): "vanishing_gradients",
    ("mlp", "relu", "zeros"): "symmetric_weights",
    ("mlp", "relu", "he"): None,
    ("mlp", "selu", "lecun_kumar"): None,
    ("mlp", "sigmoid", "lecun_kumar"): None,
    ("mlp50", "relu", "he"): "representation_collapse",
}


def test_demo_tells_the_seeds_story(tmp_path):
    # N(0, 1) explodes, N(0, 1e-3) vanishes, zeros are symmetric, matched
    # pairings are quiet, and the plain 50-layer He stack collapses (its
    # units are off for every example because the examples align, not
    # because they are broken).
    results = demo.run_demo(
        logdir=str(tmp_path),
        config=demo.DemoConfig.quick(),
        only=lambda *run: run in STORY,
        jobs=1,
        out=io.StringIO(),
    )
    assert len(results) == len(STORY)
    told = {}
    for r in results:
        assert r.error is None, r
        told[r.experiment, r.activation, r.initializer] = r.verdicts
    for arm, kind in STORY.items():
        if kind is None:
            assert told[arm] == (), arm
        else:
            # One verdict per problem: weights growing from N(0, 1e-3) are
            # not also a learning rate too high.
            assert [v.split("@")[0] for v in told[arm]] == [kind], (
                arm,
                told[arm],
            )
    # Each problem is said where it starts.
    assert told["mlp", "relu", "normal_1"][0] == "exploding_signal@dense_0"
    assert told["mlp", "relu", "zeros"][0] == "symmetric_weights@dense_0"


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True])
def test_demo_rejects_bad_jobs(jobs, tmp_path):
    with pytest.raises(ValueError, match="`jobs`"):
        demo.run_demo(logdir=str(tmp_path), jobs=jobs)
