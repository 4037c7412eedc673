"""Sigmoid saturation, and the initializers that avoid it: Glorot and Kumar.

A sigmoid's derivative y(1-y) is at most 1/4 and nearly 0 once |z| > 4: a
unit whose pre-activation is large is *saturated* and passes almost no
gradient. With N(0, 1) kernels, pre-activations have a standard deviation
of sqrt(fan_in * E[x^2]): 4 in the first layer (16 unit-variance inputs)
and about 5 to 6 after it (64 sigmoid outputs), so most units start
saturated. Glorot keeps
the pre-activation variance near 1; Kumar (2017) derives the variance for
activations differentiable at 0, 12.8/fan_in for the sigmoid, which
compensates for the sigmoid's slope of 1/4 and its mean of 1/2.

The health monitor reports saturated layers; the script trains the same
6-layer sigmoid MLP from the three starts and prints what it found. Which
start reaches the best accuracy within a few epochs also depends on the
optimizer (Adam rescales small gradients); the findings show where each
start is fragile.

    python examples/sigmoid_saturation.py [--fast]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import kerasinit as ki  # noqa: E402
from kerasinit import datasets  # noqa: E402

DEPTH = 6
WIDTH = 64


def build(make_initializer):
    layers = [keras.Input((16,))]
    for i in range(DEPTH):
        layers.append(
            keras.layers.Dense(
                WIDTH,
                activation="sigmoid",
                kernel_initializer=make_initializer(i),
                name=f"dense_{i}",
            )
        )
    layers.append(keras.layers.Dense(3, name="logits"))
    return keras.Sequential(layers)


STARTS = {
    "normal_1": lambda i: keras.initializers.RandomNormal(stddev=1.0, seed=i),
    "glorot": lambda i: ki.initializers.Glorot(seed=i),
    "kumar": lambda i: ki.initializers.Kumar("sigmoid", seed=i),
}


def main(fast: bool, logdir: str) -> None:
    n = 512 if fast else 4096
    x, y = datasets.spirals(n + 256, turns=0.5, seed=0)
    x_train, y_train, x_val, y_val = x[:n], y[:n], x[n:], y[n:]
    for name, make in STARTS.items():
        model = build(make)
        std = float(keras.ops.std(model.get_layer("dense_1").kernel))
        model.compile(
            optimizer=keras.optimizers.Adam(5e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        monitor = ki.callbacks.HealthMonitor(
            log_dir=os.path.join(logdir, name),
            probe=(x_val, y_val),
            warn=False,
        )
        model.fit(
            x_train,
            y_train,
            epochs=2 if fast else 10,
            batch_size=32,
            callbacks=[monitor],
            verbose=0,
        )
        _, accuracy = model.evaluate(x_val, y_val, verbose=0)
        saturated = sorted(
            {f.layer for f in monitor.findings if f.kind == "saturation"}
        )
        vanishing = sorted(
            {
                f.layer
                for f in monitor.findings
                if f.kind == "vanishing_gradients"
            }
        )
        print(
            f"{name:>9}: kernel std {std:.3f} (fan_in {WIDTH}), "
            f"held-out accuracy {accuracy:.3f}"
        )
        print(f"           saturated layers: {', '.join(saturated) or '-'}")
        print(f"           vanishing gradients: {', '.join(vanishing) or '-'}")
    print(f"compare the runs:  tensorboard --logdir {logdir}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true")
    parser.add_argument(
        "--logdir",
        default=os.path.join("runs", "examples", "sigmoid_saturation"),
    )
    args = parser.parse_args()
    fast = args.fast or os.environ.get("KERASINIT_EXAMPLE_FAST") == "1"
    main(fast, args.logdir)
