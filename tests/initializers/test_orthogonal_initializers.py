import keras
import numpy as np
import pytest

from kerasinit import initializers as ki


def _gram(values, rows, cols):
    w = np.asarray(values, dtype=np.float64).reshape(rows, cols)
    return w.T @ w if rows >= cols else w @ w.T


@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_orthogonal_gram_is_scaled_identity(gain):
    shapes = {
        "square": ((256, 256), 256, 256),
        "tall": ((512, 128), 512, 128),
        "wide": ((128, 512), 128, 512),
        "conv": ((3, 3, 64, 128), 576, 128),
        "conv1d_wide": ((3, 16, 128), 48, 128),
    }
    for name, (shape, rows, cols) in shapes.items():
        values = keras.ops.convert_to_numpy(ki.Orthogonal(gain, seed=1)(shape))
        assert values.shape == shape
        gram = _gram(values, rows, cols)
        error = np.max(np.abs(gram - gain**2 * np.eye(min(rows, cols))))
        assert error < 1e-5 * gain**2, name


def test_orthogonal_rejects_rank_one():
    with pytest.raises(ValueError, match=r"shape=\(7,\)"):
        ki.Orthogonal()((7,))


@pytest.mark.parametrize("shape", [(5, 8, 16), (3, 3, 8, 8), (3, 5, 1, 4, 12)])
def test_delta_orthogonal_centre_tap(shape):
    gain = 1.5
    values = keras.ops.convert_to_numpy(ki.DeltaOrthogonal(gain, seed=2)(shape))
    assert values.shape == shape
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    tap = values[centre].astype(np.float64)
    gram = tap @ tap.T
    assert np.max(np.abs(gram - gain**2 * np.eye(shape[-2]))) < 1e-5 * gain**2
    rest = values.copy()
    rest[centre] = 0.0
    assert np.count_nonzero(rest) == 0


@pytest.mark.parametrize(
    "shape, match",
    [
        ((3, 3, 16, 8), "in_channels <= out_channels"),
        ((4, 4, 8, 8), "odd spatial sizes"),
        ((3, 4, 8, 8), "odd spatial sizes"),
        ((8, 8), "rank 3"),
        ((1, 1, 1, 1, 1, 8), "rank 3"),
    ],
)
def test_delta_orthogonal_errors(shape, match):
    with pytest.raises(ValueError, match=match) as error:
        ki.DeltaOrthogonal()(shape)
    assert f"shape={shape}" in str(error.value)
