"""Verdicts from statistics: the right kind, first layer and span, once.

Correctness tests build real Keras models, compute every statistic the
probe reports with a NumPy reference over the layers' real outputs and
gradients on a real batch, and feed them to the `Diagnoser`. Persistence
tests use hand-made event sequences.
"""

import dataclasses
import math
import sys

import keras
import numpy as np
import pytest

import kerasinit as ki
from kerasinit.findings import Diagnosis
from kerasinit.monitor import selection
from kerasinit.monitor.diagnosis import Diagnoser, ProbeEvent, Thresholds
from kerasinit.monitor.model_facts import model_facts
from kerasinit.monitor.relu_correlation import (
    expected_dead_fraction,
    relu_cosine,
    relu_input_cosine,
)

EXAMPLES = 128


# -- a NumPy reference for the probe's statistics ---------------------------


def _saturated(name, y):
    # The derivative as a function of the output, below 5 % of its peak.
    if name == "tanh":
        return 1.0 - y * y < 0.05
    if name == "sigmoid":
        return y * (1.0 - y) < 0.05 * 0.25
    return None


def _activation_stats(spec, y, previous_rms):
    flat = y.reshape(y.shape[0], -1)
    rms = float(np.sqrt(np.mean(flat * flat)))
    norms = np.linalg.norm(flat, axis=1)
    rows = flat[norms > 0] / norms[norms > 0, None]
    n = len(rows)
    # Mean over distinct pairs: |sum u|^2 counts each pair twice plus n
    # self-pairs of 1.
    cosine = (
        float((np.sum(rows.sum(axis=0) ** 2) - n) / (n * (n - 1)))
        if n > 1
        else math.nan
    )
    columns = y.reshape(-1, y.shape[-1]).T
    _, inverse, counts = np.unique(
        columns, axis=0, return_inverse=True, return_counts=True
    )
    dead_value = spec.dead_value
    saturated = _saturated(spec.activation_name, flat) if spec.direct else None
    return {
        "act_mean": float(flat.mean()),
        "act_std": float(flat.std()),
        "act_rms": rms,
        "signal_gain": rms / previous_rms if previous_rms else math.nan,
        "cosine_similarity": cosine,
        "duplicate_fraction": float(np.mean(counts[inverse.reshape(-1)] > 1)),
        "dead_fraction": (
            float(np.mean(np.all(columns == dead_value, axis=1)))
            if dead_value is not None
            else 0.0
        ),
        "saturation_fraction": (
            float(np.mean(saturated)) if saturated is not None else 0.0
        ),
        "act_nonfinite": float(np.sum(~np.isfinite(flat))),
    }


def _gradients(model, x, y, weights):
    """The mean cross-entropy's gradient for each of `weights`, in NumPy."""

    def loss_of(logits):
        return keras.ops.mean(
            keras.losses.sparse_categorical_crossentropy(
                y, logits, from_logits=True
            )
        )

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_of(model(x))
        grads = tape.gradient(loss, weights)
    elif backend == "jax":
        import jax

        trainable = model.trainable_variables
        frozen = [v.value for v in model.non_trainable_variables]

        def loss_fn(values):
            logits, _ = model.stateless_call(values, frozen, x)
            return loss_of(logits)

        by_id = dict(
            zip(
                (id(v) for v in trainable),
                jax.grad(loss_fn)([v.value for v in trainable]),
            )
        )
        grads = [by_id[id(w)] for w in weights]
    elif backend == "torch":
        for w in weights:
            w.value.grad = None
        loss_of(model(x)).backward()
        grads = [w.value.grad for w in weights]
    else:
        raise NotImplementedError(f"no reference gradient on {backend}")
    return [keras.ops.convert_to_numpy(g) for g in grads]


def measure(model, x, y=None, *, step=0, phase="preflight"):
    """``(ProbeEvent, specs)`` of a model on a batch, computed in NumPy."""
    specs = selection.monitored_layers(model)
    sub = keras.Model(model.inputs[0], [s.layer.output for s in specs])
    outs = [keras.ops.convert_to_numpy(o) for o in _listed(sub(x))]
    input_rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    layers, previous = {}, input_rms
    for spec, out in zip(specs, outs):
        stats = _activation_stats(spec, np.asarray(out, np.float64), previous)
        layers[spec.path] = stats
        previous = stats["act_rms"]
    reference = None
    if y is not None:
        owners = {
            lyr.name: lyr for lyr in model.layers if lyr.trainable_weights
        }
        grads = _gradients(
            model,
            x,
            y,
            [w for lyr in owners.values() for w in lyr.trainable_weights],
        )
        norms, i = {}, 0
        for name, lyr in owners.items():
            k = len(lyr.trainable_weights)
            g = np.concatenate(
                [
                    np.ravel(keras.ops.convert_to_numpy(v))
                    for v in grads[i : i + k]
                ]
            )
            norms[name] = float(np.linalg.norm(g))
            i += k
        reference = norms[list(owners)[-1]]
        for spec in specs:
            layers[spec.path]["grad_norm"] = norms[spec.weight_owner]
            layers[spec.path]["grad_nonfinite"] = 0.0
    event = ProbeEvent(
        step=step,
        phase=phase,
        layers=layers,
        reference_grad_norm=reference,
        input_rms=input_rms,
        probe_examples=len(x),
    )
    return event, specs


def _listed(out):
    return out if isinstance(out, (list, tuple)) else [out]


def mlp(
    depth,
    width,
    kernel_initializer,
    *,
    activation="relu",
    d_in=64,
    seed=0,
    separate=False,
):
    """A plain MLP on a standardized Gaussian batch, and the batch."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((d_in,))
    h = inputs
    for i in range(depth):
        init = (
            kernel_initializer()
            if callable(kernel_initializer)
            and not isinstance(
                kernel_initializer, keras.initializers.Initializer
            )
            else kernel_initializer
        )
        if separate:
            h = keras.layers.Dense(
                width, kernel_initializer=init, name=f"d{i}"
            )(h)
            h = keras.layers.Activation(activation, name=f"a{i}")(h)
        else:
            h = keras.layers.Dense(
                width,
                activation=activation,
                kernel_initializer=init,
                name=f"d{i}",
            )(h)
    outputs = keras.layers.Dense(10, name="logits")(h)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(seed).standard_normal((EXAMPLES, d_in))
    return model, x.astype("float32")


def verdicts(model, x, y=None, thresholds=None):
    event, specs = measure(model, x, y)
    diagnoser = Diagnoser(
        specs,
        thresholds=thresholds,
        facts=model_facts(model),
        reference_layer="logits",
    )
    return diagnoser.update(event), specs


def normal(std):
    return lambda: keras.initializers.RandomNormal(0.0, std)


# -- the seeds' lessons on real models ---------------------------------------


def test_shallow_normal_relu_explodes_from_the_first_layer():
    model, x = mlp(4, 256, normal(1.0))
    found, specs = verdicts(model, x)
    assert [d.kind for d in found] == ["exploding_signal"]
    d = found[0]
    assert d.first_layer == "d0"
    assert d.layers == tuple(s.path for s in specs)
    # The cause names the first kernel and its ratio to He: sqrt(fan_in/2).
    assert "d0" in d.cause and "relu" in d.cause
    ratio = model_facts(model).kernel("d0").scale_ratio
    assert ratio == pytest.approx(math.sqrt(64 / 2), rel=0.05)
    assert "kerasinit.pair(model)" in d.advice


def test_depth_50_normal_explodes_once():
    model, x = mlp(50, 64, normal(1.0))
    found, specs = verdicts(model, x)
    assert [d.kind for d in found] == ["exploding_signal"]
    assert found[0].first_layer == "d0"
    assert found[0].severity == "error"


def test_depth_50_tiny_normal_vanishes_once():
    model, x = mlp(50, 64, normal(1e-3))
    found, _ = verdicts(model, x)
    assert [d.kind for d in found] == ["vanishing_signal"]
    d = found[0]
    assert d.first_layer == "d0"
    # The units that underflow to zero deep down belong to it.
    assert len(d.layers) == 50
    assert "0.177" in d.cause  # He std sqrt(2/64)


def test_depth_50_he_collapses_instead_of_dying():
    # Seed 2 is one where the 64-wide stack's examples align: units
    # go off for all examples at once.
    model, x = mlp(50, 64, keras.initializers.HeNormal, seed=2)
    event, specs = measure(model, x)
    dead = [event.layers[s.path]["dead_fraction"] for s in specs]
    assert max(dead) > Thresholds().dead_fraction
    found, _ = verdicts(model, x)
    assert [d.kind for d in found] == ["representation_collapse"]
    d = found[0]
    assert "residual" in d.advice
    assert "He" not in d.advice and "pair" not in d.advice
    first = [s.path for s in specs].index(d.first_layer)
    assert first >= 5


def test_zero_kernels_are_symmetric():
    model, x = mlp(3, 32, keras.initializers.Zeros())
    found, _ = verdicts(model, x)
    assert [d.kind for d in found] == ["symmetric_weights"]
    assert found[0].first_layer == "d0"
    assert "Zeros" in found[0].cause


def test_bias_shift_on_layer_two_is_one_dead_units_verdict():
    model, x = mlp(4, 64, keras.initializers.HeNormal, separate=True)
    reads = []

    def facts():
        reads.append(1)
        return model_facts(model)

    # Facts read when a finding needs them: after the bias changed.
    event, specs = measure(model, x)
    diagnoser = Diagnoser(specs, facts=facts, reference_layer="logits")
    assert diagnoser.update(event) == [] and reads == []
    dense = model.get_layer("d1")
    dense.bias.assign(np.full(dense.bias.shape, -10.0, "float32"))
    y = np.random.default_rng(1).integers(0, 10, EXAMPLES)
    event, _ = measure(model, x, y, step=10, phase="epoch")
    found = diagnoser.update(event)
    assert len(reads) == 1
    assert [d.kind for d in found] == ["dead_units"]
    d = found[0]
    assert d.first_layer == "a1"
    assert d.layers[:3] == ("a1", "a2", "a3")
    kinds = {f.kind for f in d.findings}
    # Vanishing gradients above the dead layer are its consequence.
    assert "vanishing_gradients" in kinds
    assert "bias" in d.cause and "-10" in d.cause


def test_deep_sigmoid_with_glorot_vanishes_backwards():
    model, x = mlp(
        20, 64, keras.initializers.GlorotNormal, activation="sigmoid"
    )
    y = np.random.default_rng(1).integers(0, 10, EXAMPLES)
    found, _ = verdicts(model, x, y)
    assert [d.kind for d in found] == ["vanishing_gradients"]
    assert found[0].first_layer == "d0"
    assert "kerasinit.pair(model)" in found[0].advice


def test_tanh_with_normal_saturates():
    model, x = mlp(3, 128, normal(1.0), activation="tanh")
    found, _ = verdicts(model, x)
    assert [d.kind for d in found] == ["saturation"]
    assert found[0].first_layer == "d0"


def test_unnormalized_inputs_are_the_cause():
    model, x = mlp(4, 64, keras.initializers.HeNormal)
    found, _ = verdicts(model, x * 1000.0)
    assert [d.kind for d in found] == ["exploding_signal"]
    assert found[0].first_layer == "d0"
    assert "standardize" in found[0].advice


@pytest.mark.parametrize(
    "activation, initializer",
    [
        ("relu", lambda: ki.initializers.He("relu")),
        ("leaky_relu", lambda: ki.initializers.He("leaky_relu", 0.2)),
        ("selu", lambda: ki.initializers.LeCun()),
        ("sigmoid", lambda: ki.initializers.Kumar("sigmoid")),
        ("tanh", lambda: ki.initializers.ForActivation("tanh")),
        ("gelu", lambda: ki.initializers.ForActivation("gelu")),
        ("silu", lambda: ki.initializers.ForActivation("silu")),
    ],
)
def test_matched_pairs_are_silent(activation, initializer):
    model, x = mlp(6, 128, initializer, activation=activation)
    y = np.random.default_rng(1).integers(0, 10, EXAMPLES)
    found, _ = verdicts(model, x, y)
    assert found == []


# -- model facts ---------------------------------------------------------------


def test_model_facts_read_scale_bias_and_rate():
    model, _ = mlp(2, 32, keras.initializers.HeNormal, separate=True)
    model.get_layer("d1").bias.assign(np.full(32, -3.0, "float32"))
    model.compile(keras.optimizers.SGD(0.05), "mse")
    facts = model_facts(model)
    d0 = facts.kernel("d0")
    assert d0.activation == "relu"
    assert d0.target_std == pytest.approx(math.sqrt(2 / 64))
    # A 64x32 draw: the std's sampling error is about 1/sqrt(2 * 2048).
    assert d0.scale_ratio == pytest.approx(1.0, abs=4 / math.sqrt(4096))
    assert d0.matched and d0.duplicate_columns == 0.0
    assert facts.kernel("d1").bias_mean == pytest.approx(-3.0)
    assert facts.learning_rate == pytest.approx(0.05)
    assert not facts.has_residual and not facts.has_normalization


def test_matched_model_has_nothing_for_pair_to_fix():
    model, _ = mlp(3, 32, lambda: ki.initializers.He("relu"))
    mismatched = [k.path for k in model_facts(model).mismatched]
    # The output layer is linear: Glorot-family target, He-free.
    assert "d0" not in mismatched and "d2" not in mismatched


# -- the correlation that makes healthy units look dead ----------------------


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9, 0.99])
def test_expected_dead_fraction_matches_sampling(rho):
    rng = np.random.default_rng(0)
    units, n = 20000, 32
    shared = rng.standard_normal((units, 1))
    own = rng.standard_normal((units, n))
    z = math.sqrt(rho) * shared + math.sqrt(1 - rho) * own
    sampled = np.mean(np.all(z < 0, axis=1))
    expected = expected_dead_fraction(rho, n)
    # Binomial standard error of the sampled fraction, four of them.
    tol = 4 * math.sqrt(max(expected * (1 - expected), 1e-12) / units)
    assert sampled == pytest.approx(expected, abs=max(tol, 1e-4))


# -- persistence and severity on hand-made sequences ------------------------


class _Spec:
    def __init__(self, path, dead_value=0.0):
        self.path = path
        self.dead_value = dead_value
        self.activation = None
        self.weight_owner = path

    def saturation(self):
        return None


def _event(step, phase="step", **dead):
    layers = {
        p: {"dead_fraction": dead.get(p, 0.0), "act_rms": 1.0}
        for p in ("a", "b")
    }
    return ProbeEvent(step, phase, layers, probe_examples=EXAMPLES)


def test_grazing_a_threshold_during_training_is_silent():
    diagnoser = Diagnoser([_Spec("a"), _Spec("b")])
    assert diagnoser.update(_event(0, "preflight")) == []
    # 0.27 passes 0.25 in two consecutive events: within the margin.
    assert diagnoser.update(_event(64, a=0.27)) == []
    assert diagnoser.update(_event(128, a=0.27)) == []
    assert diagnoser.diagnoses == []


def test_a_condition_past_the_margin_must_persist():
    diagnoser = Diagnoser([_Spec("a"), _Spec("b")])
    assert diagnoser.update(_event(10, a=0.6)) == []
    new = diagnoser.update(_event(20, a=0.6))
    assert [d.kind for d in new] == ["dead_units"]
    assert new[0].step == 20
    # Reported once while it lasts, again after it clears and returns.
    assert diagnoser.update(_event(30, a=0.7)) == []
    assert diagnoser.update(_event(40)) == []
    assert diagnoser.update(_event(50, a=0.6)) == []
    assert len(diagnoser.update(_event(60, a=0.6))) == 1
    assert len(diagnoser.diagnoses) == 2
    assert all(f.kind == "dead_units" for f in diagnoser.findings)


def test_an_extreme_condition_reports_at_its_first_event():
    diagnoser = Diagnoser([_Spec("a"), _Spec("b")])
    new = diagnoser.update(_event(10, b=1.0))
    assert [(d.kind, d.first_layer) for d in new] == [("dead_units", "b")]


def test_preflight_reports_at_once():
    diagnoser = Diagnoser([_Spec("a"), _Spec("b")])
    new = diagnoser.update(_event(0, "preflight", a=0.3))
    assert [(d.kind, d.first_layer) for d in new] == [("dead_units", "a")]


def _update_event(step, ratio, phase="step"):
    layers = {p: {"update_ratio": ratio, "act_rms": 1.0} for p in ("a", "b")}
    return ProbeEvent(step, phase, layers)


def test_learning_rate_high_from_update_ratio():
    diagnoser = Diagnoser([_Spec("a", None), _Spec("b", None)])
    diagnoser.update(_update_event(0, math.nan, "preflight"))
    # 10 steps moved the weights by 20 norms: at least 2 per step.
    new = diagnoser.update(_update_event(10, 20.0))
    assert [(d.kind, d.first_layer) for d in new] == [
        ("learning_rate_high", "a")
    ]
    assert d_value(new[0]) == pytest.approx(2.0)


def d_value(d: Diagnosis) -> float:
    return d.value


def test_healthy_update_ratios_are_silent():
    diagnoser = Diagnoser([_Spec("a", None), _Spec("b", None)])
    diagnoser.update(_update_event(0, math.nan, "preflight"))
    # Adam at 1e-3 on a 256-wide layer: about 1e-2 per step, coherent.
    for step in range(100, 600, 100):
        assert diagnoser.update(_update_event(step, 1.0)) == []


def test_learning_rate_low_needs_persistence_and_is_info():
    diagnoser = Diagnoser([_Spec("a", None), _Spec("b", None)])
    diagnoser.update(_update_event(0, math.nan, "preflight"))
    # 100 steps, ratio 5e-6: at most 5e-7 per step, under 1e-6 but not
    # ten times under it.
    assert diagnoser.update(_update_event(100, 5e-6)) == []
    new = diagnoser.update(_update_event(200, 5e-6))
    assert [d.kind for d in new] == ["learning_rate_low"]
    assert new[0].severity == "info"
    assert new[0].value == pytest.approx(5e-6 / math.sqrt(100))


def test_weights_that_stand_still_are_said_at_once():
    diagnoser = Diagnoser([_Spec("a", None), _Spec("b", None)])
    diagnoser.update(_update_event(0, math.nan, "preflight"))
    # At most 1e-9 per step: ten times below the threshold and more.
    new = diagnoser.update(_update_event(100, 1e-8))
    assert [d.kind for d in new] == ["learning_rate_low"]


def test_thresholds_validate_and_round_trip():
    t = Thresholds(collapse_cosine=0.9, persistence=3)
    assert Thresholds(**t.get_config()).get_config() == t.get_config()
    with pytest.raises(ValueError, match="Received: persistence=0"):
        Thresholds(persistence=0)
    with pytest.raises(ValueError, match="Received: signal_high=0.5"):
        Thresholds(signal_high=0.5)
    with pytest.raises(TypeError, match="Received: thresholds="):
        Diagnoser([], thresholds={"dead_fraction": 0.3})


# -- the benchmark's scenarios -------------------------------------------------


def _benchmark():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[2] / "benchmarks" / "diagnosis.py"
    spec = importlib.util.spec_from_file_location("diagnosis_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up while the module runs.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


BENCHMARK = _benchmark()


def test_benchmark_has_the_required_scenarios():
    healthy = [s for s in BENCHMARK.SCENARIOS if s.kind is None]
    sick = [s for s in BENCHMARK.SCENARIOS if s.kind is not None]
    assert len(healthy) >= 12 and len(sick) >= 15
    names = [s.name for s in BENCHMARK.SCENARIOS]
    assert len(set(names)) == len(names)
    assert {s.kind for s in sick} <= set(ki.findings.WARNING_CLASSES)


@pytest.mark.parametrize(
    "scenario",
    [s for s in BENCHMARK.SCENARIOS if s.onset_event == 0],
    ids=lambda s: s.name,
)
def test_benchmark_preflight_verdicts(scenario):
    setup = scenario.build()
    x, y = setup.probe
    event, specs = measure(setup.model, x, y)
    reference = [lyr.name for lyr in setup.model.layers if lyr.weights][-1]
    diagnoser = Diagnoser(
        specs, facts=model_facts(setup.model), reference_layer=reference
    )
    found = diagnoser.update(event)
    if scenario.kind is None:
        assert found == []
        return
    assert found[0].kind == scenario.kind
    if scenario.first_layer is not None:
        assert found[0].first_layer == scenario.first_layer
    # One verdict per problem.
    assert len(found) == 1


def test_a_consequence_of_a_reported_problem_is_not_a_new_one():
    diagnoser = Diagnoser([_Spec("a"), _Spec("b")])
    layers = {p: {"act_rms": 50.0, "dead_fraction": 0.0} for p in "ab"}
    first = diagnoser.update(ProbeEvent(0, "preflight", layers))
    assert [d.kind for d in first] == ["exploding_signal"]
    # Training turns the explosion into NaN: the same problem.
    layers = {p: {"act_rms": math.nan, "act_nonfinite": 8.0} for p in "ab"}
    assert diagnoser.update(ProbeEvent(10, "step", layers)) == []
    # Once healthy, a new problem is new.
    healthy = {p: {"act_rms": 1.0} for p in "ab"}
    assert diagnoser.update(ProbeEvent(20, "step", healthy)) == []
    again = diagnoser.update(ProbeEvent(30, "step", layers))
    assert [d.kind for d in again] == ["nonfinite"]


def test_training_saturation_that_passes_gradient_is_silent():
    spec = _Spec("a", None)
    spec.saturation = lambda: (None, 0.05)
    diagnoser = Diagnoser([spec], reference_layer="out")

    def event(step, grad):
        layers = {"a": {"saturation_fraction": 0.6, "grad_norm": grad}}
        return ProbeEvent(step, "step", layers, reference_grad_norm=1.0)

    # A tenth of the output's gradient still reaches it: it learns.
    assert diagnoser.update(event(10, 0.1)) == []
    assert diagnoser.update(event(20, 0.1)) == []
    # A thousandth does not: the saturation blocks it.
    assert diagnoser.update(event(30, 1e-3)) == []
    new = diagnoser.update(event(40, 1e-3))
    assert [d.kind for d in new] == ["saturation"]


# -- the benchmark's and the demo's lessons -----------------------------------


@pytest.mark.parametrize("rho", [-0.5, 0.0, 0.5, 0.9])
def test_relu_cosine_matches_sampling_and_inverts(rho):
    # Correlated Gaussian pre-activations, rectified: the sample cosine
    # has a standard error of about 1/sqrt(n) or less.
    n = 400_000
    rng = np.random.default_rng(0)
    u = rng.standard_normal(n)
    v = rho * u + math.sqrt(1 - rho * rho) * rng.standard_normal(n)
    a, b = np.maximum(u, 0), np.maximum(v, 0)
    sample = a @ b / math.sqrt((a @ a) * (b @ b))
    c = relu_cosine(rho)
    assert c == pytest.approx(sample, abs=4 / math.sqrt(n))
    assert relu_input_cosine(c) == pytest.approx(rho, abs=1e-9)


def test_strided_monitoring_still_sees_collapse_behind_dead_units():
    # Only every 5th layer of the deep He stack is measured: the previous
    # measured layer's cosine understates how alike the examples arrive,
    # the layer's own cosine read back through the ReLU map does not.
    model, x = mlp(50, 64, keras.initializers.HeNormal, seed=2)
    event, specs = measure(model, x)
    kept = [s for i, s in enumerate(specs) if i % 5 == 0]
    strided = dataclasses.replace(
        event, layers={s.path: event.layers[s.path] for s in kept}
    )
    dead = [strided.layers[s.path]["dead_fraction"] for s in kept]
    assert max(dead) > Thresholds().dead_fraction
    diagnoser = Diagnoser(kept, facts=model_facts(model))
    found = diagnoser.update(strided)
    assert [d.kind for d in found] == ["representation_collapse"]


def test_identical_inputs_are_the_cause_not_depth():
    model, x = mlp(4, 64, keras.initializers.HeNormal)
    ones = np.ones_like(x)
    found, _ = verdicts(model, ones)
    assert [(d.kind, d.first_layer) for d in found] == [
        ("representation_collapse", "d0")
    ]
    assert "inputs" in found[0].cause and "standardize" in found[0].advice
    assert "residual" not in found[0].advice


def test_inputs_with_a_common_offset_are_the_cause_of_collapse():
    # Standardized features shifted by 3: the examples' cosine is about
    # 9 / 10. The first ReLU layer makes that about 0.93, what a random
    # layer makes of such inputs; a few layers on the examples are alike,
    # and the inputs are why. Where the verdict is placed depends on the
    # draw (units of the first layer can be off for every example, which
    # the inputs' likeness explains), so the cause is what is asserted.
    model, x = mlp(4, 64, keras.initializers.HeNormal)
    shifted = x + 3.0
    rows = shifted / np.linalg.norm(shifted, axis=1, keepdims=True)
    n = len(rows)
    cosine = float((np.sum(rows.sum(axis=0) ** 2) - n) / (n * (n - 1)))
    assert 0.85 < cosine < 0.95
    event, specs = measure(model, shifted)
    read_back = [event, dataclasses.replace(event, input_cosine=cosine)]
    for each in read_back:
        found = Diagnoser(specs, facts=model_facts(model)).update(each)
        assert [d.kind for d in found] == ["representation_collapse"]
        assert "the inputs are alike" in found[0].cause
        assert "standardize" in found[0].advice
    # Centered, the same model is quiet.
    assert verdicts(model, x)[0] == []


def test_tiny_weights_moving_fast_are_not_a_learning_rate_problem():
    from kerasinit.monitor.model_facts import KernelFacts, ModelFacts

    def facts(std):
        return ModelFacts(
            kernels=tuple(
                KernelFacts(p, "relu", std, 0.177, "init", 64, 0.0, 0.0, "f")
                for p in ("a", "b")
            )
        )

    def run(std):
        diagnoser = Diagnoser(
            [_Spec("a", None), _Spec("b", None)], facts=facts(std)
        )
        diagnoser.update(_update_event(0, math.nan, "preflight"))
        # 10 steps moved the weights by 20 of their norms.
        return [d.kind for d in diagnoser.update(_update_event(10, 20.0))]

    # A kernel at 20x He's std now, having moved by 20 of its former
    # norms, may have started at He's scale: a rate far too high. One at
    # 0.2x He's std now started at most 0.2 / 19 of it (triangle
    # inequality): it grew from near zero, by about 0.2 of He's norm in 10
    # steps, which is growth, not a wreck.
    assert run(20 * 0.177) == ["learning_rate_high"]
    assert run(0.2 * 0.177) == []
