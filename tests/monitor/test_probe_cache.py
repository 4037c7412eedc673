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
    return monitor.compiled_probe


def test_second_monitor_on_the_same_model_reuses_the_trace(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = rng.integers(0, 3, size=64)
    model = _model()
    first = HealthMonitor(tmp_path / "a", probe=(x[:32], y[:32]), compile=True)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[first])

    # New weights, new probe values of the same signature: same trace, and
    # the statistics are those of the new weights and batch.
    model.set_weights([w * 0.5 for w in model.get_weights()])
    kernel, bias = model.layers[0].get_weights()
    second = HealthMonitor(tmp_path / "b", probe=(x[32:], y[32:]), compile=True)
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
        tmp_path / "c", probe=(x[:32], y[:32]), histograms=False, compile=True
    )
    model.fit(x, y, epochs=1, verbose=0, callbacks=[third])
    assert _traced(third) is not _traced(first)
    fourth = HealthMonitor(tmp_path / "d", probe=(x[:16], y[:16]), compile=True)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[fourth])
    assert _traced(fourth) is not _traced(first)


def test_another_model_never_shares_a_trace(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 8)).astype("float32")
    y = rng.integers(0, 3, size=32)
    a, b = _model(), _model()
    ma = HealthMonitor(tmp_path / "a", probe=(x, y), compile=True)
    mb = HealthMonitor(tmp_path / "b", probe=(x, y), compile=True)
    # Two steps each: compiling starts after the first.
    a.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[ma])
    b.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[mb])
    assert _traced(ma) is not None
    assert _traced(ma) is not _traced(mb)


def test_the_probe_is_compiled_only_when_enough_events_remain(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = rng.integers(0, 3, size=64)
    probe = (x[:16], y[:16])

    def fit(name, epochs, **kwargs):
        monitor = HealthMonitor(tmp_path / name, probe=probe, **kwargs)
        _model().fit(
            x, y, batch_size=8, epochs=epochs, verbose=0, callbacks=[monitor]
        )
        return monitor

    # Pre-flight and one epoch end short of the break-even point:
    # compiling would cost more than it saves, and every event runs
    # eagerly.
    epochs = HealthMonitor.COMPILE_BREAK_EVEN - 1
    short = fit("short", epochs)
    assert _traced(short) is None and short._event == 1 + epochs
    # Eight steps per epoch, an event every second one.
    many = fit("many", 2, every_n_steps=2)
    assert _traced(many) is not None
    # As many epoch events as the break-even point: compiled after the
    # first step.
    long = fit("long", HealthMonitor.COMPILE_BREAK_EVEN)
    assert _traced(long) is not None
    assert _traced(fit("never", 2, every_n_steps=1, compile=False)) is None
    assert _traced(fit("always", 1, compile=True)) is not None


def test_compiling_waits_for_the_first_training_step(tmp_path):
    """Keras traces its training function in the first step of `fit`;
    compiling the probe at the same time would lengthen that step by the
    whole compile (both are Python work under the interpreter lock)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(48, 8)).astype("float32")
    y = rng.integers(0, 3, size=48)
    monitor = HealthMonitor(tmp_path, probe=(x[:16], y[:16]), compile=True)
    seen = {}

    class Watch(keras.callbacks.Callback):
        # After the monitor in the callback list: sees its state at the
        # same hook.
        def on_train_batch_begin(self, batch, logs=None):
            seen[batch] = monitor.compiled_probe is not None or (
                monitor.probe_compiling
            )

    _model().fit(
        x,
        y,
        batch_size=16,
        epochs=1,
        verbose=0,
        callbacks=[monitor, Watch()],
    )
    # The pre-flight ran eagerly, nothing compiled before the first step;
    # compiling started right after it, and `fit` ended with it done.
    assert seen == {0: False, 1: True, 2: True}
    assert _traced(monitor) is not None
    assert not monitor.probe_compiling


def _uncompiled_probe(seed: int):
    """``(model, probe, x, y)``: a probe built on a fresh model's batch."""
    import tensorflow as tf

    from kerasinit.monitor.probe import Probe
    from kerasinit.monitor.selection import monitored_layers

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(32, 8)).astype("float32")
    y = rng.integers(0, 3, size=32)
    model = _model()
    p = Probe(model, monitored_layers(model))
    # Tensors, as the callback passes them.
    p.build(tf.constant(x), tf.constant(y))
    return model, p, x, y


def test_eager_and_compiled_probes_agree():
    model, p, x, y = _uncompiled_probe(seed=4)
    eager = p()
    p.start_compiling()
    p.wait()
    compiled = p()
    assert p.compiled is not None
    assert compiled.layers.keys() == eager.layers.keys()
    for layer, values in eager.layers.items():
        assert compiled.layers[layer].keys() == values.keys()
        # No previous event at the first call; no update since at the second.
        assert np.isnan(values.pop("update_ratio", np.nan))
        assert compiled.layers[layer].get("update_ratio", 0.0) == 0.0
        for metric, value in values.items():
            np.testing.assert_allclose(
                compiled.layers[layer][metric],
                value,
                rtol=1e-5,
                atol=1e-7,
                err_msg=f"{layer} {metric}",
            )
    np.testing.assert_allclose(compiled.loss, eager.loss, rtol=1e-6)


def test_events_left_follow_the_cadence():
    from kerasinit.monitor.cadence import events_left

    params = {"epochs": 4, "steps": 100}
    every = {"every_n_epochs": 1, "every_n_steps": 10}
    # Before training: 4 epoch events and 40 step events.
    assert (
        events_left(
            params, phase="preflight", epoch=None, steps_done=0, **every
        )
        == 4 + 40
    )
    # At the end of epoch 1 (0-based): two epochs left.
    assert (
        events_left(params, phase="epoch", epoch=1, steps_done=100, **every)
        == 2 + 20
    )
    # Step 30 of epoch 2: the rest of it and epoch 3.
    assert (
        events_left(params, phase="step", epoch=2, steps_done=30, **every)
        == 1 + 7 + 10
    )
    # Without a step cadence only the epochs count.
    assert (
        events_left(
            params,
            phase="preflight",
            epoch=None,
            steps_done=0,
            every_n_epochs=2,
            every_n_steps=None,
        )
        == 2
    )
    unknown = {"epochs": 4, "steps": None}
    assert (
        events_left(
            unknown, phase="preflight", epoch=None, steps_done=0, **every
        )
        is None
    )
    assert (
        events_left({}, phase="preflight", epoch=None, steps_done=0, **every)
        is None
    )


def test_a_monitor_compiles_only_where_enough_events_are_left(tmp_path):
    # The callback's side of the count: its cadence, and its step within
    # the epoch (a training-batch monitor's steps are not probe events).
    monitor = HealthMonitor(tmp_path, probe=np.zeros((2, 8)), every_n_steps=10)
    monitor.params = {"epochs": 1, "steps": 20}
    monitor._epoch_base, monitor._step = 0, 0
    # 1 epoch event + 2 step events: at the break-even of 3.
    assert monitor._compile_wanted("preflight", None)
    monitor._step = 15
    # Half an epoch's step event and nothing after it.
    assert not monitor._compile_wanted("step", 0)


def test_compiled_event_with_nonfinite_values_is_measured_with_masks():
    model, p, x, y = _uncompiled_probe(seed=2)
    p()
    p.start_compiling()
    p.wait()
    assert p.compiled is not None
    # One input feature's weights become infinite: some pre-activations of
    # the first layer are +/-inf, and the compiled statistics, taken without
    # masks, would be NaN.
    kernel = model.layers[0].kernel
    broken = kernel.numpy()
    broken[0, :4] = np.inf
    kernel.assign(broken)
    stats = p().layers["dense"]
    out = np.maximum(x @ broken + model.layers[0].bias.numpy(), 0.0)
    finite = out[np.isfinite(out)]
    assert stats["act_nonfinite"] == out.size - finite.size > 0
    np.testing.assert_allclose(stats["act_mean"], finite.mean(), rtol=1e-5)
    np.testing.assert_allclose(stats["act_max"], finite.max(), rtol=1e-6)
