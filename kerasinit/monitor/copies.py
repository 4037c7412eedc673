"""What a copy of a `HealthMonitor` keeps of the original's state.

A monitor is copied (`copy.deepcopy`, `pickle`) with its settings, its
history and its probe batch, but without what holds the model it last
watched: the copy may watch another model, in another process.
"""

from __future__ import annotations

import keras

from kerasinit.monitor import summaries
from kerasinit.monitor.probe_data import _to_tensors

__all__ = ["NOT_COPIED", "copied_state", "restored_state"]

#: What a copy leaves behind: the model, and what is built for it in
#: `on_train_begin` (the probe with its compiled function, weight copies
#: and compiling thread; the selected layers; the diagnoser, whose facts
#: are read from the model) or on the first write (the open event file).
NOT_COPIED = (
    "_model",
    "_probe",
    "_specs",
    "_diagnoser",
    "_writer",
    "_batch",
)


def copied_state(attributes: dict) -> dict:
    """A monitor's attributes as its copy takes them (`__getstate__`)."""
    state = dict(attributes)
    for name in NOT_COPIED:
        state.pop(name, None)
    for name in ("_x", "_y", "_w"):
        if state[name] is not None:
            # Host copies: device tensors belong to one process.
            state[name] = keras.tree.map_structure(
                keras.ops.convert_to_numpy, state[name]
            )
    if state["_from_dataset"]:
        # A dataset cannot be pickled; the batch taken from it is the
        # probe.
        parts = [state["_x"], state["_y"], state["_w"]]
        while parts[-1] is None:
            parts.pop()
        state["probe"] = tuple(parts)
    return state


def restored_state(state: dict) -> dict:
    """A copy's attributes from `copied_state` (`__setstate__`)."""
    restored = dict(state)
    # A monitor pickled before `statistics` existed measured everything.
    restored.setdefault("statistics", "full")
    for name in ("_x", "_y", "_w"):
        if restored[name] is not None:
            restored[name] = _to_tensors(restored[name])
    restored.update(
        _model=None,
        # The copy's next model is another one: its pre-flight is due.
        _last_step=None,
        _probe=None,
        _specs=[],
        _diagnoser=None,
        _writer=summaries.EventWriter(restored["log_dir"]),
        _batch=None,
    )
    return restored
