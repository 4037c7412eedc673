"""`Probe`: the one call that measures every monitored layer at once.

On the probe batch, one function:

1. runs the forward pass in training-mode semantics inside a
   `keras.StatelessScope`, with the current variable values passed in and
   the updated non-trainable values (BatchNormalization moving statistics,
   dropout seed state) thrown away with the scope, so no model state
   changes; the monitored layers' outputs are kept by
   `kerasinit.monitor.capture.LayerOutputs`;
2. computes the compiled loss with `keras.Model.stateless_compute_loss`
   (metric state untouched) and its gradients with respect to the trainable
   variables;
3. reduces everything to small statistics (`activation_stats`,
   `gradient_stats`) and packs them into one float32 vector
   (`result.ProbeLayout`), so one event costs one device-to-host transfer.

The function runs eagerly until `Probe.start_compiling` compiles it
(`tf.function`) on another thread; every later call is one compiled call.
Compiling costs as much as a few eager calls, so the callback asks for it
only when enough events are still to come.

Between calls the probe keeps one copy of the monitored layers' trainable
weights (its own variables, never the model's), from which the next call
measures the relative size of the updates made since.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasinit.monitor import activation_stats, gradient_stats
from kerasinit.monitor.capture import LayerOutputs
from kerasinit.monitor.result import ProbeLayout, ProbeResult
from kerasinit.monitor.selection import (
    LayerSpec,
    leaf_layers,
    reference_layer,
)

__all__ = ["Probe", "ProbeDoesNotFit"]

logger = logging.getLogger("kerasinit.monitor")

# The attribute on a model holding {cache key -> _Traced}. It lives on the
# model, not in a module-level map: the traced function references the
# model's variables, so a map keyed by the model would keep every model
# alive.
_TRACED_ATTR = "_kerasinit_traced_probes"


class ProbeDoesNotFit(ValueError):
    """The model or its loss rejected the probe batch: a user error."""


class _Previous:
    """The weights at the previous event: one copy, on the device."""

    def __init__(self, variables: list):
        self.values = [
            tf.Variable(v.value, trainable=False, name="kerasinit_previous")
            for v in variables
        ]
        self.known = tf.Variable(False, trainable=False)
        self._sources = list(variables)
        self._remember = None

    def remember(self) -> None:
        """Copy the current weights (one compiled call after the first)."""
        if self._remember is None:

            def copy():
                for mine, source in zip(self.values, self._sources):
                    mine.assign(source.value)
                self.known.assign(True)

            self._remember = tf.function(copy, autograph=False)
        self._remember()

    def forget(self) -> None:
        self.known.assign(False)


class _Traced:
    """A compiled probe, its layout, and what it needs to be reused."""

    def __init__(self, function, layout, skipped, previous):
        self.function = function
        self.layout = layout
        self.skipped = skipped
        self.previous = previous


def _input_rms(x) -> tf.Tensor:
    """``[1]`` the RMS of every float input value (NaN when none is)."""
    floats = [
        tf.reshape(tf.cast(t, tf.float32), [-1])
        for t in tf.nest.flatten(x)
        if t is not None and t.dtype.is_floating
    ]
    if not floats:
        return tf.constant([float("nan")])
    values = floats[0] if len(floats) == 1 else tf.concat(floats, axis=0)
    return tf.reshape(tf.sqrt(tf.reduce_mean(tf.square(values))), [1])


class Probe:
    """One compiled forward+backward call returning every layer's statistics.

    Args:
        model: the built model.
        specs: the layers to monitor (`selection.monitored_layers`).
        saturation_threshold: an output is saturated where the activation's
            derivative is below this fraction of its peak. Defaults to `0.05`.
        histograms: whether to bucket activations and gradients.
            Defaults to `True`.
        gradients: whether to compute gradient statistics (needs targets).
            Defaults to `True`.
        bins: histogram buckets. Defaults to `30`.

    Attributes:
        reference: path of the last layer with trainable weights.
        skipped: ``{path: why}`` for the layers that cannot be measured.
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
        leaves = leaf_layers(model)
        self._leaves = dict(leaves)
        self.reference = reference_layer(leaves)
        self.skipped: dict[str, str] = {}
        self.with_grads = False
        self._batch: tuple | None = None
        self._args: list | None = None
        self._key: tuple | None = None
        self._per_model: dict = {}
        self._traced: _Traced | None = None
        self._previous: _Previous | None = None
        self._compiler: threading.Thread | None = None
        self._compile_error: Exception | None = None

    @property
    def compiled(self):
        """The compiled probe function, or `None` while it runs eagerly."""
        return self._traced.function if self._traced is not None else None

    @property
    def compiling(self) -> bool:
        """Whether a background compilation is under way."""
        return self._compiler is not None

    # -- tracing ---------------------------------------------------------

    def _owner_variables(self, owner: str | None) -> list[int]:
        """Indices in ``model.trainable_variables`` of an owner's weights."""
        if owner is None:
            return []
        ids = {id(v) for v in self._leaves[owner].trainable_weights}
        return [
            i
            for i, v in enumerate(self.model.trainable_variables)
            if id(v) in ids
        ]

    def _forward(self, x, y, w, tv, ntv):
        """``(layer outputs, loss or None, tape)``: the user's part.

        Any error here means the batch does not fit the model or its loss.
        """
        model = self.model
        mv = [v.value for v in model.metrics_variables]
        watched = {s.path: s.layer for s in self.specs}
        try:
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(tv)
                # `Model.stateless_call` would call `model.call` directly,
                # skipping the training-flag handling of `__call__`; the
                # scope gives the same isolation through `__call__`.
                mapping = list(zip(model.trainable_variables, tv))
                mapping += list(zip(model.non_trainable_variables, ntv))
                with LayerOutputs(watched) as outputs:
                    with keras.StatelessScope(state_mapping=mapping):
                        y_pred = model(x, training=True)
                loss = None
                if y is not None:
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
        except (ValueError, TypeError, tf.errors.InvalidArgumentError) as exc:
            raise ProbeDoesNotFit(f"{type(exc).__name__}: {exc}") from exc
        return outputs, loss, tape

    def _measure(self, x, y, w, *, masked: bool, previous: _Previous | None):
        """``(layout, flat vector)``: one probe run (eager or traced)."""
        model = self.model
        with_grads = y is not None
        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]
        outputs, loss, tape = self._forward(x, y, w, tv, ntv)
        grads = tape.gradient(loss, tv) if with_grads else None
        paths, tensors, dead_values, saturation = [], [], [], []
        for spec in self.specs:
            if spec.path in self.skipped:
                continue
            out = outputs.get(spec.path)
            if out is None:
                self._skip(spec.path, "the layer was not called by the model")
                continue
            try:
                sat = spec.saturation()
                out = tf.cast(out, tf.float32)
                if out.shape.rank is None:
                    raise ValueError("the output has an unknown rank")
            except Exception as exc:  # noqa: BLE001
                # One exotic layer must not stop the monitoring of the rest,
                # nor training.
                self._skip(spec.path, f"{type(exc).__name__}: {exc}")
                continue
            paths.append(spec.path)
            tensors.append(out)
            dead_values.append(spec.dead_value)
            saturation.append(
                (sat[0], self.saturation_threshold * sat[1]) if sat else None
            )
        bins = self.bins if self.histograms else None
        pieces: dict[str, Any] = {"input_rms": _input_rms(x)}
        finite = []
        if tensors:
            act = activation_stats.activation_stats_many(
                tensors,
                dead_values=dead_values,
                saturation=saturation,
                bins=bins,
                masked=masked,
            )
            pieces["activations"] = tf.stack(
                [act["columns"][c] for c in activation_stats.DEVICE_METRICS],
                axis=1,
            )
            if bins:
                pieces["activation_counts"] = act["counts"]
            finite.append(act["all_finite"])
        owners: list[str] = []
        owner_row: dict[str, int] = {}
        if with_grads:
            wanted = [
                s.weight_owner
                for s in self.specs
                if s.path in paths and s.weight_owner is not None
            ] + [self.reference]
            groups, now, before = [], [], []
            for owner in dict.fromkeys(wanted):
                idx = self._owner_variables(owner)
                if idx:
                    owner_row[owner] = len(owners)
                    owners.append(owner)
                    groups.append(
                        ([grads[i] for i in idx], [tv[i] for i in idx])
                    )
                    now.append([tv[i] for i in idx])
                    before.append([previous.values[i] for i in idx])
            if owners:
                gst = gradient_stats.gradient_stats_many(
                    groups, bins=bins, masked=masked
                )
                finite.append(gst["all_finite"])
                updates = tf.where(
                    previous.known,
                    gradient_stats.update_ratios(now, before),
                    float("nan"),
                )
                columns = dict(gst["columns"], update_ratio=updates)
                pieces["gradients"] = tf.stack(
                    [columns[c] for c in _GRADIENT_COLUMNS], axis=1
                )
                if bins:
                    pieces["gradient_range"] = gst["range"]
                    pieces["gradient_counts"] = gst["counts"]
            pieces["loss"] = tf.reshape(loss, [1])
        pieces["finite"] = tf.reshape(
            tf.reduce_all(tf.stack(finite)) if finite else tf.constant(True),
            [1],
        )
        layout = ProbeLayout(
            paths=tuple(paths),
            owners=tuple(owners),
            grad_rows=tuple(
                (s.path, owner_row[s.weight_owner])
                for s in self.specs
                if s.path in paths and s.weight_owner in owner_row
            ),
            reference_row=owner_row.get(self.reference),
            activation_columns=activation_stats.DEVICE_METRICS,
            gradient_columns=_GRADIENT_COLUMNS,
            bins=bins,
            with_grads=with_grads,
        )
        return layout, layout.pack(pieces)

    def _skip(self, path: str, why: str) -> None:
        if path not in self.skipped:
            self.skipped[path] = why
            logger.warning(
                "kerasinit HealthMonitor: statistics of layer '%s' cannot be "
                "computed (%s); it is skipped.",
                path,
                why,
            )

    def _cache_key(self, x, y, w) -> tuple:
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
            self.with_grads,
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
        run pays for compiling once). Without one, calls run the probe
        eagerly until `start_compiling`.
        """
        self.with_grads = bool(self.gradients and y is not None)
        if not self.with_grads:
            y = w = None
        self._batch = (x, y, w)
        self._args = [a for a in tf.nest.flatten((x, y, w)) if a is not None]
        self._key = self._cache_key(x, y, w)
        per_model = vars(self.model).get(_TRACED_ATTR)
        if per_model is None:
            per_model = {}
            # Past Keras's attribute tracking: this is no model state.
            object.__setattr__(self.model, _TRACED_ATTR, per_model)
        self._per_model = per_model
        cached = per_model.get(self._key)
        if cached is not None:
            self._traced = cached
            self._previous = cached.previous
            for path, why in cached.skipped.items():
                self._skip(path, why)
        elif self.with_grads:
            # Update sizes belong to the gradient statistics: without
            # targets no copy of the weights is kept.
            self._previous = _Previous(self.model.trainable_variables)
        if self._previous is not None:
            # A new run: the weights of an earlier one are no previous event.
            self._previous.forget()

    def _run_eager(self, masked: bool) -> tuple[ProbeLayout, np.ndarray]:
        x, y, w = self._batch
        layout, flat = self._measure(
            x, y, w, masked=masked, previous=self._previous
        )
        return layout, flat.numpy()

    def _compile(self) -> None:
        """Trace, compile and run once the probe function (any thread).

        The one run makes TensorFlow instantiate and optimize the graph
        here rather than at the next logging event; it reads the variables
        and changes nothing, and its result is thrown away.
        """
        x, y, w = self._batch
        layouts = []
        previous = self._previous

        def probe_fn(x, y, w):
            layout, flat = self._measure(
                x, y, w, masked=False, previous=previous
            )
            layouts.append(layout)
            return flat

        fn = tf.function(probe_fn, autograph=False)
        concrete = fn.get_concrete_function(x, y, w)
        concrete(*self._args)
        traced = _Traced(concrete, layouts[-1], dict(self.skipped), previous)
        self._per_model[self._key] = traced
        self._traced = traced

    def start_compiling(self) -> None:
        """Compile the probe on a background thread, unless done or under way.

        Training goes on meanwhile; the next call waits for the thread and
        then runs the compiled function. If compiling fails, the probe keeps
        running eagerly.
        """
        if (
            self._traced is not None
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

    def __call__(self) -> ProbeResult:
        """Run the probe: one call, one transfer, a typed result.

        Raises:
            ProbeDoesNotFit: the model or its loss rejected the batch.
            ValueError: `build` was not called.
        """
        if self._args is None:
            raise ValueError("Call `build` before running the probe.")
        self.wait()
        if self._traced is not None:
            layout = self._traced.layout
            flat = self._traced.function(*self._args).numpy()
        else:
            # Until it is compiled (`start_compiling`), the function runs
            # eagerly: one call costs a fraction of tracing and compiling.
            layout, flat = self._run_eager(masked=False)
        if not layout.exact(flat):
            # Some value is not finite: the statistics taken without masks
            # are not exact. Such events are rare (usually the last before
            # training diverges); this one is measured again with masks,
            # eagerly.
            layout, flat = self._run_eager(masked=True)
        result = layout.unpack(flat)
        if self.with_grads:
            self._previous.remember()
        return result


# The gradient group's columns: the device statistics, then the update size.
_GRADIENT_COLUMNS = gradient_stats.DEVICE_METRICS + ("update_ratio",)
