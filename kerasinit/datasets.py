"""Small synthetic data sets, generated on the fly, for demos and examples.

The `kerasinit demo` command and the examples must run without a download,
in seconds, and still show the effects that initialization has on training:
units that die, activations that saturate, signals that vanish through depth.
Both generators here are deterministic for a given seed, need only NumPy,
and are hard enough that a network which does not train stays near chance
while one that trains clearly does not.

* `spirals`: interleaved 2-D spiral arms lifted into `n_features`
  dimensions by a fixed random rotation. Not linearly separable, so a
  network needs working non-linear hidden layers to fit it.
* `shapes`: small grayscale images of four shape classes at random
  positions and sizes, with pixel noise. A convolutional network's task.
"""

from __future__ import annotations

import numpy as np

__all__ = ["spirals", "shapes", "SHAPE_CLASSES"]

#: Class names of `shapes`, in label order.
SHAPE_CLASSES = ("square", "disk", "ring", "cross")


def _check_positive_int(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"Expected `{name}` to be an integer. Received: {name}={value!r}"
        )
    if value < minimum:
        raise ValueError(
            f"Expected `{name}` to be at least {minimum}. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def spirals(
    n_samples: int = 2048,
    n_classes: int = 3,
    n_features: int = 16,
    turns: float = 1.25,
    noise: float = 0.05,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class, in `n_features` dimensions.

    Each class is one arm of a 2-D spiral; the 2-D points are rotated into
    `n_features` dimensions by a fixed random orthonormal map, isotropic
    noise is added in every dimension, and each feature is standardized to
    zero mean and unit variance (the input statistics the variance-preserving
    initializers assume).

    Formula:
        For class `k` and `t ~ U(0, 1)`:
        `p = t * (cos(a), sin(a))`, `a = 2 pi (k / n_classes + turns * t)`,
        `x = standardize(p @ Q + noise * e)`, `Q` with orthonormal rows,
        `e ~ N(0, I)`.

    Args:
        n_samples: number of examples, split as evenly as possible between
            the classes. Defaults to `2048`.
        n_classes: number of arms (classes). Defaults to `3`.
        n_features: dimension of the returned inputs, at least 2.
            Defaults to `16`.
        turns: how many times each arm winds around the centre; more turns
            make the task harder. Defaults to `1.25`.
        noise: standard deviation of the noise added to every feature,
            relative to the spiral's radius of 1. Defaults to `0.05`.
        seed: seed of the generator; the same seed gives the same data.
            Defaults to `0`.

    Returns:
        `(x, y)`: `x` float32 of shape `(n_samples, n_features)`, `y` int32
        labels of shape `(n_samples,)`, in random order.

    Example:

    >>> x, y = kerasinit.datasets.spirals(512, n_classes=3, n_features=8)
    >>> x.shape, y.shape
    ((512, 8), (512,))
    """
    n_samples = _check_positive_int("n_samples", n_samples)
    n_classes = _check_positive_int("n_classes", n_classes, minimum=2)
    n_features = _check_positive_int("n_features", n_features, minimum=2)
    if not turns > 0:
        raise ValueError(
            f"Expected `turns` to be positive. Received: turns={turns!r}"
        )
    if not noise >= 0:
        raise ValueError(
            f"Expected `noise` to be non-negative. Received: noise={noise!r}"
        )
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples) % n_classes
    t = rng.uniform(0.0, 1.0, size=n_samples)
    # The radius grows as sqrt(t) so points are uniform along the arm's area
    # rather than bunched at the centre, where the arms meet.
    r = np.sqrt(t)
    angle = 2.0 * np.pi * (y / n_classes + turns * t)
    plane = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
    # QR of a Gaussian matrix gives a uniformly random orthonormal frame.
    q, _ = np.linalg.qr(rng.standard_normal((n_features, 2)))
    x = plane @ q.T + noise * rng.standard_normal((n_samples, n_features))
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    order = rng.permutation(n_samples)
    return x[order].astype("float32"), y[order].astype("int32")


def shapes(
    n_samples: int = 1024,
    size: int = 16,
    noise: float = 0.3,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Grayscale images of squares, disks, rings and crosses.

    Every image holds one shape (class names in `SHAPE_CLASSES`) of random
    radius and position, drawn in white on black, plus Gaussian pixel noise.
    Images are standardized to zero mean and unit variance over the set.

    Args:
        n_samples: number of images, split evenly between the four classes.
            Defaults to `1024`.
        size: height and width in pixels, at least 12. Defaults to `16`.
        noise: standard deviation of the pixel noise, on a 0..1 ink scale.
            Defaults to `0.3`.
        seed: seed of the generator. Defaults to `0`.

    Returns:
        `(x, y)`: `x` float32 of shape `(n_samples, size, size, 1)` (channels
        last), `y` int32 labels of shape `(n_samples,)`, in random order.

    Example:

    >>> x, y = kerasinit.datasets.shapes(64, size=16)
    >>> x.shape
    (64, 16, 16, 1)
    """
    n_samples = _check_positive_int("n_samples", n_samples)
    size = _check_positive_int("size", size, minimum=12)
    if not noise >= 0:
        raise ValueError(
            f"Expected `noise` to be non-negative. Received: noise={noise!r}"
        )
    rng = np.random.default_rng(seed)
    n_classes = len(SHAPE_CLASSES)
    y = np.arange(n_samples) % n_classes
    radius = rng.uniform(0.18, 0.3, size=(n_samples, 1, 1)) * size
    # Keep every shape fully inside the frame.
    lo, hi = radius[:, 0, 0] + 1.0, size - 2.0 - radius[:, 0, 0]
    cy = rng.uniform(lo, hi)[:, None, None]
    cx = rng.uniform(lo, hi)[:, None, None]
    rows, cols = np.mgrid[0:size, 0:size].astype("float64")
    dy, dx = rows[None] - cy, cols[None] - cx
    dist = np.sqrt(dy**2 + dx**2)
    cheb = np.maximum(np.abs(dy), np.abs(dx))
    stroke = 1.0
    masks = {
        "square": np.abs(cheb - radius) <= stroke * 0.75,
        "disk": dist <= radius,
        "ring": np.abs(dist - radius) <= stroke * 0.75,
        "cross": ((np.abs(dx) <= stroke) & (np.abs(dy) <= radius))
        | ((np.abs(dy) <= stroke) & (np.abs(dx) <= radius)),
    }
    ink = np.zeros((n_samples, size, size))
    for label, name in enumerate(SHAPE_CLASSES):
        pick = y == label
        ink[pick] = masks[name][pick]
    x = ink + noise * rng.standard_normal(ink.shape)
    x = (x - x.mean()) / x.std()
    order = rng.permutation(n_samples)
    return (
        x[order, :, :, None].astype("float32"),
        y[order].astype("int32"),
    )
