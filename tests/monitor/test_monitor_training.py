"""Findings that appear during training, and layers that cannot be measured."""

import logging

import keras
import numpy as np
import pytest
from monitor_events import read_events, records

from kerasinit.callbacks import HealthMonitor
from kerasinit_tensorboard import schema

SHIFT_EPOCH = 2


class _KillReLUs(keras.callbacks.Callback):
    """Shift two layers' biases far negative at the start of one epoch."""

    def __init__(self, layers, epoch):
        super().__init__()
        self.layers = layers
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            for name in self.layers:
                bias = self.model.get_layer(name).bias
                bias.assign(bias - 1e4)


def test_dying_relu_is_reported_after_it_happens_and_not_before(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 8)).astype("float32")
    y = (x[:, :1] - x[:, 1:2]).astype("float32")
    model = keras.Sequential(
        [keras.Input((8,))]
        + [
            keras.layers.Dense(
                32,
                activation="relu",
                kernel_initializer="he_normal",
                name=f"h{i}",
            )
            for i in range(4)
        ]
        + [keras.layers.Dense(1, name="head")]
    )
    model.compile(keras.optimizers.SGD(1e-3), "mse")
    monitor = HealthMonitor(tmp_path, (x[:64], y[:64]), warn=False)
    model.fit(
        x,
        y,
        batch_size=32,
        epochs=4,
        verbose=0,
        callbacks=[_KillReLUs(["h3"], SHIFT_EPOCH), monitor],
    )
    steps_per_epoch = 4
    shift_end = (SHIFT_EPOCH + 1) * steps_per_epoch
    dead = [f for f in monitor.findings if f.kind == "dead_units"]
    # Reported at the first event after the shift, for exactly that layer,
    # once although it stays dead through the last epoch.
    assert [(f.layer, f.step) for f in dead] == [("h3", shift_end)]
    assert all(f.value == 1.0 for f in dead)
    assert not [f for f in monitor.findings if f.step < shift_end]
    recs = records(tmp_path)
    before = [r for r in recs if r["step"] < shift_end]
    assert before and all(r["findings"] == [] for r in before)
    texts = [
        (step, np.asarray(v).ravel()[0].decode())
        for step, tag, v, _ in read_events(tmp_path)
        if tag == schema.FINDINGS_TEXT_TAG
    ]
    # Text only at the event with new findings.
    assert [step for step, _ in texts] == [shift_end]
    assert "'h3'" in texts[0][1]
    dead_h3 = dict(
        (s, v)
        for s, t, v, _ in read_events(tmp_path)
        if t == "dead_fraction/h3"
    )
    assert dead_h3[shift_end - steps_per_epoch] < 0.25
    assert dead_h3[shift_end] == dead_h3[shift_end + steps_per_epoch] == 1.0


class WithSpare(keras.Model):
    def __init__(self):
        super().__init__()
        self.used = keras.layers.Dense(8, activation="relu", name="used")
        self.spare = keras.layers.Dense(8, activation="relu", name="spare")
        self.head = keras.layers.Dense(1, name="head")
        # Built, so it has weights, but the model never calls it.
        self.spare.build((None, 4))

    def call(self, x):
        return self.head(self.used(x))


@pytest.mark.filterwarnings("ignore:Gradients do not exist:UserWarning")
def test_layer_without_statistics_is_reported_once_and_skipped(
    tmp_path, caplog
):
    model = WithSpare()
    model.compile("sgd", "mse")
    x = np.random.default_rng(1).normal(size=(32, 4)).astype("float32")
    y = x[:, :1]
    monitor = HealthMonitor(tmp_path, (x, y))
    with caplog.at_level(logging.WARNING, logger="kerasinit.monitor"):
        model.fit(x, y, epochs=3, verbose=0, callbacks=[monitor])
    skipped = [r for r in caplog.records if "'spare'" in r.getMessage()]
    assert len(skipped) == 1 and "skipped" in skipped[0].getMessage()
    assert [list(r["stats"]) for r in records(tmp_path)] == [["used"]] * 4
