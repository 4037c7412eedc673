"""The probe's result: its packed layout on the device, its value on the host.

The compiled probe returns one float32 vector, so an event costs one
device-to-host transfer. `ProbeLayout`, returned by tracing, says which
named block of that vector holds what; `ProbeLayout.unpack` turns the vector
into a `ProbeResult`, looking every statistic up by its metric name.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np
from keras import ops

from kerasinit.monitor.histograms import histogram_table

__all__ = ["ProbeLayout", "ProbeResult"]

# Moments that mean nothing when a layer has no finite output at all.
_MOMENTS = ("act_mean", "act_std", "act_min", "act_max", "act_rms")


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """Every statistic of one probe call.

    Attributes:
        layers: ``{layer path: {metric: value}}`` for every measured layer,
            in model order, metrics named as in `kerasinit_tensorboard.schema`
            (gradient metrics only with a probe that has targets). NaN where
            a statistic is undefined (``update_ratio`` at the first event,
            ``cosine_similarity`` with fewer than two non-zero examples).
        reference_grad_norm: the gradient norm of the last layer with
            weights (the yardstick of vanishing and exploding gradients), or
            `None` without gradients.
        input_rms: the root mean square of every float value of the model's
            inputs on the probe batch, or `None` when no input is float.
        loss: the probe batch's loss, or `None` without targets.
        activation_histograms: ``{layer path: [bins, 3]}`` (left edge,
            right edge, count) of each layer's finite outputs.
        gradient_histograms: ``{layer path: [bins, 3]}`` of the gradient
            entries of each layer's weights.
        input_cosine: the mean pairwise cosine similarity of the probe
            examples' inputs (every float input of an example flattened and
            concatenated; pairs of distinct examples whose inputs are not all
            zero), as the layers' ``cosine_similarity``: the baseline a
            layer's similarity is compared with. NaN with fewer than two
            such examples or no float input.
    """

    layers: dict[str, dict[str, float]]
    reference_grad_norm: float | None
    input_rms: float | None
    loss: float | None
    activation_histograms: dict[str, np.ndarray]
    gradient_histograms: dict[str, np.ndarray]
    input_cosine: float = math.nan


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclasses.dataclass(frozen=True)
class ProbeLayout:
    """Where each statistic sits in the probe's flat result vector.

    Attributes:
        paths: the layers with activation statistics, in model order.
        owners: the layers whose weights have gradient statistics.
        grad_rows: ``(layer path, row of owners)``: whose gradient
            statistics each measured layer reports.
        reference_row: the row of owners of the reference layer, or `None`.
        activation_columns: the metric of each activation column.
        gradient_columns: the metric of each gradient column.
        bins: histogram buckets, or `None` without histograms.
        with_grads: whether the probe computes the loss and gradients.
    """

    paths: tuple[str, ...]
    owners: tuple[str, ...]
    grad_rows: tuple[tuple[str, int], ...]
    reference_row: int | None
    activation_columns: tuple[str, ...]
    gradient_columns: tuple[str, ...]
    bins: int | None
    with_grads: bool

    def blocks(self) -> list[tuple[str, tuple[int, ...]]]:
        """``(name, shape)`` of each block, in the vector's order."""
        p, o, bins = len(self.paths), len(self.owners), self.bins
        blocks = []
        if p:
            blocks.append(("activations", (p, len(self.activation_columns))))
            if bins:
                blocks.append(("activation_counts", (p, bins)))
        if o:
            blocks.append(("gradients", (o, len(self.gradient_columns))))
            if bins:
                blocks.append(("gradient_range", (o, 2)))
                blocks.append(("gradient_counts", (o, bins)))
        if self.with_grads:
            blocks.append(("loss", (1,)))
        # Last: whether every measured value was finite, i.e. whether the
        # statistics taken without masks are exact.
        blocks += [
            ("input_rms", (1,)),
            ("input_cosine", (1,)),
            ("finite", (1,)),
        ]
        return blocks

    def pack(self, pieces: Mapping[str, object]):
        """The blocks, each given by name, as one float32 vector."""
        flat = []
        for name, shape in self.blocks():
            block = ops.cast(pieces[name], "float32")
            if tuple(block.shape) != shape:
                raise ValueError(
                    f"Expected block `{name}` of shape {shape}. "
                    f"Received: shape={tuple(block.shape)}"
                )
            flat.append(ops.reshape(block, [-1]))
        return ops.concatenate(flat, axis=0)

    def split(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """The vector's blocks by name (the inverse of `pack`)."""
        out, pos = {}, 0
        for name, shape in self.blocks():
            size = int(np.prod(shape))
            out[name] = flat[pos : pos + size].reshape(shape)
            pos += size
        if pos != flat.size:
            raise ValueError(
                f"Expected a vector of {pos} values. Received: size={flat.size}"
            )
        return out

    def exact(self, flat: np.ndarray) -> bool:
        """Whether every value measured without masks was finite."""
        return bool(self.split(flat)["finite"][0] == 1.0)

    def unpack(
        self, flat: np.ndarray, updates_known: bool = True
    ) -> ProbeResult:
        """The `ProbeResult` of a vector returned by the probe.

        Args:
            flat: the vector.
            updates_known: whether the weights of a previous event were
                known; without them ``update_ratio`` is NaN. Defaults to
                `True`.
        """
        return self.from_blocks(
            self.split(np.asarray(flat, np.float32)), updates_known
        )

    def from_blocks(
        self, blocks: Mapping[str, np.ndarray], updates_known: bool = True
    ) -> ProbeResult:
        """The `ProbeResult` of the blocks of `blocks`, each given by name.

        The blocks may have reached the host in more than one transfer (the
        training-batch source sends its forward and its gradient blocks
        from two points of the train step).
        """
        blocks = {
            name: np.asarray(blocks[name], np.float32).reshape(shape)
            for name, shape in self.blocks()
        }
        layers: dict[str, dict[str, float]] = {p: {} for p in self.paths}
        act_hist, grad_hist = {}, {}
        input_rms = float(blocks["input_rms"][0])
        if self.paths:
            for path, row in zip(self.paths, blocks["activations"]):
                layers[path].update(
                    zip(self.activation_columns, map(float, row))
                )
            previous = input_rms
            for path in self.paths:
                values = layers[path]
                if not math.isfinite(values["act_min"]):
                    # No finite output at all.
                    for name in _MOMENTS:
                        values[name] = math.nan
                values["signal_gain"] = _ratio(values["act_rms"], previous)
                previous = values["act_rms"]
            if self.bins:
                tables = histogram_table(
                    [layers[p]["act_min"] for p in self.paths],
                    [layers[p]["act_max"] for p in self.paths],
                    blocks["activation_counts"],
                )
                act_hist = dict(zip(self.paths, tables))
        reference = None
        if self.owners:
            rows = [
                dict(zip(self.gradient_columns, map(float, row)))
                for row in blocks["gradients"]
            ]
            if not updates_known:
                for row in rows:
                    if "update_ratio" in row:
                        row["update_ratio"] = math.nan
            if self.bins:
                extremes = blocks["gradient_range"]
                tables = histogram_table(
                    extremes[:, 0], extremes[:, 1], blocks["gradient_counts"]
                )
            for path, row in self.grad_rows:
                layers[path].update(rows[row])
                if self.bins:
                    grad_hist[path] = tables[row]
            if self.reference_row is not None:
                reference = rows[self.reference_row]["grad_norm"]
        return ProbeResult(
            layers=layers,
            reference_grad_norm=reference,
            input_rms=_finite_or_none(input_rms),
            loss=float(blocks["loss"][0]) if self.with_grads else None,
            activation_histograms=act_hist,
            gradient_histograms=grad_hist,
            input_cosine=float(blocks["input_cosine"][0]),
        )


def _ratio(a: float, b: float) -> float:
    """``a / b`` as IEEE division does it (inf or NaN for ``b == 0``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(a) / np.float64(b))
