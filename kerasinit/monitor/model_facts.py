"""What the diagnosis reads from the model itself: the likely causes.

Statistics say *what* is wrong and *where*; the model says *why*. A forward
explosion whose first layer has a kernel sixteen times wider than the gain
table's std is an initialization problem; the same explosion behind a
matched kernel and inputs of RMS 1000 is an input-scale problem. The
diagnosis reads the model once, through `model_facts`, into frozen values,
so that it never touches a live model while judging an event.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import keras
import numpy as np

__all__ = ["KernelFacts", "ModelFacts", "model_facts"]

#: A measured kernel std within this factor of the table's std counts as
#: matched. Sampling noise on the std of ``n`` draws is about
#: ``1/sqrt(2n)`` (1 % for a 64x64 kernel), so 1.5 only separates a
#: different scheme (Glorot vs He is a factor of about 1.4 to 2 for ReLU
#: layers, N(0, 1) a factor of 10 or more), never a resampling.
MATCH_FACTOR = 1.5

#: Kernel roles whose output feeds the layer's activation: the ones whose
#: scale decides the forward signal of the monitored layers.
_FEEDING = ("kernel", "gate", "value")

_NORMALIZATION = tuple(
    cls
    for cls in (
        getattr(keras.layers, name, None)
        for name in (
            "BatchNormalization",
            "LayerNormalization",
            "GroupNormalization",
            "UnitNormalization",
            "RMSNormalization",
        )
    )
    if cls is not None
)


@dataclasses.dataclass(frozen=True)
class KernelFacts:
    """One kernel and the activation it feeds.

    Attributes:
        path: the path of the layer that owns the kernel.
        activation: the name of the activation the kernel feeds.
        std: the kernel's measured standard deviation now.
        target_std: the std the gain table's paired initializer draws for
            this kernel and activation (`kerasinit.initializers.ForActivation`),
            or `None` when the activation is unknown.
        initializer: the kernel initializer, described.
        fan_in: the kernel's true fan-in.
        duplicate_columns: the fraction of output units whose kernel column
            (with its bias) equals another unit's: a zero or constant kernel
            gives 1.
        bias_mean: the mean of the layer's bias, or `None` without one.
        dtype: the layer's compute dtype.
    """

    path: str
    activation: str
    std: float
    target_std: float | None
    initializer: str
    fan_in: int
    duplicate_columns: float
    bias_mean: float | None
    dtype: str

    @property
    def scale_ratio(self) -> float | None:
        """``std / target_std``, or `None` when there is no target."""
        if not self.target_std:
            return None
        return self.std / self.target_std

    @property
    def matched(self) -> bool | None:
        """Whether the kernel's scale is the table's, within `MATCH_FACTOR`."""
        ratio = self.scale_ratio
        if ratio is None:
            return None
        return 1.0 / MATCH_FACTOR <= ratio <= MATCH_FACTOR


@dataclasses.dataclass(frozen=True)
class ModelFacts:
    """The model-wide facts a diagnosis cites as causes.

    Attributes:
        kernels: one `KernelFacts` per kernel, in model order.
        has_normalization: whether any normalization layer is present.
        has_residual: whether any kernel's output enters an ``Add``.
        learning_rate: the optimizer's learning rate, or `None` when the
            model is not compiled or the rate is a schedule.
        optimizer: the optimizer's class name, or `None`.
    """

    kernels: tuple[KernelFacts, ...] = ()
    has_normalization: bool = False
    has_residual: bool = False
    learning_rate: float | None = None
    optimizer: str | None = None

    def kernel(self, path: str | None) -> KernelFacts | None:
        """The first kernel owned by the layer at `path`, or `None`."""
        for k in self.kernels:
            if k.path == path:
                return k
        return None

    @property
    def mismatched(self) -> tuple[KernelFacts, ...]:
        """Kernels whose scale `kerasinit.pair` would change."""
        return tuple(k for k in self.kernels if k.matched is False)


def _duplicate_columns(kernel: np.ndarray, bias: np.ndarray | None) -> float:
    columns = kernel.reshape(-1, kernel.shape[-1]).T
    if bias is not None and bias.shape == (columns.shape[0],):
        columns = np.concatenate([columns, bias[:, None]], axis=1)
    if columns.shape[0] < 2:
        return 0.0
    _, inverse, counts = np.unique(
        columns, axis=0, return_inverse=True, return_counts=True
    )
    return float(np.mean(counts[inverse.reshape(-1)] > 1))


def _learning_rate(model: Any) -> tuple[float | None, str | None]:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None, None
    name = type(optimizer).__name__
    # A loss-scaling wrapper keeps the real optimizer inside.
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    rate = getattr(inner, "learning_rate", None)
    try:
        return float(keras.ops.convert_to_numpy(rate)), name
    except (TypeError, ValueError):
        return None, name


def model_facts(model: Any) -> ModelFacts:
    """Read a built model's kernels, biases, structure and learning rate.

    This is the only place the diagnosis reads the model; it returns a
    frozen value, so the judgement of each event is a pure function of
    statistics and facts.

    Args:
        model: a built Keras model.

    Returns:
        A `ModelFacts`.

    Example:

    >>> facts = model_facts(model)
    >>> facts.kernel("dense").scale_ratio
    16.0
    """
    from kerasinit import _initializer_facts, _kernels

    kernels = []
    residual = False
    for kernel in _kernels.analyse(model):
        residual = residual or kernel.residual
        if kernel.variable is None or kernel.role not in _FEEDING:
            continue
        value = np.asarray(
            keras.ops.convert_to_numpy(kernel.variable), np.float64
        )
        if value.ndim < 2 or value.size == 0:
            continue
        bias_var = (
            getattr(kernel.owner, kernel.biases[0], None)
            if kernel.biases
            else None
        )
        bias = (
            None
            if bias_var is None
            else np.asarray(keras.ops.convert_to_numpy(bias_var), np.float64)
        )
        target = (
            math.sqrt(kernel.paired_variance())
            if kernel.activation is not None and kernel.fans is not None
            else None
        )
        kernels.append(
            KernelFacts(
                path=kernel.path,
                activation=(
                    kernel.activation.name
                    if kernel.activation is not None
                    else "unknown"
                ),
                std=float(np.sqrt(np.mean(np.square(value)))),
                target_std=target,
                initializer=_initializer_facts.describe_initializer(
                    getattr(kernel.owner, kernel.init_attr, None)
                    if kernel.init_attr
                    else None
                ),
                fan_in=(
                    int(kernel.fans[0]) if kernel.fans else int(value.shape[-2])
                ),
                duplicate_columns=_duplicate_columns(value, bias),
                bias_mean=None if bias is None else float(np.mean(bias)),
                dtype=str(getattr(kernel.layer, "compute_dtype", "float32")),
            )
        )
    normalization = any(
        isinstance(layer, _NORMALIZATION) for layer in _all_layers(model)
    )
    rate, optimizer = _learning_rate(model)
    return ModelFacts(
        kernels=tuple(kernels),
        has_normalization=normalization,
        has_residual=residual,
        learning_rate=rate,
        optimizer=optimizer,
    )


def _all_layers(model: Any):
    for layer in getattr(model, "layers", []):
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
