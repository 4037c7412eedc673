"""Gated linear units with their own projections: SwiGLU, GEGLU, ReGLU."""

from __future__ import annotations

import copy
import numbers
from typing import Any

import keras

from kerasinit.layers._base import ActivationLayer, check_bool


def _check_units(units: Any) -> int:
    if isinstance(units, bool) or not isinstance(units, numbers.Integral):
        raise TypeError(
            f"Expected `units` to be a positive int. Received: units={units!r}"
        )
    if units < 1:
        raise ValueError(
            f"Expected `units` to be a positive int. Received: units={units!r}"
        )
    return int(units)


class _GatedLinearUnit(ActivationLayer):
    """`act(x W_gate + b) * (x W_value + c)`, with both projections built in.

    Two separate kernels rather than one fused `2 * units` kernel: each
    projection then has the fans of an ordinary `Dense(units)` layer, which
    is what variance-scaling initializers are derived for (a fused kernel
    would double `fan_out` for Glorot-style schemes), and the gate kernel can
    take the gate activation's initializer while the value kernel, which
    feeds no non-linearity, takes the linear one.
    """

    gated = True

    def __init__(
        self,
        units: int,
        use_bias: bool = False,
        kernel_initializer: Any = None,
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = _check_units(units)
        self.use_bias = check_bool("use_bias", use_bias)
        self.kernel_initializer = (
            None
            if kernel_initializer is None
            else keras.initializers.get(kernel_initializer)
        )
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.supports_masking = True
        self.gate_kernel = None
        self.value_kernel = None
        self.gate_bias = None
        self.value_bias = None

    def _gate(self, x):
        raise NotImplementedError

    def _kernel_initializers(self):
        if self.kernel_initializer is None:
            from kerasinit.initializers import ForActivation

            name, param = self.kerasinit_activation
            return ForActivation(name, param), ForActivation("linear")
        config = keras.initializers.serialize(self.kernel_initializer)
        seed = config.get("config", {}).get("seed")
        if isinstance(seed, dict):
            # A SeedGenerator advances between the two draws, so the one
            # instance already gives two different matrices.
            return self.kernel_initializer, self.kernel_initializer
        # Keras initializers return the same values on every call, so each
        # kernel gets its own copy, and an integer seed is offset for the
        # value kernel: identical projections would make the unit
        # act(z) * z.
        value_config = copy.deepcopy(config)
        if isinstance(seed, int) and not isinstance(seed, bool):
            value_config["config"]["seed"] = seed + 1
        return (
            keras.initializers.deserialize(config),
            keras.initializers.deserialize(value_config),
        )

    def build(self, input_shape) -> None:
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"{type(self).__name__} needs the last input axis to be "
                f"known. Received: input_shape={input_shape}"
            )
        gate_init, value_init = self._kernel_initializers()
        for branch, init in (("gate", gate_init), ("value", value_init)):
            kernel = self.add_weight(
                shape=(input_dim, self.units),
                name=f"{branch}_kernel",
                initializer=init,
                regularizer=self.kernel_regularizer,
                constraint=self.kernel_constraint,
            )
            setattr(self, f"{branch}_kernel", kernel)
            if self.use_bias:
                bias = self.add_weight(
                    shape=(self.units,),
                    name=f"{branch}_bias",
                    initializer=self.bias_initializer,
                    regularizer=self.bias_regularizer,
                    constraint=self.bias_constraint,
                )
                setattr(self, f"{branch}_bias", bias)

    def call(self, inputs):
        gate = keras.ops.matmul(inputs, self.gate_kernel)
        value = keras.ops.matmul(inputs, self.value_kernel)
        if self.use_bias:
            gate = gate + self.gate_bias
            value = value + self.value_bias
        return self._gate(gate) * value

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "use_bias": self.use_bias,
                "kernel_initializer": (
                    None
                    if self.kernel_initializer is None
                    else keras.initializers.serialize(self.kernel_initializer)
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
                "kernel_regularizer": keras.regularizers.serialize(
                    self.kernel_regularizer
                ),
                "bias_regularizer": keras.regularizers.serialize(
                    self.bias_regularizer
                ),
                "kernel_constraint": keras.constraints.serialize(
                    self.kernel_constraint
                ),
                "bias_constraint": keras.constraints.serialize(
                    self.bias_constraint
                ),
            }
        )
        return config


_GLU_ARGS = """
    Args:
        units: Positive int, the output width (of each projection).
        use_bias: Whether the projections add biases `b` and `c`; modern
            transformer blocks leave them out. Defaults to `False`.
        kernel_initializer: Initializer of both kernels (an integer seed
            is incremented by one for the value kernel, so the two
            projections differ). `None` gives the gate kernel the paired
            initializer of the gate activation
            (`kerasinit.initializers.ForActivation`) and the value kernel
            the linear one. Defaults to `None`.
        bias_initializer: Initializer of both biases. Defaults to `"zeros"`.
        kernel_regularizer: Regularizer of both kernels. Defaults to `None`.
        bias_regularizer: Regularizer of both biases. Defaults to `None`.
        kernel_constraint: Constraint on both kernels. Defaults to `None`.
        bias_constraint: Constraint on both biases. Defaults to `None`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.
"""


@keras.saving.register_keras_serializable(package="kerasinit")
class SwiGLU(_GatedLinearUnit):
    __doc__ = (
        """Swish-gated linear unit: `silu(x W + b) * (x V + c)`.

    The feed-forward block of LLaMA, PaLM and most current language
    models: it trains to lower perplexity than a ReLU or GELU block of the
    same parameter count. The layer owns both projections; follow it with a
    `Dense` output projection to make the usual FFN.

    Formula:

    ```
    f(x) = silu(x @ W_gate + b) * (x @ W_value + c)
    silu(z) = z * sigmoid(z)
    ```

    Reference:

    - [Shazeer, 2020](https://arxiv.org/abs/2002.05202)
    - [Dauphin et al., 2017](https://arxiv.org/abs/1612.08083)
"""
        + _GLU_ARGS
        + """
    Example:

    >>> ffn = keras.Sequential([
    ...     kerasinit.layers.SwiGLU(1024),
    ...     keras.layers.Dense(256, use_bias=False),
    ... ])
    """
    )

    _activation_name = "silu"

    def _gate(self, x):
        return keras.activations.silu(x)


@keras.saving.register_keras_serializable(package="kerasinit")
class GEGLU(_GatedLinearUnit):
    __doc__ = (
        """GELU-gated linear unit: `gelu(x W + b) * (x V + c)`.

    The gated feed-forward block of T5 v1.1 and of several diffusion
    models. The gate uses the exact GELU unless `approximate=True`.

    Formula:

    ```
    f(x) = gelu(x @ W_gate + b) * (x @ W_value + c)
    gelu(z) = z * Phi(z)
    ```

    Reference:

    - [Shazeer, 2020](https://arxiv.org/abs/2002.05202)
"""
        + _GLU_ARGS.replace(
            "        **kwargs",
            "        approximate: Whether the gate uses the tanh approximation"
            "\n            of GELU. Defaults to `False`.\n        **kwargs",
        )
        + """
    Example:

    >>> kerasinit.layers.GEGLU(64)(np.ones((2, 16))).shape  # (2, 64)
    """
    )

    def __init__(
        self,
        units: int,
        use_bias: bool = False,
        kernel_initializer: Any = None,
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        approximate: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            units,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
            **kwargs,
        )
        self.approximate = check_bool("approximate", approximate)

    @property
    def _activation_name(self) -> str:
        return "gelu_tanh" if self.approximate else "gelu"

    def _gate(self, x):
        return keras.activations.gelu(x, approximate=self.approximate)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"approximate": self.approximate})
        return config


@keras.saving.register_keras_serializable(package="kerasinit")
class ReGLU(_GatedLinearUnit):
    __doc__ = (
        """ReLU-gated linear unit: `relu(x W + b) * (x V + c)`.

    The cheapest member of the GLU family; a gate unit whose
    pre-activation is negative for every input is dead, as in a ReLU layer.

    Formula:

    ```
    f(x) = relu(x @ W_gate + b) * (x @ W_value + c)
    ```

    Reference:

    - [Shazeer, 2020](https://arxiv.org/abs/2002.05202)
"""
        + _GLU_ARGS
        + """
    Example:

    >>> kerasinit.layers.ReGLU(64)(np.ones((2, 16))).shape  # (2, 64)
    """
    )

    _activation_name = "relu"

    def _gate(self, x):
        return keras.activations.relu(x)
