"""LSUV: data-driven initialization of a deep CNN without normalization.

Layer-sequential unit-variance init (Mishkin & Matas, 2015) starts every
kernel orthonormal, then walks the layers in order and rescales each kernel
until its output variance on a batch of real data is 1. It needs no
derivation for the architecture, so it fits where no gain formula does.

The script builds an 8-conv-layer CNN with no BatchNormalization on the
generated shapes data, initialized with the small N(0, 0.01) that was
common before variance-preserving schemes. The signal dies out through the
stack and the network barely trains. `kerasinit.lsuv(model, x)` rescales it
on one batch and prints each layer's output variance before and after; the
same training then works. Both runs are monitored.

    python examples/lsuv_cnn.py [--fast]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import kerasinit as ki  # noqa: E402
from kerasinit import datasets  # noqa: E402


def build(size, depth=8):
    small = keras.initializers.RandomNormal(stddev=0.01, seed=0)
    layers = [keras.Input((size, size, 1))]
    for i in range(depth):
        layers.append(
            keras.layers.Conv2D(
                16,
                3,
                padding="same",
                activation="relu",
                kernel_initializer=small,
                name=f"conv_{i}",
            )
        )
        if i == depth // 2:
            layers.append(keras.layers.MaxPooling2D(name="pool"))
    layers += [
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(4, kernel_initializer=small, name="logits"),
    ]
    return keras.Sequential(layers)


def train(model, data, logdir, epochs):
    (x, y), (x_val, y_val) = data
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    monitor = ki.callbacks.HealthMonitor(
        log_dir=logdir, probe=(x_val[:128], y_val[:128]), warn=False
    )
    model.fit(
        x, y, epochs=epochs, batch_size=32, callbacks=[monitor], verbose=0
    )
    _, accuracy = model.evaluate(x_val, y_val, verbose=0)
    kinds = sorted({f.kind for f in monitor.findings})
    return accuracy, kinds


def main(fast: bool, logdir: str) -> None:
    size = 12 if fast else 16
    n = 256 if fast else 2048
    x, y = datasets.shapes(n + 256, size=size, seed=0)
    data = (x[:n], y[:n]), (x[n:], y[n:])
    epochs = 2 if fast else 10

    accuracy, kinds = train(
        build(size), data, os.path.join(logdir, "normal_0.01"), epochs
    )
    print(
        f"N(0, 0.01): held-out accuracy {accuracy:.3f}, "
        f"findings: {', '.join(kinds) or '-'}"
    )

    model = build(size)
    report = ki.lsuv(model, x[:256], tol=0.1, max_iter=10, seed=0)
    print(report)
    accuracy, kinds = train(model, data, os.path.join(logdir, "lsuv"), epochs)
    print(
        f"LSUV: held-out accuracy {accuracy:.3f}, "
        f"findings: {', '.join(kinds) or '-'}"
    )
    print(f"compare the runs:  tensorboard --logdir {logdir}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true")
    parser.add_argument(
        "--logdir", default=os.path.join("runs", "examples", "lsuv_cnn")
    )
    args = parser.parse_args()
    fast = args.fast or os.environ.get("KERASINIT_EXAMPLE_FAST") == "1"
    main(fast, args.logdir)
