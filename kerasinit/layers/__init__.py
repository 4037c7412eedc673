"""Activation layers that know their gain, paired initializer and health rule.

Every layer here is a `keras.layers.Layer`, registered for serialization as
``"kerasinit>ClassName"``, and exposes, read from `kerasinit.gains`:

* ``kerasinit_activation``: ``(table_name, param)``;
* ``gain``: the gain of its activation;
* ``activation_info``: the table entry (dead value, saturation rule);
* ``paired_initializer(**kwargs)``: the initializer for the kernel before it.

The gated layers (`SwiGLU`, `GEGLU`, `ReGLU`) carry their own projections
and report their gate's activation; they set ``gated = True``.
"""

from kerasinit.layers.elu import ELU
from kerasinit.layers.gelu import GELU
from kerasinit.layers.glu import GEGLU, ReGLU, SwiGLU
from kerasinit.layers.hard_sigmoid import HardSigmoid
from kerasinit.layers.hard_swish import HardSwish
from kerasinit.layers.leaky_relu import LeakyReLU
from kerasinit.layers.mish import Mish
from kerasinit.layers.prelu import PReLU
from kerasinit.layers.relu import ReLU
from kerasinit.layers.relu6 import ReLU6
from kerasinit.layers.selu import SELU
from kerasinit.layers.sigmoid import Sigmoid
from kerasinit.layers.silu import SiLU, Swish
from kerasinit.layers.softplus import Softplus
from kerasinit.layers.softsign import Softsign
from kerasinit.layers.tanh import Tanh

__all__ = [
    "ELU",
    "GEGLU",
    "GELU",
    "HardSigmoid",
    "HardSwish",
    "LeakyReLU",
    "Mish",
    "PReLU",
    "ReGLU",
    "ReLU",
    "ReLU6",
    "SELU",
    "Sigmoid",
    "SiLU",
    "Softplus",
    "Softsign",
    "SwiGLU",
    "Swish",
    "Tanh",
]
