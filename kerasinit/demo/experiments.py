"""What the demo runs: its sizes, its experiments, their models and inits."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "INIT_LABELS",
    "DemoConfig",
    "Experiment",
    "Split",
    "experiments",
    "make_initializer",
    "monitored_layers",
    "run_name",
]

#: Activations of the ``mlp`` grid, as Keras activation names.
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "selu", "gelu")
#: Initializers of the ``mlp`` grid, in display order.
INITIALIZERS = (
    "zeros",
    "normal_1",
    "normal_0.001",
    "glorot",
    "he",
    "lecun_kumar",
    "lsuv",
)
#: How the summary table names each initializer.
INIT_LABELS = {
    "zeros": "zeros",
    "normal_1": "N(0,1)",
    "normal_0.001": "N(0,.001)",
    "glorot": "Glorot",
    "he": "He",
    "lecun_kumar": "LeCun/Kumar",
    "lsuv": "LSUV",
}
# keras.activations.leaky_relu's slope; He must be told it (the Keras layer
# default is 0.3, PyTorch's 0.01: never assume one).
_LEAKY_SLOPE = 0.2


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Sizes of one demo run; `quick` and full differ only in these.

    Attributes:
        epochs: epochs per run.
        n_train: training examples per experiment.
        n_val: held-out examples the summary's accuracy and loss come from.
        n_probe: examples in the health monitor's probe batch.
        width: units per hidden layer of the MLPs.
        depth: hidden layers of the ``mlp`` grid.
        deep_depth: hidden layers of ``mlp50``.
        deep_width: units per hidden layer of ``mlp50``.
        image_size: side of the ``cnn_bn`` images.
        batch_size: examples per training step.
        histograms: whether the monitor writes histograms.
        monitor_every: epochs between the monitor's logging events (it
            always also logs once before training).
        deep_monitor_stride: the monitor watches every n-th hidden layer of
            ``mlp50`` (and its last); its cost grows with the layer count.
        curves: whether Keras's TensorBoard callback also writes loss and
            accuracy curves under ``<run>/train/``.
        lr_factor: multiplies every experiment's learning rate; larger
            batches take larger steps.
    """

    epochs: int
    n_train: int
    n_val: int
    n_probe: int
    width: int
    depth: int
    deep_depth: int
    deep_width: int
    image_size: int
    batch_size: int
    histograms: bool = True
    monitor_every: int = 1
    deep_monitor_stride: int = 1
    curves: bool = True
    lr_factor: float = 1.0

    @classmethod
    def full(cls, epochs: int | None = None) -> DemoConfig:
        return cls(
            epochs=epochs or 6,
            n_train=2048,
            n_val=512,
            n_probe=256,
            width=64,
            depth=5,
            deep_depth=50,
            deep_width=64,
            image_size=16,
            batch_size=64,
            lr_factor=2.0,
            monitor_every=2,
            deep_monitor_stride=5,
        )

    @classmethod
    def quick(cls, epochs: int | None = None) -> DemoConfig:
        return cls(
            epochs=epochs or 4,
            n_train=1024,
            n_val=256,
            n_probe=128,
            width=32,
            depth=4,
            deep_depth=50,
            deep_width=32,
            image_size=12,
            batch_size=64,
            lr_factor=2.0,
            # Each logging event, each monitored layer and each extra writer
            # costs about as much as an epoch of these small runs.
            histograms=False,
            monitor_every=epochs or 4,
            deep_monitor_stride=5,
            curves=False,
        )


@dataclasses.dataclass(frozen=True)
class Split:
    """One experiment's data: training, held-out, and the monitor's probe.

    Attributes:
        x: training inputs.
        y: training labels.
        x_val: held-out inputs the summary's accuracy and loss come from.
        y_val: held-out labels.
        x_probe: the health monitor's probe inputs (from the held-out set).
        y_probe: the probe's labels.
    """

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_probe: np.ndarray
    y_probe: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray, config: DemoConfig) -> Split:
        """The first `n_train` examples train; the probe is held out."""
        n = config.n_train
        return cls(
            x=x[:n],
            y=y[:n],
            x_val=x[n:],
            y_val=y[n:],
            x_probe=x[n:][: config.n_probe],
            y_probe=y[n:][: config.n_probe],
        )


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One architecture, trained once per initializer.

    The runs of an experiment share one compiled model, re-initialized for
    each run (see `kerasinit.demo.running.Reinit`).

    Attributes:
        name: ``"mlp"``, ``"mlp50"`` or ``"cnn_bn"``.
        activation: the hidden layers' activation.
        build: builds the (uncompiled) model.
        learning_rate: Adam's learning rate, before `DemoConfig.lr_factor`.
        initializers: keys of `INITIALIZERS` to run, in order.
        data: the data every run of the experiment trains on.
        layers: layers per run, which sets its cost.
    """

    name: str
    activation: str
    build: Callable[[], Any]
    learning_rate: float
    initializers: tuple[str, ...]
    data: Split
    layers: int

    @property
    def cost(self) -> int:
        """Relative cost of all its runs, to hand the largest out first."""
        return len(self.initializers) * self.layers

    def run_names(self) -> list[str]:
        """The run directory name of each initializer, in order."""
        return [run_name(self, init) for init in self.initializers]


def run_name(experiment: Experiment, initializer: str) -> str:
    """The directory of one run under ``logdir/<experiment>/``."""
    if experiment.name == "cnn_bn":
        return initializer
    return f"{experiment.activation}-{initializer}"


def make_initializer(key: str, activation: str, seed: int):
    """The initializer `key` for a kernel that feeds `activation`.

    Raises:
        ValueError: `key` is not in `INITIALIZERS`.
    """
    import keras

    from kerasinit import initializers as ki_init

    if key == "zeros":
        return keras.initializers.Zeros()
    if key == "normal_1":
        return keras.initializers.RandomNormal(stddev=1.0, seed=seed)
    if key == "normal_0.001":
        return keras.initializers.RandomNormal(stddev=0.001, seed=seed)
    if key == "glorot":
        return ki_init.Glorot(seed=seed)
    if key == "he":
        slope = _LEAKY_SLOPE if activation == "leaky_relu" else None
        return ki_init.He(activation, negative_slope=slope, seed=seed)
    if key in ("lecun_kumar", "lsuv"):
        # Kumar's rule needs an activation differentiable at 0; for the
        # kinked ones (ReLU family, SELU) LeCun is the classic choice.
        # LSUV starts from the same draw and then rescales on data.
        try:
            return ki_init.Kumar(activation, seed=seed)
        except ValueError:
            return ki_init.LeCun(seed=seed)
    raise ValueError(
        f"Expected `initializer` to be one of {INITIALIZERS}. "
        f"Received: initializer={key!r}"
    )


def _mlp(n_features, n_classes, width, depth, activation, name):
    import keras

    layers = [keras.Input((n_features,))]
    for i in range(depth):
        layers.append(
            keras.layers.Dense(width, activation=activation, name=f"dense_{i}")
        )
    layers.append(keras.layers.Dense(n_classes, name="logits"))
    return keras.Sequential(layers, name=name)


def _cnn(size, n_classes, name):
    import keras

    L = keras.layers
    # momentum 0.9 so the moving statistics used at evaluation catch up
    # within the few hundred steps of a demo run.
    return keras.Sequential(
        [
            keras.Input((size, size, 1)),
            L.Conv2D(8, 3, padding="same", use_bias=False, name="conv_0"),
            L.BatchNormalization(momentum=0.9, name="bn_0"),
            L.ReLU(name="relu_0"),
            L.MaxPooling2D(name="pool_0"),
            L.Conv2D(16, 3, padding="same", use_bias=False, name="conv_1"),
            L.BatchNormalization(momentum=0.9, name="bn_1"),
            L.ReLU(name="relu_1"),
            L.GlobalAveragePooling2D(name="gap"),
            L.Dense(n_classes, name="logits"),
        ],
        name=name,
    )


def monitored_layers(experiment: Experiment, config: DemoConfig):
    """The layers the monitor watches, or `None` for all of them."""
    if experiment.name != "mlp50" or config.deep_monitor_stride == 1:
        return None
    last = config.deep_depth - 1
    names = {
        f"dense_{i}"
        for i in range(0, config.deep_depth, config.deep_monitor_stride)
    } | {f"dense_{last}"}
    return sorted(names)


def experiments(config: DemoConfig, seed: int) -> list[Experiment]:
    """Every experiment of the demo, in the summary's order, with its data.

    The data is generated here from `seed`, so every process that calls
    this with the same arguments gets the same experiments.
    """
    from kerasinit import datasets

    n = config.n_train + config.n_val
    # Half a turn per arm: a well-initialized MLP separates the arms within
    # a few epochs, one that does not train stays at chance.
    x, y = datasets.spirals(n, n_classes=3, n_features=16, turns=0.5, seed=seed)
    spiral = Split.of(x, y, config)
    plan = [
        Experiment(
            name="mlp",
            activation=activation,
            build=lambda a=activation: _mlp(
                16, 3, config.width, config.depth, a, f"mlp_{a}"
            ),
            learning_rate=5e-3,
            initializers=INITIALIZERS,
            data=spiral,
            layers=config.depth,
        )
        for activation in ACTIVATIONS
    ]
    deep_inits = ("normal_1", "glorot", "he", "lsuv")
    plan.append(
        Experiment(
            name="mlp50",
            activation="relu",
            build=lambda: _mlp(
                16,
                3,
                config.deep_width,
                config.deep_depth,
                "relu",
                "mlp50_relu",
            ),
            learning_rate=1e-3,
            initializers=deep_inits,
            data=spiral,
            layers=config.deep_depth,
        )
    )
    xi, yi = datasets.shapes(n, size=config.image_size, seed=seed)
    cnn_inits = ("normal_1", "normal_0.001", "glorot", "he")
    plan.append(
        Experiment(
            name="cnn_bn",
            activation="relu",
            build=lambda: _cnn(config.image_size, 4, "cnn_bn"),
            learning_rate=1e-2,
            initializers=cnn_inits,
            data=Split.of(xi, yi, config),
            layers=10,
        )
    )
    return plan
