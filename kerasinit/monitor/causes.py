"""The cause a diagnosis names, read from the model, with the fix it implies.

`Diagnoser` finds and groups a problem; `explain` says why it most likely
happened, from the kernel's scale against the gains table, its bias and
dtype, the inputs, the model's structure and the learning rate (a
`kerasinit.monitor.model_facts.ModelFacts`, through a
`kerasinit.monitor.model_view.ModelView`), and what to change. Only the
words are here; which condition is reported is decided by the rules.
"""

from __future__ import annotations

import dataclasses
import math

from kerasinit.findings import Finding
from kerasinit.monitor.model_view import ModelView
from kerasinit.monitor.probe_event import ProbeEvent
from kerasinit.monitor.thresholds import Thresholds

__all__ = ["INPUT_OFFSET_COSINE", "Explanation", "explain", "fmt", "scale_text"]

#: Inputs whose mean pairwise cosine is above this are not centered: for
#: features with common mean ``mu`` and spread ``sigma`` the cosine is about
#: ``|mu|^2 / (|mu|^2 + d sigma^2)``, the share of the inputs' energy in
#: their common offset; above 1/2 the offset outweighs all the variation.
#: Centered inputs have a cosine near 0.
INPUT_OFFSET_COSINE = 0.5


@dataclasses.dataclass(frozen=True)
class Explanation:
    """A diagnosis's likely cause and its fix, as `Diagnosis` carries them.

    Attributes:
        cause: the likely cause, one sentence.
        advice: the one fix to try first.
    """

    cause: str
    advice: str


def explain(
    kind: str,
    first: str,
    head: Finding,
    event: ProbeEvent,
    view: ModelView,
    thresholds: Thresholds,
) -> Explanation:
    """The likely cause and fix of the problem of `kind` starting at `first`.

    Args:
        kind: the diagnosis's kind.
        first: the path of the layer where the problem starts.
        head: the finding the diagnosis is grouped around.
        event: the event the diagnosis was made at.
        view: the monitored layers, with the model's facts.
        thresholds: a `Thresholds`.

    Returns:
        An `Explanation`.
    """
    spec = view.spec.get(first)
    kernel = view.kernel(spec) if spec is not None else None
    facts = view.model_facts()
    t = thresholds
    input_rms = event.input_rms
    pair_helps = facts is not None and bool(facts.mismatched)
    init_fix = (
        "re-initialize every kernel for the activation it feeds: "
        "kerasinit.pair(model)."
        if pair_helps
        else "initialize each kernel for the activation it feeds "
        "(kerasinit.initializers.ForActivation)."
    )
    scale = scale_text(kernel)
    if kind in ("exploding_signal", "vanishing_signal"):
        too = kind == "exploding_signal"
        first_index = view.index.get(first, 0)
        if (
            input_rms is not None
            and first_index == 0
            and (input_rms > t.signal_high if too else input_rms < t.signal_low)
            and (kernel is None or kernel.matched is not False)
        ):
            return Explanation(
                f"the inputs have RMS {fmt(input_rms)}; the model "
                "expects standardized inputs (RMS near 1).",
                "standardize the inputs (e.g. a keras.layers."
                "Normalization layer adapted to the training data).",
            )
        if kernel is not None and kernel.matched is False:
            return Explanation(scale, init_fix)
        return Explanation(
            "the kernels match the gain table, so the scale comes from "
            "the architecture (biases, skip sums or width changes).",
            "add normalization (keras.layers.LayerNormalization) "
            "where the scale drifts.",
        )
    if kind == "representation_collapse":
        inputs = view.inputs_cosine(event)
        if (spec is not None and view.fed_by_inputs(spec)) or (
            inputs is not None and inputs > INPUT_OFFSET_COSINE
        ):
            said = f" (cosine {fmt(inputs)})" if inputs is not None else ""
            return Explanation(
                f"the inputs are alike or not centered{said}: a layer "
                "fed by them cannot tell their examples apart.",
                "standardize the inputs (subtract the mean, e.g. a "
                "keras.layers.Normalization layer adapted to the "
                "training data), and check that the examples differ.",
            )
        where = []
        if facts is not None and not facts.has_residual:
            where.append("no residual connections")
        if facts is not None and not facts.has_normalization:
            where.append("no normalization")
        # Named by layer: the monitored order skips layers when only
        # every n-th is watched, so its index is not the depth.
        return Explanation(
            f"from '{first}' on, the outputs of different examples point "
            "the same way"
            + (f" ({', '.join(where)})" if where else "")
            + "; units off for one example are off for all, which "
            "looks like dead units.",
            "add residual connections or normalization "
            "(keras.layers.BatchNormalization), or use fewer layers.",
        )
    if kind == "symmetric_weights":
        desc = (
            f"the kernel of '{kernel.path}' ({kernel.initializer}) has "
            f"{kernel.duplicate_columns:.0%} identical columns, so its "
            "units compute, and learn, the same thing."
            if kernel is not None
            else "units of this layer compute identical outputs."
        )
        return Explanation(
            desc,
            init_fix
            if pair_helps
            else (
                "use a random initializer "
                "(kerasinit.initializers.ForActivation)."
            ),
        )
    if kind == "dead_units":
        bias = kernel.bias_mean if kernel is not None else None
        prev = view.previous(first, event, "act_rms")
        if prev is None:
            prev = input_rms
        if (
            bias is not None
            and kernel is not None
            and prev is not None
            and bias < -2.0 * kernel.std * math.sqrt(kernel.fan_in) * prev
        ):
            return Explanation(
                f"the bias of '{kernel.path}' has mean {fmt(bias)}, "
                "below the pre-activations' spread "
                f"({fmt(kernel.std * math.sqrt(kernel.fan_in) * prev)}),"
                " so the units never turn on.",
                f"reset the bias of '{kernel.path}' to zero and find "
                "what drives it negative (often a learning rate too "
                "high).",
            )
        if kernel is not None and kernel.matched is False:
            return Explanation(scale, init_fix)
        if event.preflight:
            return Explanation(
                "the kernel matches the gain table; these units start "
                "off for every example.",
                "use an activation that cannot die (LeakyReLU(0.1), ELU).",
            )
        return Explanation(
            "units were switched off during training, typically by "
            "large updates.",
            "lower the learning rate.",
        )
    if kind == "saturation":
        if kernel is not None and kernel.matched is False:
            return Explanation(scale, init_fix)
        return Explanation(
            "the pre-activations are too wide for the activation.",
            "add normalization before the activation "
            "(keras.layers.BatchNormalization).",
        )
    if kind in ("vanishing_gradients", "exploding_gradients"):
        if facts is not None and facts.mismatched:
            k = facts.mismatched[0]
            return Explanation(scale_text(k), init_fix)
        if kind == "exploding_gradients":
            return Explanation(
                "gradients grow from the output towards the input.",
                "clip gradients (optimizer clipnorm=1.0).",
            )
        return Explanation(
            "each layer shrinks the gradient it passes back (saturating "
            "derivatives or depth).",
            "add residual connections or normalization "
            "(keras.layers.BatchNormalization).",
        )
    if kind == "nonfinite":
        if kernel is not None and kernel.dtype == "float16":
            return Explanation(
                f"'{first}' computes in float16, whose largest finite "
                "value is 65504.",
                f"compute '{first}' in float32 (dtype='float32') or "
                "keep activations small (normalization).",
            )
        return Explanation(
            "values overflowed or a NaN entered through the inputs, "
            "the targets or a too-large update.",
            "lower the learning rate and clip gradients "
            "(optimizer clipnorm=1.0).",
        )
    rate = facts.learning_rate if facts is not None else None
    said = f" (learning rate {fmt(rate)})" if rate is not None else ""
    if kind == "learning_rate_high":
        return Explanation(
            f"weights move by {fmt(head.value)} of their norm per "
            f"step{said}; about 1e-3 is typical.",
            "lower the learning rate by about 10x.",
        )
    return Explanation(
        f"weights move by at most {fmt(head.value)} of their norm per "
        f"step{said}; about 1e-3 is typical.",
        "raise the learning rate by about 10x.",
    )


def fmt(value) -> str:
    """A number as a diagnosis writes it: 3 significant digits, or n/a."""
    return "n/a" if value is None else f"{value:.3g}"


def scale_text(kernel) -> str:
    """The cause sentence of a kernel scaled wrong for its activation."""
    if kernel is None or kernel.scale_ratio is None:
        return "the kernel scale does not match the activation."
    return (
        f"the kernel of '{kernel.path}' ({kernel.initializer}) has std "
        f"{fmt(kernel.std)}, {fmt(kernel.scale_ratio)}x the std "
        f"{fmt(kernel.target_std)} the gain table gives for "
        f"{kernel.activation}."
    )
