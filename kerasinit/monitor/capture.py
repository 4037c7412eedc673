"""`LayerOutputs`: the one place that wraps a layer's ``call``.

Capturing a layer's output wherever it sits (nested models, subclassed
models, which have no ``layer.output``) needs the layer's own ``call``:
while the context is open, each watched layer's ``call`` is wrapped to keep
its first output; on exit the wrappers are removed, whether the body
finished or raised. A graph traced inside the context keeps the tensors.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from typing import Any

import keras

__all__ = ["LayerOutputs"]


def _first_tensor(out):
    for t in keras.tree.flatten(out):
        if hasattr(t, "dtype") and hasattr(t, "shape"):
            return t
    return None


class LayerOutputs:
    """Context manager that records the outputs of some layers.

    Only calls made on the thread that entered the context are recorded:
    Keras may trace its train step on the training thread while the probe
    is traced on another, and those calls must pass through unchanged.

    Args:
        layers: ``{path: layer}``, the layers to watch.

    Example:

    >>> with LayerOutputs({"dense": model.layers[0]}) as outputs:
    ...     model(x)
    >>> outputs["dense"].shape
    """

    def __init__(self, layers: Mapping[str, Any]):
        self.layers = dict(layers)
        self.outputs: dict[str, Any] = {}
        self._installed: list[tuple[Any, bool, Any]] = []

    def __enter__(self) -> dict[str, Any]:
        owner = threading.get_ident()
        captured = self.outputs
        try:
            for path, layer in self.layers.items():
                # An instance attribute already there (a user's own patch)
                # is put back as it was; otherwise the class's method shows
                # through again once ours is deleted.
                had_own = "call" in vars(layer)
                original = layer.call

                @functools.wraps(original)
                def wrapper(*args, _orig=original, _path=path, **kwargs):
                    out = _orig(*args, **kwargs)
                    if threading.get_ident() == owner and _path not in captured:
                        first = _first_tensor(out)
                        if first is not None:
                            captured[_path] = first
                    return out

                # Past Keras's attribute tracking, which would otherwise
                # track the function as layer state.
                object.__setattr__(layer, "call", wrapper)
                self._installed.append((layer, had_own, original))
        except BaseException:
            self._restore()
            raise
        return captured

    def __exit__(self, *exc_info) -> None:
        self._restore()

    def _restore(self) -> None:
        while self._installed:
            layer, had_own, original = self._installed.pop()
            if had_own:
                object.__setattr__(layer, "call", original)
            else:
                object.__delattr__(layer, "call")
