"""Spotting and fixing dead ReLUs.

A ReLU unit is *dead* when its pre-activation is negative for every input:
it outputs 0 and passes no gradient, so it never recovers. Here a ReLU MLP
starts with biases of -1 on inputs of unit variance and with Glorot kernels,
which shrink the signal at every ReLU layer: most units begin dead. The
health monitor names the layers and the dead fraction. The fix it suggests,
`kerasinit.pair(model)`, re-draws every kernel with He init (the variance
derived for ReLU) and zeroes the biases; the same training then keeps its
units alive. A LeakyReLU, whose negative side has a slope, cannot die at all.

    python examples/dead_relu.py [--fast]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import kerasinit as ki  # noqa: E402
from kerasinit import datasets  # noqa: E402


def build(activation_layer, seed):
    layers = [keras.Input((16,))]
    for i in range(4):
        layers.append(
            keras.layers.Dense(
                64,
                kernel_initializer=keras.initializers.GlorotUniform(seed + i),
                bias_initializer=keras.initializers.Constant(-1.0),
                name=f"dense_{i}",
            )
        )
        layers.append(activation_layer(name=f"act_{i}"))
    layers.append(keras.layers.Dense(3, name="logits"))
    return keras.Sequential(layers)


def train(model, data, logdir, epochs):
    (x, y), (x_val, y_val) = data
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    # warn=False: this script prints the findings itself.
    monitor = ki.callbacks.HealthMonitor(
        log_dir=logdir, probe=(x_val, y_val), warn=False
    )
    model.fit(
        x, y, epochs=epochs, batch_size=32, callbacks=[monitor], verbose=0
    )
    _, accuracy = model.evaluate(x_val, y_val, verbose=0)
    dead = [f for f in monitor.findings if f.kind == "dead_units"]
    return accuracy, dead


def report(title, accuracy, dead):
    print(f"{title}: held-out accuracy {accuracy:.3f}")
    if not dead:
        print("  no dead units reported")
    for finding in dead:
        print(
            f"  {finding.layer}: {finding.value:.0%} of units dead "
            f"at step {finding.step}"
        )


def main(fast: bool, logdir: str) -> None:
    n = 512 if fast else 4096
    x, y = datasets.spirals(n + 256, turns=0.5, seed=0)
    data = (x[:n], y[:n]), (x[n:], y[n:])
    epochs = 2 if fast else 10

    broken = build(keras.layers.ReLU, seed=0)
    report(
        "ReLU, Glorot kernels, bias -1",
        *train(broken, data, os.path.join(logdir, "broken"), epochs),
    )

    fixed = build(keras.layers.ReLU, seed=0)
    print(ki.pair(fixed, seed=0))
    report(
        "after kerasinit.pair (He kernels, zero biases)",
        *train(fixed, data, os.path.join(logdir, "paired"), epochs),
    )

    leaky = build(lambda name: ki.layers.LeakyReLU(0.1, name=name), seed=0)
    ki.pair(leaky, seed=0)
    report(
        "LeakyReLU(0.1), paired",
        *train(leaky, data, os.path.join(logdir, "leaky"), epochs),
    )
    print(f"compare the three runs:  tensorboard --logdir {logdir}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true")
    parser.add_argument(
        "--logdir", default=os.path.join("runs", "examples", "dead_relu")
    )
    args = parser.parse_args()
    fast = args.fast or os.environ.get("KERASINIT_EXAMPLE_FAST") == "1"
    main(fast, args.logdir)
