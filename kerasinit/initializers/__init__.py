"""Variance-preserving initializers, each derived for an activation.

Every class is registered with Keras as ``"kerasinit>Name"``, so
``kernel_initializer="kerasinit>He"`` works as a string and models using
them save and load in ``safe_mode``. See ``docs/initializers.md``.
"""

from kerasinit.initializers import fans
from kerasinit.initializers.fans import (
    compute_fans,
    fans_for_layer,
    kernel_fans,
)
from kerasinit.initializers.for_activation import (
    ForActivation,
    paired_initializer,
)
from kerasinit.initializers.glorot import Glorot
from kerasinit.initializers.he import He
from kerasinit.initializers.kumar import Kumar
from kerasinit.initializers.lecun import LeCun
from kerasinit.initializers.orthogonal import DeltaOrthogonal, Orthogonal
from kerasinit.initializers.scaled_normal import ScaledNormal

__all__ = [
    "DeltaOrthogonal",
    "ForActivation",
    "Glorot",
    "He",
    "Kumar",
    "LeCun",
    "Orthogonal",
    "ScaledNormal",
    "compute_fans",
    "fans",
    "fans_for_layer",
    "kernel_fans",
    "paired_initializer",
]
