"""A pre-norm transformer with SwiGLU feed-forward blocks and GPT-2 init.

In a pre-norm transformer every block adds two branch outputs (attention
and feed-forward) to one residual stream, so at initialization the
stream's variance grows with depth. GPT-2 draws embeddings and kernels from
N(0, 0.02^2) and scales the output projection of each residual branch by
1/sqrt(2N) for N blocks: `kerasinit.initializers.ScaledNormal`.
`kerasinit.layers.SwiGLU` is the gated feed-forward layer of LLaMA and
PaLM; with no initializer given it pairs its gate kernel with SiLU.

The script builds the model twice, with the feed-forward output
projections unscaled and scaled, prints the residual stream's standard
deviation after every block at initialization, then trains the scaled
model on a copy task with the health monitor on.

    python examples/transformer_swiglu.py [--fast]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kerasinit as ki  # noqa: E402

VOCAB = 16
SEQ = 12


def block(h, d_model, heads, index, out_init):
    ln = keras.layers.LayerNormalization(name=f"ln_attn_{index}")(h)
    # MultiHeadAttention takes one initializer for all four projections,
    # its output projection included.
    attn = keras.layers.MultiHeadAttention(
        heads,
        d_model // heads,
        kernel_initializer=out_init(2 * index),
        name=f"attn_{index}",
    )(ln, ln)
    h = keras.layers.Add(name=f"res_attn_{index}")([h, attn])
    ln = keras.layers.LayerNormalization(name=f"ln_ffn_{index}")(h)
    ffn = ki.layers.SwiGLU(4 * d_model, name=f"swiglu_{index}")(ln)
    ffn = keras.layers.Dense(
        d_model,
        use_bias=False,
        kernel_initializer=out_init(2 * index + 1),
        name=f"ffn_out_{index}",
    )(ffn)
    return keras.layers.Add(name=f"res_ffn_{index}")([h, ffn])


def build(num_blocks, scaled, d_model=32, heads=4):
    def out_init(seed):
        if scaled:
            return ki.initializers.ScaledNormal(
                stddev=0.02, num_layers=num_blocks, seed=seed
            )
        return keras.initializers.RandomNormal(stddev=0.02, seed=seed)

    tokens = keras.Input((SEQ,), dtype="int32")
    embed = keras.layers.Embedding(
        VOCAB,
        d_model,
        embeddings_initializer=keras.initializers.RandomNormal(
            stddev=0.02, seed=0
        ),
        name="embed",
    )(tokens)
    h = embed
    for i in range(num_blocks):
        h = block(h, d_model, heads, i, out_init)
    h = keras.layers.LayerNormalization(name="ln_final")(h)
    logits = keras.layers.Dense(VOCAB, name="logits")(h)
    return keras.Model(tokens, logits, name=f"transformer_{num_blocks}")


def stream_stds(model, x, num_blocks):
    names = [f"res_ffn_{i}" for i in range(num_blocks)]
    taps = keras.Model(model.input, [model.get_layer(n).output for n in names])
    return [float(np.std(t)) for t in taps(x)]


def copy_task(n, seed):
    # Every position must output the sequence's first token: solvable only
    # by attending back to position 0.
    rng = np.random.default_rng(seed)
    x = rng.integers(0, VOCAB, size=(n, SEQ)).astype("int32")
    y = np.repeat(x[:, :1], SEQ, axis=1)
    return x, y


def main(fast: bool, logdir: str) -> None:
    num_blocks = 2 if fast else 6
    x, y = copy_task(512 if fast else 4096, seed=0)
    x_val, y_val = copy_task(256, seed=1)

    for scaled in (False, True):
        model = build(num_blocks, scaled)
        stds = stream_stds(model, x_val, num_blocks)
        label = "scaled 1/sqrt(2N)" if scaled else "unscaled"
        print(
            f"{label:>17}: residual stream std after each block: "
            + " ".join(f"{s:.3f}" for s in stds)
        )

    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    monitor = ki.callbacks.HealthMonitor(
        log_dir=logdir, probe=(x_val, y_val), warn=False
    )
    model.fit(
        x,
        y,
        epochs=2 if fast else 8,
        batch_size=64,
        callbacks=[monitor],
        verbose=0,
    )
    _, accuracy = model.evaluate(x_val, y_val, verbose=0)
    print(f"copy-task token accuracy {accuracy:.3f} (chance {1 / VOCAB:.3f})")
    print(f"findings: {len(monitor.findings)}")
    for finding in monitor.findings:
        print(f"  {finding}")
    print(f"view it:  tensorboard --logdir {logdir}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true")
    parser.add_argument(
        "--logdir", default=os.path.join("runs", "examples", "transformer")
    )
    args = parser.parse_args()
    fast = args.fast or os.environ.get("KERASINIT_EXAMPLE_FAST") == "1"
    main(fast, args.logdir)
