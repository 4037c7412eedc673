"""The README's quickstart runs as written and does what it says."""

import os
import re

from kerasinit_tensorboard import schema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _quickstart_code() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("## Quickstart", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_quickstart_runs_and_writes_the_monitor_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    # The quickstart's model is healthy: pytest's configuration turns any
    # health warning it raised into a failure here.
    exec(compile(_quickstart_code(), "README.md", "exec"), namespace)
    run = tmp_path / "runs" / "quickstart" / schema.RUN_SUBDIR
    assert any(p.name.startswith("events.out.tfevents") for p in run.iterdir())
    losses = namespace["model"].history.history["loss"]
    assert len(losses) == 3 and losses[-1] < 0.8 * losses[0]
