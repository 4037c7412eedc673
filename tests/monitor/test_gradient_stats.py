"""Gradient and update statistics against NumPy references computed here."""

import numpy as np
import pytest
from keras import ops

from kerasinit.monitor import backends, gradient_stats


def _run(fn, compiled: bool):
    """`fn()` eagerly, or compiled the backend's way and run once."""
    return backends.current().compile(fn, ())() if compiled else fn()


# The gradient statistics take another path eagerly (one concatenation, one
# segment reduction per statistic) than compiled (tensor by tensor); both
# must give the same numbers.
both_paths = pytest.mark.parametrize(
    "compiled", [False, True], ids=["eager", "compiled"]
)


@both_paths
def test_gradient_stats_keep_tiny_norms(compiled):
    g = [ops.full([100], 1e-25), None]
    w = [ops.full([100], 2.0), ops.zeros([3])]
    got = _run(
        lambda: gradient_stats.gradient_stats_many([(g, w)], bins=30),
        compiled,
    )
    out = {k: ops.convert_to_numpy(v)[0] for k, v in got["columns"].items()}
    # A float32 sum of squares would underflow to exactly 0.
    np.testing.assert_allclose(out["grad_norm"], 1e-24, rtol=1e-5)
    np.testing.assert_allclose(out["weight_norm"], 20.0, rtol=1e-6)
    np.testing.assert_allclose(out["grad_weight_ratio"], 5e-26, rtol=1e-5)
    assert out["grad_nonfinite"] == 0
    assert ops.convert_to_numpy(got["counts"])[0].sum() == 103


@both_paths
def test_many_gradients_at_once_match_each_alone(compiled):
    rng = np.random.default_rng(2)
    layers = [
        ([rng.normal(size=(5, 3)), rng.normal(size=3)], [(5, 3), (3,)]),
        ([rng.normal(size=(7, 3)) * 1e-20, None], [(7, 3), (3,)]),
        ([rng.normal(size=(5, 3)), rng.normal(size=3)], [(5, 3), (3,)]),
    ]
    groups = []
    for grads, shapes in layers:
        weights = [rng.normal(size=s).astype("float32") for s in shapes]
        groups.append(
            (
                [
                    None if g is None else ops.convert_to_tensor(g, "float32")
                    for g in grads
                ],
                [ops.convert_to_tensor(w) for w in weights],
            )
        )
    got = _run(
        lambda: gradient_stats.gradient_stats_many(groups, bins=5), compiled
    )
    _check_gradient_rows(groups, got)
    # One non-finite gradient anywhere: every layer is measured with masks,
    # and the finite ones still match.
    bad = rng.normal(size=(4, 3))
    bad[0, 0], bad[1, 1] = np.nan, np.inf
    weights = [ops.convert_to_tensor(rng.normal(size=(4, 3)), "float32")]
    groups.append(([ops.convert_to_tensor(bad, "float32")], weights))
    got = _run(
        lambda: gradient_stats.gradient_stats_many(groups, bins=5), compiled
    )
    _check_gradient_rows(groups[:-1], got)
    last = {k: ops.convert_to_numpy(v)[-1] for k, v in got["columns"].items()}
    assert last["grad_nonfinite"] == 2 and not np.isfinite(last["grad_norm"])
    finite = bad[np.isfinite(bad)].astype(np.float32)
    np.testing.assert_allclose(
        ops.convert_to_numpy(got["range"])[-1],
        [finite.min(), finite.max()],
        rtol=1e-6,
    )
    np.testing.assert_array_equal(
        ops.convert_to_numpy(got["counts"])[-1],
        np.histogram(finite, 5, range=(finite.min(), finite.max()))[0],
    )


@both_paths
def test_layers_the_loss_does_not_reach(compiled):
    # Whole layers without gradients, inside the list and at its end: their
    # entries are the zeros of their weights.
    rng = np.random.default_rng(3)

    def layer(reached):
        w = [
            ops.convert_to_tensor(rng.normal(size=s), "float32")
            for s in [(4, 2), (2,)]
        ]
        g = [
            ops.convert_to_tensor(rng.normal(size=v.shape), "float32")
            for v in w
        ]
        return (g if reached else [None, None]), w

    groups = [layer(True), layer(False), layer(True), layer(False)]
    got = _run(
        lambda: gradient_stats.gradient_stats_many(groups, bins=5), compiled
    )
    _check_gradient_rows(groups, got)
    norms = ops.convert_to_numpy(got["columns"]["grad_norm"])
    np.testing.assert_array_equal(norms[[1, 3]], [0.0, 0.0])
    np.testing.assert_array_equal(
        ops.convert_to_numpy(got["range"])[[1, 3]], 0.0
    )
    # A constant 0 is bucketed in the unit-wide range centred on it.
    np.testing.assert_array_equal(
        ops.convert_to_numpy(got["counts"])[3], [0, 0, 10, 0, 0]
    )


@both_paths
def test_a_layer_without_finite_gradients(compiled):
    groups = [([ops.full([3, 2], np.nan)], [ops.ones([3, 2])])]
    got = _run(
        lambda: gradient_stats.gradient_stats_many(groups, bins=4), compiled
    )
    # No finite extremes (not the largest finite floats) and nothing counted.
    lo, hi = ops.convert_to_numpy(got["range"])[0]
    assert lo == np.inf and hi == -np.inf
    assert ops.convert_to_numpy(got["columns"]["grad_nonfinite"])[0] == 6
    assert not np.isfinite(ops.convert_to_numpy(got["columns"]["grad_norm"])[0])
    assert ops.convert_to_numpy(got["counts"])[0].sum() == 0


def _check_gradient_rows(groups, got):
    columns = {k: ops.convert_to_numpy(v) for k, v in got["columns"].items()}
    for i, (grads, weights) in enumerate(groups):
        g = np.concatenate(
            [
                np.zeros(w.shape).ravel()
                if gr is None
                else ops.convert_to_numpy(gr).ravel()
                for gr, w in zip(grads, weights)
            ]
        ).astype(np.float64)
        w = np.concatenate([ops.convert_to_numpy(v).ravel() for v in weights])
        g32 = g.astype(np.float32).astype(np.float64)
        np.testing.assert_allclose(
            columns["grad_norm"][i], np.linalg.norm(g32), rtol=1e-5
        )
        np.testing.assert_allclose(
            columns["weight_norm"][i], np.linalg.norm(w), rtol=1e-5
        )
        np.testing.assert_allclose(
            ops.convert_to_numpy(got["range"])[i],
            [g32.min(), g32.max()],
            rtol=1e-6,
        )
        np.testing.assert_array_equal(
            ops.convert_to_numpy(got["counts"])[i],
            np.histogram(g32, 5, range=(g32.min(), g32.max()))[0],
        )


@both_paths
def test_update_ratios_match_numpy(compiled):
    rng = np.random.default_rng(5)
    shapes = [[(6, 4), (4,)], [(4, 4), (4,)], [(4, 4)]]
    before = [
        [rng.normal(size=s).astype("f4") for s in layer] for layer in shapes
    ]
    steps = [1e-3, 0.5, 0.0]
    after = [
        [w + step * rng.normal(size=w.shape).astype("f4") for w in layer]
        for layer, step in zip(before, steps)
    ]

    def ratios():
        return gradient_stats.update_ratios(
            [[ops.convert_to_tensor(w) for w in layer] for layer in after],
            [[ops.convert_to_tensor(w) for w in layer] for layer in before],
        )

    got = ops.convert_to_numpy(_run(ratios, compiled))
    for i in range(3):
        new = np.concatenate([w.ravel() for w in after[i]]).astype(np.float64)
        old = np.concatenate([w.ravel() for w in before[i]]).astype(np.float64)
        expected = np.linalg.norm(new - old) / np.linalg.norm(old)
        np.testing.assert_allclose(got[i], expected, rtol=1e-5, atol=1e-12)
    assert got[2] == 0.0


@both_paths
@pytest.mark.parametrize("masked", [True, False])
def test_the_histograms_alone_match_the_statistics(compiled, masked):
    # Layers of shared and distinct shapes, one the loss does not reach,
    # and, with masks, one with values that are not finite.
    rng = np.random.default_rng(5)

    def tensors(shapes):
        return [
            ops.convert_to_tensor(rng.normal(size=s), "float32") for s in shapes
        ]

    groups = [
        (tensors([(4, 3), (3,)]), tensors([(4, 3), (3,)])),
        ([None, None], tensors([(3, 3), (3,)])),
        (tensors([(4, 3), (3,)]), tensors([(4, 3), (3,)])),
        (tensors([(3, 2)]), tensors([(3, 2)])),
    ]
    if masked:
        bad = np.array(ops.convert_to_numpy(groups[2][0][0]))
        bad[0, 0], bad[1, 2] = np.nan, np.inf
        groups[2] = (
            [ops.convert_to_tensor(bad), groups[2][0][1]],
            groups[2][1],
        )

    def both():
        return (
            gradient_stats.gradient_histograms_many(
                groups, bins=6, masked=masked
            ),
            gradient_stats.gradient_stats_many(groups, bins=6, masked=masked),
        )

    alone, full = _run(both, compiled)
    for key in ("range", "counts"):
        np.testing.assert_array_equal(
            ops.convert_to_numpy(alone[key]),
            ops.convert_to_numpy(full[key]),
            err_msg=key,
        )
    assert bool(ops.convert_to_numpy(alone["all_finite"])) is not masked
    # Against NumPy: the finite entries of each reached layer, and the
    # zeros that stand for the gradients of the one not reached.
    counts = ops.convert_to_numpy(alone["counts"])
    for i, (gs, _) in enumerate(groups):
        if gs[0] is None:
            # 3 x 3 + 3 zeros, in the middle bucket of a constant.
            np.testing.assert_array_equal(counts[i], [0, 0, 0, 12, 0, 0])
            continue
        values = np.concatenate([np.ravel(ops.convert_to_numpy(g)) for g in gs])
        finite = values[np.isfinite(values)]
        np.testing.assert_array_equal(
            counts[i],
            np.histogram(finite, 6, range=(finite.min(), finite.max()))[0],
            err_msg=str(i),
        )
