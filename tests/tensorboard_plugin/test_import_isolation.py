"""The entry-point module must import neither TensorFlow nor Keras."""

from __future__ import annotations

import json
import subprocess
import sys

from kerasinit_tensorboard import schema


def test_entry_point_imports_no_tensorflow_or_keras():
    code = (
        "import json, sys\n"
        "import kerasinit_tensorboard.plugin as p\n"
        "assert p.KerasinitPlugin.plugin_name\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "    if m.split('.')[0] in ('tensorflow', 'keras', 'kerasinit'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_entry_point_is_declared():
    from importlib import metadata

    points = metadata.entry_points(group="tensorboard_plugins")
    ours = [p for p in points if p.name == schema.PLUGIN_NAME]
    assert [p.value for p in ours] == [
        "kerasinit_tensorboard.plugin:KerasinitPlugin"
    ]
