"""Process-wide cases: op determinism and MirroredStrategy, in subprocesses."""

import os
import re
import subprocess
import sys

import pytest
from monitor_events import records

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _run(case, log_dir, **env_vars):
    env = dict(
        os.environ,
        PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **env_vars,
    )
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(HERE, "monitor_subprocess_cases.py"),
            case,
            str(log_dir),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), (
        proc.stdout[-2000:] + proc.stderr[-4000:]
    )
    return proc


def test_weights_identical_with_and_without_monitor(tmp_path):
    _run("determinism", tmp_path)
    # The monitor did run: pre-flight plus every second step of 2 x 6 steps.
    assert [r["step"] for r in records(tmp_path)] == [0, 2, 4, 6, 8, 10, 12]


@pytest.mark.slow
def test_mirrored_strategy_two_cpu_replicas(tmp_path):
    _run("mirrored", tmp_path)
    assert [r["phase"] for r in records(tmp_path)] == [
        "preflight",
        "epoch",
        "epoch",
    ]


# What TensorFlow prints when one of its ops rejects a value, e.g.
# "Histogram values must not contain NaN", "Input arr must be
# non-negative", and the rendezvous abort that follows a failed op.
OP_ERROR = re.compile(
    r"INVALID_ARGUMENT|InvalidArgument|must not contain NaN|non-negative"
    r"|rendezvous is aborting",
    re.IGNORECASE,
)


def test_a_diverging_run_prints_no_tensorflow_errors(tmp_path):
    # Every C++ log line shown, so that a failing op would be seen.
    proc = _run("nonfinite", tmp_path, TF_CPP_MIN_LOG_LEVEL="0")
    assert not OP_ERROR.findall(proc.stderr), proc.stderr[-4000:]
    recs = records(tmp_path)
    # Pre-flight plus one event per step (8 steps x 3 epochs), the last
    # ones measured with masks.
    assert len(recs) == 1 + 24
    assert recs[-1]["stats"]["d1"]["act_nonfinite"] > 0
