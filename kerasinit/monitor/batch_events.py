"""`BatchEvents`: the training batch's events, from measuring to writing.

`HealthMonitor(source="batch")` keeps one of these beside its probe: it
owns the measurement inside the train step (`in_step.InStep`), the
diagnoser that judges it and the event file of its run
(``log_dir/kerasinit-batch``). The callback decides when; what is said to
the user, and that a problem is said once across both sources, stays with
the callback.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from kerasinit.findings import Diagnosis
from kerasinit.monitor import diagnosis, summaries
from kerasinit.monitor.in_step import BatchResult, InStep
from kerasinit.monitor.selection import LayerSpec
from kerasinit_tensorboard import schema

__all__ = ["BatchEvents"]


class BatchEvents:
    """Measure, judge and write the training batch's events.

    Args:
        model: the built, compiled model.
        specs: the monitored layers.
        every_n_steps: the cadence of the events.
        reference: path of the last layer with trainable weights.
        thresholds: the monitor's `Thresholds`.
        histograms: bucket activations and gradients.
        histogram_every_n_steps: bucket them only every n-th step (a
            multiple of `every_n_steps`), or `None` at every event.
        gradients: measure the applied gradients.
        facts: the diagnoser's facts (see `diagnosis.Diagnoser`).
        log_dir: the TensorBoard log directory.
        statistics: ``"full"`` or ``"economy"`` (see `InStep`).

    Attributes:
        diagnoser: the `diagnosis.Diagnoser` of these events.
        events: how many events were written.
    """

    def __init__(
        self,
        model,
        specs: Sequence[LayerSpec],
        *,
        every_n_steps: int,
        reference: str | None,
        thresholds: diagnosis.Thresholds,
        histograms: bool,
        gradients: bool,
        facts: Callable | None,
        log_dir: str,
        histogram_every_n_steps: int | None = None,
        statistics: str = "full",
    ):
        self.in_step = InStep(
            model,
            list(specs),
            every_n_steps=every_n_steps,
            reference=reference,
            saturation_threshold=thresholds.saturation_derivative,
            histograms=histograms,
            gradients=gradients,
            histogram_every_n_steps=histogram_every_n_steps,
            statistics=statistics,
        )
        self.diagnoser = diagnosis.Diagnoser(
            list(specs),
            thresholds=thresholds,
            facts=facts,
            reference_layer=reference,
        )
        self.writer = summaries.EventWriter(
            log_dir, run=schema.BATCH_RUN_SUBDIR
        )
        self.events = 0
        self.open = False
        self._record_time = -math.inf

    # -- the train step ------------------------------------------------------

    def start(self) -> None:
        """Install the measurement in the train step (`on_train_begin`)."""
        if not self.open:
            self.in_step.__enter__()
            self.open = True

    def stop(self) -> None:
        """Remove it (`on_train_end`)."""
        if self.open:
            self.open = False
            self.in_step.__exit__(None, None, None)

    @property
    def due(self) -> bool:
        """Whether a measured step waits to be taken."""
        return self.open and self.in_step.measured

    def sync_step(self, count: int) -> None:
        self.in_step.sync_step(count)

    # -- one event -------------------------------------------------------------

    def take(self) -> tuple[BatchResult, list[Diagnosis]] | None:
        """The latest measured step and its new diagnoses, or `None`."""
        taken = self.in_step.take()
        if taken is None:
            return None
        event = diagnosis.ProbeEvent.from_result(
            taken.result,
            step=taken.step,
            phase="step",
            probe_examples=taken.examples,
            update_steps=1,
        )
        return taken, self.diagnoser.update(event)

    def write(
        self,
        taken: BatchResult,
        *,
        epoch: int | None,
        layers: list[dict],
        said: list[Diagnosis],
        all_diagnoses: list[Diagnosis],
        skipped_events: int,
        record_interval_s: float,
    ) -> None:
        """Write one event; its record only every `record_interval_s`
        seconds and with each new diagnosis.

        The record is cumulative and TensorBoard keeps only some of its
        points: at a cadence of every step, one a second is enough.
        """
        now = time.monotonic()
        record = bool(said) or now - self._record_time >= record_interval_s
        self.writer.write_event(
            step=taken.step,
            event=self.events,
            epoch=epoch,
            phase="step",
            layers=layers,
            result=taken.result,
            new_diagnoses=said,
            all_diagnoses=all_diagnoses,
            all_findings=[f for d in all_diagnoses for f in d.findings],
            skipped_events=skipped_events,
            record=record,
        )
        self.events += 1
        if record:
            self._record_time = now
