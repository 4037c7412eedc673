import keras
import pytest

from kerasinit import initializers as ki
from kerasinit.initializers.fans import einsum_fans


def _built(layer, input_shape):
    layer.build(input_shape)
    return layer


def test_compute_fans_keras_convention():
    assert ki.compute_fans((7,)) == (7, 7)
    assert ki.compute_fans(()) == (1, 1)
    assert ki.compute_fans((10, 20)) == (10, 20)
    assert ki.compute_fans((3, 3, 64, 128)) == (576, 1152)
    assert ki.compute_fans((2, 3, 5, 4, 6)) == (120, 180)


def test_fans_for_each_layer_kind():
    L = keras.layers
    cases = [
        (L.Dense(32), (None, 16), (16, 32)),
        (L.Conv1D(8, 5), (None, 20, 4), (20, 40)),
        (L.Conv2D(8, 3), (None, 10, 10, 4), (36, 72)),
        (L.Conv3D(8, 3), (None, 6, 6, 6, 4), (108, 216)),
        # groups=2: each filter sees 2 input channels, each input feeds 4.
        (L.Conv2D(8, 3, groups=2), (None, 10, 10, 4), (18, 36)),
        (L.DepthwiseConv1D(5, depth_multiplier=3), (None, 20, 4), (5, 15)),
        (L.DepthwiseConv2D(3, depth_multiplier=2), (None, 8, 8, 16), (9, 18)),
        (L.Conv1DTranspose(6, 5), (None, 20, 4), (20, 30)),
        (L.Conv2DTranspose(6, 3), (None, 8, 8, 4), (36, 54)),
        (L.Conv3DTranspose(6, 3), (None, 5, 5, 5, 4), (108, 162)),
        (
            L.EinsumDense("abc,cd->abd", output_shape=(None, 24)),
            (None, 7, 16),
            (16, 24),
        ),
        (
            L.EinsumDense("btd,dnh->btnh", output_shape=(None, 4, 8)),
            (None, 7, 32),
            (32, 32),
        ),
        (
            # Per-head projection: n is batch-like, h summed, k produced.
            L.EinsumDense("bnh,nhk->bnk", output_shape=(4, 6)),
            (None, 4, 8),
            (8, 6),
        ),
    ]
    for layer, input_shape, expected in cases:
        assert ki.fans_for_layer(_built(layer, input_shape)) == expected, (
            layer.__class__.__name__
        )


def test_separable_conv_kernels():
    layer = _built(
        keras.layers.SeparableConv2D(12, 3, depth_multiplier=2),
        (None, 9, 9, 5),
    )
    assert ki.kernel_fans(layer) == {
        "depthwise_kernel": (9, 18),
        "pointwise_kernel": (10, 12),
    }
    assert ki.fans_for_layer(layer, "pointwise_kernel") == (10, 12)
    with pytest.raises(ValueError, match="kernel="):
        ki.fans_for_layer(layer)
    with pytest.raises(ValueError, match="Received: kernel='bias'"):
        ki.fans_for_layer(layer, "bias")
    layer1d = _built(keras.layers.SeparableConv1D(12, 5), (None, 9, 5))
    assert ki.kernel_fans(layer1d)["depthwise_kernel"] == (5, 5)


def test_fans_for_layer_errors():
    with pytest.raises(ValueError, match="built"):
        ki.fans_for_layer(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="kernel"):
        ki.fans_for_layer(_built(keras.layers.LayerNormalization(), (None, 4)))
    with pytest.raises(ValueError, match="ellipsis"):
        einsum_fans("ab,...c->ac", (3, 4))
    with pytest.raises(ValueError, match="axes"):
        einsum_fans("ab,bc->ac", (3, 4, 5))


def test_fans_feed_initializer():
    layer = _built(keras.layers.DepthwiseConv2D(3), (None, 8, 8, 16))
    init = ki.He(fans=ki.fans_for_layer(layer))
    assert init.stddev_for(layer.kernel.shape) == pytest.approx((2 / 9) ** 0.5)
