"""How many more logging events a `fit` holds, from the monitor's cadence.

`HealthMonitor` compiles its probe only where enough events are left to
pay for compiling (`HealthMonitor.COMPILE_BREAK_EVEN`); this counts them
from what Keras tells its callbacks (``params``).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["events_left"]


def events_left(
    params: Mapping,
    *,
    phase: str,
    epoch: int | None,
    steps_done: int,
    every_n_epochs: int | None,
    every_n_steps: int | None,
) -> float | None:
    """About how many more probe events this `fit` holds.

    Args:
        params: the callback's ``params`` (``epochs``, ``steps``).
        phase: the event now: ``"preflight"``, ``"epoch"`` or ``"step"``.
        epoch: the current epoch (0-based), or `None` before the first.
        steps_done: the updates done in the current epoch.
        every_n_epochs: the epoch cadence, or `None`.
        every_n_steps: the step cadence of probe events, or `None`.

    Returns:
        The count (a fraction of an epoch counts in proportion), or `None`
        where the number of epochs, or of steps per epoch with a step
        cadence, is unknown.
    """
    epochs, steps = params.get("epochs"), params.get("steps")
    if epochs is None:
        return None
    # Whole epochs still to train after the current point (from the start
    # when resuming, where the first epoch is not known yet).
    if phase == "preflight" or epoch is None:
        epochs_left, partial = epochs, 0.0
    elif phase == "epoch":
        epochs_left, partial = epochs - epoch - 1, 0.0
    else:
        epochs_left = epochs - epoch - 1
        partial = max(steps - steps_done, 0) / steps if steps else 0.0
    left = 0.0
    if every_n_epochs is not None:
        left += epochs_left / every_n_epochs
    if every_n_steps is not None:
        if not steps:
            return None
        left += (epochs_left + partial) * steps / every_n_steps
    return left
