"""The probe: one call that measures every monitored layer at once.

`Probe` finds the layers to watch, then runs a single function that, on the
probe batch:

1. runs the forward pass in training-mode semantics inside a
   `keras.StatelessScope`, with the current variable values passed in and
   the updated non-trainable values (BatchNormalization moving statistics,
   dropout seed state) thrown away with the scope, so no model state
   changes;
2. captures each monitored layer's output wherever the layer sits (nested
   models, subclassed models): while the function runs eagerly or is
   traced, each monitored layer's ``call`` is wrapped to keep its output;
   the wrappers are removed right after and the compiled graph keeps the
   tensors;
3. computes the compiled loss with `keras.Model.stateless_compute_loss`
   (metric state untouched) and its gradients with respect to the trainable
   variables;
4. reduces everything to small statistics (`kerasinit.monitor.stats`) and
   packs them into one float32 vector, so one logging event costs one
   device-to-host transfer.

The function runs eagerly until `Probe.start_compiling` compiles it
(`tf.function`) on another thread; every later call is one compiled call.
Compiling costs as much as a few eager calls, so the callback asks for it
only when enough events are still to come, and only once Keras has compiled
its own training function.

Gradient statistics belong to the layer's own trainable weights; a weightless
activation layer (``ReLU``, ``Activation``...) is credited with the weights of
the closest layer before it, in model order, that has trainable weights: the
layer whose pre-activation it receives in a plain stack.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasinit import gains
from kerasinit.monitor import stats

__all__ = ["LayerSpec", "Probe", "monitored_layers", "walk_layers"]

logger = logging.getLogger("kerasinit.monitor")

# The attribute on a model holding {cache key -> (concrete function, layout,
# skipped layers)}. It lives on the model, not in a module-level weak map:
# the traced function references the model's variables, so a map keyed by
# the model would keep every model alive.
_TRACED_ATTR = "_kerasinit_traced_probes"


@dataclasses.dataclass
class LayerSpec:
    """One monitored layer and what the probe needs to know about it.

    Attributes:
        path: the layer's path in the model, nested models joined by ``/``.
        layer: the layer object.
        activation: the table entry of its non-linearity, or `None` when
            unknown (a custom function, softmax).
        param: the activation's parameter (leaky slope...).
        direct: whether the layer's output *is* the activation's output, so
            the dead and saturation rules apply (false for recurrent layers
            and gated units such as SwiGLU, whose output is a product).
        weight_owner: path of the layer whose weights give the gradient
            statistics, or `None` when there is none.
    """

    path: str
    layer: Any
    activation: gains.ActivationInfo | None
    param: float | None
    direct: bool
    weight_owner: str | None = None

    @property
    def activation_name(self) -> str:
        if self.activation is not None:
            return self.activation.name
        fn = getattr(self.layer, "activation", None)
        return getattr(fn, "__name__", type(self.layer).__name__)

    @property
    def dead_value(self) -> float | None:
        act = self.activation
        if not self.direct or act is None or not act.can_die(self.param):
            return None
        return act.dead_value

    def saturation(self) -> tuple[Callable, float] | None:
        """``(derivative_fn, peak)`` or `None` when no rule applies."""
        act = self.activation
        if not self.direct or act is None or act.saturation is None:
            return None
        rule = act.saturation
        param = act.param_or_default(self.param)
        return stats.saturation_fn(rule, param), float(rule.peak(param))


def walk_layers(model, prefix: str = ""):
    """Yield ``(path, layer)`` for every layer, depth first, in model order.

    Nested models are yielded themselves and then their layers, with paths
    joined by ``/``.
    """
    for layer in getattr(model, "layers", []):
        path = f"{prefix}{layer.name}"
        yield path, layer
        if isinstance(layer, keras.Model):
            yield from walk_layers(layer, prefix=f"{path}/")


def _activation_of(layer) -> tuple[Any, bool]:
    """``(resolve() result or None, has a non-linearity)``."""
    if isinstance(layer, keras.Model):
        return None, False
    found = gains.resolve(layer)
    if found is not None:
        return found, found[0].name != "linear"
    if isinstance(layer, keras.layers.Activation):
        return None, True
    fn = getattr(layer, "activation", None)
    if fn is None or not callable(fn):
        return None, False
    found = gains.resolve(fn)
    if found is not None:
        return found, found[0].name != "linear"
    return None, True


def monitored_layers(model, select=None) -> list[LayerSpec]:
    """The layers to monitor, in model order.

    Args:
        model: a built Keras model.
        select: `None` for every layer with a non-linearity; a list of layer
            names or paths; a compiled regular expression (or a string
            starting with ``"re:"``) matched against paths; or a predicate
            ``layer -> bool``. Defaults to `None`.

    Returns:
        A list of `LayerSpec`.

    Raises:
        ValueError: a requested name that is not in the model.
    """
    everything = list(walk_layers(model))
    leaves = [
        (p, lyr) for p, lyr in everything if not isinstance(lyr, keras.Model)
    ]
    if select is None:
        chosen = [(p, lyr) for p, lyr in leaves if _activation_of(lyr)[1]]
    elif isinstance(select, re.Pattern) or (
        isinstance(select, str) and select.startswith("re:")
    ):
        pattern = (
            select if isinstance(select, re.Pattern) else re.compile(select[3:])
        )
        chosen = [(p, lyr) for p, lyr in leaves if pattern.search(p)]
    elif callable(select):
        chosen = [(p, lyr) for p, lyr in leaves if select(lyr)]
    else:
        names = [select] if isinstance(select, str) else list(select)
        by_key = {}
        for p, lyr in leaves:
            by_key.setdefault(p, (p, lyr))
            by_key.setdefault(lyr.name, (p, lyr))
        missing = [n for n in names if n not in by_key]
        if missing:
            raise ValueError(
                f"Unknown layer names in `layers`: {missing}. Available "
                f"layers: {[p for p, _ in leaves]}. Received: layers={names!r}"
            )
        wanted = {by_key[n][0] for n in names}
        chosen = [(p, lyr) for p, lyr in leaves if p in wanted]
    specs = []
    owners = _weight_owners(leaves)
    for path, layer in chosen:
        found, _ = _activation_of(layer)
        info, param = found if found is not None else (None, None)
        specs.append(
            LayerSpec(
                path=path,
                layer=layer,
                activation=info,
                param=param,
                direct=not (
                    isinstance(layer, keras.layers.RNN)
                    or getattr(layer, "gated", False)
                ),
                weight_owner=owners.get(path),
            )
        )
    return specs


def _weight_owners(leaves) -> dict[str, str]:
    owners = {}
    last = None
    for path, layer in leaves:
        if layer.trainable_weights:
            last = path
        owners[path] = last
    return owners


def _reference_layer(leaves) -> str | None:
    ref = None
    for path, layer in leaves:
        if layer.trainable_weights:
            ref = path
    return ref


def _first_tensor(out):
    for t in tf.nest.flatten(out):
        if hasattr(t, "dtype") and hasattr(t, "shape"):
            return t
    return None


class Probe:
    """One compiled forward+backward call returning every layer's statistics.

    Args:
        model: the built model.
        specs: the layers to monitor (`monitored_layers`).
        saturation_threshold: an output is saturated where the activation's
            derivative is below this fraction of its peak. Defaults to `0.05`.
        histograms: whether to bucket activations and gradients.
            Defaults to `True`.
        gradients: whether to compute gradient statistics (needs targets).
            Defaults to `True`.
        bins: histogram buckets. Defaults to `30`.
    """

    def __init__(
        self,
        model,
        specs: list[LayerSpec],
        *,
        saturation_threshold: float = 0.05,
        histograms: bool = True,
        gradients: bool = True,
        bins: int = 30,
    ):
        self.model = model
        self.specs = list(specs)
        self.saturation_threshold = saturation_threshold
        self.histograms = histograms
        self.gradients = gradients
        self.bins = bins
        leaves = [
            (p, lyr)
            for p, lyr in walk_layers(model)
            if not isinstance(lyr, keras.Model)
        ]
        self._leaves = dict(leaves)
        self.reference = _reference_layer(leaves)
        self.skipped: dict[str, str] = {}
        self._layout: dict[str, Any] = {}
        self._concrete = None
        self._compiler: threading.Thread | None = None
        self._compile_error: Exception | None = None

    # -- tracing ---------------------------------------------------------

    def _owner_var_indices(self, owner: str | None) -> list[int]:
        if owner is None:
            return []
        ids = {id(v) for v in self._leaves[owner].trainable_weights}
        return [
            i
            for i, v in enumerate(self.model.trainable_variables)
            if id(v) in ids
        ]

    def _probe_fn(self, x, y, w, with_grads, masked=False):
        model = self.model
        captured: dict[str, Any] = {}
        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]
        mv = [v.value for v in model.metrics_variables]
        patched = self._patch(captured)
        try:
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(tv)
                # `Model.stateless_call` would call `model.call` directly,
                # skipping the training-flag handling of `__call__`; the
                # scope gives the same isolation through `__call__`. Updates
                # made in the scope (moving statistics, seed states) are
                # dropped with it.
                mapping = list(zip(model.trainable_variables, tv))
                mapping += list(zip(model.non_trainable_variables, ntv))
                with keras.StatelessScope(state_mapping=mapping):
                    y_pred = model(x, training=True)
                if with_grads:
                    loss, _ = model.stateless_compute_loss(
                        tv,
                        ntv,
                        mv,
                        x=x,
                        y=y,
                        y_pred=y_pred,
                        sample_weight=w,
                        training=True,
                    )
        finally:
            self._unpatch(patched)
        grads = tape.gradient(loss, tv) if with_grads else None
        paths, outputs, dead_values, saturation = [], [], [], []
        for spec in self.specs:
            if spec.path in self.skipped:
                continue
            out = captured.get(spec.path)
            if out is None:
                self._skip(spec.path, "the layer was not called by the model")
                continue
            try:
                sat = spec.saturation()
                out = tf.cast(out, tf.float32)
                if spec.dead_value is not None and out.shape.rank is None:
                    raise ValueError("the output has an unknown rank")
            except Exception as exc:  # noqa: BLE001
                # One exotic layer must not stop the monitoring of the rest,
                # nor training.
                self._skip(spec.path, f"{type(exc).__name__}: {exc}")
                continue
            paths.append(spec.path)
            outputs.append(out)
            dead_values.append(spec.dead_value)
            saturation.append(
                (sat[0], self.saturation_threshold * sat[1]) if sat else None
            )
        bins = self.bins if self.histograms else None
        pieces, finite = [], []
        if outputs:
            act = stats.activation_stats_many(
                outputs,
                dead_values=dead_values,
                saturation=saturation,
                bins=bins,
                masked=masked,
            )
            pieces += [act["scalars"]] + ([act["counts"]] if bins else [])
            finite.append(act["all_finite"])
        owners: list[str] = []
        owner_of: dict[str, int] = {}
        groups = []
        if with_grads:
            wanted = [
                s.weight_owner
                for s in self.specs
                if s.path in paths and s.weight_owner is not None
            ] + [self.reference]
            for owner in dict.fromkeys(wanted):
                idx = self._owner_var_indices(owner)
                if idx:
                    owner_of[owner] = len(owners)
                    owners.append(owner)
                    groups.append(
                        ([grads[i] for i in idx], [tv[i] for i in idx])
                    )
        if owners:
            gst = stats.gradient_stats_many(groups, bins=bins, masked=masked)
            finite.append(gst["all_finite"])
            pieces.append(gst["scalars"])
            if bins:
                pieces += [gst["range"], gst["counts"]]
        if with_grads:
            pieces.append(tf.cast(loss, tf.float32))
        # Last: whether every measured value was finite, i.e. whether the
        # statistics taken without masks are exact.
        pieces.append(
            tf.cast(tf.reduce_all(tf.stack(finite)), tf.float32)
            if finite
            else tf.constant(1.0)
        )
        self._layout = {
            "paths": paths,
            "owners": owners,
            "grad_row": {
                s.path: owner_of[s.weight_owner]
                for s in self.specs
                if s.path in paths and s.weight_owner in owner_of
            },
            "reference_row": owner_of.get(self.reference),
            "bins": bins,
            "with_grads": with_grads,
        }
        return tf.concat([tf.reshape(t, [-1]) for t in pieces], axis=0)

    def _skip(self, path: str, why: str) -> None:
        if path not in self.skipped:
            self.skipped[path] = why
            logger.warning(
                "kerasinit HealthMonitor: statistics of layer '%s' cannot be "
                "computed (%s); it is skipped.",
                path,
                why,
            )

    def _patch(self, captured: dict) -> list:
        owner = threading.get_ident()
        patched = []
        for spec in self.specs:
            layer = spec.layer
            had_own = "call" in vars(layer)
            original = layer.call

            @functools.wraps(original)
            def wrapper(*args, _orig=original, _path=spec.path, **kwargs):
                out = _orig(*args, **kwargs)
                # Keras may trace its train step on the training thread
                # while the probe is traced in the background: only the
                # probe's own calls are captured.
                if threading.get_ident() == owner and _path not in captured:
                    first = _first_tensor(out)
                    if first is not None:
                        captured[_path] = first
                return out

            object.__setattr__(layer, "call", wrapper)
            patched.append((layer, had_own, original))
        return patched

    @staticmethod
    def _unpatch(patched: list) -> None:
        for layer, had_own, original in reversed(patched):
            if had_own:
                object.__setattr__(layer, "call", original)
            else:
                object.__delattr__(layer, "call")

    def _cache_key(self, x, y, w, with_grads: bool) -> tuple:
        """Everything the traced graph depends on besides variable values."""
        model = self.model

        def signature(value):
            return tuple(
                (tuple(t.shape), t.dtype.name)
                for t in tf.nest.flatten(value)
                if t is not None
            )

        return (
            tuple(
                (s.path, id(s.layer), s.activation_name, s.param, s.direct)
                for s in self.specs
            ),
            self.saturation_threshold,
            self.histograms,
            with_grads,
            self.bins,
            signature(x),
            signature(y),
            signature(w),
            tuple(id(v) for v in model.trainable_variables),
            tuple(id(v) for v in model.non_trainable_variables),
            # A recompiled model has a new loss.
            id(getattr(model, "loss", None)),
            id(getattr(model, "optimizer", None)),
        )

    def build(self, x, y=None, w=None) -> None:
        """Prepare the probe for this batch; reuse a compiled one if any.

        The compiled function reads the variables by reference and takes
        the batch as arguments, so it is kept per model and reused by any
        later probe with the same layers, settings and batch signature (a
        sweep that re-initializes one model and attaches a new monitor per
        run pays for compiling once). Without one, the first call runs the
        probe eagerly and compiles it in the background (see `__call__`).
        """
        with_grads = bool(self.gradients and y is not None)
        self.with_grads = with_grads
        self._structure = (x, y, w)
        self._args = [a for a in tf.nest.flatten((x, y, w)) if a is not None]
        self._key = self._cache_key(x, y, w, with_grads)
        per_model = vars(self.model).get(_TRACED_ATTR)
        if per_model is None:
            per_model = {}
            # Past Keras's attribute tracking: this is no model state.
            object.__setattr__(self.model, _TRACED_ATTR, per_model)
        self._per_model = per_model
        cached = per_model.get(self._key)
        if cached is not None:
            self._concrete, self._layout, skipped = cached
            for path, why in skipped.items():
                self._skip(path, why)

    def _run_eager(self, masked: bool = False) -> np.ndarray:
        x, y, w = self._structure
        return self._probe_fn(x, y, w, self.with_grads, masked).numpy()

    def _compile(self) -> None:
        """Trace, compile and run once the probe function (any thread).

        The one run makes TensorFlow instantiate and optimize the graph
        here rather than at the next logging event; it reads the variables
        and changes nothing, and its result is thrown away.
        """
        x, y, w = self._structure
        fn = tf.function(
            functools.partial(self._probe_fn, with_grads=self.with_grads),
            autograph=False,
        )
        concrete = fn.get_concrete_function(x, y, w)
        try:
            concrete(*self._args)
        except tf.errors.InvalidArgumentError:
            # Non-finite values reached a histogram: compiled all the same.
            pass
        self._per_model[self._key] = (
            concrete,
            self._layout,
            dict(self.skipped),
        )
        self._concrete = concrete

    def start_compiling(self) -> None:
        """Compile the probe on a background thread, unless done or under way.

        Training goes on meanwhile; the next call waits for the thread and
        then runs the compiled function. If compiling fails, the probe keeps
        running eagerly.
        """
        if (
            self._concrete is not None
            or self._compiler is not None
            or self._compile_error is not None
        ):
            return

        def target():
            try:
                self._compile()
            except Exception as exc:  # noqa: BLE001
                # The eager function keeps measuring.
                self._compile_error = exc
                logger.warning(
                    "kerasinit HealthMonitor: the probe could not be "
                    "compiled (%s: %s); it keeps running eagerly.",
                    type(exc).__name__,
                    exc,
                )

        # Not a daemon: the interpreter waits for it at exit rather than
        # stopping it inside TensorFlow.
        self._compiler = threading.Thread(
            target=target, name="kerasinit-probe-compile"
        )
        self._compiler.start()

    def wait(self) -> None:
        """Block until a background compilation, if any, has finished."""
        if self._compiler is not None:
            self._compiler.join()
            self._compiler = None

    def __call__(self) -> dict:
        """Run the probe; one transfer; unpacked host-side statistics.

        Returns:
            ``{"layers": {path: {metric: value}}, "reference_grad_norm":
            float | None, "loss": float | None}``, histograms as arrays.
        """
        if not hasattr(self, "_args"):
            raise ValueError("Call `build` before running the probe.")
        self.wait()
        try:
            if self._concrete is not None:
                flat = self._concrete(*self._args).numpy()
            else:
                # Until it is compiled (`start_compiling`), the function runs
                # eagerly: one call costs a fraction of tracing and
                # compiling it.
                flat = self._run_eager()
            exact = flat[-1] == 1.0
        except tf.errors.InvalidArgumentError:
            # Histogram ops refuse NaN ranges and values.
            exact = False
        if not exact:
            # Some value is not finite: the statistics taken without masks
            # are not exact. Such events are rare (usually the last before
            # training diverges); this one is measured again with masks,
            # eagerly.
            flat = self._run_eager(masked=True)
        layout = self._layout
        bins = layout["bins"]
        paths, owners = layout["paths"], layout["owners"]
        pos = 0

        def take(*shape):
            nonlocal pos
            size = int(np.prod(shape))
            block = flat[pos : pos + size].reshape(shape)
            pos += size
            return block

        layers: dict[str, dict] = {p: {} for p in paths}
        if paths:
            scalars = take(len(paths), len(stats.ACTIVATION_SCALARS))
            for path, row in zip(paths, scalars):
                layers[path].update(zip(stats.ACTIVATION_SCALARS, row.tolist()))
            if bins:
                tables = stats.histogram_table(
                    scalars[:, 2], scalars[:, 3], take(len(paths), bins)
                )
                for path, table in zip(paths, tables):
                    layers[path]["histogram"] = table
        reference = None
        if owners:
            scalars = take(len(owners), len(stats.GRADIENT_SCALARS))
            if bins:
                extremes = take(len(owners), 2)
                hists = stats.histogram_table(
                    extremes[:, 0], extremes[:, 1], take(len(owners), bins)
                )
            for path, row in layout["grad_row"].items():
                layers[path].update(
                    zip(stats.GRADIENT_SCALARS, scalars[row].tolist())
                )
                if bins:
                    layers[path]["grad_histogram"] = hists[row]
            if layout["reference_row"] is not None:
                reference = float(scalars[layout["reference_row"], 0])
        out: dict[str, Any] = {
            "layers": layers,
            "reference_grad_norm": reference,
            "loss": float(take(1)[0]) if layout["with_grads"] else None,
        }
        for entry in out["layers"].values():
            if not np.isfinite(entry.get("act_min", 0.0)):
                # No finite activation at all: the moments are meaningless.
                for k in ("act_mean", "act_std", "act_min", "act_max"):
                    entry[k] = float("nan")
        return out
