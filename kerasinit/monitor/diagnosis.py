"""Rules that turn probe statistics into `kerasinit.findings.Finding` objects.

`diagnose` is a pure function of one event's statistics; `RateLimiter` keeps
the only state, which conditions are currently active, so that a condition
is reported once when it appears and again only after it has cleared. The
reasoning behind every default threshold is in ``docs/monitor.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from kerasinit.findings import Finding

__all__ = ["Thresholds", "RateLimiter", "diagnose"]


class Thresholds:
    """When a statistic becomes a finding.

    Every threshold is explicit and documented, so a user who disagrees with a
    default can change exactly that one.

    Args:
        dead_fraction: report dead units when more than this fraction of a
            layer's units output their dead value for every probe example.
            Defaults to `0.25`.
        dead_min_examples: below this many probe examples the dead rule is
            not applied, since a healthy ReLU unit is zero on all of `n`
            examples with probability about ``2**-n``. Defaults to `16`.
        saturation_derivative: an output is saturated where the
            activation's derivative is below this fraction of its peak
            derivative. Defaults to `0.05`.
        saturation_fraction: report saturation when more than this fraction
            of a layer's outputs are saturated. Defaults to `0.25`.
        vanishing_ratio: report vanishing gradients when a layer's gradient
            norm is below this multiple of the output layer's.
            Defaults to `1e-3`.
        exploding_ratio: report exploding gradients when a layer's gradient
            norm is above this multiple of the output layer's.
            Defaults to `1e3`.

    Example:

    >>> t = kerasinit.callbacks.Thresholds(dead_fraction=0.5)
    >>> t.dead_fraction
    0.5
    """

    def __init__(
        self,
        dead_fraction: float = 0.25,
        dead_min_examples: int = 16,
        saturation_derivative: float = 0.05,
        saturation_fraction: float = 0.25,
        vanishing_ratio: float = 1e-3,
        exploding_ratio: float = 1e3,
    ):
        for name, value in (
            ("dead_fraction", dead_fraction),
            ("saturation_derivative", saturation_derivative),
            ("saturation_fraction", saturation_fraction),
        ):
            if not _is_real(value) or not 0.0 < value < 1.0:
                raise ValueError(
                    f"Expected `{name}` to be a number strictly between 0 "
                    f"and 1. Received: {name}={value!r}"
                )
        if (
            isinstance(dead_min_examples, bool)
            or not isinstance(dead_min_examples, int)
            or dead_min_examples < 1
        ):
            raise ValueError(
                "Expected `dead_min_examples` to be a positive integer. "
                f"Received: dead_min_examples={dead_min_examples!r}"
            )
        if not _is_real(vanishing_ratio) or not 0.0 < vanishing_ratio < 1.0:
            raise ValueError(
                "Expected `vanishing_ratio` to be a number strictly between "
                f"0 and 1. Received: vanishing_ratio={vanishing_ratio!r}"
            )
        if (
            not _is_real(exploding_ratio)
            or not 1.0 < exploding_ratio < math.inf
        ):
            raise ValueError(
                "Expected `exploding_ratio` to be a finite number greater "
                f"than 1. Received: exploding_ratio={exploding_ratio!r}"
            )
        self.dead_fraction = float(dead_fraction)
        self.dead_min_examples = dead_min_examples
        self.saturation_derivative = float(saturation_derivative)
        self.saturation_fraction = float(saturation_fraction)
        self.vanishing_ratio = float(vanishing_ratio)
        self.exploding_ratio = float(exploding_ratio)

    def get_config(self) -> dict[str, Any]:
        return {
            "dead_fraction": self.dead_fraction,
            "dead_min_examples": self.dead_min_examples,
            "saturation_derivative": self.saturation_derivative,
            "saturation_fraction": self.saturation_fraction,
            "vanishing_ratio": self.vanishing_ratio,
            "exploding_ratio": self.exploding_ratio,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"Thresholds({args})"


def _is_real(value) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


_ADVICE = {
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


def _finding(kind, layer, step, value, threshold, what, severity="warning"):
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
            _finding("nonfinite", layer, step, count, 0.0, what, "error")
        )
    dead_ok = probe_examples is None or (
        probe_examples >= thresholds.dead_min_examples
    )
    ref = reference_grad_norm
    ref_ok = _finite(ref) and ref > 0.0
    for layer in order:
        s = layer_stats.get(layer)
        if not s:
            continue
        dead = s.get("dead_fraction")
        if (
            dead_ok
            and layer in dead_applies
            and _finite(dead)
            and dead > thresholds.dead_fraction
        ):
            found.append(
                _finding(
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
            and _finite(sat)
            and sat > thresholds.saturation_fraction
        ):
            found.append(
                _finding(
                    "saturation",
                    layer,
                    step,
                    sat,
                    thresholds.saturation_fraction,
                    "saturated output fraction",
                )
            )
        g = s.get("grad_norm")
        if not ref_ok or not _finite(g) or layer == reference_layer:
            continue
        if s.get("grad_nonfinite") or s.get("act_nonfinite"):
            continue
        ratio = g / ref
        if ratio < thresholds.vanishing_ratio:
            found.append(
                _finding(
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
                _finding(
                    "exploding_gradients",
                    layer,
                    step,
                    ratio,
                    thresholds.exploding_ratio,
                    "gradient norm / output layer gradient norm",
                )
            )
    return found


class RateLimiter:
    """Lets a (layer, kind) condition through once until it clears.

    Example:

    >>> limiter = RateLimiter()
    >>> new = limiter.filter(findings_of_this_event)
    """

    def __init__(self):
        self.active: set[tuple[str, str]] = set()

    def filter(self, findings: Sequence[Finding]) -> list[Finding]:
        """The findings whose condition was not active at the last event."""
        current = {(f.layer, f.kind) for f in findings}
        new = [f for f in findings if (f.layer, f.kind) not in self.active]
        self.active = current
        return new
