"""Process-wide cases: op determinism and MirroredStrategy, in subprocesses."""

import os
import subprocess
import sys

import pytest
from monitor_events import records

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _run(case, log_dir):
    env = dict(
        os.environ,
        PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
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
