"""The traced probe is reused across monitors of one model, and only then."""

import keras
import numpy as np
from monitor_events import records

from kerasinit.callbacks import HealthMonitor


def _model():
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(16, activation="tanh"),
            keras.layers.Dense(3),
        ]
    )
    model.compile(
        "sgd",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _traced(monitor):
    return monitor._probe._concrete


def test_second_monitor_on_the_same_model_reuses_the_trace(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = rng.integers(0, 3, size=64)
    model = _model()
    first = HealthMonitor(tmp_path / "a", probe=(x[:32], y[:32]))
    model.fit(x, y, epochs=1, verbose=0, callbacks=[first])

    # New weights, new probe values of the same signature: same trace, and
    # the statistics are those of the new weights and batch.
    model.set_weights([w * 0.5 for w in model.get_weights()])
    kernel, bias = model.layers[0].get_weights()
    second = HealthMonitor(tmp_path / "b", probe=(x[32:], y[32:]))
    model.fit(x, y, epochs=1, verbose=0, callbacks=[second])
    assert _traced(second) is _traced(first)
    # The reused trace measures the current weights on the new batch: the
    # pre-flight mean of the first layer equals a NumPy forward pass.
    expected = np.maximum(x[32:] @ kernel + bias, 0.0).mean()
    preflight = records(tmp_path / "b")[0]
    measured = preflight["stats"]["dense"]["act_mean"]
    np.testing.assert_allclose(measured, expected, rtol=1e-5)

    # A setting baked into the graph, or another batch shape, traces anew.
    third = HealthMonitor(
        tmp_path / "c", probe=(x[:32], y[:32]), histograms=False
    )
    model.fit(x, y, epochs=1, verbose=0, callbacks=[third])
    assert _traced(third) is not _traced(first)
    fourth = HealthMonitor(tmp_path / "d", probe=(x[:16], y[:16]))
    model.fit(x, y, epochs=1, verbose=0, callbacks=[fourth])
    assert _traced(fourth) is not _traced(first)


def test_another_model_never_shares_a_trace(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 8)).astype("float32")
    y = rng.integers(0, 3, size=32)
    a, b = _model(), _model()
    ma = HealthMonitor(tmp_path / "a", probe=(x, y))
    mb = HealthMonitor(tmp_path / "b", probe=(x, y))
    a.fit(x, y, epochs=1, verbose=0, callbacks=[ma])
    b.fit(x, y, epochs=1, verbose=0, callbacks=[mb])
    assert _traced(ma) is not _traced(mb)


def test_compiled_event_with_nonfinite_values_is_measured_with_masks():
    import tensorflow as tf

    from kerasinit.monitor import probe as probe_lib

    rng = np.random.default_rng(2)
    x = rng.normal(size=(32, 8)).astype("float32")
    y = rng.integers(0, 3, size=32)
    model = _model()
    p = probe_lib.Probe(model, probe_lib.monitored_layers(model))
    # Tensors, as the callback passes them.
    p.build(tf.constant(x), tf.constant(y))
    p()
    p.wait()
    assert p._concrete is not None
    # One input feature's weights become infinite: some pre-activations of
    # the first layer are +/-inf, and the compiled statistics, taken without
    # masks, would be NaN.
    kernel = model.layers[0].kernel
    broken = kernel.numpy()
    broken[0, :4] = np.inf
    kernel.assign(broken)
    stats = p()["layers"]["dense"]
    out = np.maximum(x @ broken + model.layers[0].bias.numpy(), 0.0)
    finite = out[np.isfinite(out)]
    assert stats["act_nonfinite"] == out.size - finite.size > 0
    np.testing.assert_allclose(stats["act_mean"], finite.mean(), rtol=1e-5)
    np.testing.assert_allclose(stats["act_max"], finite.max(), rtol=1e-6)
