"""The `kerasinit` command: parsing, `check`, and the entry points.

The demo it runs is tested in `test_demo.py`.
"""

import json
import os
import re
import subprocess
import sys
import time
import warnings
import zipfile

import keras
import pytest

import kerasinit
import kerasinit_cli
from kerasinit import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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
    assert f"backend {keras.backend.backend()}" in out


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
    assert "archive" not in capsys.readouterr().err


def test_check_directory(tmp_path, capsys):
    assert cli.main(["check", str(tmp_path)]) == 2
    _assert_one_line_error(capsys, "directory")


def test_check_wrong_extension(tmp_path, capsys):
    path = tmp_path / "model.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n")
    assert cli.main(["check", str(path)]) == 2
    _assert_one_line_error(capsys, "not a .keras file")


def test_check_corrupt_archive_is_not_reported_missing(tmp_path, capsys):
    path = tmp_path / "model.keras"
    path.write_text("this is not a zip archive")
    assert cli.main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not a Keras model archive" in err
    assert "not a zip archive" in err
    assert "no such file" not in err.lower()
    assert "not found" not in err.lower()
    assert len(err.strip().splitlines()) == 1


def test_check_truncated_archive(tmp_path, capsys):
    path = tmp_path / "model.keras"
    _small_model().save(path)
    data = path.read_bytes()
    # Cut off the zip's central directory, as an interrupted copy would.
    path.write_bytes(data[: len(data) // 2])
    assert cli.main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not a Keras model archive" in err
    assert "no such file" not in err.lower()


def test_check_zip_that_is_not_a_model(tmp_path, capsys):
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")
    assert cli.main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not a Keras model archive" in err and "config.json" in err


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


# -- a fast, quiet command ----------------------------------------------------


def _env(**overrides):
    env = dict(os.environ)
    # The user's own level must not be what keeps the output quiet here.
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    # This checkout's code, whichever checkout the environment installed.
    env["PYTHONPATH"] = os.pathsep.join(
        [ROOT, *filter(None, [env.get("PYTHONPATH")])]
    )
    env.update(overrides)
    return env


_PROBE = """
import json, sys, runpy
sys.argv = ["kerasinit", *json.loads(sys.argv[1])]
try:
    runpy.run_module("kerasinit_cli", run_name="__main__")
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in ("tensorflow", "keras", "kerasinit")
                if m in sys.modules)
with open(OUT, "w") as f:
    json.dump({"code": code, "loaded": loaded}, f)
"""


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], ["demo", "--help"], ["check", "--help"]],
)
def test_help_and_version_import_neither_tensorflow_nor_keras(argv, tmp_path):
    report = tmp_path / "report.json"
    code = _PROBE.replace("OUT", repr(str(report)))
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(argv)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    facts = json.loads(report.read_text())
    assert facts == {"code": 0, "loaded": []}
    # Not a line from TensorFlow's start-up, nor anything else.
    assert result.stderr == ""
    assert result.stdout.startswith(("usage: kerasinit", "kerasinit "))
    # Generous for a loaded 2-core machine; importing TensorFlow alone
    # takes seconds.
    assert seconds < 2.5, seconds


def test_version_reads_the_package_version_without_importing_it():
    assert kerasinit_cli._kerasinit_version() == kerasinit.__version__


def test_console_script_runs_the_same_main():
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        scripts = f.read().split("[project.scripts]", 1)[1].split("[", 1)[0]
    assert re.findall(r"^(\w+) = \"(.+)\"$", scripts, re.M) == [
        ("kerasinit", "kerasinit_cli:main")
    ]
    assert cli.main is kerasinit_cli.main


def _console_script():
    # The script sits next to the interpreter of the environment it was
    # installed in, whether or not that directory is on PATH.
    bindir = os.path.dirname(sys.executable)
    for name in ("kerasinit", "kerasinit.exe"):
        path = os.path.join(bindir, name)
        if os.path.exists(path):
            return path
    raise AssertionError(
        f"the kerasinit console script is not installed in {bindir}: "
        "pip install -e ."
    )


def test_python_dash_m_and_console_script(tmp_path):
    runs = [
        [sys.executable, "-m", "kerasinit", "--version"],
        [_console_script(), "check", str(tmp_path / "missing.keras")],
    ]
    results = [
        subprocess.run(
            argv, capture_output=True, text=True, env=_env(), timeout=120
        )
        for argv in runs
    ]
    assert results[0].returncode == 0, results[0].stderr
    assert f"kerasinit {kerasinit.__version__}" in results[0].stdout
    assert results[1].returncode == 2
    last = results[1].stderr.strip().splitlines()[-1]
    assert last.startswith("kerasinit: error: cannot load model")
    assert last.endswith("no such file")
    assert "Traceback" not in results[1].stderr


def test_check_prints_no_tensorflow_log_lines(tmp_path):
    path = tmp_path / "model.keras"
    _small_model().save(path)
    result = subprocess.run(
        [sys.executable, "-m", "kerasinit_cli", "check", str(path)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert result.returncode in (0, 1), result.stderr
    assert str(path) in result.stdout
    assert result.stderr == ""


def test_the_users_log_level_is_kept(monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    kerasinit_cli.import_tensorflow_quietly()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    kerasinit_cli.import_tensorflow_quietly()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
