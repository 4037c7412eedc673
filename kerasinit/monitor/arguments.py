"""`check_arguments`: `HealthMonitor`'s constructor arguments, validated.

Every argument is refused at construction, before `fit`, with a Keras-style
error naming it; nothing is written to ``log_dir`` for a refused monitor.
The probe batch itself is checked by `kerasinit.monitor.probe_data`.
"""

from __future__ import annotations

import dataclasses
import operator
import os
import re
from typing import Any

from kerasinit.monitor.probe_data import _check_layer_selection
from kerasinit.monitor.thresholds import Thresholds

#: The configurations of `HealthMonitor`'s `statistics`.
STATISTICS = ("full", "economy")

__all__ = [
    "STATISTICS",
    "MonitorArguments",
    "check_arguments",
    "check_histogram_cadence",
    "check_log_dir",
    "check_statistics",
    "positive_int",
]


@dataclasses.dataclass(frozen=True)
class MonitorArguments:
    """The arguments that validation normalizes, as the monitor keeps them.

    Attributes:
        every_n_epochs: a Python int, or `None`.
        every_n_steps: a Python int, or `None`.
        max_probe_examples: a Python int, or `None`.
        histogram_every_n_steps: a Python int, or `None`.
        thresholds: a `Thresholds` (the defaults for `None`).
    """

    every_n_epochs: int | None
    every_n_steps: int | None
    max_probe_examples: int | None
    histogram_every_n_steps: int | None
    thresholds: Thresholds


def check_arguments(
    *,
    log_dir: Any,
    probe: Any,
    every_n_epochs: Any,
    every_n_steps: Any,
    layers: Any,
    histograms: Any,
    thresholds: Any,
    compile: Any,
    max_probe_examples: Any,
    source: Any,
    histogram_every_n_steps: Any,
    statistics: Any = "full",
) -> MonitorArguments:
    """Refuse a bad `HealthMonitor` argument, or normalize the integers.

    The arguments are `HealthMonitor`'s, checked in the order of its
    signature, so that of several bad ones the first is named.

    Returns:
        A `MonitorArguments`.

    Raises:
        ValueError: naming the first argument refused.
    """
    if not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir):
        raise ValueError(
            "Expected `log_dir` to be a non-empty path. "
            f"Received: log_dir={log_dir!r}"
        )
    every_n_epochs = positive_int("every_n_epochs", every_n_epochs)
    every_n_steps = positive_int("every_n_steps", every_n_steps)
    max_probe_examples = positive_int("max_probe_examples", max_probe_examples)
    histogram_every_n_steps = positive_int(
        "histogram_every_n_steps", histogram_every_n_steps
    )
    if every_n_epochs is None and every_n_steps is None:
        raise ValueError(
            "Expected at least one of `every_n_epochs` and "
            "`every_n_steps` to be set. Received: every_n_epochs=None, "
            "every_n_steps=None"
        )
    if thresholds is None:
        thresholds = Thresholds()
    if not isinstance(thresholds, Thresholds):
        raise ValueError(
            "Expected `thresholds` to be a kerasinit.callbacks.Thresholds "
            f"or None. Received: thresholds={thresholds!r}"
        )
    if not (
        layers is None
        or callable(layers)
        or isinstance(layers, (str, re.Pattern))
        or (
            isinstance(layers, (list, tuple))
            and all(isinstance(n, str) for n in layers)
        )
    ):
        raise ValueError(
            "Expected `layers` to be None, a list of layer names, a "
            "regular expression or a predicate. "
            f"Received: layers={layers!r}"
        )
    _check_layer_selection(layers)
    if compile not in (True, False, "auto"):
        raise ValueError(
            'Expected `compile` to be True, False or "auto". '
            f"Received: compile={compile!r}"
        )
    if source not in ("probe", "batch"):
        raise ValueError(
            'Expected `source` to be "probe" or "batch". '
            f"Received: source={source!r}"
        )
    if source == "batch" and every_n_steps is None:
        raise ValueError(
            'Expected `every_n_steps` to be set with source="batch": '
            "it is the cadence of the training-batch events. "
            f"Received: every_n_steps=None, source={source!r}"
        )
    if histogram_every_n_steps is not None:
        check_histogram_cadence(
            histogram_every_n_steps,
            source=source,
            every_n_steps=every_n_steps,
            histograms=histograms,
        )
    check_statistics(statistics, source=source)
    if probe is None:
        raise ValueError(
            "Expected `probe` to be a batch: x, (x, y), (x, y, "
            "sample_weight) or a tf.data.Dataset. Received: probe=None"
        )
    check_log_dir(os.fspath(log_dir))
    return MonitorArguments(
        every_n_epochs=every_n_epochs,
        every_n_steps=every_n_steps,
        max_probe_examples=max_probe_examples,
        histogram_every_n_steps=histogram_every_n_steps,
        thresholds=thresholds,
    )


def positive_int(name: str, value) -> int | None:
    """``value`` as a Python int; NumPy and other integral types welcome."""
    if value is None:
        return None
    try:
        # `operator.index` accepts exactly the integral types (NumPy's
        # included) and refuses floats, even integral-valued ones.
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or number < 1:
        raise ValueError(
            f"Expected `{name}` to be a positive integer or None. "
            f"Received: {name}={value!r}"
        )
    return number


def check_histogram_cadence(
    every: int, *, source: str, every_n_steps: int | None, histograms
) -> None:
    """`histogram_every_n_steps` fits the other arguments, or a ValueError."""
    if source != "batch":
        raise ValueError(
            'Expected `histogram_every_n_steps` only with source="batch": '
            "the probe's events always carry their histograms. "
            f"Received: histogram_every_n_steps={every}, source={source!r}"
        )
    if not histograms:
        raise ValueError(
            "Expected `histogram_every_n_steps` only with histograms=True. "
            f"Received: histogram_every_n_steps={every}, "
            f"histograms={histograms!r}"
        )
    if every_n_steps is not None and every % every_n_steps:
        nearest = every_n_steps * max(every // every_n_steps, 1)
        raise ValueError(
            "Expected `histogram_every_n_steps` to be a multiple of "
            "`every_n_steps`, so that the steps with histograms are "
            f"training-batch events (such as {nearest}). "
            f"Received: histogram_every_n_steps={every}, "
            f"every_n_steps={every_n_steps}"
        )


def check_statistics(statistics, *, source: str) -> None:
    """`statistics` names a configuration that fits `source`, or a
    ValueError."""
    if statistics not in STATISTICS:
        names = " or ".join(f'"{name}"' for name in STATISTICS)
        raise ValueError(
            f"Expected `statistics` to be {names}. "
            f"Received: statistics={statistics!r}"
        )
    if statistics != "full" and source != "batch":
        raise ValueError(
            f'Expected `statistics={statistics!r}` only with source="batch": '
            "it chooses what the training batch's events measure; the "
            "probe's events always measure everything. "
            f"Received: statistics={statistics!r}, source={source!r}"
        )


def check_log_dir(log_dir: str) -> None:
    """Refuse a directory that cannot be written, writing nothing.

    Nothing is created until the first event is written: a monitor
    whose other arguments are refused leaves no trace in ``log_dir``.
    """
    if "://" in log_dir:
        return
    path = os.path.abspath(os.path.join(log_dir, "kerasinit"))
    # The closest part of the path that exists decides: it must be a
    # directory in which the rest can be created.
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    if not os.path.isdir(path) or not os.access(path, os.W_OK | os.X_OK):
        why = "not a directory" if not os.path.isdir(path) else "read-only"
        raise ValueError(
            f"Expected `log_dir` to be a writable directory ({path!r} "
            f"is {why}). Received: log_dir={log_dir!r}"
        )
