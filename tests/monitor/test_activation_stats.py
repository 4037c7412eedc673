"""Activation statistics against NumPy references computed here."""

import keras
import numpy as np
import pytest
from keras import ops

from kerasinit import gains
from kerasinit.monitor import activation_stats
from kerasinit.monitor.activation_stats import DEVICE_METRICS

SIGMOID = activation_stats.saturation_fn(gains.info("sigmoid").saturation, None)


def _stats(outputs, dead=None, rules=None, bins=None, masked=True, **kwargs):
    n = len(outputs)
    got = activation_stats.activation_stats_many(
        [ops.convert_to_tensor(y, "float32") for y in outputs],
        dead_values=dead or [None] * n,
        saturation=rules or [None] * n,
        bins=bins,
        masked=masked,
        **kwargs,
    )
    columns = {k: ops.convert_to_numpy(v) for k, v in got["columns"].items()}
    return columns, got


def _numpy_cosine(y):
    rows = y.reshape(len(y), -1).astype(np.float64)
    rows = rows[np.linalg.norm(rows, axis=1) > 0]
    m = len(rows)
    if m < 2:
        return np.nan
    u = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    gram = u @ u.T
    return (gram.sum() - np.trace(gram)) / (m * (m - 1))


def _numpy_duplicates(y):
    columns = y.reshape(-1, y.shape[-1]).T
    units = len(columns)
    dup = [
        any(
            np.array_equal(columns[i], columns[j])
            for j in range(units)
            if j != i
        )
        for i in range(units)
    ]
    return np.mean(dup)


def _numpy_row(y, dead, rule):
    finite = y[np.isfinite(y)]
    units = y.reshape(-1, y.shape[-1])
    with np.errstate(invalid="ignore"):
        deriv = rule(y) if rule else None
    safe = np.where(np.isfinite(y), y, 0.0)
    return {
        "act_mean": finite.mean(),
        "act_std": finite.std(),
        "act_min": finite.min(),
        "act_max": finite.max(),
        "zero_fraction": np.mean(y == 0.0),
        "dead_fraction": (
            np.all(units == dead, axis=0).mean() if dead is not None else 0.0
        ),
        "saturation_fraction": (
            np.mean((deriv < 0.0125) & np.isfinite(y)) if rule else 0.0
        ),
        "act_nonfinite": np.sum(~np.isfinite(y)),
        "act_rms": np.sqrt(np.mean(finite.astype(np.float64) ** 2)),
        "cosine_similarity": _numpy_cosine(safe),
        "duplicate_fraction": _numpy_duplicates(safe),
    }


def test_many_outputs_at_once_match_numpy():
    # Outputs of four shapes and two rules, interleaved, so the grouping by
    # shape and rule must put every row back in input order.
    rng = np.random.default_rng(1)
    shapes = [(32, 8), (32, 4, 4), (32, 8), (16, 6), (32, 16), (64, 5, 7)]
    outputs = [rng.normal(size=s).astype("float32") for s in shapes]
    outputs[0] = np.maximum(outputs[0], 0.0)
    outputs[0][:, 2] = 0.0
    outputs[2] = 1.0 / (1.0 + np.exp(-4.0 * outputs[2]))
    outputs[3][0, 0] = np.inf
    outputs[5] = np.maximum(outputs[5], 0.0)
    outputs[5][:, :, 3] = 0.0
    outputs[5][0, 0, 0] = np.nan
    dead = [0.0, None, None, 0.0, None, 0.0]
    rules = [None, None, (SIGMOID, 0.0125), None, (SIGMOID, 0.0125), None]
    columns, got = _stats(outputs, dead, rules, bins=7)
    counts = ops.convert_to_numpy(got["counts"])
    assert not ops.convert_to_numpy(got["all_finite"])
    for i, y in enumerate(outputs):
        expected = _numpy_row(
            y, dead[i], (lambda v: v * (1.0 - v)) if rules[i] else None
        )
        assert set(expected) == set(DEVICE_METRICS)
        for name in DEVICE_METRICS:
            np.testing.assert_allclose(
                columns[name][i],
                expected[name],
                rtol=1e-4,
                atol=1e-6,
                err_msg=f"{i} {name}",
            )
        finite = y[np.isfinite(y)]
        np.testing.assert_array_equal(
            counts[i],
            np.histogram(finite, 7, range=(finite.min(), finite.max()))[0],
        )


def test_a_subset_of_metrics_is_the_same_columns_and_only_those():
    rng = np.random.default_rng(2)
    outputs = [
        np.maximum(rng.normal(size=(32, 8)), 0.0).astype("float32"),
        rng.normal(size=(32, 4, 4)).astype("float32"),
    ]
    dead = [0.0, None]
    full, _ = _stats(outputs, dead)
    # Asked in another order: the columns come in `DEVICE_METRICS`' order.
    wanted = ("dead_fraction", "act_mean", "cosine_similarity")
    some, _ = _stats(outputs, dead, metrics=wanted)
    assert list(some) == [m for m in DEVICE_METRICS if m in wanted]
    for name in wanted:
        np.testing.assert_allclose(some[name], full[name], rtol=1e-6)
    economy, _ = _stats(outputs, dead, metrics=activation_stats.ECONOMY_METRICS)
    assert set(DEVICE_METRICS) - set(economy) == {"duplicate_fraction"}
    with pytest.raises(ValueError, match=r"`metrics`.*'act_median'"):
        _stats(outputs, dead, metrics=("act_mean", "act_median"))


def test_cosine_similarity_of_collapsed_and_independent_examples():
    rng = np.random.default_rng(2)
    independent = rng.normal(size=(256, 64)).astype("float32")
    # Every example the same direction, scaled: similarity 1.
    collapsed = np.outer(rng.uniform(0.5, 2.0, 256), rng.normal(size=64))
    # All-zero examples are left out of the mean.
    with_zeros = independent.copy()
    with_zeros[::2] = 0.0
    only_one = np.zeros((8, 4), "float32")
    only_one[3] = 1.0
    columns, _ = _stats([independent, collapsed, with_zeros, only_one])
    cos = columns["cosine_similarity"]
    # Independent N(0, I) rows in 64 dimensions: pairwise cosines have mean
    # 0 and std 1/sqrt(64); the mean of 256*255/2 of them has a std of
    # about 0.125 / 181.
    assert abs(cos[0]) < 5 * 0.125 / 181
    np.testing.assert_allclose(cos[0], _numpy_cosine(independent), atol=1e-5)
    np.testing.assert_allclose(cos[1], 1.0, rtol=1e-5)
    np.testing.assert_allclose(cos[2], _numpy_cosine(with_zeros), atol=1e-5)
    assert np.isnan(cos[3])


def test_duplicate_units_exact_on_the_cases_that_matter():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(128, 20)).astype("float32")
    he = x @ rng.normal(scale=np.sqrt(2 / 20), size=(20, 64)).astype("f4")
    # Constant init: every unit computes the same function of the input.
    constant = x @ np.full((20, 64), 0.05, "float32")
    # Zero init: every unit outputs 0.
    zeros = np.zeros((128, 64), "float32")
    # Half the units copy another unit; on spatial outputs too.
    half = he.copy()
    half[:, 32:] = half[:, :32]
    conv = rng.normal(size=(16, 6, 6, 8)).astype("float32")
    conv[..., 5] = conv[..., 1]
    columns, _ = _stats([he, constant, zeros, half, conv])
    np.testing.assert_array_equal(
        columns["duplicate_fraction"], [0.0, 1.0, 1.0, 1.0, 0.25]
    )
    assert _numpy_duplicates(conv) == 0.25


def test_duplicates_within_float_rounding_are_duplicates():
    # Two columns one float32 step apart, as the same function computed in
    # another order would give.
    rng = np.random.default_rng(4)
    a = rng.normal(size=(512, 1)).astype("float32")
    b = np.nextafter(a, np.float32(np.inf))
    assert not np.array_equal(a, b)
    y = np.concatenate([a, b, rng.normal(size=(512, 6)).astype("f4")], 1)
    columns, _ = _stats([y])
    np.testing.assert_allclose(columns["duplicate_fraction"], [0.25])


def test_without_masks_the_statistics_say_they_are_not_exact():
    y = np.ones((8, 4), "float32")
    y[0, 0] = np.nan
    columns, got = _stats([y], masked=False, bins=5)
    assert not ops.convert_to_numpy(got["all_finite"])
    columns, got = _stats([np.ones((8, 4), "f4")], masked=False, bins=5)
    assert ops.convert_to_numpy(got["all_finite"])
    np.testing.assert_allclose(columns["act_rms"], [1.0])


@pytest.mark.parametrize("shape", [(32,), (32, 1)])
def test_outputs_without_units(shape):
    y = np.random.default_rng(5).normal(size=shape).astype("float32")
    columns, _ = _stats([y])
    expected = _numpy_row(y.reshape(32, -1), None, None)
    np.testing.assert_allclose(
        columns["cosine_similarity"], [expected["cosine_similarity"]], atol=1e-6
    )
    if len(shape) == 1:
        # No unit axis: duplicates do not apply.
        assert np.isnan(columns["duplicate_fraction"][0])


def _numpy_input_cosine(arrays):
    """Mean cosine over ordered pairs of distinct non-zero examples."""
    flat = np.concatenate(
        [a.reshape(len(a), -1).astype(np.float64) for a in arrays], axis=1
    )
    norms = np.linalg.norm(flat, axis=1)
    kept = [i for i in range(len(flat)) if norms[i] > 0]
    cosines = [
        flat[i] @ flat[j] / (norms[i] * norms[j])
        for i in kept
        for j in kept
        if i != j
    ]
    return np.mean(cosines) if cosines else np.nan


def _input_cosine(arrays):
    tensors = [keras.ops.convert_to_tensor(a) for a in arrays]
    got = activation_stats.input_cosine(tensors)
    return keras.ops.convert_to_numpy(got)


def test_input_cosine_concatenates_every_float_input_per_example():
    rng = np.random.default_rng(3)
    image = rng.normal(size=(40, 4, 4, 2)).astype(np.float32)
    # Shared offsets make the examples alike: the mean cosine is far from 0.
    features = (rng.normal(size=(40, 7)) + 2.0).astype(np.float32)
    image[5] = 0.0
    features[5] = 0.0
    tokens = rng.integers(0, 9, size=(40, 3)).astype(np.int32)
    got = _input_cosine([image, tokens, features])
    assert got.shape == (1,)
    expected = _numpy_input_cosine([image, features])
    assert expected > 0.2
    np.testing.assert_allclose(got[0], expected, rtol=1e-5)


def test_input_cosine_of_identical_and_too_few_examples():
    rng = np.random.default_rng(4)
    row = rng.normal(size=(1, 12)).astype(np.float32)
    same = np.repeat(row, 6, axis=0)
    np.testing.assert_allclose(_input_cosine([same]), [1.0], rtol=1e-5)
    # One non-zero example has no pair; integer inputs alone are not used.
    lonely = np.zeros((4, 12), np.float32)
    lonely[2] = row[0]
    assert np.isnan(_input_cosine([lonely])[0])
    assert np.isnan(_input_cosine([np.ones((4, 3), np.int32)])[0])


@pytest.mark.parametrize("masked", [True, False])
def test_the_counts_alone_match_numpy(masked):
    # Outputs of three sizes, two alike, one with values that are not
    # finite (counted without them, with masks) and one constant.
    rng = np.random.default_rng(4)
    outputs = [
        rng.normal(size=(32, 8)).astype("float32"),
        rng.normal(size=(16, 3, 3)).astype("float32"),
        np.maximum(rng.normal(size=(32, 8)), 0.0).astype("float32"),
        np.full((4, 2), 1.5, np.float32),
    ]
    if masked:
        outputs[1][0, 0, 0] = np.nan
        outputs[1][1, 2, 0] = -np.inf
    got = activation_stats.activation_counts_many(
        [ops.convert_to_tensor(y) for y in outputs], bins=7, masked=masked
    )
    counts = ops.convert_to_numpy(got["counts"])
    assert bool(ops.convert_to_numpy(got["all_finite"])) is not masked
    for i, y in enumerate(outputs[:3]):
        finite = y[np.isfinite(y)]
        np.testing.assert_array_equal(
            counts[i],
            np.histogram(finite, 7, range=(finite.min(), finite.max()))[0],
            err_msg=str(i),
        )
    # A constant output: every value in the middle bucket.
    np.testing.assert_array_equal(counts[3], [0, 0, 0, 8, 0, 0, 0])
    # The counts that the statistics of the same outputs give.
    full = activation_stats.activation_stats_many(
        [ops.convert_to_tensor(y) for y in outputs],
        dead_values=[None] * 4,
        saturation=[None] * 4,
        bins=7,
        masked=masked,
    )
    np.testing.assert_array_equal(counts, ops.convert_to_numpy(full["counts"]))
