"""kerasinit: initializers, activations and training health for Keras 3.

Public API::

    kerasinit.initializers   He, Glorot, LeCun, Kumar, Orthogonal, ...
    kerasinit.layers         ReLU, LeakyReLU, ..., SwiGLU, GEGLU, ReGLU
    kerasinit.callbacks      HealthMonitor, Thresholds, Finding, warnings
    kerasinit.gain           the gain of an activation
    kerasinit.pair           re-initialize every kernel for its activation
    kerasinit.check          find init/activation mismatches, change nothing
    kerasinit.lsuv           layer-sequential unit-variance init
"""

__version__ = "0.1.0"

from kerasinit import callbacks, checking, gains, initializers, layers
from kerasinit.checking import check
from kerasinit.findings import Finding
from kerasinit.gains import gain
from kerasinit.lsuv import lsuv
from kerasinit.pairing import pair

__all__ = [
    "Finding",
    "callbacks",
    "check",
    "checking",
    "gain",
    "gains",
    "initializers",
    "layers",
    "lsuv",
    "pair",
    "__version__",
]
