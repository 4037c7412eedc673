"""Per-layer seeds derived from one user seed."""

from __future__ import annotations


def derive(seed: int | None, index: int) -> int | None:
    """The seed of the `index`-th weight drawn under one user `seed`.

    Each kernel needs its own stream: one integer seed reused for
    same-shaped kernels would make them identical. `None` (unseeded) stays
    `None`.
    """
    if seed is None:
        return None
    return int(seed) * 1_000_003 + int(index)
