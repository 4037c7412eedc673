"""The `kerasinit` command: parsing, `check`, `demo`, and the entry points."""

import dataclasses
import glob
import io
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
import zipfile

import keras
import numpy as np
import pytest

import kerasinit
from kerasinit import cli, datasets, demo
from kerasinit_tensorboard import schema

# -- parsing, help, version ------------------------------------------------


def test_help_lists_commands_and_exits_zero(capsys):
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: kerasinit")
    for word in ("demo", "check", "--version", "kerasinit demo --quick"):
        assert word in text


@pytest.mark.parametrize("command", ["demo", "check"])
def test_subcommand_help(command, capsys):
    assert cli.main([command, "--help"]) == 0
    assert f"usage: kerasinit {command}" in capsys.readouterr().out


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"kerasinit {kerasinit.__version__} ")
    assert f"keras {keras.__version__}" in out


def test_no_command_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert "usage: kerasinit" in capsys.readouterr().out


@pytest.mark.parametrize("epochs", ["0", "-3", "two"])
def test_demo_rejects_bad_epochs(epochs, capsys):
    assert cli.main(["demo", "--epochs", epochs]) == 2
    assert "--epochs" in capsys.readouterr().err


# -- check: error paths ------------------------------------------------------


def _assert_one_line_error(capsys, *needles):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("kerasinit: error: cannot load model")
    assert "Traceback" not in captured.err + captured.out
    for needle in needles:
        assert needle in lines[0]


def _small_model():
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu", name="hidden"),
            keras.layers.Dense(2, name="out"),
        ]
    )


def test_check_missing_file(tmp_path, capsys):
    path = str(tmp_path / "nope.keras")
    assert cli.main(["check", path]) == 2
    _assert_one_line_error(capsys, "no such file")


def test_check_directory(tmp_path, capsys):
    assert cli.main(["check", str(tmp_path)]) == 2
    _assert_one_line_error(capsys, "directory")


def test_check_wrong_extension(tmp_path, capsys):
    path = tmp_path / "model.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n")
    assert cli.main(["check", str(path)]) == 2
    _assert_one_line_error(capsys, "not a .keras file")


def test_check_corrupt_archive(tmp_path, capsys):
    path = tmp_path / "model.keras"
    path.write_text("this is not a zip archive")
    assert cli.main(["check", str(path)]) == 2
    _assert_one_line_error(capsys)


def test_check_unknown_custom_object(tmp_path, capsys):
    path = tmp_path / "model.keras"
    _small_model().save(path)
    # Rewrite the saved config so one layer names a class nobody registered,
    # exactly what loading a model from a package that is not installed does.
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    config = json.loads(members["config.json"])
    layer = config["config"]["layers"][-1]
    layer["class_name"] = "NoSuchLayer"
    layer["module"] = "not_installed.layers"
    layer["registered_name"] = "not_installed>NoSuchLayer"
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    assert cli.main(["check", str(path)]) == 2
    _assert_one_line_error(capsys, "NoSuchLayer")


def test_check_refuses_lambda_in_safe_mode(tmp_path, capsys):
    path = tmp_path / "lambda.keras"
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2.0)]
    )
    model.save(path)
    assert cli.main(["check", str(path)]) == 2
    _assert_one_line_error(capsys)


# -- check: findings -----------------------------------------------------------


def _check_or_skip(model):
    try:
        return kerasinit.check(model)
    except NotImplementedError:
        pytest.skip("kerasinit.check is not available in this build")


def _expected_exit(findings):
    return 1 if any(f.severity == "error" for f in findings) else 0


@pytest.mark.parametrize("kernel", ["zeros", "he_normal"])
def test_check_reports_findings_and_exit_code(kernel, tmp_path, capsys):
    model = keras.Sequential(
        [keras.Input((16,))]
        + [
            keras.layers.Dense(
                16, activation="sigmoid", kernel_initializer=kernel
            )
            for _ in range(8)
        ]
        + [keras.layers.Dense(2)]
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    with warnings.catch_warnings():
        # check() may warn; the command silences that and prints instead,
        # so the independent reference call must not fail on a warning.
        warnings.simplefilter("ignore")
        expected = _check_or_skip(loaded)
    code = cli.main(["check", str(path)])
    out = capsys.readouterr().out
    assert code == _expected_exit(expected)
    if kernel == "zeros":
        # A zero kernel is the symmetry problem whatever else is found.
        assert any(f.kind == "symmetric_weights" for f in expected)
    for finding in expected:
        assert finding.kind in out
        assert finding.advice in out
    if not expected:
        assert "no findings" in out


# -- entry points -----------------------------------------------------------


def _env():
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def test_python_dash_m_and_console_script(tmp_path):
    runs = [[sys.executable, "-m", "kerasinit", "--version"]]
    script = shutil.which("kerasinit")
    if script is not None:
        runs.append([script, "check", str(tmp_path / "missing.keras")])
    results = [
        subprocess.run(
            argv, capture_output=True, text=True, env=_env(), timeout=120
        )
        for argv in runs
    ]
    assert results[0].returncode == 0, results[0].stderr
    assert f"kerasinit {kerasinit.__version__}" in results[0].stdout
    if script is None:
        pytest.skip("the kerasinit console script is not installed")
    assert results[1].returncode == 2
    assert "kerasinit: error: cannot load model" in results[1].stderr
    assert "Traceback" not in results[1].stderr


# -- data generators -----------------------------------------------------------


def test_spirals_shapes_balance_and_determinism():
    x, y = datasets.spirals(999, n_classes=3, n_features=10, seed=3)
    assert x.shape == (999, 10) and x.dtype == np.float32
    assert y.shape == (999,) and y.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(y), [333, 333, 333])
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=0), 1.0, atol=1e-5)
    x2, y2 = datasets.spirals(999, n_classes=3, n_features=10, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = datasets.spirals(999, n_classes=3, n_features=10, seed=4)
    assert not np.array_equal(x, x3)


def test_spirals_live_on_a_plane():
    # Without noise the points span exactly two directions: the spiral's
    # plane, rotated into the feature space.
    x, _ = datasets.spirals(500, n_features=12, noise=0.0, seed=1)
    singular = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
    assert singular[1] > 1.0
    assert singular[2] < 1e-4 * singular[0]


def test_shapes_classes_are_distinct_drawings():
    x, y = datasets.shapes(400, size=16, noise=0.0, seed=2)
    assert x.shape == (400, 16, 16, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(np.bincount(y), [100] * 4)
    ink = x[..., 0] > x.min() + 1e-6
    area = ink.reshape(400, -1).sum(axis=1)
    by_class = [area[y == k].mean() for k in range(4)]
    square, disk, ring, _ = by_class
    # A disk covers its whole radius; a ring of the same radius only a band.
    assert disk > ring
    assert disk > square
    assert all(a > 0 for a in area)


@pytest.mark.parametrize(
    "fn, kwargs, name",
    [
        (datasets.spirals, {"n_samples": 0}, "n_samples"),
        (datasets.spirals, {"n_classes": 1}, "n_classes"),
        (datasets.spirals, {"n_features": 1}, "n_features"),
        (datasets.spirals, {"turns": 0.0}, "turns"),
        (datasets.spirals, {"noise": -1.0}, "noise"),
        (datasets.shapes, {"size": 8}, "size"),
        (datasets.shapes, {"n_samples": 2.5}, "n_samples"),
    ],
)
def test_generators_validate_arguments(fn, kwargs, name):
    with pytest.raises((ValueError, TypeError), match=f"`{name}`"):
        fn(**kwargs)


# -- demo --------------------------------------------------------------------


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
                    kernel_initializer=make(seed=demo._kernel_seed(5, i)),
                )
            )
        layers.append(
            keras.layers.Dense(
                3, kernel_initializer=make(seed=demo._kernel_seed(5, 3))
            )
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

    reinit = demo._Reinit(fresh(), 1e-2)
    # Dirty the model and the optimizer first, as a previous run would.
    train(reinit.model)
    reinit.reset(lambda i: make(seed=demo._kernel_seed(5, i)))
    got = train(reinit.model)
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _records(run_dir):
    import tensorflow as tf

    files = glob.glob(os.path.join(run_dir, schema.RUN_SUBDIR, "events.*"))
    records = []
    for path in files:
        for event in tf.compat.v1.train.summary_iterator(path):
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

    # Every run has the monitor's records, and the summary's findings count
    # is what the monitor wrote (the latest record carries all findings).
    table = dict(
        re.findall(r"^(\w+/[\w.-]+)\s+[\d.na]+\s+[\d.na]+\s+(\d+)\s", out, re.M)
    )
    assert len(table) == len(run_dirs)
    for run in run_dirs:
        records = _records(str(logdir / run))
        assert records, run
        latest = max(records, key=lambda r: r["event"])
        assert len(latest["findings"]) == int(table[run]), run
    # The grid shows what it is meant to: zeros never trains, and a run
    # with all-zero kernels is flagged.
    zeros = _records(str(logdir / "mlp" / "relu-zeros"))
    assert max(zeros, key=lambda r: r["event"])["findings"]


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
        runs[jobs] = [(r.accuracy, r.loss, r.findings) for r in results]
        for r in results:
            assert glob.glob(os.path.join(r.log_dir, "kerasinit", "*tfevents*"))
    # Every run is seeded on its own: which process runs it changes nothing.
    assert runs[1] == runs[2]


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True])
def test_demo_rejects_bad_jobs(jobs, tmp_path):
    with pytest.raises(ValueError, match="`jobs`"):
        demo.run_demo(logdir=str(tmp_path), jobs=jobs)
