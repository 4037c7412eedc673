"""The vectors a measured training step sends to the host, as an event.

A due step (`kerasinit.monitor.in_step.InStep`) sends its statistics as
flat float32 vectors, from two points of the step: the forward's, when the
loss is computed, and the gradients', when the optimizer applies them;
histograms bucketed at a cadence of their own travel in two more. This
module owns where each statistic sits in those vectors (`VectorLayout`),
packing them on the device and unpacking them on the host into a
`BatchResult`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
from keras import ops

from kerasinit.monitor import activation_stats
from kerasinit.monitor.probe import GRADIENT_COLUMNS
from kerasinit.monitor.result import ProbeLayout, ProbeResult
from kerasinit.monitor.selection import LayerSpec

__all__ = [
    "FORWARD",
    "FORWARD_COUNTS",
    "GRADIENTS",
    "GRADIENT_COUNTS",
    "BatchResult",
    "VectorLayout",
    "pack",
    "size",
]

FORWARD = "forward"
GRADIENTS = "gradients"
# The histograms, where they are bucketed less often than the rest.
FORWARD_COUNTS = "forward_counts"
GRADIENT_COUNTS = "gradient_counts"

Blocks = list[tuple[str, tuple[int, ...]]]


@dataclasses.dataclass(frozen=True)
class BatchResult:
    """One event's statistics of the training batch.

    Attributes:
        step: the number of updates done before the measured step (the
            weights it measured are those after `step` updates).
        result: the statistics, as the probe's (`update_ratio` is the
            relative size of this one step's update).
        examples: the training batch's example count.
    """

    step: int
    result: ProbeResult
    examples: int | None


@dataclasses.dataclass(frozen=True)
class VectorLayout:
    """Where each statistic sits in the vectors of a measured step.

    Attributes:
        paths: the layers with activation statistics, in model order.
        owners: the layers whose weights have gradient statistics.
        bins: histogram buckets, or `None` without histograms.
        apart: whether the histograms travel in vectors of their own
            (bucketed at a cadence of their own).
        activation_columns: the activation metrics measured, in the
            order of `activation_stats.DEVICE_METRICS`.
    """

    paths: tuple[str, ...]
    owners: tuple[str, ...]
    bins: int | None
    apart: bool
    activation_columns: tuple[str, ...] = activation_stats.DEVICE_METRICS

    @property
    def inline_bins(self) -> int | None:
        """The buckets of the histograms in the forward and gradient
        vectors themselves."""
        return None if self.apart else self.bins

    def forward_blocks(self) -> Blocks:
        p, bins = len(self.paths), self.inline_bins
        blocks = []
        if p:
            columns = len(self.activation_columns)
            blocks.append(("activations", (p, columns)))
            if bins:
                blocks.append(("activation_counts", (p, bins)))
        return blocks + [
            ("input_rms", (1,)),
            ("input_cosine", (1,)),
            ("loss", (1,)),
            ("examples", (1,)),
            ("finite", (1,)),
        ]

    def gradient_blocks(self) -> Blocks:
        o, bins = len(self.owners), self.inline_bins
        blocks = []
        if o:
            blocks.append(("gradients", (o, len(GRADIENT_COLUMNS))))
            if bins:
                blocks.append(("gradient_range", (o, 2)))
                blocks.append(("gradient_counts", (o, bins)))
        return blocks + [("finite", (1,))]

    def forward_count_blocks(self) -> Blocks:
        return [
            ("activation_counts", (len(self.paths), self.bins)),
            ("finite", (1,)),
        ]

    def gradient_count_blocks(self) -> Blocks:
        o = len(self.owners)
        return [
            ("gradient_range", (o, 2)),
            ("gradient_counts", (o, self.bins)),
            ("finite", (1,)),
        ]

    def event(
        self,
        received: Mapping[str, tuple[int, np.ndarray]],
        *,
        specs: Sequence[LayerSpec],
        reference: str | None,
    ) -> BatchResult:
        """The `BatchResult` of the forward vector's step.

        Args:
            received: ``{name: (step, vector)}``, the latest vector of each
                name (`FORWARD` among them); those of other steps are left
                out.
            specs: the monitored layers.
            reference: path of the last layer with trainable weights.
        """
        step, flat = received[FORWARD]
        blocks = _split(self.forward_blocks(), flat)
        grads = received.get(GRADIENTS)
        with_grads = grads is not None and grads[0] == step
        if with_grads:
            g_blocks = _split(self.gradient_blocks(), grads[1])
            finite = min(blocks["finite"][0], g_blocks["finite"][0])
            blocks.update(g_blocks)
            blocks["finite"] = np.array([finite], np.float32)
        owners = self.owners if with_grads else ()
        # Histograms bucketed apart come with this step's where it bucketed
        # them, for every measured part of it.
        wanted = [FORWARD_COUNTS] if self.paths else []
        if owners:
            wanted.append(GRADIENT_COUNTS)
        with_counts = self.apart and all(
            received.get(name, (None,))[0] == step for name in wanted
        )
        if with_counts:
            if self.paths:
                blocks.update(
                    _counts_of(
                        self.forward_count_blocks(),
                        received[FORWARD_COUNTS][1],
                    )
                )
            if owners:
                blocks.update(
                    _counts_of(
                        self.gradient_count_blocks(),
                        received[GRADIENT_COUNTS][1],
                    )
                )
        row = {o: i for i, o in enumerate(owners)}
        layout = ProbeLayout(
            paths=self.paths,
            owners=owners,
            grad_rows=tuple(
                (s.path, row[s.weight_owner])
                for s in specs
                if s.path in self.paths and s.weight_owner in row
            ),
            reference_row=row.get(reference),
            activation_columns=self.activation_columns,
            gradient_columns=GRADIENT_COLUMNS,
            bins=self.bins if with_counts else self.inline_bins,
            with_grads=with_grads,
        )
        examples = float(blocks["examples"][0])
        return BatchResult(
            step=step,
            result=layout.from_blocks(blocks),
            examples=int(examples) if math.isfinite(examples) else None,
        )


def size(blocks: Blocks) -> int:
    """The number of values of a vector of these blocks."""
    return sum(int(np.prod(shape)) for _, shape in blocks)


def pack(blocks: Blocks, pieces: Mapping[str, object]):
    """The blocks, each given by name, as one float32 vector (on device)."""
    flat = []
    for name, shape in blocks:
        block = ops.cast(pieces[name], "float32")
        flat.append(ops.reshape(block, [int(np.prod(shape))]))
    return ops.concatenate(flat, axis=0)


def _counts_of(blocks: Blocks, flat: np.ndarray) -> dict[str, np.ndarray]:
    """The histogram blocks of a vector sent apart (its flag left out: the
    statistics without masks were exact, or measured again with them)."""
    out = _split(blocks, flat)
    del out["finite"]
    return out


def _split(blocks: Blocks, flat: np.ndarray) -> dict[str, np.ndarray]:
    out, pos = {}, 0
    flat = np.asarray(flat, np.float32)
    for name, shape in blocks:
        n = int(np.prod(shape))
        out[name] = flat[pos : pos + n].reshape(shape)
        pos += n
    return out
