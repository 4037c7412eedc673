"""The diagnosis benchmark's fast subset, end to end, in the test suite.

Real models trained under the real `HealthMonitor`: healthy setups learn in
silence, and every pathology gets its verdict at its first event. It runs
in the TensorFlow process only (the JAX and PyTorch ones check the same
rules on NumPy references, in ``test_diagnosis.py``): a minute of training
per backend would not fit the suite's budget.
"""

from test_diagnosis import BENCHMARK


def test_benchmark_fast_subset_end_to_end(capsys):
    # Real models trained under the real monitor: healthy setups learn in
    # silence, and every pathology gets its verdict at its first event.
    assert BENCHMARK.main(["--fast"]) == 0
    out = capsys.readouterr().out
    chosen = [s for s in BENCHMARK.SCENARIOS if s.fast]
    healthy = sum(s.kind is None for s in chosen)
    sick = len(chosen) - healthy
    assert healthy >= 2 and sick >= 5
    assert (
        f"false alarms on healthy setups: 0 of {healthy} "
        "(setups below their accuracy target: 0)"
    ) in out
    for key in ("detected", "right kind", "right first layer", "on time"):
        assert f"{key}: {sick} of {sick} (100 %)" in out
