"""`kerasinit demo`: the classic initialization experiments, monitored.

Three experiments, each a set of runs that differ only in how the weights
start, all trained with `kerasinit.callbacks.HealthMonitor` on generated data
(`kerasinit.datasets`), so that nothing is downloaded:

* ``mlp``: an MLP on `kerasinit.datasets.spirals` for every activation in
  `ACTIVATIONS` x every initializer in `INITIALIZERS` (the grid of the
  initialization papers: zeros never breaks symmetry, N(0, 1) saturates
  sigmoid/tanh and blows up ReLU, N(0, 0.001) starves the signal, the
  variance-preserving schemes train).
* ``mlp50``: a 50-layer ReLU MLP, where only a scheme that preserves the
  variance through depth (He, LSUV) keeps a signal at the top.
* ``cnn_bn``: a small CNN with BatchNormalization on
  `kerasinit.datasets.shapes`, where normalization makes the scale of the
  initial weights matter far less.

Every run lands in ``logdir/<experiment>/<run>/``: the monitor's records
under ``kerasinit/`` and Keras's loss curves under ``train/``, so TensorBoard
shows each as its own run.

The package's modules, in the order data flows through them:
`experiments` (what is run: `Experiment`, `DemoConfig`, the model builders
and initializers), `running` (training, re-initialization and the worker
pool: `RunResult`, `run_demo`), `report` (the summary tables).
"""

from kerasinit.demo.experiments import (
    ACTIVATIONS,
    INITIALIZERS,
    DemoConfig,
    Experiment,
)
from kerasinit.demo.running import RunResult, default_jobs, run_demo

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "DemoConfig",
    "Experiment",
    "RunResult",
    "default_jobs",
    "run_demo",
]
