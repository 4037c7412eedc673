"""Real training runs, measured in the test and written to the schema.

The dashboard's views need runs whose numbers come from real training:
deep MLPs initialized well and badly, trained with `model.fit` on generated
data. This module trains them and measures each layer on a fixed probe
batch at pre-flight and every few steps, with plain TensorFlow, then writes
exactly what `kerasinit_tensorboard.schema` specifies: the scalar tags,
the histograms and the record, with `kerasinit.findings.Finding` objects
from the documented rules and, where asked, `kerasinit.findings.Diagnosis`
objects grouped from them (what the monitor writes itself once it groups
its findings). The monitor's own end-to-end path is covered by
``conftest.real_runs``.
"""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.histogram import metadata as histogram_metadata

from kerasinit.findings import Diagnosis, Finding
from kerasinit_tensorboard import schema

WIDTH = 32
INPUTS = 16
CLASSES = 4
PROBE = 128
#: The documented defaults of `kerasinit.callbacks.Thresholds`.
DEAD_FRACTION = 0.25
SATURATION_DERIVATIVE = 0.05
SATURATION_FRACTION = 0.25
VANISHING_RATIO = 1e-3
EXPLODING_RATIO = 1e3
_ADVICE = {
    "dead_units": "Use He init for ReLU kernels, or LeakyReLU.",
    "saturation": "Use Glorot init for tanh kernels.",
    "vanishing_gradients": "Use a variance-preserving init (He for ReLU).",
    "exploding_gradients": "Use a variance-preserving init; clip gradients.",
    "nonfinite": "Lower the learning rate and fix the init.",
}
_SEVERITY = {"nonfinite": "error", "exploding_gradients": "error"}


@dataclasses.dataclass
class Run:
    """What the tests know about one written run."""

    name: str  # the TensorBoard run: ``<dir>/kerasinit``
    layers: list[str]
    steps: list[int]
    stats: list[dict]  # per event: {layer: {metric: float}}
    findings: list[Finding]
    diagnoses: list[Diagnosis]


def _metadata(plugin: str) -> summary_pb2.SummaryMetadata:
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin),
        data_class=summary_pb2.DATA_CLASS_TENSOR,
    )


def _mlp(depth, activation, initializer, seed) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((INPUTS,))
    x = inputs
    for i in range(depth):
        x = keras.layers.Dense(
            WIDTH,
            activation=activation,
            kernel_initializer=initializer,
            name=f"dense_{i}",
        )(x)
    outputs = keras.layers.Dense(CLASSES, name="logits")(x)
    return keras.Model(inputs, outputs)


def _histogram(values: np.ndarray) -> np.ndarray | None:
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    counts, edges = np.histogram(values, bins=30)
    return np.stack([edges[:-1], edges[1:], counts], axis=1).astype(np.float64)


def measure(model, activation, x, y) -> tuple[dict, dict, dict, float]:
    """Per-layer statistics, activation and gradient values on the probe,
    and the gradient norm of the output layer."""
    dense = [layer for layer in model.layers if layer.name.startswith("dense")]
    taps = keras.Model(model.input, [layer.output for layer in dense])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        outputs = taps(x)
        loss = loss_fn(y, model(x))
    weights = [[w for w in layer.trainable_weights] for layer in dense]
    weights.append(model.get_layer("logits").trainable_weights)
    grads = tape.gradient(loss, weights)
    stats, acts, grad_values = {}, {}, {}
    for layer, out, layer_grads, layer_weights in zip(
        dense, outputs, grads, weights
    ):
        a = out.numpy().astype(np.float64)
        g = np.concatenate([t.numpy().ravel() for t in layer_grads])
        w = np.concatenate([t.numpy().ravel() for t in layer_weights])
        finite = a[np.isfinite(a)]
        with np.errstate(all="ignore"):
            grad_norm = float(np.sqrt(np.sum(g.astype(np.float64) ** 2)))
            weight_norm = float(np.sqrt(np.sum(w.astype(np.float64) ** 2)))
            s = {
                "act_mean": float(np.mean(a)),
                "act_std": float(np.std(a)),
                "act_min": float(np.min(a)),
                "act_max": float(np.max(a)),
                "zero_fraction": float(np.mean(a == 0)),
                "act_nonfinite": float(a.size - finite.size),
                "grad_norm": grad_norm,
                "weight_norm": weight_norm,
                "grad_weight_ratio": grad_norm / weight_norm,
                "grad_nonfinite": float(np.sum(~np.isfinite(g))),
            }
        if activation == "relu":
            s["dead_fraction"] = float(np.mean(np.all(a == 0, axis=0)))
            s["saturation_fraction"] = 0.0
        else:
            s["dead_fraction"] = 0.0
            s["saturation_fraction"] = float(
                np.mean(1.0 - a**2 < SATURATION_DERIVATIVE)
            )
        stats[layer.name] = s
        acts[layer.name] = a.ravel()
        grad_values[layer.name] = g
    logits_grads = grads[-1]
    reference = float(
        np.sqrt(
            sum(np.sum(t.numpy().astype(np.float64) ** 2) for t in logits_grads)
        )
    )
    return stats, acts, grad_values, reference


def _rules(stats, order, step, reference, activation) -> list[Finding]:
    found = []
    for layer in order:
        s = stats[layer]
        if s["act_nonfinite"] or s["grad_nonfinite"]:
            count = s["act_nonfinite"] or s["grad_nonfinite"]
            found.append(
                _finding("nonfinite", layer, step, count, 0.0, "error")
            )
            break
    for layer in order:
        s = stats[layer]
        if activation == "relu" and s["dead_fraction"] > DEAD_FRACTION:
            found.append(
                _finding(
                    "dead_units", layer, step, s["dead_fraction"], DEAD_FRACTION
                )
            )
        if activation == "tanh" and s["saturation_fraction"] > (
            SATURATION_FRACTION
        ):
            found.append(
                _finding(
                    "saturation",
                    layer,
                    step,
                    s["saturation_fraction"],
                    SATURATION_FRACTION,
                )
            )
        g = s["grad_norm"]
        if not (np.isfinite(reference) and reference > 0 and np.isfinite(g)):
            continue
        if g < VANISHING_RATIO * reference:
            found.append(
                _finding(
                    "vanishing_gradients",
                    layer,
                    step,
                    g / reference,
                    VANISHING_RATIO,
                )
            )
        elif g > EXPLODING_RATIO * reference:
            found.append(
                _finding(
                    "exploding_gradients",
                    layer,
                    step,
                    g / reference,
                    EXPLODING_RATIO,
                )
            )
    return found


def _finding(kind, layer, step, value, threshold, severity=None) -> Finding:
    return Finding(
        kind=kind,
        layer=layer,
        step=step,
        value=float(value),
        threshold=float(threshold),
        message=(
            f"{layer}: {kind.replace('_', ' ')} {value:.3g} "
            f"(threshold {threshold:.3g}) at step {step}."
        ),
        advice=_ADVICE[kind],
        severity=severity or _SEVERITY.get(kind, "warning"),
    )


def group(findings: list[Finding], order: list[str], model) -> list[Diagnosis]:
    """One `Diagnosis` per kind and run of adjacent layers, cause read from
    the kernels: their std against the He std of their fan-in."""
    index = {name: i for i, name in enumerate(order)}
    first: dict[tuple[str, str], Finding] = {}
    for f in findings:
        first.setdefault((f.kind, f.layer), f)
    out = []
    for kind in dict.fromkeys(f.kind for f in findings):
        layers = sorted(
            (layer for k, layer in first if k == kind), key=index.__getitem__
        )
        spans: list[list[str]] = []
        for layer in layers:
            if spans and index[layer] == index[spans[-1][-1]] + 1:
                spans[-1].append(layer)
            else:
                spans.append([layer])
        for span in spans:
            head = first[(kind, span[0])]
            kernel = model.get_layer(span[0]).kernel.numpy()
            he_std = float(np.sqrt(2.0 / kernel.shape[0]))
            std = float(np.std(kernel))
            out.append(
                Diagnosis(
                    kind=kind,
                    severity=head.severity,
                    first_layer=span[0],
                    layers=tuple(span),
                    step=head.step,
                    value=head.value,
                    threshold=head.threshold,
                    evidence=(
                        f"{head.value:.3g} at {span[0]} (threshold "
                        f"{head.threshold:.3g}), {len(span)} layers"
                    ),
                    cause=(
                        f"kernel std {std:.3g} is {std / he_std:.3g}x the He "
                        f"std {he_std:.3g} of fan-in {kernel.shape[0]}"
                    ),
                    advice=head.advice,
                    findings=tuple(
                        f
                        for f in findings
                        if f.kind == kind and f.layer in span
                    ),
                )
            )
    return out


def train_and_write(
    log_dir: str,
    *,
    depth: int,
    activation: str,
    initializer,
    learning_rate: float = 0.01,
    steps: int = 8,
    every: int = 2,
    diagnose: bool = False,
    seed: int = 0,
) -> Run:
    """Train one MLP with `model.fit`, measuring every `every` steps.

    Args:
        log_dir: the log dir the monitor would have been given; events go
            to ``log_dir/kerasinit``.
        depth: hidden Dense layers.
        activation: ``"relu"`` or ``"tanh"``.
        initializer: their kernel initializer.
        learning_rate: SGD's.
        steps: training steps (one epoch of ``steps`` batches of 64).
        every: measure after every this many steps, and at step 0.
        diagnose: also write grouped `Diagnosis` objects in the record.
        seed: for the model and the data.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64 * steps, INPUTS)).astype("float32")
    y = rng.integers(0, CLASSES, size=64 * steps)
    px, py = x[:PROBE], y[:PROBE]
    model = _mlp(depth, activation, initializer, seed)
    model.compile(
        keras.optimizers.SGD(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    order = [f"dense_{i}" for i in range(depth)]
    run = Run(
        name=f"{os.path.basename(log_dir)}/{schema.RUN_SUBDIR}",
        layers=order,
        steps=[],
        stats=[],
        findings=[],
        diagnoses=[],
    )
    writer = tf.summary.create_file_writer(
        os.path.join(log_dir, schema.RUN_SUBDIR)
    )
    seen = set()

    def log(step):
        stats, acts, grads, reference = measure(model, activation, px, py)
        for f in _rules(stats, order, step, reference, activation):
            if (f.kind, f.layer) not in seen:
                seen.add((f.kind, f.layer))
                run.findings.append(f)
        if diagnose:
            run.diagnoses = group(run.findings, order, model)
        event = len(run.steps)
        run.steps.append(step)
        run.stats.append(stats)
        with writer.as_default():
            for layer in order:
                for metric, value in stats[layer].items():
                    tf.summary.scalar(
                        schema.scalar_tag(metric, layer), value, step=step
                    )
                for prefix, values in (
                    (schema.ACTIVATION_HISTOGRAM_PREFIX, acts[layer]),
                    (schema.GRADIENT_HISTOGRAM_PREFIX, grads[layer]),
                ):
                    buckets = _histogram(values)
                    if buckets is not None:
                        tf.summary.write(
                            schema.histogram_tag(prefix, layer),
                            tf.constant(buckets),
                            step=step,
                            metadata=histogram_metadata.create_summary_metadata(
                                display_name="", description=""
                            ),
                        )
            text = schema.record(
                step=step,
                event=event,
                epoch=None if step == 0 else 0,
                phase="preflight" if step == 0 else "step",
                layers=[
                    {"name": n, "class": "Dense", "activation": activation}
                    for n in order
                ],
                stats={
                    layer: {
                        k: (v if np.isfinite(v) else None)
                        for k, v in stats[layer].items()
                    }
                    for layer in order
                },
                findings=[f.to_dict() for f in run.findings],
                diagnoses=[d.to_dict() for d in run.diagnoses],
            )
            tf.summary.write(
                schema.RECORD_TAG,
                tf.constant(text),
                step=step,
                metadata=_metadata(schema.PLUGIN_NAME),
            )

    class _Measure(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if (batch + 1) % every == 0:
                log(batch + 1)

    log(0)
    model.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=[_Measure()])
    writer.close()
    return run
