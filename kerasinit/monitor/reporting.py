"""`say`: a diagnosis as a `logging` record and a warning at the user's line.

Which diagnoses are said, and in what order, is `HealthMonitor`'s choice;
this module only says one, and finds the line a warning points at.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import warnings

import keras

from kerasinit.findings import Diagnosis

__all__ = ["Failures", "say", "tell", "user_stacklevel"]

logger = logging.getLogger("kerasinit.monitor")

_LIBRARY_DIRS = tuple(
    os.path.dirname(os.path.abspath(m.__file__)) + os.sep
    for m in (keras, sys.modules[keras.backend.backend()])
) + (os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,)


def user_stacklevel() -> int:
    """The `stacklevel` that points a warning at the user's own line.

    A verdict is found deep inside Keras's `fit` loop; the line that a user
    can act on is their `fit` call (or whatever of theirs called into
    Keras), the first frame outside kerasinit, Keras and TensorFlow.
    """
    frame = sys._getframe(1)
    # 1 is `user_stacklevel`'s caller, whose `warnings.warn` counts from 1.
    level = 1
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_LIBRARY_DIRS):
            return level
        frame = frame.f_back
        level += 1
    return 2


def say(found: Diagnosis, *, warn: bool) -> None:
    """Say one diagnosis: a log record, and a warning unless it is info.

    Args:
        found: the diagnosis.
        warn: whether to raise a Python warning (of the diagnosis's
            `warning_class`, pointed at the user's line) beside the record.
    """
    level = logging.INFO if found.severity == "info" else logging.WARNING
    logger.log(level, "%s", found)
    if warn and found.severity != "info":
        warnings.warn(
            str(found), found.warning_class, stacklevel=user_stacklevel()
        )


def tell(message: str, *, warn: bool) -> None:
    """Say something the user should know that is not a diagnosis.

    Args:
        message: what to say: an info record, and a `UserWarning` at the
            user's line.
        warn: whether to raise the warning beside the record.
    """
    logger.info("%s", message)
    if warn:
        warnings.warn(message, UserWarning, stacklevel=user_stacklevel())


@dataclasses.dataclass
class Failures:
    """Failures inside the monitor while training: counted, the first logged.

    The monitor never stops training for one of its own failures: the
    event is skipped and counted, and only the first failure is logged
    as a warning, with its traceback (later ones at debug level), so a
    failure at every step does not flood the log.

    Attributes:
        skipped: the events skipped so far.
        logged: whether a failure was logged as a warning.
    """

    skipped: int = 0
    logged: bool = False

    def record(
        self, doing: str, exc: BaseException, event: bool = True
    ) -> None:
        """Count a skipped event; log the first failure, with its cause."""
        self.skipped += int(event)
        if self.logged:
            logger.debug(
                "kerasinit HealthMonitor: event skipped (%s failed: %s: %s).",
                doing,
                type(exc).__name__,
                exc,
            )
            return
        self.logged = True
        logger.warning(
            "kerasinit HealthMonitor: %s failed (%s: %s); the event is "
            "skipped and training goes on. Later failures are counted in "
            "`skipped_events` without this message.",
            doing,
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
