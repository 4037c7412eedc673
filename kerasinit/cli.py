"""The `kerasinit` command: `kerasinit demo` and `kerasinit check`.

`kerasinit demo` trains a grid of small networks on generated data with the
health monitor on, prints what went wrong where, and tells you how to open
the result in TensorBoard. `kerasinit check MODEL.keras` loads a saved model
and reports initializer/activation problems before any training.

Exit codes: 0 success (or only warnings), 1 when `check` finds an error,
2 for a usage error or a model file that cannot be loaded.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]

_DESCRIPTION = """\
Initialization and activation health for Keras 3 models.

`demo` trains an activation x initializer grid, a 50-layer MLP and a small
CNN on generated data with the HealthMonitor on, then prints a summary and
the TensorBoard command to explore the runs. `check` loads a saved .keras
model and reports initializer/activation mismatches, constant kernels and
exploding or vanishing signal, with the fix for each.

Run `kerasinit COMMAND --help` for the options of one command.
"""

_EPILOG = """\
examples:
  kerasinit demo --quick
  kerasinit demo --logdir runs/demo --epochs 10
  kerasinit check model.keras
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}"
        )
    return value


def _version_string() -> str:
    from kerasinit import __version__

    try:
        import keras

        return (
            f"kerasinit {__version__} "
            f"(keras {keras.__version__}, backend {keras.backend.backend()})"
        )
    except Exception:  # noqa: BLE001 - the version must print regardless
        return f"kerasinit {__version__}"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `kerasinit` command."""
    parser = argparse.ArgumentParser(
        prog="kerasinit",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="store_true",
        help="print the kerasinit, Keras and backend versions and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="train the init x activation experiments with the monitor on",
        description=(
            "Reproduce the classic initialization experiments on generated "
            "data (no download): an MLP for every activation (sigmoid, tanh, "
            "ReLU, LeakyReLU, SELU, GELU) x initializer (zeros, N(0,1), "
            "N(0,0.001), Glorot, He, LeCun/Kumar, LSUV), a 50-layer ReLU "
            "MLP, and a small CNN with BatchNorm. Every run trains with "
            "kerasinit's HealthMonitor and lands in LOGDIR/EXPERIMENT/RUN, "
            "one TensorBoard run each."
        ),
    )
    demo.add_argument(
        "--logdir",
        default=os.path.join("runs", "kerasinit-demo"),
        metavar="DIR",
        help="where to write the runs (default: %(default)s)",
    )
    demo.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="epochs per run (default: 6, or 4 with --quick)",
    )
    demo.add_argument(
        "--quick",
        action="store_true",
        help=(
            "less data, narrower networks, fewer monitor events: a first "
            "look in a fraction of the time"
        ),
    )
    demo.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help=(
            "processes to train in (default: one per CPU core, or 1 when a "
            "GPU is visible); results do not depend on it"
        ),
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for data and initializers (default: %(default)s)",
    )

    check = sub.add_parser(
        "check",
        help="report init/activation problems in a saved .keras model",
        description=(
            "Load MODEL (a .keras file; safe_mode on, kerasinit's layers and "
            "initializers registered), run kerasinit.check on it, including "
            "a pre-flight forward pass on random inputs, and print every "
            "finding with its fix. Exits 1 when any finding is an error, 2 "
            "when the file cannot be loaded, 0 otherwise."
        ),
    )
    check.add_argument("model", metavar="MODEL", help="path to a .keras file")
    return parser


def _error(message: str) -> int:
    # One line, no traceback: the message is for a person at a terminal.
    print(f"kerasinit: error: {message}", file=sys.stderr)
    return 2


def _load_model(path: str):
    import keras

    import kerasinit  # noqa: F401 - registers the custom objects

    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, not a .keras file")
    if not path.endswith(".keras"):
        raise ValueError(
            f"{path} is not a .keras file (the Keras 3 saving format); "
            "save the model with model.save('model.keras')"
        )
    return keras.saving.load_model(path, safe_mode=True)


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


def _run_check(path: str) -> int:
    try:
        model = _load_model(path)
    except Exception as exc:  # noqa: BLE001 - any load failure is exit 2
        return _error(f"cannot load model {path!r}: {_one_line(exc)}")

    import warnings

    from kerasinit import check

    with warnings.catch_warnings():
        # The command prints the findings itself; the same findings as
        # Python warnings would only repeat them.
        warnings.simplefilter("ignore")
        findings = check(model)
    name = getattr(model, "name", "model")
    if not findings:
        print(f"{path}: {name}: no findings.")
        return 0
    counts = {}
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `kerasinit` command.

    Args:
        argv: the arguments, without the program name. Defaults to `None`
            (read `sys.argv`).

    Returns:
        The exit code: 0 success, 1 `check` found an error, 2 usage error or
        unreadable model.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # `--help` exits 0, a usage error 2; return instead of exiting so
        # that main() can be called in-process.
        return int(exc.code or 0)
    if args.version:
        print(_version_string())
        return 0
    if args.command == "demo":
        from kerasinit.demo import run_demo

        try:
            results = run_demo(
                logdir=args.logdir,
                epochs=args.epochs,
                quick=args.quick,
                seed=args.seed,
                jobs=args.jobs,
            )
        except KeyboardInterrupt:
            return _error("interrupted")
        except OSError as exc:
            return _error(f"cannot write to {args.logdir!r}: {_one_line(exc)}")
        failed = [r for r in results if r.error]
        if failed:
            return _error(f"{len(failed)} of {len(results)} runs failed")
        return 0
    if args.command == "check":
        return _run_check(args.model)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
