"""`diagnose`: one event's statistics to per-layer findings (the evidence).

A pure function of the statistics; grouping the findings into verdicts is
`kerasinit.monitor.diagnosis.Diagnoser`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from kerasinit.findings import Finding
from kerasinit.monitor.thresholds import Thresholds

__all__ = ["diagnose", "is_finite", "make_finding"]


def is_finite(value) -> bool:
    """Whether `value` was measured and is a finite number."""
    return value is not None and math.isfinite(value)


_ADVICE = {
    "exploding_signal": (
        "standardize the inputs and initialize each kernel for the "
        "activation it feeds (kerasinit.initializers.ForActivation)."
    ),
    "vanishing_signal": (
        "initialize each kernel for the activation it feeds "
        "(kerasinit.initializers.ForActivation)."
    ),
    "representation_collapse": (
        "add residual connections or normalization, or use fewer layers."
    ),
    "symmetric_weights": (
        "initialize the kernel with a random initializer "
        "(kerasinit.initializers.ForActivation)."
    ),
    "learning_rate_high": "lower the learning rate.",
    "learning_rate_low": "raise the learning rate.",
    "dead_units": (
        "initialize the kernel feeding it for ReLU "
        "(kerasinit.initializers.He), lower the learning rate, or switch to "
        "an activation that cannot die (LeakyReLU(0.1), ELU)."
    ),
    "saturation": (
        "initialize the kernel feeding it for this activation "
        "(kerasinit.initializers.Kumar for sigmoid, Glorot for tanh), add "
        "normalization before the activation, or use a non-saturating "
        "activation (ReLU family)."
    ),
    "vanishing_gradients": (
        "use a variance-preserving initializer matched to each activation "
        "(kerasinit.pair(model)), add BatchNormalization or residual "
        "connections, and avoid deep stacks of saturating activations."
    ),
    "exploding_gradients": (
        "lower the learning rate, clip gradients (e.g. optimizer "
        "clipnorm=1.0), and use a variance-preserving initializer "
        "(kerasinit.pair(model))."
    ),
    "nonfinite": (
        "lower the learning rate, clip gradients (clipnorm=1.0), check the "
        "inputs and targets for NaN or infinity, use a variance-preserving "
        "initializer (kerasinit.pair(model)), and under mixed precision keep "
        "the loss-scaling optimizer."
    ),
}


def make_finding(kind, layer, step, value, threshold, what, severity="warning"):
    """One `Finding`, its message and advice written the one shared way.

    Args:
        kind: the finding's kind, a key of the advice table.
        layer: the layer's path.
        step: the global step of the event.
        value: the measured value.
        threshold: the threshold it crossed.
        what: what `value` is, as the message names it.
        severity: ``"error"``, ``"warning"`` or ``"info"``. Defaults to
            ``"warning"``.
    """
    message = (
        f"Layer '{layer}': {what} = {value:.4g} (threshold {threshold:.4g}) "
        f"at step {step}."
    )
    return Finding(
        kind=kind,
        layer=layer,
        step=step,
        value=float(value),
        threshold=float(threshold),
        message=message,
        advice=_ADVICE[kind],
        severity=severity,
    )


def diagnose(
    layer_stats: dict[str, dict[str, Any]],
    order: Sequence[str],
    *,
    step: int,
    thresholds: Thresholds,
    reference_grad_norm: float | None = None,
    reference_layer: str | None = None,
    probe_examples: int | None = None,
    dead_applies: Iterable[str] = (),
    saturation_applies: Iterable[str] = (),
) -> list[Finding]:
    """Every condition present in one event's statistics.

    Args:
        layer_stats: ``{layer: {metric: value}}`` from the probe.
        order: the monitored layers in model order.
        step: the global step of the event.
        thresholds: a `Thresholds`.
        reference_grad_norm: the output layer's gradient norm, or `None`
            without gradients. Defaults to `None`.
        reference_layer: the output layer's path; it is not compared with
            itself. Defaults to `None`.
        probe_examples: number of probe examples; the dead rule needs
            ``thresholds.dead_min_examples``. Defaults to `None` (applied).
        dead_applies: layers whose activation can die. Defaults to `()`.
        saturation_applies: layers with a saturation rule. Defaults to `()`.

    Returns:
        Findings in model order; at most one ``nonfinite`` finding, naming the
        first layer in model order whose activations, or failing that
        gradients, are not finite.
    """
    dead_applies = set(dead_applies)
    saturation_applies = set(saturation_applies)
    found: list[Finding] = []
    first_bad = None
    for kind_key in ("act_nonfinite", "grad_nonfinite"):
        for layer in order:
            count = layer_stats.get(layer, {}).get(kind_key)
            if count is not None and count > 0:
                first_bad = (layer, count, kind_key)
                break
        if first_bad:
            break
    if first_bad:
        layer, count, key = first_bad
        what = "non-finite " + (
            "activations" if key == "act_nonfinite" else "gradient entries"
        )
        found.append(
            make_finding("nonfinite", layer, step, count, 0.0, what, "error")
        )
    dead_ok = probe_examples is None or (
        probe_examples >= thresholds.dead_min_examples
    )
    ref = reference_grad_norm
    ref_ok = is_finite(ref) and ref > 0.0
    for layer in order:
        s = layer_stats.get(layer)
        if not s:
            continue
        dead = s.get("dead_fraction")
        if (
            dead_ok
            and layer in dead_applies
            and is_finite(dead)
            and dead > thresholds.dead_fraction
        ):
            found.append(
                make_finding(
                    "dead_units",
                    layer,
                    step,
                    dead,
                    thresholds.dead_fraction,
                    "dead unit fraction",
                )
            )
        sat = s.get("saturation_fraction")
        if (
            layer in saturation_applies
            and is_finite(sat)
            and sat > thresholds.saturation_fraction
        ):
            found.append(
                make_finding(
                    "saturation",
                    layer,
                    step,
                    sat,
                    thresholds.saturation_fraction,
                    "saturated output fraction",
                )
            )
        g = s.get("grad_norm")
        if not ref_ok or not is_finite(g) or layer == reference_layer:
            continue
        if s.get("grad_nonfinite") or s.get("act_nonfinite"):
            continue
        ratio = g / ref
        if ratio < thresholds.vanishing_ratio:
            found.append(
                make_finding(
                    "vanishing_gradients",
                    layer,
                    step,
                    ratio,
                    thresholds.vanishing_ratio,
                    "gradient norm / output layer gradient norm",
                )
            )
        elif ratio > thresholds.exploding_ratio:
            found.append(
                make_finding(
                    "exploding_gradients",
                    layer,
                    step,
                    ratio,
                    thresholds.exploding_ratio,
                    "gradient norm / output layer gradient norm",
                )
            )
    return found
