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
   `gradient_stats`, written with `keras.ops`) and packs them into one
   float32 vector (`result.ProbeLayout`), so one event costs one
   device-to-host transfer.

Taking gradients and compiling are the backend's
(`kerasinit.monitor.backends`): a `tf.function`, `jax.jit` over the
stateless call, or PyTorch's eager execution. The function runs eagerly
until `Probe.start_compiling` compiles it on another thread; every later
call is one compiled call. Compiling costs as much as a few eager calls, so
the callback asks for it only when enough events are still to come.

The function is pure: the weights, the non-trainable state and the
weights at the previous event are its arguments, and it returns the
statistics and a device copy of the weights, from which the next call
measures the relative size of the updates made since.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import keras
import numpy as np
from keras import ops

from kerasinit.monitor import activation_stats, backends, gradient_stats
from kerasinit.monitor.capture import LayerOutputs
from kerasinit.monitor.result import ProbeLayout, ProbeResult
from kerasinit.monitor.selection import (
    LayerSpec,
    leaf_layers,
    reference_layer,
)

__all__ = ["GRADIENT_COLUMNS", "Probe", "ProbeDoesNotFit", "input_rms"]

logger = logging.getLogger("kerasinit.monitor")

#: The gradient group's columns: the device statistics, then the relative
#: size of the weight update.
GRADIENT_COLUMNS = gradient_stats.DEVICE_METRICS + ("update_ratio",)

# The attribute on a model holding {cache key -> _Traced}. It lives on the
# model, not in a module-level map: the compiled function references the
# model, so a map keyed by the model would keep every model alive.
_TRACED_ATTR = "_kerasinit_traced_probes"


class ProbeDoesNotFit(ValueError):
    """The model or its loss rejected the probe batch: a user error."""


class _Traced:
    """A compiled probe, its layout, and what it needs to be reused."""

    def __init__(self, function, layout, skipped):
        self.function = function
        self.layout = layout
        self.skipped = skipped


def input_rms(x):
    """``[1]`` the RMS of every float value of the inputs `x` (NaN when
    none is)."""
    floats = [
        ops.reshape(ops.cast(t, "float32"), [-1])
        for t in keras.tree.flatten(x)
        if t is not None and activation_stats.is_float(t)
    ]
    if not floats:
        return ops.convert_to_tensor([float("nan")], "float32")
    values = floats[0] if len(floats) == 1 else ops.concatenate(floats, axis=0)
    return ops.reshape(ops.sqrt(ops.mean(ops.square(values))), [1])


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

    Raises:
        NotImplementedError: the Keras backend is not one the monitor
            supports.
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
        self._backend = backends.current()
        leaves = leaf_layers(model)
        self._leaves = dict(leaves)
        self.reference = reference_layer(leaves)
        self.skipped: dict[str, str] = {}
        self.with_grads = False
        self._batch: tuple | None = None
        self._key: tuple | None = None
        self._per_model: dict = {}
        self._traced: _Traced | None = None
        self._previous: list = []
        self._previous_known = False
        self._compile_args: tuple | None = None
        # {masked: (function, layouts)}: the uncompiled runs.
        self._eager: dict = {}
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
        """``(loss or None, layer outputs)``: the user's part.

        Runs inside the backend's gradient transformation, so the captured
        outputs leave it as its auxiliary result.
        """
        model = self.model
        mv = [v.value for v in model.metrics_variables]
        watched = {s.path: s.layer for s in self.specs}
        # `Model.stateless_call` would call `model.call` directly, skipping
        # the training-flag handling of `__call__`; the scope gives the same
        # isolation through `__call__`.
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
        return loss, dict(outputs)

    def _measure(self, tv, ntv, previous, x, y, w, *, masked: bool):
        """``(layout, flat vector, weights copy)``: one probe run.

        Eager or traced; every argument is a tensor (or a list of them), so
        the same function is compiled by any backend.
        """
        backend = self._backend
        with_grads = y is not None
        try:
            if with_grads:
                loss, outputs, grads = backend.value_and_grad(
                    lambda weights: self._forward(x, y, w, weights, ntv), tv
                )
            else:
                loss, outputs = self._forward(x, y, w, tv, ntv)
                grads = None
        except backend.USER_ERRORS as exc:
            # Any error here means the batch does not fit the model or its
            # loss.
            raise ProbeDoesNotFit(f"{type(exc).__name__}: {exc}") from exc
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
                out = ops.cast(out, "float32")
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
        pieces: dict[str, Any] = {
            "input_rms": input_rms(x),
            "input_cosine": activation_stats.input_cosine(
                keras.tree.flatten(x)
            ),
        }
        finite = []
        if tensors:
            act = activation_stats.activation_stats_many(
                tensors,
                dead_values=dead_values,
                saturation=saturation,
                bins=bins,
                masked=masked,
            )
            pieces["activations"] = ops.stack(
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
                    before.append([previous[i] for i in idx])
            if owners:
                gst = gradient_stats.gradient_stats_many(
                    groups, bins=bins, masked=masked
                )
                finite.append(gst["all_finite"])
                # NaN at a run's first event: set on the host, from
                # whether a previous event's weights are known.
                updates = gradient_stats.update_ratios(now, before)
                columns = dict(gst["columns"], update_ratio=updates)
                pieces["gradients"] = ops.stack(
                    [columns[c] for c in GRADIENT_COLUMNS], axis=1
                )
                if bins:
                    pieces["gradient_range"] = gst["range"]
                    pieces["gradient_counts"] = gst["counts"]
            pieces["loss"] = ops.reshape(loss, [1])
        pieces["finite"] = ops.reshape(
            ops.all(ops.stack(finite))
            if finite
            else ops.convert_to_tensor(True),
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
            gradient_columns=GRADIENT_COLUMNS,
            bins=bins,
            with_grads=with_grads,
        )
        copies = [backend.copy(t) for t in tv] if with_grads else []
        return layout, layout.pack(pieces), copies

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
                (tuple(t.shape), keras.backend.standardize_dtype(t.dtype))
                for t in keras.tree.flatten(value)
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

        The compiled function takes the weights and the batch as arguments,
        so it is kept per model and reused by any later probe with the same
        layers, settings and batch signature (a sweep that re-initializes
        one model and attaches a new monitor per run pays for compiling
        once). Without one, calls run the probe eagerly until
        `start_compiling`.
        """
        self.with_grads = bool(self.gradients and y is not None)
        if not self.with_grads:
            y = w = None
        x, y, w = self._backend.place((x, y, w))
        self._batch = (x, y, w)
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
            for path, why in cached.skipped.items():
                self._skip(path, why)
        # Update sizes belong to the gradient statistics: without targets
        # no copy of the weights is kept. A new run: the weights of an
        # earlier one are no previous event, but a copy of the right shapes
        # keeps the function's arguments alike.
        self._previous = (
            [
                self._backend.copy(t)
                for t in self._backend.weight_values(
                    self.model.trainable_variables
                )
            ]
            if self.with_grads
            else []
        )
        self._previous_known = False

    def _arguments(self) -> tuple:
        """The function's arguments now (on the training thread only)."""
        backend, model = self._backend, self.model
        x, y, w = self._batch
        backend.sync(model)
        return (
            backend.weight_values(model.trainable_variables),
            backend.weight_values(model.non_trainable_variables),
            self._previous,
            x,
            y,
            w,
        )

    def _run_eager(
        self, args: tuple, masked: bool
    ) -> tuple[ProbeLayout, np.ndarray, list]:
        """One uncompiled run: as the backend runs a function at once."""
        if masked not in self._eager:
            layouts = []

            def probe_fn(*args):
                layout, flat, copies = self._measure(*args, masked=masked)
                layouts.append(layout)
                return flat, copies

            self._eager[masked] = (self._backend.eager(probe_fn), layouts)
        function, layouts = self._eager[masked]
        flat, copies = function(*args)
        return layouts[-1], ops.convert_to_numpy(flat), copies

    def _compile(self) -> None:
        """Trace and compile the probe function (any thread).

        It is compiled for the arguments of the latest call on the training
        thread (`start_compiling`).
        """
        layouts = []

        def probe_fn(tv, ntv, previous, x, y, w):
            layout, flat, copies = self._measure(
                tv, ntv, previous, x, y, w, masked=False
            )
            layouts.append(layout)
            return flat, copies

        function = self._backend.compile(probe_fn, self._compile_args)
        traced = _Traced(function, layouts[-1], dict(self.skipped))
        self._per_model[self._key] = traced
        self._traced = traced

    def start_compiling(self) -> None:
        """Compile the probe on a background thread, unless done or under way.

        Called on the training thread, which owns the arguments the
        function is compiled for. Training goes on meanwhile; the next call
        waits for the thread and
        then runs the compiled function. If compiling fails, the probe keeps
        running eagerly.
        """
        if (
            not self._backend.COMPILES
            or self._traced is not None
            or self._compiler is not None
            or self._compile_error is not None
        ):
            return
        self._compile_args = self._backend.abstract(self._arguments())

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
        if self._batch is None:
            raise ValueError("Call `build` before running the probe.")
        self.wait()
        with self._backend.isolated_rng():
            return self._call()

    def _call(self) -> ProbeResult:
        args = self._arguments()
        if self._traced is not None:
            layout = self._traced.layout
            flat, copies = self._traced.function(*args)
            flat = ops.convert_to_numpy(flat)
        else:
            # Until it is compiled (`start_compiling`), the function runs
            # eagerly: one call costs a fraction of tracing and compiling.
            layout, flat, copies = self._run_eager(args, masked=False)
        if not layout.exact(flat):
            # Some value is not finite: the statistics taken without masks
            # are not exact. Such events are rare (usually the last before
            # training diverges); this one is measured again with masks,
            # eagerly.
            layout, flat, copies = self._run_eager(args, masked=True)
        result = layout.unpack(flat, updates_known=self._previous_known)
        if self.with_grads:
            self._previous = list(copies)
            self._previous_known = True
        return result
