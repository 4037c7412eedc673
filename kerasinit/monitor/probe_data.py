"""The user's `probe` argument: taken apart, checked and bounded.

Every check here runs before the first training step and raises the
user's error (`ValueError`/`TypeError` naming the argument, what was
expected, what was received, and the likely fix). Backend-neutral:
`keras.tree`, `keras.ops` and NumPy only.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from typing import Any

import keras
import numpy as np
from keras import ops


def _to_tensors(structure):
    def convert(v):
        if ops.is_tensor(v):
            return v
        arr = np.asarray(v)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        return ops.convert_to_tensor(arr)

    return keras.tree.map_structure(convert, structure)


def _split_probe(probe_data):
    """``(x, y, w)`` from the accepted probe forms."""
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(probe_data, tf.data.Dataset):
        # A fresh iterator over the dataset: the user's own iterators and
        # the one `fit` creates are not advanced.
        try:
            batch = next(iter(probe_data.take(1)))
        except StopIteration:
            raise ValueError(
                "Expected `probe` to be a non-empty tf.data.Dataset. "
                f"Received: probe={probe_data!r}"
            ) from None
        probe_data = batch
    if isinstance(probe_data, tuple):
        if not 1 <= len(probe_data) <= 3:
            raise ValueError(
                "Expected `probe` to be x, (x,), (x, y) or (x, y, "
                f"sample_weight). Received: a tuple of {len(probe_data)}"
            )
        x = probe_data[0]
        y = probe_data[1] if len(probe_data) > 1 else None
        w = probe_data[2] if len(probe_data) > 2 else None
        return x, y, w
    return probe_data, None, None


# -- checks of the user's arguments, before the first step ------------------
#
# Backend-neutral: `keras.tree`, `keras.ops` and NumPy only.

# What Keras calls an `Input` that was given no name: such names mean
# nothing to the user, who is told the input's position instead.
_GENERATED_INPUT_NAME = re.compile(r"keras_tensor(_\d+)?")

# The probe is sub-sampled above this many examples. Activations and
# gradients of the whole batch are held at once: memory grows with the
# probe, and the statistics gain little beyond a thousand examples
# (measured in ``docs/monitor.md``, Errors; `benchmarks/probe_memory.py`).
MAX_PROBE_EXAMPLES = 1024


def _is_dataset(probe) -> bool:
    # `tf.data.Dataset` told apart without importing TensorFlow.
    return hasattr(probe, "element_spec") and hasattr(probe, "take")


def _dtype_kind(tensor) -> str:
    """``"float"``, ``"int"``, ``"bool"`` or the dtype's own name."""
    try:
        name = keras.backend.standardize_dtype(tensor.dtype)
    except (ValueError, TypeError, AttributeError):
        name = str(getattr(tensor, "dtype", type(tensor).__name__))
    if "float" in name:
        return "float"
    if "int" in name:
        return "int"
    return name


def _leaves(structure) -> list:
    return [t for t in keras.tree.flatten(structure) if t is not None]


def _batch_size(tensor) -> int | None:
    shape = tuple(tensor.shape)
    return int(shape[0]) if shape and shape[0] is not None else None


def _probe_shape(structure) -> str:
    shapes = [tuple(t.shape) for t in _leaves(structure)]
    return str(shapes[0] if len(shapes) == 1 else shapes)


def _check_layer_selection(layers) -> None:
    """What can be refused about `layers` before the model is known."""
    if isinstance(layers, (list, tuple)) and not layers:
        raise ValueError(
            "Expected `layers` to name at least one layer; pass None to "
            f"monitor every layer with a non-linearity. Received: "
            f"layers={layers!r}"
        )
    if isinstance(layers, str) and layers.startswith("re:"):
        try:
            re.compile(layers[3:])
        except re.error as exc:
            raise ValueError(
                "Expected `layers` to be a valid regular expression after "
                f'"re:" ({exc}). Received: layers={layers!r}'
            ) from None


def _check_probe_batch(x, y, w, *, from_dataset: bool, targets: bool) -> int:
    """The probe's number of examples; `ValueError` when it has none.

    Every array of the probe must hold the same number of examples, and
    targets and weights must be numbers (a loss casts them to floats).
    """
    sizes = {
        part: {_batch_size(t) for t in _leaves(value)}
        for part, value in (("x", x), ("y", y), ("sample_weight", w))
        if value is not None
    }
    found = set().union(*sizes.values())
    if len(found) != 1 or None in found:
        hint = (
            " A dataset of single examples gives arrays without a batch "
            "axis: did you forget `.batch()`? E.g. "
            "`probe=dataset.batch(512)`."
            if from_dataset
            else ""
        )
        raise ValueError(
            "Expected every array of `probe` to hold the same number of "
            f"examples along its first (batch) axis.{hint} Received: "
            + ", ".join(
                f"{part} with "
                + " and ".join(
                    "no batch axis" if k is None else f"{k} example(s)"
                    for k in sorted(n, key=str)
                )
                for part, n in sizes.items()
            )
        )
    (examples,) = found
    if examples == 0:
        where = "the first batch of the dataset" if from_dataset else "it"
        raise ValueError(
            "Expected `probe` to hold at least one example, but "
            f"{where} is empty; pass a few hundred examples, e.g. "
            f"`probe=(x_val[:512], y_val[:512])`. Received: probe with 0 "
            f"examples (shape={_probe_shape(x)})"
        )
    # Without gradients the targets are never read.
    checked = (("y", y), ("sample_weight", w)) if targets else ()
    for part, value in checked:
        for tensor in _leaves(value):
            kind = _dtype_kind(tensor)
            if kind not in ("float", "int", "bool"):
                fix = (
                    "encode string labels as integers first (e.g. with "
                    "`keras.layers.StringLookup`)"
                    if part == "y"
                    else "pass numeric sample weights"
                )
                raise ValueError(
                    f"Expected the {part} of `probe` to be numbers, as the "
                    f"loss computes with them: {fix}, or pass `probe=x` "
                    f"for activation statistics only. Received: {part} of "
                    f"dtype={kind}"
                )
    return examples


def _subsample(x, y, w, examples: int, keep: int):
    """``keep`` evenly spaced examples out of ``examples``.

    Deterministic and without random state: the same probe gives the same
    sub-sample, and no generator used by training is advanced.
    """
    index = (np.arange(keep, dtype="int64") * examples) // keep

    def take(value):
        if value is None:
            return None
        return keras.tree.map_structure(
            lambda t: keras.ops.take(t, index, axis=0), value
        )

    return take(x), take(y), take(w)


def _input_label(spec, position: int) -> str:
    """How an error names a model input: its `Input` name, or position."""
    name = getattr(spec, "name", None)
    if not name or _GENERATED_INPUT_NAME.fullmatch(name):
        return f"model input {position}"
    return f"model input '{name}' (position {position})"


def _check_probe_inputs(model, x, *, from_dataset: bool) -> None:
    """`ValueError` when the probe's inputs cannot feed the model's."""
    inputs = getattr(model, "inputs", None)
    if not inputs:
        return
    given = _leaves(x)
    if len(given) != len(inputs):
        raise ValueError(
            f"Expected `probe` to give {len(inputs)} input(s), as the "
            f"model takes. Received: {len(given)} input tensor(s)"
        )
    if isinstance(x, dict):
        lookup = [x.get(getattr(t, "name", None)) for t in inputs]
        if all(v is not None for v in lookup):
            given = lookup
    for position, (spec, tensor) in enumerate(zip(inputs, given)):
        label = _input_label(spec, position)
        want = tuple(spec.shape)
        have = tuple(tensor.shape)
        if len(have) == len(want) - 1 and all(
            a is None or a == b for a, b in zip(want[1:], have)
        ):
            fix = (
                "the dataset yields single examples: did you forget "
                "`.batch()`? E.g. `probe=dataset.batch(512)`"
                if from_dataset
                else "it is one example without its batch axis: add one, "
                "e.g. `x[None]`, or pass several examples"
            )
            raise ValueError(
                f"Expected `probe` inputs of shape {want} (batch first) for "
                f"{label}, but {fix}. Received: shape={have}"
            )
        if len(want) != len(have) or any(
            a is not None and a != b for a, b in zip(want[1:], have[1:])
        ):
            raise ValueError(
                f"Expected `probe` inputs of shape {want} (batch first) "
                f"for {label}. Received: shape={have}"
            )
        want_kind = _dtype_kind(spec)
        have_kind = _dtype_kind(tensor)
        if want_kind == "float" and have_kind not in ("float", "int"):
            raise ValueError(
                f"Expected `probe` input for {label} to be numeric "
                f"({keras.backend.standardize_dtype(spec.dtype)}). "
                f"Received: dtype={have_kind}"
            )
        if want_kind == "int" and have_kind == "float":
            values = keras.ops.convert_to_numpy(tensor)
            if not np.all(np.equal(np.mod(values, 1), 0)):
                raise ValueError(
                    f"Expected `probe` input for {label} to hold integers "
                    f"({keras.backend.standardize_dtype(spec.dtype)}). "
                    "Received: float values with fractions"
                )


def _no_loss_error(model, exc: BaseException) -> ValueError:
    """The error for targets in the probe of a model that has no loss."""
    custom = type(model).train_step is not keras.Model.train_step
    how = (
        "it trains with its own `train_step` and was compiled without `loss=`"
        if custom
        else "it was compiled without `loss=`"
    )
    return ValueError(
        "Expected `probe` targets only for a model with a loss to take "
        f"gradients of, but {how}. Either pass the inputs alone "
        "(`probe=x`: activation statistics only), or keep `(x, y)` and "
        "turn the gradient statistics off (`gradients=False`). Received: "
        f"probe=(x, y) and {type(exc).__name__}: {exc}"
    )


@dataclasses.dataclass(frozen=True)
class BoundProbe:
    """The probe batch as the monitor keeps it.

    Attributes:
        x: the inputs.
        y: the targets, or `None`.
        w: the sample weights, or `None`.
        message: what was left out, to tell the user, or `None`.
    """

    x: Any
    y: Any
    w: Any
    message: str | None = None


def bound_probe(
    x, y, w, *, from_dataset: bool, targets: bool, keep: int | None
) -> BoundProbe:
    """Refuse an empty probe; keep at most `keep` examples, evenly spaced.

    The probe's activations and gradients are held in memory at once, so a
    large probe is cut down rather than refused.
    """
    examples = _check_probe_batch(
        x, y, w, from_dataset=from_dataset, targets=targets
    )
    if keep is None or examples <= keep:
        return BoundProbe(x, y, w)
    x, y, w = _subsample(x, y, w, examples, keep)
    return BoundProbe(
        x,
        y,
        w,
        message=(
            f"kerasinit HealthMonitor: the probe holds {examples} examples; "
            f"{keep} evenly spaced ones are kept, as the probe's "
            "activations and gradients are held in memory at once. Pass "
            "`max_probe_examples=` to keep more (or None for all)."
        ),
    )


def build_with_probe(model, x) -> None:
    """Create a subclassed model's variables from one example of the probe.

    A subclassed model creates its variables on its first call, which
    `fit` would otherwise make inside its first training step, after the
    pre-flight. One example in inference mode creates them with the same
    initializers and updates nothing.

    Raises:
        ValueError: the probe does not fit the model.
    """
    if model.built:
        return
    first = keras.tree.map_structure(lambda t: t[:1], x)
    try:
        model(first, training=False)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"`probe` does not fit the model: {type(exc).__name__}: {exc}"
        ) from exc
