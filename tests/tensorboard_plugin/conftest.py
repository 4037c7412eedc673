"""Log directories from real short training runs with `HealthMonitor`.

Trained once per test session and shared by the route and browser tests:
training dominates this directory's runtime.

* ``broken``: a 12-layer ReLU MLP with N(0, 0.001) kernels. The signal and
  its gradients shrink by orders of magnitude per layer, so the monitor
  finds vanishing gradients from the first layer on, and dead units.
* ``healthy<img src=x onerror=alert(1)>``: the same MLP with He init; the
  run directory carries a hostile string (TensorFlow refuses ``<``, ``=``,
  spaces and parentheses in the names of layers that train, so the
  directory is where such a string can reach the dashboard from a real run).
* ``schema-hostile``: written to the schema directly, with a layer named
  ``<img src=x onerror=alert(1)>``.

`dash_runs` is the dashboard's own log directory: four 50-layer MLPs trained
with `model.fit` and measured by `_training` (the He-initialized healthy
one, the vanishing one with diagnoses, the saturating one with findings
only, the one that turns non-finite), and the hostile-name runs.
"""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np
import pytest

import kerasinit as ki
from kerasinit_tensorboard import schema

from ._events import finding, write_run
from ._training import Run, train_and_write

HOSTILE = "<img src=x onerror=alert(1)>"
DEPTH = 12
WIDTH = 32


@dataclasses.dataclass
class RealRuns:
    logdir: str
    broken: str
    healthy: str
    hostile: str
    layers: list[str]
    events: int
    broken_findings: list
    healthy_findings: list


def _mlp(kernel_initializer) -> keras.Model:
    layers = [keras.Input((16,))]
    for i in range(DEPTH):
        layers.append(
            keras.layers.Dense(
                WIDTH,
                activation="relu",
                kernel_initializer=kernel_initializer,
                name=f"dense_{i}",
            )
        )
    layers.append(keras.layers.Dense(4, name="logits"))
    return keras.Sequential(layers)


def _train(run_dir: str, kernel_initializer) -> ki.callbacks.HealthMonitor:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 16)).astype("float32")
    y = rng.integers(0, 4, size=512)
    model = _mlp(kernel_initializer)
    model.compile(
        keras.optimizers.SGD(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    monitor = ki.callbacks.HealthMonitor(
        run_dir, probe=(x[:128], y[:128]), every_n_steps=2
    )
    model.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=[monitor])
    return monitor


@pytest.fixture(scope="package")
def real_runs(tmp_path_factory) -> RealRuns:
    root = str(tmp_path_factory.mktemp("tb"))
    broken_dir = os.path.join(root, "broken")
    healthy_dir = os.path.join(root, f"healthy{HOSTILE}")
    with pytest.warns(ki.callbacks.HealthWarning):
        broken = _train(
            broken_dir, keras.initializers.RandomNormal(0.0, 0.001, seed=1)
        )
    healthy = _train(healthy_dir, keras.initializers.HeNormal(seed=1))
    write_run(
        os.path.join(root, "schema-hostile"),
        ["dense", HOSTILE],
        [0, 1, 2],
        lambda event, layer: {
            "act_std": 1.0,
            "dead_fraction": 0.5 if layer == HOSTILE else 0.0,
            "saturation_fraction": 0.0,
            "grad_norm": 1.0,
        },
        findings_at={1: [finding("dead_units", HOSTILE, 1)]},
    )
    return RealRuns(
        logdir=root,
        broken=f"broken/{schema.RUN_SUBDIR}",
        healthy=f"healthy{HOSTILE}/{schema.RUN_SUBDIR}",
        hostile=f"schema-hostile/{schema.RUN_SUBDIR}",
        layers=[f"dense_{i}" for i in range(DEPTH)],
        # 8 steps, logged every 2, plus the pre-flight event at step 0.
        events=1 + 512 // 64 // 2,
        broken_findings=list(broken.findings),
        healthy_findings=list(healthy.findings),
    )


DASH_DEPTH = 50


@dataclasses.dataclass
class DashRuns:
    logdir: str
    healthy: Run
    vanishing: Run
    saturating: Run
    nonfinite: Run
    hostile: str  # a run with a layer named HOSTILE
    hostile_dir: str  # a run whose directory is named HOSTILE


@pytest.fixture(scope="package")
def dash_runs(tmp_path_factory) -> DashRuns:
    root = str(tmp_path_factory.mktemp("dash"))

    def train(name, activation, std, **kwargs):
        initializer = (
            keras.initializers.HeNormal(seed=1)
            if std is None
            else keras.initializers.RandomNormal(0.0, std, seed=1)
        )
        return train_and_write(
            os.path.join(root, name),
            depth=DASH_DEPTH,
            activation=activation,
            initializer=initializer,
            **kwargs,
        )

    runs = DashRuns(
        logdir=root,
        healthy=train("relu_he", "relu", None),
        vanishing=train("relu_normal0.001", "relu", 0.001, diagnose=True),
        saturating=train("tanh_normal1", "tanh", 1.0),
        nonfinite=train("relu_normal1", "relu", 1.0),
        hostile=f"schema-hostile/{schema.RUN_SUBDIR}",
        hostile_dir=f"{HOSTILE}/{schema.RUN_SUBDIR}",
    )
    write_run(
        os.path.join(root, "schema-hostile"),
        ["dense", HOSTILE],
        [0, 1, 2],
        lambda event, layer: {
            "act_std": 1.0,
            "dead_fraction": 0.5 if layer == HOSTILE else 0.0,
            "saturation_fraction": 0.0,
            "grad_norm": 1.0,
        },
        findings_at={1: [finding("dead_units", HOSTILE, 1)]},
    )
    write_run(
        os.path.join(root, HOSTILE),
        ["dense"],
        [0, 1],
        lambda event, layer: {"act_std": 1.0, "grad_norm": 1.0},
    )
    return runs
