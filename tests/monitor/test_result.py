"""ProbeLayout: blocks packed and unpacked by name; the host-side ratios."""

import math

import numpy as np
import pytest
from keras import ops

from kerasinit.monitor.result import ProbeLayout

ACT = ("act_min", "act_max", "act_rms", "act_mean")
GRAD = ("grad_norm", "update_ratio")


def _layout(bins=2, with_grads=True):
    return ProbeLayout(
        paths=("a", "b", "c"),
        owners=("a", "out"),
        grad_rows=(("a", 0), ("b", 0)),
        reference_row=1,
        activation_columns=ACT,
        gradient_columns=GRAD,
        bins=bins,
        with_grads=with_grads,
    )


def _pieces():
    return {
        # act_min, act_max, act_rms, act_mean per layer
        "activations": [[0, 2, 4.0, 1], [0, 1, 2.0, 1], [-1, 1, 0.0, 0]],
        "activation_counts": [[1, 2], [3, 4], [5, 6]],
        "gradients": [[0.5, np.nan], [2.0, 0.1]],
        "gradient_range": [[-1, 1], [0, 3]],
        "gradient_counts": [[7, 8], [9, 10]],
        "loss": [1.5],
        "input_rms": [2.0],
        "input_cosine": [0.25],
        "finite": [1.0],
    }


def test_pack_then_unpack_reads_every_value_by_name():
    layout = _layout()
    flat = ops.convert_to_numpy(layout.pack(_pieces()))
    assert layout.exact(flat)
    result = layout.unpack(flat)
    assert list(result.layers) == ["a", "b", "c"]
    assert result.layers["b"]["act_rms"] == 2.0
    # Gradient statistics of the weights each layer reports.
    assert result.layers["b"]["grad_norm"] == 0.5
    assert "grad_norm" not in result.layers["c"]
    assert math.isnan(result.layers["a"]["update_ratio"])
    assert result.reference_grad_norm == 2.0
    assert result.loss == 1.5 and result.input_rms == 2.0
    assert result.input_cosine == 0.25
    np.testing.assert_array_equal(
        result.activation_histograms["a"], [[0, 1, 1], [1, 2, 2]]
    )
    np.testing.assert_array_equal(
        result.gradient_histograms["b"], [[-1, 0, 7], [0, 1, 8]]
    )


def test_signal_gain_is_each_rms_over_the_previous_one():
    result = _layout().unpack(ops.convert_to_numpy(_layout().pack(_pieces())))
    gains = [result.layers[p]["signal_gain"] for p in "abc"]
    # The first layer against the input's RMS; a zero layer gives 0.
    assert gains == [4.0 / 2.0, 2.0 / 4.0, 0.0]
    pieces = _pieces()
    pieces["activations"][2][2] = 3.0
    pieces["activations"][1][2] = 0.0
    result = _layout().unpack(ops.convert_to_numpy(_layout().pack(pieces)))
    assert result.layers["c"]["signal_gain"] == math.inf


def test_a_block_of_the_wrong_shape_is_refused():
    pieces = _pieces()
    pieces["gradients"] = [[0.5, 1.0]]
    with pytest.raises(ValueError, match="`gradients`"):
        _layout().pack(pieces)


def test_a_vector_of_another_layout_is_refused():
    flat = ops.convert_to_numpy(_layout().pack(_pieces()))
    with pytest.raises(ValueError, match="size"):
        _layout(bins=None).unpack(flat)


def test_without_histograms_or_targets():
    layout = _layout(bins=None, with_grads=False)
    pieces = {
        k: v
        for k, v in _pieces().items()
        if k
        in ("activations", "gradients", "input_rms", "input_cosine", "finite")
    }
    result = layout.unpack(ops.convert_to_numpy(layout.pack(pieces)))
    assert result.loss is None and result.activation_histograms == {}
    assert ops.is_tensor(layout.pack(pieces))
