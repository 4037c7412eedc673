"""`HealthMonitor`: the `keras.callbacks.Callback` users add to `model.fit`.

A thin shell around the monitor's parts: it decides *when* to measure
(pre-flight, every few epochs or steps), *which* layers, and *where* to
write; `arguments` validates its arguments, `probe` measures, `diagnosis`
judges, `reporting` says each new verdict, `summaries` writes.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import keras

from kerasinit.findings import Diagnosis, Finding
from kerasinit.monitor import backends, diagnosis, selection, summaries
from kerasinit.monitor.arguments import check_arguments
from kerasinit.monitor.batch_events import BatchEvents
from kerasinit.monitor.cadence import events_left
from kerasinit.monitor.copies import copied_state, restored_state
from kerasinit.monitor.in_step import BatchResult
from kerasinit.monitor.model_facts import model_facts
from kerasinit.monitor.probe import Probe, ProbeDoesNotFit
from kerasinit.monitor.probe_data import (
    MAX_PROBE_EXAMPLES,
    _batch_size,
    _check_probe_inputs,
    _is_dataset,
    _leaves,
    _no_loss_error,
    _split_probe,
    _to_tensors,
    bound_probe,
    build_with_probe,
)
from kerasinit.monitor.reporting import Failures, say, tell
from kerasinit.monitor.result import ProbeResult

__all__ = ["HealthMonitor"]

logger = logging.getLogger("kerasinit.monitor")
# A library configures no output of its own: without this, Python's
# last-resort handler prints every record a second time beside its warning.
logging.getLogger("kerasinit").addHandler(logging.NullHandler())


class HealthMonitor(keras.callbacks.Callback):
    """Per-layer training health in TensorBoard, with warnings that name a fix.

    At every logging event the monitor runs one call of one function on a fixed
    probe batch (forward in training mode and backward, without changing any
    model, optimizer or random state; it runs eagerly until it is compiled in
    the background, see `compile`) and records, for every monitored layer, the
    activation mean, std, extremes, zero fraction, dead-unit fraction,
    saturation fraction, non-finite count, RMS and its ratio to the previous
    layer's, mean cosine similarity across examples and fraction of
    duplicate units, and the gradient norm, weight norm, their ratio,
    non-finite count and the relative size of the weight update since the
    previous event, plus histograms of activations and gradients. It
    diagnoses dead units, saturation, vanishing and exploding gradients and
    non-finite values, and reports each finding once
    (until its condition clears) as a Python warning, a `logging` record, an
    entry of `findings` and a TensorBoard text summary. A pre-flight event in
    `on_train_begin` checks the model before the first weight update.

    Events go to ``log_dir/kerasinit``, beside the runs of
    `keras.callbacks.TensorBoard(log_dir)`. The tag scheme is in
    `kerasinit_tensorboard.schema` and ``docs/monitor.md``.

    Args:
        log_dir: the TensorBoard log directory.
        probe: a fixed batch: ``x`` alone (activation statistics only),
            ``(x, y)``, ``(x, y, sample_weight)``, or a `tf.data.Dataset`
            whose first batch is used. Keep it small (a few hundred
            examples): the probe runs on all of it at once, and above
            `max_probe_examples` it is sub-sampled.
        every_n_epochs: log at the end of every n-th epoch, or `None`.
            Defaults to `1`.
        every_n_steps: also log every n training steps, or `None`.
            Defaults to `None`.
        layers: `None` for every layer with a non-linearity; a list of
            layer names or paths (``"encoder/dense"``); a regular expression
            (compiled, or a string starting with ``"re:"``) matched against
            paths; or a predicate ``layer -> bool``. Defaults to `None`.
        histograms: write activation and gradient histograms.
            Defaults to `True`.
        gradients: compute gradient statistics (needs targets in `probe`).
            Defaults to `True`.
        thresholds: a `kerasinit.callbacks.Thresholds`, or `None` for the
            documented defaults. Defaults to `None`.
        warn: raise a Python warning for each new finding.
            Defaults to `True`.
        compile: whether to compile the probe (`tf.function`, on a
            background thread while training goes on, starting after the
            first training step of `fit`, in which Keras compiles its own
            training function). Events before that run the probe eagerly.
            ``"auto"`` compiles when at least `COMPILE_BREAK_EVEN` more
            events are expected in this `fit` (or their number is
            unknown): compiling costs about as much as a few eager events,
            and saves most of each later one. `True` always compiles,
            `False` never. Defaults to `"auto"`.
        max_probe_examples: the most examples the probe runs on: a larger
            probe is cut to this many evenly spaced examples (the same ones
            every time, no random state used), with one warning, which
            bounds the probe's memory. `None` keeps every example.
            Defaults to `HealthMonitor.MAX_PROBE_EXAMPLES` (1024).
        source: what the `every_n_steps` events measure. ``"probe"``: the
            probe batch, in a forward and backward pass of its own (a
            picture comparable across time). ``"batch"``: the training
            batch itself, inside Keras's compiled train step, from the
            pass it makes anyway (fine cadence at almost no cost; the
            batch changes every step). The pre-flight and the per-epoch
            events always measure the probe. Training-batch events go to
            ``log_dir/kerasinit-batch``, with the same tags, and their
            diagnoses say "on the training batch". Defaults to
            ``"probe"``.
        histogram_every_n_steps: with ``source="batch"``, bucket the
            training batch's histograms only every n-th step, a multiple
            of `every_n_steps`: the other statistics still come at every
            event. Bucketing is a fifth to two fifths of what a training-batch
            event costs on the device (``docs/monitor.md``, Overhead), and
            TensorBoard keeps only a sample of a tag's histograms anyway.
            `None` buckets them at every event; the probe's events always
            carry them (with `histograms`). Defaults to `None`.
        statistics: with ``source="batch"``, what each training-batch
            event measures. ``"full"``: every statistic of the probe's
            events. ``"economy"``, for fine cadence: the moments,
            extremes, zero, dead and saturated fractions, non-finite
            counts and cosine similarity of the activations, and the
            gradient and weight norms, their ratio, the non-finite count
            and the update ratio, but not the units' duplicates, and
            histograms only at `histogram_every_n_steps` (none without
            it); the pre-flight and per-epoch probe events still measure
            everything. What each costs is in ``docs/monitor.md``
            (Overhead). Defaults to ``"full"``.

    Attributes:
        findings: every `kerasinit.findings.Finding` reported so far, in
            order.
        last_result: the `kerasinit.monitor.result.ProbeResult` of the
            latest probe event (``last_result.layers[path][metric]``), or
            `None` before the first.
        last_batch_result: the `kerasinit.monitor.in_step.BatchResult`
            of the latest training-batch event (``source="batch"``), or
            `None`.
        skipped_events: how many events failed inside the monitor (a
            statistic, writing the event file, a full disk...) and were
            skipped; training went on unchanged. Read-only.
        compiled_probe: the compiled probe function, or `None` while the
            probe runs eagerly. Read-only.
        probe_compiling: whether the probe is being compiled on a
            background thread. Read-only.

    Example:

    >>> monitor = kerasinit.callbacks.HealthMonitor(
    ...     log_dir="runs/exp1", probe=(x_val[:512], y_val[:512]))
    >>> model.fit(x, y, epochs=5, callbacks=[monitor])
    >>> monitor.findings
    []
    """

    # Compiling the probe pays for itself over two to three later events on
    # the reference workloads (measured in ``docs/monitor.md``, Overhead).
    COMPILE_BREAK_EVEN = 3

    # The default of `max_probe_examples` (``docs/monitor.md``, Errors).
    MAX_PROBE_EXAMPLES = MAX_PROBE_EXAMPLES

    # Training-batch events carry the plugin's record at most this often
    # (plus every event with a new diagnosis); each carries its scalars
    # and histograms.
    BATCH_RECORD_INTERVAL_S = 1.0

    def __init__(
        self,
        log_dir: str | os.PathLike,
        probe: Any,
        every_n_epochs: int | None = 1,
        every_n_steps: int | None = None,
        layers: Sequence[str] | str | re.Pattern | Callable | None = None,
        histograms: bool = True,
        gradients: bool = True,
        thresholds: diagnosis.Thresholds | None = None,
        warn: bool = True,
        compile: bool | str = "auto",
        max_probe_examples: int | None = MAX_PROBE_EXAMPLES,
        source: str = "probe",
        histogram_every_n_steps: int | None = None,
        statistics: str = "full",
    ):
        super().__init__()
        checked = check_arguments(
            log_dir=log_dir,
            probe=probe,
            every_n_epochs=every_n_epochs,
            every_n_steps=every_n_steps,
            layers=layers,
            histograms=histograms,
            thresholds=thresholds,
            compile=compile,
            max_probe_examples=max_probe_examples,
            source=source,
            histogram_every_n_steps=histogram_every_n_steps,
            statistics=statistics,
        )
        self.log_dir = os.fspath(log_dir)
        self.probe = probe
        self.every_n_epochs = checked.every_n_epochs
        self.every_n_steps = checked.every_n_steps
        self.layers = layers
        self.histograms = bool(histograms)
        self.gradients = bool(gradients)
        self.thresholds = checked.thresholds
        self.warn = bool(warn)
        self.compile = compile
        self.max_probe_examples = checked.max_probe_examples
        self.source = source
        self.histogram_every_n_steps = checked.histogram_every_n_steps
        self.statistics = statistics
        self.findings: list[Finding] = []
        self.diagnoses: list[Diagnosis] = []
        self._from_dataset = _is_dataset(probe)
        bounded = bound_probe(
            *(
                _to_tensors(v) if v is not None else None
                for v in _split_probe(probe)
            ),
            from_dataset=self._from_dataset,
            targets=self.gradients,
            keep=self.max_probe_examples,
        )
        self._x, self._y, self._w = bounded.x, bounded.y, bounded.w
        if bounded.message is not None:
            tell(bounded.message, warn=self.warn)
        self._writer = summaries.EventWriter(self.log_dir)
        self._diagnoser: diagnosis.Diagnoser | None = None
        self._batch: BatchEvents | None = None
        self._probe: Probe | None = None
        self._specs: list[selection.LayerSpec] = []
        self._layer_info: list[dict] = []
        # Whether the probe ran once: before that, a batch that the model
        # or its loss rejects is the user's error.
        self._probe_checked = False
        self._event = 0
        self._step = 0
        self._epoch: int | None = None
        self._epoch_base = 0
        self._last_step: int | None = None
        self._batches = 0
        self._compile_pending = False
        self._failures = Failures()
        self.last_result: ProbeResult | None = None
        self.last_batch_result: BatchResult | None = None

    # -- pickling ----------------------------------------------------------

    def __getstate__(self) -> dict:
        """The monitor's settings and history, without what holds the model.

        What is left out (`kerasinit.monitor.copies.NOT_COPIED`) is built
        again on demand: the probe and diagnoser at the next
        `on_train_begin` (on the model of that `fit`), the event writer at
        the next event, in a new event file. Diagnoses already made stay in
        `diagnoses`, but a problem still present when training resumes is
        reported again.
        """
        return copied_state(self.__dict__)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(restored_state(state))

    @property
    def skipped_events(self) -> int:
        return self._failures.skipped

    @property
    def compiled_probe(self):
        return self._probe.compiled if self._probe is not None else None

    @property
    def probe_compiling(self) -> bool:
        return self._probe is not None and self._probe.compiling

    # -- setup -------------------------------------------------------------

    @property
    def probe_examples(self) -> int | None:
        return _batch_size(_leaves(self._x)[0])

    def _validate_probe(self) -> None:
        model = self.model
        _check_probe_inputs(model, self._x, from_dataset=self._from_dataset)

    def _build(self) -> None:
        model = self.model
        build_with_probe(model, self._x)
        self._specs = selection.monitored_layers(model, self.layers)
        self._validate_probe()
        self._probe = None
        self._probe_checked = False
        try:
            p = Probe(
                model,
                self._specs,
                saturation_threshold=self.thresholds.saturation_derivative,
                histograms=self.histograms,
                gradients=self.gradients,
            )
            y = self._y if self.gradients else None
            p.build(self._x, y, self._w if y is not None else None)
        except Exception as exc:  # noqa: BLE001
            # Not the user's error: every event of this run is skipped.
            self._failures.record("preparing the probe", exc, event=False)
            return
        self._probe = p
        self._diagnoser = diagnosis.Diagnoser(
            self._specs,
            thresholds=self.thresholds,
            facts=self._model_facts,
            reference_layer=p.reference,
        )
        self._batch = None
        if self.source == "batch":
            self._batch = BatchEvents(
                model,
                self._specs,
                every_n_steps=self.every_n_steps,
                reference=p.reference,
                thresholds=self.thresholds,
                histograms=self.histograms,
                gradients=self.gradients and model.optimizer is not None,
                facts=self._model_facts,
                log_dir=self.log_dir,
                histogram_every_n_steps=self.histogram_every_n_steps,
                statistics=self.statistics,
            )
        self._layer_info = [s.record_entry() for s in self._specs]

    # -- Keras hooks -------------------------------------------------------

    def on_train_begin(self, logs=None):
        if self._probe is None or self._probe.model is not self.model:
            # Raises the user's errors (probe shape, dtype, unknown layers),
            # before the first step.
            self._build()
        self._step = int(self.model.optimizer.iterations.numpy())
        self._epoch_base = self._step
        if self._event == 0 and self._step > 0:
            try:
                self._event = self._writer.last_event() + 1
            except Exception as exc:  # noqa: BLE001
                # The counter then restarts; training goes on regardless.
                self._failures.record(
                    "reading the run's events", exc, event=False
                )
        self._batches = 0
        self._compile_pending = False
        if self._last_step != self._step:
            self._log(phase="preflight", epoch=None)
        if self._batch is not None:
            try:
                self._batch.start()
            except Exception as exc:  # noqa: BLE001
                # Training goes on unmeasured, as it would without us.
                self._failures.record(
                    "preparing the train step", exc, event=False
                )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_base = self._step
        self._epoch = epoch
        if self._batch is not None and self._batch.open:
            self._batch.sync_step(self._step)

    def on_train_batch_begin(self, batch, logs=None):
        self._batches += 1
        if self._batch is not None and self._batch.due:
            # What the previous call of the train function measured.
            self._batch_log()
        if self.every_n_steps is not None and self.source == "probe":
            # The updates done so far: the weights the event measures are
            # those after that many steps, read before the next one changes
            # them.
            self._step_event(self._epoch_base + batch)
        if self._compile_pending and self._batches > 1:
            # Keras traces its own training function during the first step
            # of `fit`. Tracing is Python work under the interpreter lock, so
            # two tracings at once only take turns: compiling the probe then
            # lengthens that step by its whole cost. Between later steps the
            # training thread mostly waits on TensorFlow's kernels, and the
            # compiling thread uses that time.
            self._compile_pending = False
            if self._probe is not None:
                self._probe.start_compiling()

    def _step_event(self, step: int) -> None:
        previous = self._step
        self._step = step
        n = self.every_n_steps
        if step // n > previous // n and self._last_step != step:
            self._log(phase="step", epoch=self._epoch)

    def on_epoch_end(self, epoch, logs=None):
        if self._batch is not None and self._batch.due:
            self._batch_log()
        # Once per epoch the count comes from the optimizer: it includes the
        # epoch's last steps, which no batch-begin hook follows.
        step = int(self.model.optimizer.iterations.numpy())
        if self.every_n_steps is not None and self.source == "probe":
            self._step_event(step)
        self._step = step
        n = self.every_n_epochs
        if n is not None and (epoch + 1) % n == 0:
            if self._last_step != self._step:
                self._log(phase="epoch", epoch=epoch)

    def on_train_end(self, logs=None):
        if self._probe is not None:
            # No compiling thread outlives `fit`.
            self._probe.wait()
        writers = [self._writer]
        if self._batch is not None:
            if self._batch.due:
                # A step measured after the last epoch's end (`fit` stopped
                # early).
                self._batch_log()
            try:
                self._batch.stop()
            except Exception as exc:  # noqa: BLE001
                self._failures.record(
                    "restoring the train step", exc, event=False
                )
            writers.append(self._batch.writer)
        for writer in writers:
            try:
                writer.close()
            except Exception as exc:  # noqa: BLE001
                self._failures.record("closing the event file", exc)

    # -- one logging event -------------------------------------------------

    def _log(self, *, phase: str, epoch: int | None) -> None:
        """One event: measure, diagnose, report, write.

        Only a probe batch that the model or its loss rejects at the first
        run raises (the user's error, before the first step). Any other
        failure is logged once, and the event is skipped and counted in
        `skipped_events`: the monitor never stops training.
        """
        step = self._step
        try:
            if self._probe is None:
                raise RuntimeError("the probe could not be prepared")
            result = self._probe()
            event = diagnosis.ProbeEvent.from_result(
                result,
                step=step,
                phase=phase,
                probe_examples=self.probe_examples,
            )
            new = self._diagnoser.update(event)
        except ProbeDoesNotFit as exc:
            if self._probe_checked or phase != "preflight":
                # Past the first step nothing raises.
                self._failures.record("measuring", exc)
                return
            if (
                self._probe.with_grads
                and getattr(self.model, "loss", None) is None
            ):
                raise _no_loss_error(self.model, exc.__cause__ or exc) from exc
            raise ValueError(
                f"`probe` does not fit the model or its loss: {exc}"
            ) from exc
        except Exception as exc:  # noqa: BLE001
            self._failures.record("measuring", exc)
            return
        self._probe_checked = True
        self._last_step = step
        self.last_result = result
        for found in new:
            self._report(found)
        try:
            self._writer.write_event(
                step=step,
                event=self._event,
                epoch=epoch,
                phase=phase,
                layers=self._layer_info,
                result=result,
                new_diagnoses=new,
                all_diagnoses=[
                    d for d in self.diagnoses if d.source == "probe"
                ],
                all_findings=[
                    f
                    for d in self.diagnoses
                    if d.source == "probe"
                    for f in d.findings
                ],
                skipped_events=self._failures.skipped,
            )
        except Exception as exc:  # noqa: BLE001
            self._failures.record("writing", exc)
        else:
            self._event += 1
        if self._compile_wanted(phase, epoch):
            # Started by the next batch hook after the first training step.
            self._compile_pending = True

    def _batch_log(self) -> None:
        """One training-batch event: take what the step measured, judge,
        report, write. Nothing here raises.

        Called at the batch-begin or epoch-end hook after a call of the
        train function that measured a step (`InStep.measured`): the
        monitor overrides no batch-end hook, so Keras keeps dispatching
        those of every step asynchronously.
        """
        try:
            got = self._batch.take()
        except Exception as exc:  # noqa: BLE001
            self._failures.record("measuring the training batch", exc)
            return
        if got is None:
            return
        taken, new = got
        self.last_batch_result = taken
        said = [
            found
            for found in (dataclasses.replace(d, source="batch") for d in new)
            if self._report(found)
        ]
        try:
            self._batch.write(
                taken,
                epoch=self._epoch,
                layers=self._layer_info,
                said=said,
                all_diagnoses=[
                    d for d in self.diagnoses if d.source == "batch"
                ],
                skipped_events=self._failures.skipped,
                record_interval_s=self.BATCH_RECORD_INTERVAL_S,
            )
        except Exception as exc:  # noqa: BLE001
            self._failures.record("writing", exc)

    def _model_facts(self):
        # Read when an event has something to explain, so that causes
        # describe the weights as they are then (JAX's `fit` keeps them
        # apart from the model between its syncs).
        backends.current().sync(self.model)
        return model_facts(self.model)

    def _report(self, found: Diagnosis) -> bool:
        """Say one new diagnosis once: a warning at the user's line, a log.

        A problem already said from the other source (the probe, or the
        training batch) and not cleared there, or one that follows from
        it, is not said again.

        Returns:
            Whether it was said.
        """
        if found.source == "probe":
            other = self._batch.diagnoser if self._batch is not None else None
        else:
            other = self._diagnoser
        if other is not None and other.covers(found.kind):
            return False
        self.diagnoses.append(found)
        self.findings.extend(found.findings)
        say(found, warn=self.warn)
        return True

    def _compile_wanted(self, phase: str, epoch: int | None) -> bool:
        if self.compile != "auto":
            return bool(self.compile)
        left = events_left(
            getattr(self, "params", None) or {},
            phase=phase,
            epoch=epoch,
            steps_done=self._step - self._epoch_base,
            every_n_epochs=self.every_n_epochs,
            every_n_steps=(
                self.every_n_steps if self.source == "probe" else None
            ),
        )
        return left is None or left >= self.COMPILE_BREAK_EVEN
