"""`kerasinit.datasets`: the generated data the demo and examples train on."""

import numpy as np
import pytest

from kerasinit import datasets


def test_spirals_shapes_balance_and_determinism():
    x, y = datasets.spirals(999, n_classes=3, n_features=10, seed=3)
    assert x.shape == (999, 10) and x.dtype == np.float32
    assert y.shape == (999,) and y.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(y), [333, 333, 333])
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=0), 1.0, atol=1e-5)
    x2, y2 = datasets.spirals(999, n_classes=3, n_features=10, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = datasets.spirals(999, n_classes=3, n_features=10, seed=4)
    assert not np.array_equal(x, x3)


def test_spirals_live_on_a_plane():
    # Without noise the points span exactly two directions: the spiral's
    # plane, rotated into the feature space.
    x, _ = datasets.spirals(500, n_features=12, noise=0.0, seed=1)
    singular = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
    assert singular[1] > 1.0
    assert singular[2] < 1e-4 * singular[0]


def test_shapes_classes_are_distinct_drawings():
    x, y = datasets.shapes(400, size=16, noise=0.0, seed=2)
    assert x.shape == (400, 16, 16, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(np.bincount(y), [100] * 4)
    ink = x[..., 0] > x.min() + 1e-6
    area = ink.reshape(400, -1).sum(axis=1)
    by_class = [area[y == k].mean() for k in range(4)]
    square, disk, ring, _ = by_class
    # A disk covers its whole radius; a ring of the same radius only a band.
    assert disk > ring
    assert disk > square
    assert all(a > 0 for a in area)


@pytest.mark.parametrize(
    "fn, kwargs, name",
    [
        (datasets.spirals, {"n_samples": 0}, "n_samples"),
        (datasets.spirals, {"n_classes": 1}, "n_classes"),
        (datasets.spirals, {"n_features": 1}, "n_features"),
        (datasets.spirals, {"turns": 0.0}, "turns"),
        (datasets.spirals, {"noise": -1.0}, "noise"),
        (datasets.shapes, {"size": 8}, "size"),
        (datasets.shapes, {"n_samples": 2.5}, "n_samples"),
    ],
)
def test_generators_validate_arguments(fn, kwargs, name):
    with pytest.raises((ValueError, TypeError), match=f"`{name}`"):
        fn(**kwargs)
