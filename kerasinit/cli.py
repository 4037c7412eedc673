"""The `kerasinit` command: `kerasinit demo` and `kerasinit check`.

The parser and the dispatch live in `kerasinit_cli`, which imports neither
Keras nor TensorFlow, so that `--help` and `--version` answer at once; they
are re-exported here. This module holds what runs once a command needs the
package: loading a model and printing `kerasinit.check`'s findings.
"""

from __future__ import annotations

import re
import sys
import warnings

from kerasinit_cli import build_parser, main

__all__ = ["main", "build_parser", "run_check"]


def _error(message: str) -> int:
    # One line, no traceback: the message is for a person at a terminal.
    print(f"kerasinit: error: {message}", file=sys.stderr)
    return 2


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    # Keras wraps the real cause of a failed deserialization in a message
    # that starts with the whole model config; the cause is what helps.
    unknown = re.search(r"Could not locate (class|function) '([^']+)'", text)
    if unknown:
        return (
            f"unknown {unknown.group(1)} {unknown.group(2)!r}: import the "
            "package that defines it, or register it with "
            "keras.saving.register_keras_serializable"
        )
    if "Exception encountered:" in text:
        text = text.rsplit("Exception encountered:", 1)[1].strip()
    first = text.splitlines()[0].strip()
    return first if len(first) <= 300 else first[:297] + "..."


def run_check(path: str) -> int:
    """Load the `.keras` model at `path` and print `kerasinit.check`'s findings.

    Args:
        path: a `.keras` file that exists and is a zip archive (the command
            has told the other cases apart before importing Keras).

    Returns:
        The exit code: 1 when a finding is an error, 2 when the model cannot
        be loaded, 0 otherwise.
    """
    import keras

    from kerasinit import check

    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - any load failure is exit 2
        return _error(f"cannot load model {path!r}: {_one_line(exc)}")

    with warnings.catch_warnings():
        # The command prints the findings itself; the same findings as
        # Python warnings would only repeat them.
        warnings.simplefilter("ignore")
        findings = check(model)
    name = getattr(model, "name", "model")
    if not findings:
        print(f"{path}: {name}: no findings.")
        return 0
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    summary = ", ".join(f"{n} {sev}" for sev, n in sorted(counts.items()))
    print(f"{path}: {name}: {len(findings)} finding(s) ({summary})")
    for finding in findings:
        where = finding.layer or "(model)"
        print(f"  [{finding.severity}] {finding.kind} at {where}")
        print(f"      {finding.message}")
        print(f"      fix: {finding.advice}")
    return 1 if any(f.severity == "error" for f in findings) else 0
