"""The `kerasinit` command's front end: parse, then import what is needed.

`kerasinit --help`, `--version` and every `COMMAND --help` must answer at
once. Importing the `kerasinit` package imports Keras, and Keras imports its
backend (seconds, and TensorFlow's start-up log lines), because importing
`kerasinit` is what registers its initializers and layers for
`"kerasinit>Name"` strings and `.keras` files. So the parser lives here,
outside that package, and the package is imported only by a command that
needs it, with TensorFlow's C++ log level set first.

Exit codes: 0 success (or only warnings), 1 when `check` finds an error,
2 for a usage error or a model file that cannot be loaded.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Sequence

__all__ = ["main", "build_parser", "import_tensorflow_quietly", "demo_worker"]

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

# TensorFlow's native log lines: severity letter, then the date ("I1129 ").
_LOG_LINE = re.compile(r"^([IWEF])\d{4} ")
# absl prints this before the native lines that come ahead of its set-up.
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog()"


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


def _kerasinit_version() -> str:
    # Read from the source rather than the installed metadata, which an
    # editable install leaves behind when the version changes; importing the
    # package to read it would import Keras.
    spec = importlib.util.find_spec("kerasinit")
    if spec is not None and spec.origin:
        with open(spec.origin, encoding="utf-8") as f:
            found = re.search(
                r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", f.read(), re.M
            )
        if found:
            return found.group(1)
    return importlib.metadata.version("kerasinit")


def _keras_backend() -> str:
    # Keras's own order: the environment variable, then keras.json.
    backend = os.environ.get("KERAS_BACKEND")
    if backend:
        return backend
    home = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras"
    )
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as f:
            return str(json.load(f).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def _version_string() -> str:
    text = f"kerasinit {_kerasinit_version()}"
    try:
        keras_version = importlib.metadata.version("keras")
    except importlib.metadata.PackageNotFoundError:
        return text
    return f"{text} (keras {keras_version}, backend {_keras_backend()})"


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


def import_tensorflow_quietly() -> None:
    """Import TensorFlow at the C++ log level the user chose, 3 if none.

    `TF_CPP_MIN_LOG_LEVEL` is read once, when TensorFlow is first imported,
    so it is set here first. TensorFlow 2.21 writes its start-up lines
    before its logging reads the variable, so those lines are also caught
    on the process's stderr during the import and filtered by the same
    level (1 drops INFO, 2 also WARNING, 3 also ERROR); everything else the
    import prints, such as a Python traceback, is passed on. The default is
    3 because a machine without a CUDA driver logs that as an ERROR on
    every start; a failure that matters reaches the user as a Python
    exception whatever the level.
    """
    key = "TF_CPP_MIN_LOG_LEVEL"
    os.environ.setdefault(key, "3")
    if "tensorflow" in sys.modules or _keras_backend() != "tensorflow":
        return
    try:
        level = int(os.environ[key])
    except ValueError:
        level = 0
    hidden = "IWE"[: max(0, min(level, 3))]
    if not hidden:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace")
            dropping = False
            for line in lines.splitlines(keepends=True):
                severity = _LOG_LINE.match(line)
                if severity:
                    dropping = severity.group(1) in hidden
                elif line.startswith(_ABSL_BANNER):
                    dropping = True
                # A line with no prefix continues the log line before it.
                if not dropping:
                    sys.stderr.write(line)
            sys.stderr.flush()


def demo_worker(*args) -> None:
    """The entry point of a `kerasinit demo` worker process.

    A spawned process imports its target's module before calling it; this
    module is light, so TensorFlow is imported here, quietly, and not as a
    side effect of unpickling the target.
    """
    import_tensorflow_quietly()
    from kerasinit.demo.running import _worker

    _worker(*args)


def _unreadable(path: str) -> str | None:
    """Why `path` cannot be a `.keras` model, or `None` if it may be one.

    Keras reports a file that is not a zip archive as "File not found"; the
    two mistakes need different fixes, so they are told apart here, before
    Keras (and TensorFlow) are imported at all.
    """
    if not os.path.exists(path):
        return "no such file"
    if os.path.isdir(path):
        return "it is a directory, not a .keras file"
    if not path.endswith(".keras"):
        return (
            "not a .keras file (the Keras 3 saving format); save the model "
            "with model.save('model.keras')"
        )
    if not zipfile.is_zipfile(path):
        return (
            "not a Keras model archive: the file exists but is not a zip "
            "archive (corrupt, truncated, or saved in another format)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        return f"not a Keras model archive: corrupt zip archive ({exc})"
    if "config.json" not in names:
        return "not a Keras model archive: the zip archive has no config.json"
    return None


def _run_demo(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
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
        return _error(f"cannot write to {args.logdir!r}: {exc}")
    failed = [r for r in results if r.error]
    if failed:
        return _error(f"{len(failed)} of {len(results)} runs failed")
    return 0


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
        return _run_demo(args)
    if args.command == "check":
        problem = _unreadable(args.model)
        if problem is not None:
            return _error(f"cannot load model {args.model!r}: {problem}")
        import_tensorflow_quietly()
        from kerasinit.cli import run_check

        return run_check(args.model)
    parser.print_help()
    return 2
