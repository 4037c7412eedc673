"""Every example runs end to end in its fast mode and shows what it claims."""

import glob
import os
import re
import runpy
import subprocess
import sys

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")


def _run_in_process(name, logdir, monkeypatch, capsys):
    # In-process saves a TensorFlow import per example; examples that must
    # configure devices before TensorFlow starts run in a subprocess instead.
    path = os.path.join(EXAMPLES, name)
    monkeypatch.setattr(sys, "argv", [path, "--fast", "--logdir", logdir])
    runpy.run_path(path, run_name="__main__")
    return capsys.readouterr().out


def _event_dirs(logdir):
    files = glob.glob(
        os.path.join(logdir, "**", "kerasinit", "events.*"), recursive=True
    )
    return {
        os.path.relpath(os.path.dirname(os.path.dirname(f)), logdir)
        for f in files
    }


def test_every_example_is_tested():
    scripts = {
        os.path.basename(p) for p in glob.glob(os.path.join(EXAMPLES, "*.py"))
    }
    assert scripts == {
        "quickstart.py",
        "dead_relu.py",
        "sigmoid_saturation.py",
        "transformer_swiglu.py",
        "lsuv_cnn.py",
        "mirrored_strategy.py",
        "jax_data_parallel.py",
    }


def test_quickstart(tmp_path, monkeypatch, capsys):
    out = _run_in_process("quickstart.py", str(tmp_path), monkeypatch, capsys)
    assert "held-out accuracy" in out
    assert f"tensorboard --logdir {tmp_path}" in out
    assert _event_dirs(str(tmp_path)) == {"."}


def test_dead_relu(tmp_path, monkeypatch, capsys):
    out = _run_in_process("dead_relu.py", str(tmp_path), monkeypatch, capsys)
    broken, paired, leaky = out.split("held-out accuracy")[1:4]
    # The broken start is reported dead; pairing and LeakyReLU are not.
    assert "of units dead" in broken
    assert "no dead units reported" in paired
    assert "no dead units reported" in leaky
    assert "He(relu)" in out
    assert _event_dirs(str(tmp_path)) == {"broken", "paired", "leaky"}


def test_sigmoid_saturation(tmp_path, monkeypatch, capsys):
    out = _run_in_process(
        "sigmoid_saturation.py", str(tmp_path), monkeypatch, capsys
    )
    saturated = dict(
        re.findall(r"(\w+): kernel std.*\n\s+saturated layers: (.*)", out)
    )
    assert set(saturated) == {"normal_1", "glorot", "kumar"}
    assert saturated["normal_1"] != "-"
    assert saturated["kumar"] == "-"
    assert _event_dirs(str(tmp_path)) == {"normal_1", "glorot", "kumar"}


def test_transformer_swiglu(tmp_path, monkeypatch, capsys):
    out = _run_in_process(
        "transformer_swiglu.py", str(tmp_path), monkeypatch, capsys
    )
    stds = {
        label: [float(v) for v in values.split()]
        for label, values in re.findall(
            r"(unscaled|scaled 1/sqrt\(2N\)): residual stream std after "
            r"each block: ([\d. ]+)",
            out,
        )
    }
    # Scaling the branch outputs keeps the residual stream smaller.
    assert stds["scaled 1/sqrt(2N)"][-1] < stds["unscaled"][-1]
    assert "copy-task token accuracy" in out
    assert _event_dirs(str(tmp_path)) == {"."}


def test_lsuv_cnn(tmp_path, monkeypatch, capsys):
    out = _run_in_process("lsuv_cnn.py", str(tmp_path), monkeypatch, capsys)
    assert "var before" in out and "var after" in out
    assert "LSUV: held-out accuracy" in out
    assert _event_dirs(str(tmp_path)) == {"normal_0.01", "lsuv"}


def test_mirrored_strategy(tmp_path):
    env = dict(os.environ, KERASINIT_EXAMPLE_FAST="1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(EXAMPLES, "mirrored_strategy.py"),
            "--logdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas in sync: 2" in result.stdout
    assert "held-out accuracy" in result.stdout
    assert _event_dirs(str(tmp_path)) == {"."}


def test_jax_data_parallel(tmp_path):
    # The package of this tree, whatever copy of it is installed.
    root = os.path.dirname(os.path.abspath(EXAMPLES))
    env = dict(os.environ, KERASINIT_EXAMPLE_FAST="1", PYTHONPATH=root)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(EXAMPLES, "jax_data_parallel.py"),
            "--logdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "devices: 2" in result.stdout
    assert "held-out accuracy" in result.stdout
    assert _event_dirs(str(tmp_path)) == {"."}
