"""The classic signal-propagation experiment, shared by tests and benchmarks.

A deep fully connected stack without biases or normalization, fed unit
Gaussian inputs: how the standard deviation of the activations evolves with
depth shows whether an initializer suits an activation. Private: it exists
so that ``benchmarks/signal_propagation.py`` and the tests measure the same
thing.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from kerasinit import gains


def activation_fn(name: str, param: float | None = None) -> Callable:
    """The Keras implementation of a table activation, parameter applied."""
    entry = gains.info(name)
    param = entry.param_or_default(param)
    acts = keras.activations
    if entry.name == "leaky_relu":
        return lambda x: acts.leaky_relu(x, negative_slope=param)
    if entry.name == "elu":
        return lambda x: acts.elu(x, alpha=param)
    if entry.name == "gelu":
        return lambda x: acts.gelu(x, approximate=False)
    if entry.name == "gelu_tanh":
        return lambda x: acts.gelu(x, approximate=True)
    if entry.name == "silu":
        return lambda x: x * acts.sigmoid(param * x)
    if entry.name == "linear":
        return lambda x: x
    return acts.get(entry.name)


def forward_stds(
    activation: str,
    make_initializer: Callable[[int], keras.initializers.Initializer],
    *,
    param: float | None = None,
    depth: int = 50,
    width: int = 512,
    batch: int = 256,
    seed: int = 0,
) -> np.ndarray:
    """Standard deviation of each layer's activations in a deep MLP.

    Args:
        activation: a table name.
        make_initializer: ``seed -> initializer``; called once per layer
            with a different seed, so every layer gets its own weights.
        param: the activation's parameter. Defaults to `None`.
        depth: number of layers. Defaults to `50`.
        width: units per layer (and input features). Defaults to `512`.
        batch: number of input examples. Defaults to `256`.
        seed: seed of the input and of the weights. Defaults to `0`.

    Returns:
        ``stds[i]``: standard deviation of the output of layer ``i + 1``
        over the batch and the units, float64 array of length `depth`.
    """
    fn = activation_fn(activation, param)
    x = keras.random.normal((batch, width), seed=seed)
    stds = np.empty(depth)
    for i in range(depth):
        w = make_initializer(seed * 1000 + i + 1)((width, width))
        x = fn(keras.ops.matmul(x, w))
        stds[i] = float(keras.ops.convert_to_numpy(keras.ops.std(x)))
    return stds


def mean_field_stds(
    activation: str,
    weight_variance: float,
    *,
    param: float | None = None,
    depth: int = 50,
    nodes: int = 201,
) -> np.ndarray:
    """The infinite-width prediction of `forward_stds`.

    With ``sigma2 = fan_in * Var(W)``, a layer's pre-activation variance is
    ``q_1 = sigma2 * E[x^2] = sigma2`` for unit inputs, then
    ``q_{l+1} = sigma2 * E[f(sqrt(q_l) z)^2]`` with ``z ~ N(0, 1)``
    (Poole et al., 2016). Expectations are taken by Gauss-Hermite
    quadrature.

    Args:
        activation: a table name.
        weight_variance: ``fan_in * Var(W)``.
        param: the activation's parameter. Defaults to `None`.
        depth: number of layers. Defaults to `50`.
        nodes: quadrature nodes. Defaults to `201`.

    Returns:
        Predicted standard deviation of each layer's output, length `depth`.
    """
    entry = gains.info(activation)
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    q = weight_variance
    stds = np.empty(depth)
    for i in range(depth):
        y = entry(np.sqrt(q) * z, param)
        mean, second = float(w @ y), float(w @ (y * y))
        stds[i] = np.sqrt(max(second - mean * mean, 0.0))
        q = weight_variance * second
    return stds
