"""Orthogonal initialization, for dense kernels and convolutions."""

from __future__ import annotations

import math
from typing import Any

import keras

from kerasinit.initializers._base import (
    check_positive,
    check_seed,
    config_repr,
    float_dtype,
    runtime_seed,
)


def _widest_float() -> str:
    # JAX computes in float64 only with its x64 mode on; asked for float64
    # without it, it warns and gives float32 anyway.
    if keras.backend.backend() == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            return "float32"
    return "float64"


def _orthogonal_matrix(rows: int, cols: int, seed: Any):
    """A ``(rows, cols)`` matrix with orthonormal rows or columns.

    QR of a Gaussian matrix, with the signs of R's diagonal moved into Q so
    that Q is distributed uniformly (Haar) rather than biased by the
    decomposition's sign convention. Computed in float64 where the backend
    has it, so that the orthogonality survives the cast to float32 (tested
    to 1e-5, which float32 QR also meets).
    """
    tall = (max(rows, cols), min(rows, cols))
    a = keras.random.normal(tall, dtype=_widest_float(), seed=seed)
    q, r = keras.ops.qr(a)
    q = q * keras.ops.sign(keras.ops.diagonal(r))[None, :]
    return keras.ops.transpose(q) if rows < cols else q


class _SeededInitializer(keras.initializers.Initializer):
    def __init__(self, gain: float, seed: Any) -> None:
        self.gain = check_positive("gain", gain)
        self.seed = check_seed(seed)
        self._seed = runtime_seed(self.seed)

    def __repr__(self) -> str:
        return config_repr(self)

    def get_config(self) -> dict[str, Any]:
        return {
            "gain": self.gain,
            "seed": keras.saving.serialize_keras_object(self.seed),
        }


@keras.saving.register_keras_serializable(package="kerasinit")
class Orthogonal(_SeededInitializer):
    """Orthogonal initializer: every singular value of the kernel is `gain`.

    An orthogonal kernel preserves the norm of every input exactly, not only
    on average, so a deep linear network starts with all its singular values
    equal (dynamical isometry) and learns as fast at depth 100 as at depth
    2. It is also LSUV's starting point.

    The kernel is flattened to a matrix of ``prod(shape[:-1])`` rows and
    ``shape[-1]`` columns; the matrix has orthonormal columns when it is tall
    or square, and orthonormal rows when it is wide, scaled by `gain`.

    Formula:
        ``W^T W = gain^2 I`` (rows >= cols) or ``W W^T = gain^2 I``
        (rows < cols), for ``W`` the flattened kernel.

    Reference:
        - [Saxe et al., 2014](https://arxiv.org/abs/1312.6120)

    Args:
        gain: the singular value; a finite number > 0. Defaults to `1.0`.
        seed: an integer, `None`, or a `keras.random.SeedGenerator` (see
            `Glorot`). Defaults to `None`.

    Example:

    >>> layer = keras.layers.Dense(
    ...     256, kernel_initializer=kerasinit.initializers.Orthogonal(
    ...         gain=kerasinit.gain("relu")))
    """

    def __init__(
        self,
        gain: float = 1.0,
        seed: int | keras.random.SeedGenerator | None = None,
    ) -> None:
        super().__init__(gain=gain, seed=seed)

    def __call__(self, shape, dtype=None):
        shape = tuple(int(d) for d in shape)
        dtype = float_dtype(dtype)
        if len(shape) < 2:
            raise ValueError(
                "Orthogonal initialization needs a kernel of rank >= 2 "
                "(flattened to rows x columns). "
                f"Received: shape={shape}"
            )
        rows = math.prod(shape[:-1])
        q = _orthogonal_matrix(rows, shape[-1], self._seed)
        return keras.ops.cast(self.gain * keras.ops.reshape(q, shape), dtype)


@keras.saving.register_keras_serializable(package="kerasinit")
class DeltaOrthogonal(_SeededInitializer):
    """Delta-orthogonal initializer for convolution kernels.

    An orthogonal matrix at the centre tap of the kernel and zeros at every
    other tap: at initialization the convolution is an orthogonal
    channel mixing that ignores its neighbours, which gives a deep CNN the
    dynamical isometry of a deep orthogonal MLP (Xiao et al. train 10,000
    layers of vanilla tanh convolutions with it). The centre tap's rows are
    orthonormal, so the number of input channels must not exceed the
    number of output channels, and every spatial size must be odd so that a
    centre exists.

    Formula:
        ``W[c] W[c]^T = gain^2 I`` at the centre tap ``c = (k - 1) / 2``,
        ``W[t] = 0`` at every other tap ``t``.

    Reference:
        - [Xiao et al., 2018](https://arxiv.org/abs/1806.05393)

    Args:
        gain: the singular value of the centre tap; a finite number > 0.
            Defaults to `1.0`.
        seed: an integer, `None`, or a `keras.random.SeedGenerator` (see
            `Glorot`). Defaults to `None`.

    Example:

    >>> layer = keras.layers.Conv2D(
    ...     64, 3, padding="same", activation="tanh",
    ...     kernel_initializer=kerasinit.initializers.DeltaOrthogonal())
    """

    def __init__(
        self,
        gain: float = 1.0,
        seed: int | keras.random.SeedGenerator | None = None,
    ) -> None:
        super().__init__(gain=gain, seed=seed)

    def __call__(self, shape, dtype=None):
        shape = tuple(int(d) for d in shape)
        dtype = float_dtype(dtype)
        if not 3 <= len(shape) <= 5:
            raise ValueError(
                "DeltaOrthogonal initializes 1D, 2D or 3D convolution "
                "kernels of shape (k..., in_channels, out_channels), rank 3 "
                f"to 5. Received: shape={shape}"
            )
        spatial, (fan_in, fan_out) = shape[:-2], shape[-2:]
        if any(k % 2 == 0 for k in spatial):
            raise ValueError(
                "DeltaOrthogonal needs odd spatial sizes so that the kernel "
                f"has a centre tap. Received: shape={shape}"
            )
        if fan_in > fan_out:
            raise ValueError(
                "DeltaOrthogonal needs in_channels <= out_channels (an "
                "orthogonal centre tap cannot map more channels onto fewer "
                f"without losing signal). Received: shape={shape}"
            )
        centre = self.gain * _orthogonal_matrix(fan_in, fan_out, self._seed)
        centre = keras.ops.reshape(centre, (1,) * len(spatial) + shape[-2:])
        pads = [((k - 1) // 2, (k - 1) // 2) for k in spatial] + [(0, 0)] * 2
        return keras.ops.cast(keras.ops.pad(centre, pads), dtype)
