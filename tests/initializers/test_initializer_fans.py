import keras
import numpy as np
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


# ---------------------------------------------------------------------------
# True fans against the variance a layer actually produces.
#
# A kernel drawn with He (fan_in mode) from the layer's true fans gives a
# pre-activation of variance 2 on N(0, 1) input; drawn in fan_out mode, the
# gradient reaching the input has variance 2 for an N(0, 1) upstream
# gradient. Both are measured away from the borders (where padding removes
# taps), over a window whose size is a multiple of the stride so that every
# tap pattern is counted equally. The measured variance averages
# `channels * positions` sums of products of independent draws, and one
# kernel draw makes its own squared entries' mean off by a relative
# sqrt(2 / kernel.size); with four kernel draws averaged the tolerance of
# 10 % is more than 5 such standard errors for every case below, while a
# fan off by the stride (the error this guards) is off by 50 % or more.

L = keras.layers


def _interior(values, rank, margin, strides):
    index = [slice(None)]
    for axis in range(rank):
        size = values.shape[1 + axis] - 2 * margin
        size -= size % strides[axis]
        index.append(slice(margin, margin + size))
    return values[tuple(index) + (slice(None),)]


def _input_gradient(layer, x, g):
    """``J^T g``: the layer's input gradient for output gradient `g`."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        return tape.gradient(y, x, output_gradients=g)
    if backend == "jax":
        import jax

        _, pullback = jax.vjp(layer, x)
        return pullback(g)[0]
    if backend == "torch":
        x = x.detach().requires_grad_(True)
        layer(x).backward(g)
        return x.grad
    raise NotImplementedError(f"no input gradient on {backend}")


def _measure(layer, input_shape, mode, rank, margin):
    rng = np.random.default_rng(0)
    layer.build(input_shape)
    attr = "pointwise_kernel" if hasattr(layer, "pointwise_kernel") else None
    kernels = ki.kernel_fans(layer)
    strides = layer.strides
    strides = (strides,) * rank if isinstance(strides, int) else strides
    strides = tuple(strides) * (rank if len(strides) == 1 else 1)
    results = []
    for seed in range(4):
        for name, variable in (
            ("kernel", getattr(layer, "kernel", None)),
            ("depthwise_kernel", getattr(layer, "depthwise_kernel", None)),
            ("pointwise_kernel", getattr(layer, "pointwise_kernel", None)),
        ):
            if name not in kernels or variable is None:
                continue
            # A separable convolution's depthwise kernel feeds the
            # pointwise one linearly: gain 1 there, He on the last.
            nonlinearity = "relu" if name == (attr or "kernel") else "linear"
            init = ki.He(nonlinearity, mode=mode, fans=kernels[name], seed=seed)
            variable.assign(init(tuple(variable.shape)))
        x = keras.ops.convert_to_tensor(
            rng.standard_normal((8,) + input_shape[1:]), "float32"
        )
        if mode == "fan_in":
            y = keras.ops.convert_to_numpy(layer(x))
            results.append(np.var(_interior(y, rank, margin, strides)))
        else:
            shape = tuple(layer.compute_output_shape(tuple(x.shape)))
            g = keras.ops.convert_to_tensor(
                rng.standard_normal(shape), "float32"
            )
            dx = keras.ops.convert_to_numpy(_input_gradient(layer, x, g))
            results.append(np.var(_interior(dx, rank, margin, strides)))
    return float(np.mean(results))


_CASES = [
    # (layer factory, input shape, rank, margin)
    *[
        (
            lambda s=s, p=p: L.Conv2DTranspose(32, 3, strides=s, padding=p),
            (None, 12, 12, 32),
            2,
            3,
        )
        for s in (1, 2, 3)
        for p in ("same", "valid")
    ],
    (lambda: L.Conv1DTranspose(32, 5, strides=2), (None, 40, 32), 1, 5),
    (
        lambda: L.Conv3DTranspose(16, 3, strides=2, padding="same"),
        (None, 6, 6, 6, 16),
        3,
        2,
    ),
    (
        lambda: L.Conv2DTranspose(32, 4, strides=(2, 1)),
        (None, 12, 12, 32),
        2,
        4,
    ),
    (lambda: L.Conv2D(32, 3, dilation_rate=2), (None, 16, 16, 32), 2, 4),
    (lambda: L.Conv2D(32, 3, strides=2), (None, 24, 24, 32), 2, 2),
    (lambda: L.Conv2D(64, 3, groups=4), (None, 16, 16, 32), 2, 2),
    (lambda: L.Conv1D(32, 5, strides=3), (None, 60, 32), 1, 2),
    (
        lambda: L.DepthwiseConv2D(3, strides=2, depth_multiplier=4),
        (None, 24, 24, 32),
        2,
        2,
    ),
    (lambda: L.DepthwiseConv1D(5, depth_multiplier=2), (None, 40, 32), 1, 4),
    (
        lambda: L.SeparableConv2D(48, 3, depth_multiplier=2),
        (None, 16, 16, 24),
        2,
        2,
    ),
]


@pytest.mark.parametrize(
    "case, mode",
    [(i, "fan_in") for i in range(len(_CASES))]
    # A separable convolution's two kernels in series have no single
    # fan_out rule to test end to end; its depthwise fans are tested alone.
    + [(i, "fan_out") for i in range(len(_CASES) - 1)],
)
def test_true_fans_preserve_measured_variance(case, mode):
    factory, input_shape, rank, margin = _CASES[case]
    layer = factory()
    measured = _measure(layer, input_shape, mode, rank, margin)
    assert measured == pytest.approx(2.0, rel=0.1), (
        type(layer).__name__,
        ki.kernel_fans(layer),
    )


def test_strided_transpose_fans_count_taps_per_output():
    # k=3, s=2: an output position gets 1.5 taps per axis on average.
    layer = _built(L.Conv2DTranspose(8, 3, strides=2), (None, 6, 6, 16))
    assert ki.fans_for_layer(layer) == (round(16 * 1.5 * 1.5), 9 * 8)
    layer = _built(L.Conv1DTranspose(8, 4, strides=4), (None, 6, 16))
    assert ki.fans_for_layer(layer) == (16, 4 * 8)
