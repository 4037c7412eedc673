"""The demo's summary: the accuracy grid and the table of every run."""

from __future__ import annotations

import dataclasses
import shlex
from typing import TYPE_CHECKING, TextIO

import numpy as np

from kerasinit._report import Report
from kerasinit.demo.experiments import ACTIVATIONS, INIT_LABELS, INITIALIZERS

if TYPE_CHECKING:
    from kerasinit.demo.running import RunResult

__all__ = ["GridReport", "RunsReport", "fmt", "print_summary", "verdicts_text"]


def fmt(value: float | None, digits: int = 3) -> str:
    """`value` with `digits` decimals, or ``"nan"`` when it is not finite."""
    if value is None or not np.isfinite(value):
        return "nan"
    return f"{value:.{digits}f}"


def verdicts_text(verdicts: tuple[str, ...]) -> str:
    """A run's verdicts joined in the order reported, ``"-"`` for none."""
    return ", ".join(verdicts) if verdicts else "-"


class RunsReport(Report):
    """One row per run: held-out accuracy and loss, and its verdicts."""

    _header = ("run", "accuracy", "loss", "verdicts")
    _noun = "runs"

    def __getitem__(self, key: int | str) -> RunResult:
        # Runs are named `experiment/run`, not by a layer.
        if isinstance(key, str):
            for row in self.rows:
                if f"{row.experiment}/{row.name}" == key:
                    return row
            raise KeyError(key)
        return self.rows[key]

    def _cells(self, row: RunResult) -> tuple[str, ...]:
        return (
            f"{row.experiment}/{row.name}",
            fmt(row.accuracy, 3),
            fmt(row.loss, 3),
            row.error or verdicts_text(row.verdicts),
        )


@dataclasses.dataclass(frozen=True)
class GridRow:
    """One activation's held-out accuracy under each initializer.

    Attributes:
        activation: the row's activation.
        accuracies: one per column of the grid, `None` where not run.
    """

    activation: str
    accuracies: tuple[float | None, ...]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class GridReport(Report):
    """The ``mlp`` experiment as activation x initializer accuracies."""

    _noun = "activations"

    def __init__(self, results: list[RunResult]) -> None:
        grid = [r for r in results if r.experiment == "mlp"]
        by_key = {(r.activation, r.initializer): r for r in grid}
        self.initializers = [
            i for i in INITIALIZERS if any(r.initializer == i for r in grid)
        ]
        self._header = ("", *(INIT_LABELS[i] for i in self.initializers))
        rows = []
        for activation in ACTIVATIONS:
            if not any(r.activation == activation for r in grid):
                continue
            accuracies = tuple(
                by_key[activation, i].accuracy
                if (activation, i) in by_key
                else None
                for i in self.initializers
            )
            rows.append(GridRow(activation, accuracies))
        super().__init__(rows)

    def __getitem__(self, key: int | str) -> GridRow:
        if isinstance(key, str):
            for row in self.rows:
                if row.activation == key:
                    return row
            raise KeyError(key)
        return self.rows[key]

    def _cells(self, row: GridRow) -> tuple[str, ...]:
        return (
            row.activation,
            *("" if a is None else fmt(a, 2) for a in row.accuracies),
        )


def print_summary(results: list[RunResult], logdir: str, out: TextIO) -> None:
    """Print the grid, the table of every run and the TensorBoard line."""
    print("", file=out)
    grid = GridReport(results)
    if len(grid):
        print(
            "mlp: held-out accuracy, activation x initializer "
            "(3 classes: chance is 0.33)",
            file=out,
        )
        print(grid, file=out)
        print("", file=out)
    print("All runs (accuracy and loss on held-out data):", file=out)
    print(RunsReport(results), file=out)
    print("", file=out)
    print("View the runs in TensorBoard (Scalars, Histograms and the", file=out)
    print("kerasinit dashboard):", file=out)
    print("", file=out)
    print(f"    tensorboard --logdir {shlex.quote(logdir)}", file=out)
    print("", file=out)
