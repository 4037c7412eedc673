"""`InStep`: statistics of the training batch, from inside Keras's train step.

The probe (`kerasinit.monitor.probe`) runs a forward and backward pass of
its own on a fixed batch: a picture comparable across time, at the price
of one extra pass per event. Here the statistics come from the pass the
train step already makes, on the batch it trains on:

- activation statistics from the layer outputs of that forward pass,
  captured by the same `LayerOutputs` wrappers as the probe's, installed
  while Keras traces its train function, and reduced when the step
  computes its loss (``model.compute_loss``: every output is known then);
- gradient statistics from the gradients the optimizer applies
  (``optimizer.apply``, the innermost optimizer under a
  `keras.optimizers.LossScaleOptimizer`, so the gradients are unscaled),
  with the weights before and after the update.

Keras's train function is made twice: the plain one, which `fit` made
before its first callback, and one traced with the wrappers in place.
``model.train_function`` becomes a dispatcher that counts the steps on the
host and calls the measuring function only for a step that is due (its
count of earlier updates a multiple of `every_n_steps`), the plain one
otherwise: a step that is not due runs exactly the function it ran
without the monitor. With ``steps_per_execution > 1`` an execution that
holds a due step runs the measuring function, in which a conditional on
the device (``optimizer.iterations % every_n_steps == 0``) picks the due
step. The statistics reach the host in one small vector each, at the
event (`kerasinit.monitor.backends`' ``Outbox``). Nothing the step
computes is changed: the statistics are taken of values it computes
anyway, behind `stop_gradient`. On leaving, the plain function is put
back; the measuring one is kept for the next `fit` with this monitor,
until the model is compiled again.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from typing import Any

import keras
from keras import ops

from kerasinit.monitor import activation_stats, backends, gradient_stats
from kerasinit.monitor.batch_vectors import (
    FORWARD,
    FORWARD_COUNTS,
    GRADIENT_COUNTS,
    GRADIENTS,
    BatchResult,
    VectorLayout,
    pack,
    size,
)
from kerasinit.monitor.capture import LayerOutputs
from kerasinit.monitor.probe import GRADIENT_COLUMNS, input_rms
from kerasinit.monitor.selection import LayerSpec, leaf_layers

__all__ = ["BatchResult", "InStep"]

logger = logging.getLogger("kerasinit.monitor")


@dataclasses.dataclass
class _Step:
    """What one traced (or, on PyTorch, run) train step measures."""

    due: Any
    step: Any
    # Whether the step buckets its histograms, where they have a cadence
    # of their own (`None` otherwise).
    histograms_due: Any = None
    forward_sent: bool = False
    gradients_sent: bool = False


class InStep:
    """Measures the training batch inside the train step on due steps.

    A context manager: entering installs the wrappers (layer calls, the
    model's ``train_step`` and ``compute_loss``, the optimizer's
    ``apply``) and makes Keras build its train function again (once per
    compiled model: entering again reuses it); leaving removes them and
    puts back the plain function.

    Args:
        model: the built, compiled model.
        specs: the layers to monitor (`selection.monitored_layers`).
        every_n_steps: measure the steps whose count of earlier updates is
            a multiple of this.
        reference: path of the last layer with trainable weights.
        saturation_threshold: as `kerasinit.monitor.probe.Probe`'s.
            Defaults to `0.05`.
        histograms: bucket activations and gradients. Defaults to `True`.
        gradients: measure the applied gradients. Defaults to `True`.
        bins: histogram buckets. Defaults to `30`.
        histogram_every_n_steps: bucket the histograms only on the due
            steps whose count of earlier updates is a multiple of this (a
            multiple of `every_n_steps`), or `None` on every due step.
            Bucketing is a fifth to two fifths of a due step's statistics
            on the reference workloads (``docs/monitor.md``, Overhead).
            Defaults to `None`.
        statistics: ``"full"`` or ``"economy"``, as `HealthMonitor`'s.
            Defaults to `"full"`.

    Attributes:
        measured: whether a call of the train function measured a step
            since the last `take` (the monitor takes the statistics at the
            next batch-begin or epoch-end hook: a batch-end hook would turn
            off Keras's asynchronous dispatch of every step's hooks, and
            JAX's `fit` hands the model its state back only after the
            call).
    """

    def __init__(
        self,
        model,
        specs: list[LayerSpec],
        *,
        every_n_steps: int,
        reference: str | None = None,
        saturation_threshold: float = 0.05,
        histograms: bool = True,
        gradients: bool = True,
        bins: int = 30,
        histogram_every_n_steps: int | None = None,
        statistics: str = "full",
    ):
        self.model = model
        self.specs = list(specs)
        self.every_n_steps = int(every_n_steps)
        self.reference = reference
        self.saturation_threshold = saturation_threshold
        self.histograms = histograms
        self.gradients = gradients
        self.statistics = statistics
        economy = statistics == "economy"
        # Economy buckets histograms only at a cadence of their own.
        wanted = histograms and not (
            economy and histogram_every_n_steps is None
        )
        self.bins = bins if wanted else None
        self.histogram_every_n_steps = histogram_every_n_steps
        self._metrics = (
            activation_stats.ECONOMY_METRICS
            if economy
            else activation_stats.DEVICE_METRICS
        )
        # Histograms with a cadence of their own travel apart from the
        # other statistics; otherwise in the same vectors.
        self._apart = bool(
            self.bins
            and histogram_every_n_steps is not None
            and histogram_every_n_steps != self.every_n_steps
        )
        self.measured = False
        self._backend = backends.current()
        self._leaves = dict(leaf_layers(model))
        self._outbox = self._backend.Outbox()
        self._optimizer = None
        self._outputs: LayerOutputs | None = None
        self._captured: dict = {}
        self._installed: list[tuple[Any, str, bool, Any]] = []
        # ``(plain, measuring)``: the train functions of the latest `fit`.
        self._functions: tuple | None = None
        self._plain = None
        self._current: _Step | None = None
        # Whether the call under way is the measuring function's.
        self._measuring = False
        self._host_step = 0
        self._call_step = 0
        # What the latest trace measured: the layout of its vectors.
        self._paths: tuple[str, ...] = ()
        self._owners: tuple[str, ...] = ()
        self._taken = -1

    # -- installing --------------------------------------------------------

    def __enter__(self) -> InStep:
        model = self.model
        try:
            watched = {s.path: s.layer for s in self.specs}
            self._outputs = LayerOutputs(watched)
            self._captured = self._outputs.__enter__()
            self._wrap(model, "train_step", self._train_step)
            self._wrap(model, "compute_loss", self._compute_loss)
            if self.gradients and model.optimizer is not None:
                optimizer = model.optimizer
                # A loss-scale optimizer unscales before its inner one.
                while hasattr(optimizer, "inner_optimizer"):
                    optimizer = optimizer.inner_optimizer
                self._optimizer = optimizer
                self._wrap(optimizer, "apply", self._apply)
            self._host_step = int(model.optimizer.iterations.numpy())
            # `fit` made its train function before the callbacks' first
            # hook: the plain one. The measuring one is traced at its first
            # call, with the wrappers active.
            if model.train_function is None:
                model.make_train_function()
            plain = self._plain = model.train_function
            if self._functions is not None and self._functions[0] is plain:
                # The model was not compiled again since the last `fit`
                # (compiling drops its train function): the measuring
                # function traced then still holds.
                measuring = self._functions[1]
            else:
                # A new outbox too: a model compiled again has a new
                # optimizer, whose count of updates starts again at 0, and
                # the old outbox's steps would hide the new ones.
                self._outbox = self._backend.Outbox()
                self._taken = -1
                model.make_train_function(force=True)
                measuring = model.train_function
                self._functions = (plain, measuring)
            object.__setattr__(
                model, "train_function", self._dispatcher(plain, measuring)
            )
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self._restore()

    def _wrap(self, owner, name: str, make) -> None:
        had_own = name in vars(owner)
        original = getattr(owner, name)
        wrapper = functools.wraps(original)(make(original))
        # Past Keras's attribute tracking: no layer state.
        object.__setattr__(owner, name, wrapper)
        self._installed.append((owner, name, had_own, original))

    def _restore(self) -> None:
        while self._installed:
            owner, name, had_own, original = self._installed.pop()
            if had_own:
                object.__setattr__(owner, name, original)
            else:
                object.__delattr__(owner, name)
        if self._outputs is not None:
            self._outputs.__exit__(None, None, None)
            self._outputs = None
        if self._plain is not None:
            # The function `fit` made, traced without the wrappers: what
            # runs without the monitor (the measuring one is kept for the
            # next `fit` with it).
            self.model.train_function = self._plain
            self._plain = None

    def sync_step(self, count: int) -> None:
        """Set the host's count of updates done (at an epoch's start).

        An epoch whose last execution stopped short of
        ``steps_per_execution`` steps leaves the count ahead; the
        optimizer's is the truth.
        """
        self._host_step = int(count)

    def _dispatcher(self, plain, measuring):
        n = self.every_n_steps

        def train_function(*args, **kwargs):
            per_call = max(
                int(getattr(self.model, "steps_per_execution", 1)), 1
            )
            first = self._host_step
            self._host_step += per_call
            last = first + per_call - 1
            if (last // n) * n < first:
                return plain(*args, **kwargs)
            self._measuring = True
            self._call_step = first
            try:
                return self._outbox.detach(measuring(*args, **kwargs))
            finally:
                self._measuring = False
                self.measured = True

        return train_function

    # -- inside the step ---------------------------------------------------

    def _train_step(self, original):
        def train_step(*args, **kwargs):
            if not self._measuring:
                return original(*args, **kwargs)
            count = self._backend.step_count(self.model, args)
            if count is None:
                # PyTorch: one eager step per call, every call due.
                count, due = self._call_step, True
            elif getattr(self.model, "steps_per_execution", 1) == 1:
                due = True
            else:
                due = ops.equal(ops.mod(count, self.every_n_steps), 0)
            histograms_due = None
            if self._apart:
                every = self.histogram_every_n_steps
                if isinstance(count, int):
                    histograms_due = count % every == 0
                else:
                    histograms_due = ops.equal(ops.mod(count, every), 0)
                    if due is not True:
                        histograms_due = ops.logical_and(due, histograms_due)
            self._captured.clear()
            self._current = _Step(
                due=due, step=count, histograms_due=histograms_due
            )
            try:
                return self._outbox.attach(original(*args, **kwargs))
            finally:
                self._current = None
                self._captured.clear()

        return train_step

    def _compute_loss(self, original):
        def compute_loss(*args, **kwargs):
            loss = original(*args, **kwargs)
            current = self._current
            if current is not None and not current.forward_sent:
                current.forward_sent = True
                x = (
                    kwargs["x"]
                    if "x" in kwargs
                    else (args[0] if args else None)
                )
                self._send_forward(current, x, loss)
            return loss

        return compute_loss

    def _apply(self, original):
        def apply(grads, trainable_variables=None):
            current = self._current
            if current is None or current.gradients_sent:
                return original(grads, trainable_variables)
            current.gradients_sent = True
            variables = (
                list(trainable_variables)
                if trainable_variables is not None
                else list(self.model.trainable_variables)
            )
            grads = list(grads)
            if len(variables) != len(grads):
                return original(grads, trainable_variables)
            groups = self._weight_groups(variables)
            flat = [i for _, idx in groups for i in idx]
            before = self._outbox.snapshot(
                [variables[i] for i in flat], current.due
            )
            out = original(grads, trainable_variables)
            self._send_gradients(current, groups, grads, variables, before)
            return out

        return apply

    # -- the statistics ----------------------------------------------------

    def _send_forward(self, current: _Step, x, loss) -> None:
        specs, outputs = [], {}
        for spec in self.specs:
            out = self._captured.get(spec.path)
            if out is None or not activation_stats.is_float(out):
                continue
            specs.append(spec)
            outputs[spec.path] = out
        self._paths = tuple(s.path for s in specs)
        blocks = self._layout.forward_blocks()
        length = size(blocks)
        saturation = []
        for s in specs:
            sat = s.saturation()
            saturation.append(
                (sat[0], self.saturation_threshold * sat[1]) if sat else None
            )

        inputs = [t for t in keras.tree.flatten(x) if t is not None]
        args = [
            ops.stop_gradient(t)
            for t in [outputs[s.path] for s in specs] + inputs + [loss]
        ]
        n_out, n_in = len(specs), len(inputs)

        def measure(*args, masked):
            tensors = [ops.cast(t, "float32") for t in args[:n_out]]
            inputs = list(args[n_out : n_out + n_in])
            loss = args[-1]
            first = inputs[0] if inputs else None
            pieces = {
                "input_rms": input_rms(inputs),
                "input_cosine": activation_stats.input_cosine(inputs),
                "loss": ops.reshape(ops.cast(loss, "float32"), [1]),
                "examples": ops.reshape(
                    ops.cast(ops.shape(first)[0], "float32")
                    if first is not None
                    else ops.convert_to_tensor(math.nan, "float32"),
                    [1],
                ),
            }
            finite = ops.convert_to_tensor(True)
            if tensors:
                act = activation_stats.activation_stats_many(
                    tensors,
                    dead_values=[s.dead_value for s in specs],
                    saturation=saturation,
                    bins=self._layout.inline_bins,
                    masked=masked,
                    metrics=self._metrics,
                )
                pieces["activations"] = ops.stack(
                    [act["columns"][c] for c in self._metrics], axis=1
                )
                if self._layout.inline_bins:
                    pieces["activation_counts"] = act["counts"]
                finite = act["all_finite"]
            pieces["finite"] = ops.reshape(ops.cast(finite, "float32"), [1])
            return pack(blocks, pieces)

        self._outbox.send(
            FORWARD, current.due, current.step, length, measure, args
        )
        if self._apart and n_out:
            bins = self.bins

            def counts(*args, masked):
                act = activation_stats.activation_counts_many(
                    [ops.cast(t, "float32") for t in args],
                    bins=bins,
                    masked=masked,
                )
                return {"activation_counts": act["counts"]}, act["all_finite"]

            self._send_counts(
                FORWARD_COUNTS,
                current,
                self._layout.forward_count_blocks(),
                counts,
                args[:n_out],
            )

    def _send_counts(self, name, current, blocks, counts, args) -> None:
        """Send histogram blocks where the step buckets them.

        ``counts(*args, masked=...)`` returns the blocks by name and
        whether every value counted was finite.
        """

        def measure(*args, masked):
            pieces, all_finite = counts(*args, masked=masked)
            pieces["finite"] = ops.reshape(ops.cast(all_finite, "float32"), [1])
            return pack(blocks, pieces)

        self._outbox.send(
            name,
            current.histograms_due,
            current.step,
            size(blocks),
            measure,
            args,
        )

    def _weight_groups(self, variables) -> list[tuple[str, list[int]]]:
        """``(owner, indices in variables)`` of each measured owner."""
        where = {id(v): i for i, v in enumerate(variables)}
        wanted = [
            s.weight_owner
            for s in self.specs
            if s.path in self._captured and s.weight_owner is not None
        ] + [self.reference]
        groups = []
        for owner in dict.fromkeys(w for w in wanted if w is not None):
            idx = [
                where[id(v)]
                for v in self._leaves[owner].trainable_weights
                if id(v) in where
            ]
            if idx:
                groups.append((owner, idx))
        return groups

    def _send_gradients(self, current, groups, grads, variables, before):
        self._owners = tuple(owner for owner, _ in groups)
        blocks = self._layout.gradient_blocks()
        length = size(blocks)
        scale = getattr(self._optimizer, "loss_scale_factor", None)

        # Flat tensor arguments (a backend may compile `compute` apart);
        # the structure stays in the closure. The weights after the update
        # are read here, after it.
        flat = [i for _, idx in groups for i in idx]
        present = [i for i in flat if grads[i] is not None]
        args = (
            [ops.stop_gradient(grads[i]) for i in present]
            + [ops.stop_gradient(variables[i].value) for i in flat]
            + [ops.convert_to_tensor(b) for b in (before or [])]
        )
        n_grads = len(present)

        def layer_groups(args):
            """Per layer: (gradients, weights before, weights after)."""
            grad_of = dict(zip(present, args[:n_grads]))
            after_of = dict(zip(flat, args[n_grads : n_grads + len(flat)]))
            before_of = dict(zip(flat, args[n_grads + len(flat) :]))
            out = []
            for _, idx in groups:
                gs = [
                    None
                    if i not in grad_of
                    else (grad_of[i] if scale is None else grad_of[i] / scale)
                    for i in idx
                ]
                out.append(
                    (
                        gs,
                        [before_of[i] for i in idx],
                        [after_of[i] for i in idx],
                    )
                )
            return out

        def measure(*args, masked):
            pieces = {}
            finite = ops.convert_to_tensor(True)
            if groups:
                per_layer = layer_groups(args)
                g_groups = [(gs, before) for gs, before, _ in per_layer]
                now = [after for _, _, after in per_layer]
                then = [before for _, before, _ in per_layer]
                gst = gradient_stats.gradient_stats_many(
                    g_groups, bins=self._layout.inline_bins, masked=masked
                )
                updates = gradient_stats.update_ratios(now, then)
                columns = dict(gst["columns"], update_ratio=updates)
                pieces["gradients"] = ops.stack(
                    [columns[c] for c in GRADIENT_COLUMNS], axis=1
                )
                if self._layout.inline_bins:
                    pieces["gradient_range"] = gst["range"]
                    pieces["gradient_counts"] = gst["counts"]
                finite = gst["all_finite"]
            pieces["finite"] = ops.reshape(ops.cast(finite, "float32"), [1])
            return pack(blocks, pieces)

        self._outbox.send(
            GRADIENTS, current.due, current.step, length, measure, args
        )
        if self._apart and groups:
            bins = self.bins

            def counts(*args, masked):
                hist = gradient_stats.gradient_histograms_many(
                    [(gs, before) for gs, before, _ in layer_groups(args)],
                    bins=bins,
                    masked=masked,
                )
                pieces = {
                    "gradient_range": hist["range"],
                    "gradient_counts": hist["counts"],
                }
                return pieces, hist["all_finite"]

            self._send_counts(
                GRADIENT_COUNTS,
                current,
                self._layout.gradient_count_blocks(),
                counts,
                args,
            )

    # -- on the host -------------------------------------------------------

    def take(self) -> BatchResult | None:
        """The statistics of the latest measured step, once.

        Returns:
            A `BatchResult`, or `None` when no step was measured since the
            previous call.
        """
        self.measured = False
        received = self._outbox.receive()
        forward = received.get(FORWARD)
        if forward is None or forward[0] <= self._taken:
            return None
        self._taken = forward[0]
        return self._layout.event(
            received, specs=self.specs, reference=self.reference
        )

    @property
    def _layout(self) -> VectorLayout:
        """The vectors of the latest trace."""
        return VectorLayout(
            paths=self._paths,
            owners=self._owners,
            bins=self.bins,
            apart=self._apart,
            activation_columns=self._metrics,
        )
