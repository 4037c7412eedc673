"""Histogram buckets counted on the device against `np.histogram`."""

import numpy as np
import pytest
from keras import ops

from kerasinit.monitor import backends, histograms
from kerasinit.monitor.rows import Rows


def _counts(values, bins, masked=True):
    rows = Rows(
        Rows.matrix([ops.convert_to_tensor(v, "float32") for v in values])
    )
    adjust = (rows.n_finite - rows.count)[:, 0] if masked else None
    counts = histograms.bucket_counts(rows.safe, rows.lo, rows.hi, bins, adjust)
    return rows, ops.convert_to_numpy(counts)


def test_counts_match_numpy_over_each_rows_range():
    rng = np.random.default_rng(0)
    values = [rng.normal(size=500), rng.exponential(size=500) * 1e3]
    _, counts = _counts(values, 9)
    for row, v in zip(counts, values):
        v = v.astype(np.float32)
        expected, _ = np.histogram(v, 9, range=(v.min(), v.max()))
        np.testing.assert_array_equal(row, expected)


def test_constant_and_empty_rows():
    rows, counts = _counts([np.full(3, 2.0), [np.nan, np.inf, 0.0]], 4)
    table = histograms.histogram_table(
        ops.convert_to_numpy(rows.lo)[:, 0],
        ops.convert_to_numpy(rows.hi)[:, 0],
        counts,
    )
    # A constant row: the unit-wide range centred on its value.
    assert table[0, 0, 0] == 1.5 and table[0, -1, 1] == 2.5
    assert table[0, :, 2].sum() == 3
    # Only the finite 0 is counted.
    assert counts[1].sum() == 1
    # Non-finite values are left out even when 0 lies outside the range.
    for values in ([5.0, 6.0, 7.0, np.nan], [-7.0, -6.0, -np.inf, -5.0]):
        _, counts = _counts([values], 3)
        np.testing.assert_array_equal(counts[0], [1.0, 1.0, 1.0])


@pytest.mark.parametrize("width", [5e-38, 1e-39, 1e-44])
def test_a_range_narrower_than_the_smallest_normal_float(width):
    """The root cause of a crash in deep stacks with tiny weights.

    ``bins / width`` overflows to infinity once the width is below about
    ``bins / 3.4e38``; the row's minimum then sat at position ``0 * inf``
    (NaN), cast to a negative bucket, which `bincount` rejects. Each value
    must land in a valid bucket, as the rows' total shows.
    """
    values = np.array([[0.0, width, width / 2, 0.0]], np.float32)
    v = ops.convert_to_tensor(values)
    lo = ops.convert_to_tensor(values.min(1, keepdims=True))
    hi = ops.convert_to_tensor(values.max(1, keepdims=True))

    def count():
        return histograms.bucket_counts(v, lo, hi, 30)

    for fn in (count, backends.current().compile(count, ())):
        counts = ops.convert_to_numpy(fn())
        assert counts.sum() == 4 and (counts >= 0).all()


def test_nan_values_without_masks_never_give_a_negative_bucket():
    # Without masks the statistics of a non-finite row are thrown away,
    # but counting them must not fail (nor log an error).
    values = ops.convert_to_tensor([[np.nan, 1.0, -np.inf, np.inf]], "float32")
    rows = Rows(values, masked=False)
    counts = histograms.bucket_counts(rows.safe, rows.lo, rows.hi, 5)
    assert ops.convert_to_numpy(counts).sum() == 4


def test_histogram_table_layout():
    table = histograms.histogram_table(
        np.array([1.0, 2.0, np.inf], np.float32),
        np.array([3.0, 2.0, -np.inf], np.float32),
        np.array([[1, 2], [0, 4], [0, 0]], np.float32),
    )
    np.testing.assert_allclose(table[0], [[1, 2, 1], [2, 3, 2]])
    # A constant row: unit-wide, centred on its value.
    np.testing.assert_allclose(table[1], [[1.5, 2.0, 0], [2.0, 2.5, 4]])
    # No finite value: [0, 1], no counts.
    np.testing.assert_allclose(table[2], [[0, 0.5, 0], [0.5, 1, 0]])
