"""Diagnosis benchmark: the right verdict, once, at the first event.

Trains textbook healthy setups (each activation with its paired
initializer, a BatchNorm CNN, a pre-LN transformer with SwiGLU, an LSTM, a
residual 50-layer ReLU net...) and classic pathologies (the 50-layer trio,
N(0, 1) kernels, zero kernels, deep sigmoid with Glorot, unnormalized
inputs, a bias shift mid-training, a learning rate far too high, float16
overflow, a chaotic SimpleRNN...) under the real
`kerasinit.callbacks.HealthMonitor`, and compares ``monitor.diagnoses``
with each scenario's expected verdict.

Prints, per scenario, the expected and received verdicts, then false
alarms on healthy setups, the detection rate, right kind, right first
layer, and events until detection (0: at the first event where the
condition exists).

    python benchmarks/diagnosis.py            # every scenario
    python benchmarks/diagnosis.py --fast     # the subset the tests run
    python benchmarks/diagnosis.py --only mlp50_normal
    python benchmarks/diagnosis.py --source batch
                                              # steps measured on the
                                              # training batch, every step

With ``--source batch`` the monitor also measures the training batch at
every step, inside the train step (``source="batch"``, ``every_n_steps=1``),
beside the probe's pre-flight and per-epoch (or per-`every_n_steps`)
events: the finest cadence, where one batch's noise would show as false
alarms. Events until detection still count the probe's events: a verdict
from the training batch counts as on time when it comes no later than the
probe event at which the condition exists.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

# The checkout this script sits in is what it measures, whichever copy of
# the package is installed.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import kerasinit as ki  # noqa: E402
from kerasinit import datasets  # noqa: E402

SEED = 0
FEATURES = 16
CLASSES = 3


@dataclasses.dataclass(frozen=True)
class Setup:
    """What one scenario trains.

    Attributes:
        model: a compiled Keras model.
        x: training inputs.
        y: training labels.
        probe: the monitor's probe ``(x, y)``.
        epochs: training epochs.
        batch_size: training batch size.
        every_n_steps: the monitor's step cadence, or `None` for epochs.
        callbacks: extra callbacks run before the monitor's (a fault
            injected mid-training).
    """

    model: Any
    x: Any
    y: Any
    probe: tuple
    epochs: int = 3
    batch_size: int = 64
    every_n_steps: int | None = None
    callbacks: tuple = ()


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A named setup and the verdict it must get.

    Attributes:
        name: a short identifier for ``--only``.
        build: returns the `Setup`.
        kind: the expected diagnosis kind, or `None` for a healthy setup.
        first_layer: the expected first layer, or `None` where it depends on
            the draw (collapse starts where the examples have aligned).
        fast: part of the ``--fast`` subset.
        learns: for a healthy setup, the training accuracy it must reach.
        onset_event: the index of the first monitor event (0: pre-flight)
            at which the pathological condition exists; events are spaced
            `Setup.every_n_steps` steps apart, or one epoch.
    """

    name: str
    build: Callable[[], Setup]
    kind: str | None = None
    first_layer: str | None = None
    fast: bool = False
    learns: float = 0.0
    onset_event: int = 0


# -- data -------------------------------------------------------------------


def spirals(n=2048):
    x, y = datasets.spirals(
        n_samples=n, n_classes=CLASSES, n_features=FEATURES, seed=SEED
    )
    return x.astype("float32"), y


def sequences(n=1024, steps=12, features=8):
    """Which of two directions a noisy sequence drifts in."""
    rng = np.random.default_rng(SEED)
    y = rng.integers(0, 2, n)
    drift = np.where(y[:, None], 1.0, -1.0) * np.linspace(0, 1, steps)
    x = rng.standard_normal((n, steps, features))
    x[:, :, 0] += 2.0 * drift
    x = (x - x.mean((0, 1))) / x.std((0, 1))
    return x.astype("float32"), y.astype("int32")


def images(n=1024):
    x, y = datasets.shapes(n_samples=n, size=16, seed=SEED)
    return x.astype("float32"), y


# -- model builders -----------------------------------------------------------


def _compile(model, optimizer=None):
    model.compile(
        optimizer=optimizer or keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def mlp(
    depth,
    width,
    init,
    *,
    activation="relu",
    d_in=FEATURES,
    classes=CLASSES,
    separate=False,
    dtype=None,
):
    """A plain MLP with layers ``d0, d1, ...`` (activations ``a0...``)."""
    keras.utils.set_random_seed(SEED)
    inputs = keras.Input((d_in,))
    h = inputs
    for i in range(depth):
        # A fresh initializer per layer, so no two kernels share a draw.
        k = init if isinstance(init, keras.initializers.Initializer) else init()
        if separate:
            h = keras.layers.Dense(
                width, kernel_initializer=k, name=f"d{i}", dtype=dtype
            )(h)
            h = keras.layers.Activation(activation, name=f"a{i}", dtype=dtype)(
                h
            )
        else:
            h = keras.layers.Dense(
                width,
                activation=activation,
                kernel_initializer=k,
                name=f"d{i}",
                dtype=dtype,
            )(h)
    outputs = keras.layers.Dense(classes, name="logits", dtype="float32")(h)
    return keras.Model(inputs, outputs)


def normal(std):
    return lambda: keras.initializers.RandomNormal(0.0, std)


def _mlp_setup(model, *, scale=1.0, optimizer=None, **kw):
    x, y = spirals()
    x = x * scale
    return Setup(_compile(model, optimizer), x, y, (x[:256], y[:256]), **kw)


def residual_mlp(blocks=50, width=64):
    keras.utils.set_random_seed(SEED)
    inputs = keras.Input((FEATURES,))
    h = keras.layers.Dense(width, name="embed")(inputs)
    for i in range(blocks):
        b = keras.layers.Dense(
            width,
            activation="relu",
            kernel_initializer=ki.initializers.He("relu"),
            name=f"b{i}_d0",
        )(h)
        # GPT-2's residual scaling keeps the sum's variance bounded.
        b = keras.layers.Dense(
            width,
            kernel_initializer=ki.initializers.ScaledNormal(
                math.sqrt(1.0 / width), num_layers=blocks
            ),
            name=f"b{i}_out",
        )(b)
        h = keras.layers.Add(name=f"b{i}_add")([h, b])
    outputs = keras.layers.Dense(CLASSES, name="logits")(h)
    return keras.Model(inputs, outputs)


def bn_cnn():
    keras.utils.set_random_seed(SEED)
    inputs = keras.Input((16, 16, 1))
    h = inputs
    for i, filters in enumerate((16, 32)):
        h = keras.layers.Conv2D(
            filters,
            3,
            padding="same",
            use_bias=False,
            kernel_initializer=ki.initializers.He("relu"),
            name=f"c{i}",
        )(h)
        h = keras.layers.BatchNormalization(name=f"bn{i}")(h)
        h = keras.layers.ReLU(name=f"r{i}")(h)
        h = keras.layers.MaxPooling2D(name=f"p{i}")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = keras.layers.Dense(4, name="logits")(h)
    return keras.Model(inputs, outputs)


def cnn_normal():
    keras.utils.set_random_seed(SEED)
    inputs = keras.Input((16, 16, 1))
    h = inputs
    for i, filters in enumerate((32, 32, 32)):
        h = keras.layers.Conv2D(
            filters,
            3,
            padding="same",
            activation="relu",
            kernel_initializer=keras.initializers.RandomNormal(0.0, 1.0),
            name=f"c{i}",
        )(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = keras.layers.Dense(4, name="logits")(h)
    return keras.Model(inputs, outputs)


def transformer(blocks=2, width=32, steps=12):
    keras.utils.set_random_seed(SEED)
    inputs = keras.Input((steps, 8))
    h = keras.layers.Dense(width, name="embed")(inputs)
    for i in range(blocks):
        a = keras.layers.LayerNormalization(name=f"t{i}_ln1")(h)
        a = keras.layers.MultiHeadAttention(4, width // 4, name=f"t{i}_attn")(
            a, a
        )
        h = keras.layers.Add(name=f"t{i}_add1")([h, a])
        m = keras.layers.LayerNormalization(name=f"t{i}_ln2")(h)
        m = ki.layers.SwiGLU(2 * width, name=f"t{i}_swiglu")(m)
        m = keras.layers.Dense(
            width,
            kernel_initializer=ki.initializers.ScaledNormal(
                0.02, num_layers=blocks
            ),
            name=f"t{i}_out",
        )(m)
        h = keras.layers.Add(name=f"t{i}_add2")([h, m])
    h = keras.layers.LayerNormalization(name="ln_f")(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    outputs = keras.layers.Dense(2, name="logits")(h)
    return keras.Model(inputs, outputs)


def recurrent(kind, **kw):
    keras.utils.set_random_seed(SEED)
    inputs = keras.Input((12, 8))
    layer = {"lstm": keras.layers.LSTM, "rnn": keras.layers.SimpleRNN}[kind]
    h = layer(64, name=kind, **kw)(inputs)
    outputs = keras.layers.Dense(2, name="logits")(h)
    return keras.Model(inputs, outputs)


def _sequence_setup(model, **kw):
    x, y = sequences()
    return Setup(_compile(model), x, y, (x[:256], y[:256]), **kw)


class ShiftBias(keras.callbacks.Callback):
    """Sets one layer's bias to a constant at the end of an epoch."""

    def __init__(self, layer, value, epoch):
        super().__init__()
        self.layer, self.value, self.epoch = layer, value, epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            bias = self.model.get_layer(self.layer).bias
            bias.assign(np.full(bias.shape, self.value, bias.dtype))


def _bias_preflight():
    model = mlp(4, 64, ki.initializers.He("relu"), separate=True)
    model.get_layer("d1").bias.assign(np.full(64, -10.0, "float32"))
    return _mlp_setup(model)


def _bias_mid_training():
    model = mlp(4, 64, ki.initializers.He("relu"), separate=True)
    # The shift happens before the event that closes epoch 0 (event 1).
    return _mlp_setup(model, callbacks=(ShiftBias("d1", -10.0, 0),))


def _float16():
    # Inputs up to about 1e5 overflow float16 (largest finite 65504) where
    # the first layer casts them.
    model = mlp(3, 64, ki.initializers.He("relu"), dtype="float16")
    return _mlp_setup(model, scale=3e4)


# -- the scenarios ------------------------------------------------------------


def _healthy(name, build, learns, fast=False):
    return Scenario(name, build, learns=learns, fast=fast)


def _paired(activation, init, **kw):
    # Spirals need about 40 epochs of Adam at 3e-3 to pass 90 % accuracy.
    kw = {"epochs": 40, "optimizer": lambda: keras.optimizers.Adam(3e-3), **kw}

    def build():
        # A fresh optimizer per build: one cannot serve two models.
        args = {**kw, "optimizer": kw["optimizer"]()}
        return _mlp_setup(mlp(4, 128, init, activation=activation), **args)

    return build


HEALTHY = [
    _healthy(
        "relu_he", _paired("relu", lambda: ki.initializers.He()), 0.9, True
    ),
    _healthy(
        "leaky_relu_he",
        _paired("leaky_relu", lambda: ki.initializers.He("leaky_relu", 0.2)),
        0.9,
    ),
    _healthy("selu_lecun", _paired("selu", ki.initializers.LeCun), 0.9),
    _healthy(
        "sigmoid_kumar",
        _paired("sigmoid", lambda: ki.initializers.Kumar("sigmoid")),
        0.8,
        True,
    ),
    _healthy(
        "tanh_glorot",
        _paired("tanh", lambda: ki.initializers.ForActivation("tanh")),
        0.9,
    ),
    _healthy(
        "gelu_he",
        _paired("gelu", lambda: ki.initializers.ForActivation("gelu")),
        0.9,
    ),
    _healthy(
        "swish_he",
        _paired("silu", lambda: ki.initializers.ForActivation("silu")),
        0.9,
    ),
    _healthy(
        "elu_he",
        _paired("elu", lambda: ki.initializers.ForActivation("elu")),
        0.9,
    ),
    _healthy(
        "relu_he_sgd",
        _paired(
            "relu",
            lambda: ki.initializers.He(),
            optimizer=lambda: keras.optimizers.SGD(0.05, momentum=0.9),
        ),
        0.9,
    ),
    _healthy(
        "bn_cnn",
        lambda: Setup(_compile(bn_cnn()), *images(), probe=images(256)),
        0.6,
    ),
    _healthy(
        "transformer_swiglu",
        lambda: _sequence_setup(transformer()),
        0.9,
    ),
    _healthy(
        "lstm_forget_bias",
        lambda: _sequence_setup(recurrent("lstm", unit_forget_bias=True)),
        0.9,
    ),
    _healthy(
        "residual50_relu",
        lambda: _mlp_setup(residual_mlp(), epochs=40),
        0.9,
    ),
]

# The 50-layer trio's conditions exist before the first step; one epoch
# (two events) shows the verdict and that nothing new is said after it, at
# a third of the cost of a 50-layer model's three epochs.
PATHOLOGIES = [
    Scenario(
        "mlp50_normal",
        lambda: _mlp_setup(mlp(50, 64, normal(1.0)), epochs=1),
        "exploding_signal",
        "d0",
        fast=True,
    ),
    Scenario(
        "mlp50_tiny",
        lambda: _mlp_setup(mlp(50, 64, normal(1e-3)), epochs=1),
        "vanishing_signal",
        "d0",
        fast=True,
    ),
    Scenario(
        "mlp50_he",
        lambda: _mlp_setup(mlp(50, 64, lambda: ki.initializers.He()), epochs=1),
        "representation_collapse",
        None,
        fast=True,
    ),
    Scenario(
        "relu_normal",
        lambda: _mlp_setup(mlp(4, 256, normal(1.0))),
        "exploding_signal",
        "d0",
    ),
    Scenario(
        "gelu_normal",
        lambda: _mlp_setup(mlp(4, 256, normal(1.0), activation="gelu")),
        "exploding_signal",
        "d0",
    ),
    Scenario(
        "cnn_normal",
        lambda: Setup(_compile(cnn_normal()), *images(), probe=images(256)),
        "exploding_signal",
        "c0",
    ),
    Scenario(
        "zeros",
        lambda: _mlp_setup(mlp(3, 64, keras.initializers.Zeros())),
        "symmetric_weights",
        "d0",
        fast=True,
    ),
    Scenario(
        "sigmoid_glorot_deep",
        lambda: _mlp_setup(
            mlp(20, 64, keras.initializers.GlorotNormal, activation="sigmoid")
        ),
        "vanishing_gradients",
        "d0",
    ),
    Scenario(
        "tanh_normal",
        lambda: _mlp_setup(mlp(4, 128, normal(1.0), activation="tanh")),
        "saturation",
        "d0",
    ),
    Scenario(
        "sigmoid_normal",
        lambda: _mlp_setup(mlp(4, 128, normal(1.0), activation="sigmoid")),
        "saturation",
        "d0",
    ),
    Scenario(
        "inputs_x1000",
        lambda: _mlp_setup(mlp(4, 64, lambda: ki.initializers.He()), scale=1e3),
        "exploding_signal",
        "d0",
    ),
    Scenario("bias_shift", _bias_preflight, "dead_units", "a1", fast=True),
    # The shift happens before the event that closes epoch 0 (event 1).
    Scenario(
        "bias_shift_mid_training",
        _bias_mid_training,
        "dead_units",
        "a1",
        onset_event=1,
    ),
    Scenario(
        "lr_far_too_high",
        lambda: _mlp_setup(
            mlp(3, 64, lambda: ki.initializers.He()),
            # Adam moves every weight by about the learning rate per step:
            # 0.3 against a He std of 0.18 is more than the weights.
            optimizer=keras.optimizers.Adam(0.3),
            every_n_steps=8,
        ),
        "learning_rate_high",
        "d0",
        onset_event=1,
    ),
    Scenario(
        "lr_far_too_low",
        lambda: _mlp_setup(
            mlp(3, 64, lambda: ki.initializers.He()),
            optimizer=keras.optimizers.SGD(1e-9),
            every_n_steps=8,
        ),
        "learning_rate_low",
        "d0",
        # Barely moving weights cost time, not the model: the verdict waits
        # for a second event by design, so it arrives one event late.
        onset_event=1,
    ),
    Scenario("float16_overflow", _float16, "nonfinite", "d0"),
    Scenario(
        "simple_rnn_normal",
        lambda: _sequence_setup(
            recurrent(
                "rnn",
                recurrent_initializer=keras.initializers.RandomNormal(0, 1),
            )
        ),
        "saturation",
        "rnn",
    ),
]

SCENARIOS = HEALTHY + PATHOLOGIES


# -- running -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Outcome:
    scenario: Scenario
    diagnoses: tuple
    onset_event: int
    detected_event: int | None
    accuracy: float
    seconds: float

    @property
    def first(self):
        return self.diagnoses[0] if self.diagnoses else None

    @property
    def detected(self) -> bool:
        return any(d.kind == self.scenario.kind for d in self.diagnoses)

    @property
    def right_kind(self) -> bool:
        return self.first is not None and self.first.kind == self.scenario.kind

    @property
    def right_layer(self) -> bool:
        if not self.right_kind:
            return False
        want = self.scenario.first_layer
        return want is None or self.first.first_layer == want


def run(scenario: Scenario, log_root: str, source: str = "probe") -> Outcome:
    """Train one scenario under the monitor and collect its verdicts."""
    setup = scenario.build()
    steps_per_epoch = math.ceil(len(setup.x) / setup.batch_size)
    cadence = setup.every_n_steps or steps_per_epoch
    if source == "batch":
        monitor = ki.callbacks.HealthMonitor(
            f"{log_root}/{scenario.name}",
            setup.probe,
            every_n_epochs=1,
            every_n_steps=1,
            source="batch",
            warn=False,
        )
    else:
        monitor = ki.callbacks.HealthMonitor(
            f"{log_root}/{scenario.name}",
            setup.probe,
            every_n_epochs=None if setup.every_n_steps else 1,
            every_n_steps=setup.every_n_steps,
            warn=False,
        )
    start = time.process_time()
    history = setup.model.fit(
        setup.x,
        setup.y,
        epochs=setup.epochs,
        batch_size=setup.batch_size,
        verbose=0,
        callbacks=[*setup.callbacks, monitor],
    )
    seconds = time.process_time() - start
    diagnoses = tuple(monitor.diagnoses)
    detected = None
    if diagnoses:
        # Events sit at step 0 and every `cadence` steps after it.
        detected = math.ceil(min(d.step for d in diagnoses) / cadence)
    accuracy = history.history.get("accuracy", [math.nan])[-1]
    return Outcome(
        scenario,
        diagnoses,
        scenario.onset_event,
        detected,
        float(accuracy),
        seconds,
    )


def _verdicts(diagnoses) -> str:
    if not diagnoses:
        return "nothing"
    return "; ".join(f"{d.kind}@{d.first_layer or '-'}" for d in diagnoses)


def _header() -> None:
    print(f"{'scenario':28} {'expected':34} {'received':40} ev  acc   cpu_s")


def _row(o: Outcome) -> None:
    s = o.scenario
    want = f"{s.kind}@{s.first_layer or '*'}" if s.kind else "nothing"
    lag = (
        "-"
        if o.detected_event is None
        else str(o.detected_event - o.onset_event)
    )
    print(
        f"{s.name:28} {want:34} {_verdicts(o.diagnoses):40} "
        f"{lag:>3} {o.accuracy:5.2f} {o.seconds:6.1f}",
        flush=True,
    )


def report(outcomes: list[Outcome]) -> dict[str, float]:
    """Print the summary of rows already printed; return its numbers."""
    healthy = [o for o in outcomes if o.scenario.kind is None]
    sick = [o for o in outcomes if o.scenario.kind is not None]
    summary = {
        "false_alarms": sum(bool(o.diagnoses) for o in healthy),
        "healthy": len(healthy),
        "healthy_not_learning": sum(
            o.accuracy < o.scenario.learns for o in healthy
        ),
        "pathologies": len(sick),
        "detected": sum(o.detected for o in sick),
        "right_kind": sum(o.right_kind for o in sick),
        "right_first_layer": sum(o.right_layer for o in sick),
    }
    lags = [
        o.detected_event - o.onset_event
        for o in sick
        if o.detected_event is not None
    ]
    # Detected at the first event where the condition exists, not later
    # (the training batch, measured every step, may see it before the
    # probe's first event after its onset).
    summary["on_time"] = sum(lag <= 0 for lag in lags)
    summary["early"] = sum(lag < 0 for lag in lags)
    print()
    print(
        f"false alarms on healthy setups: {summary['false_alarms']} of "
        f"{summary['healthy']} (setups below their accuracy target: "
        f"{summary['healthy_not_learning']})"
    )
    n = max(1, summary["pathologies"])
    for key in ("detected", "right_kind", "right_first_layer", "on_time"):
        print(
            f"{key.replace('_', ' ')}: {summary[key]} of "
            f"{summary['pathologies']} ({100 * summary[key] / n:.0f} %)"
        )
    if summary["early"]:
        print(f"before the probe's first event after onset: {summary['early']}")
    if lags:
        print(
            "events until detection after onset: "
            f"median {np.median(lags):g}, max {max(lags)}"
        )
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="the fast subset")
    parser.add_argument("--only", action="append", help="scenario name")
    parser.add_argument(
        "--source",
        choices=("probe", "batch"),
        default="probe",
        help="also measure the training batch at every step (batch)",
    )
    args = parser.parse_args(argv)
    chosen = SCENARIOS
    if args.fast:
        chosen = [s for s in chosen if s.fast]
    if args.only:
        names = {s.name for s in SCENARIOS}
        unknown = sorted(set(args.only) - names)
        if unknown:
            parser.error(
                f"unknown scenario(s) {unknown}; known: {sorted(names)}"
            )
        chosen = [s for s in chosen if s.name in args.only]
    _header()
    outcomes = []
    with tempfile.TemporaryDirectory() as root:
        for scenario in chosen:
            # Each row as it comes: the whole run takes minutes.
            outcomes.append(run(scenario, root, args.source))
            _row(outcomes[-1])
    summary = report(outcomes)
    ok = (
        summary["false_alarms"] == 0
        and summary["right_first_layer"] == summary["pathologies"]
        and summary["on_time"] == summary["pathologies"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
