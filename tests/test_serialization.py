"""Every public initializer and layer survives config and `.keras` round trips.

The objects are collected from the packages' own export lists, so a new
public class is tested as soon as it is exported: if it cannot be built
with default arguments and has no entry in `EXAMPLES`, its test fails.
"""

import dataclasses

import keras
import numpy as np
import pytest

import kerasinit


@dataclasses.dataclass(frozen=True)
class Example:
    """Constructor arguments, and for initializers the layer that hosts it."""

    kwargs: dict = dataclasses.field(default_factory=dict)
    host: str = "dense"


#: Constructor arguments for public classes that need them, plus extra
#: configurations worth a round trip. A class absent from here is built
#: with its defaults.
EXAMPLES = {
    # Initializers.
    "ForActivation": [
        Example({"activation": "leaky_relu", "param": 0.2, "seed": 1}),
        Example({"activation": "swish", "distribution": "uniform"}),
    ],
    "He": [
        Example(),
        Example({"nonlinearity": "leaky_relu", "negative_slope": 0.1}),
    ],
    "Glorot": [Example(), Example({"gain": 2.0, "seed": 4}, host="conv2d")],
    "Kumar": [Example(), Example({"activation": "tanh"})],
    "DeltaOrthogonal": [Example({"seed": 5}, host="conv2d")],
    "ScaledNormal": [Example({"stddev": 0.05, "num_layers": 12})],
    # Layers.
    "LeakyReLU": [Example(), Example({"negative_slope": 0.01})],
    "ELU": [Example({"alpha": 0.5})],
    "GELU": [Example(), Example({"approximate": True})],
    "PReLU": [
        Example(),
        Example({"shared_axes": [1], "alpha_regularizer": "l2"}),
    ],
    "SiLU": [Example(), Example({"beta": 1.5, "trainable_beta": True})],
    "Swish": [Example({"beta": 0.5, "trainable_beta": True})],
    "SwiGLU": [
        Example({"units": 5}),
        Example(
            {
                "units": 5,
                "use_bias": True,
                "kernel_initializer": "glorot_normal",
                "kernel_regularizer": "l2",
            }
        ),
    ],
    "GEGLU": [Example({"units": 5, "approximate": True})],
    "ReGLU": [Example({"units": 5, "use_bias": True})],
}


def _public_classes(module, base):
    return [
        (name, getattr(module, name))
        for name in getattr(module, "__all__", ())
        if isinstance(getattr(module, name), type)
        and issubclass(getattr(module, name), base)
    ]


def _cases():
    cases = []
    for kind, module, base in (
        ("initializer", kerasinit.initializers, keras.initializers.Initializer),
        ("layer", kerasinit.layers, keras.layers.Layer),
    ):
        for name, cls in _public_classes(module, base):
            for i, example in enumerate(EXAMPLES.get(name, [Example()])):
                cases.append(pytest.param(kind, cls, example, id=f"{name}-{i}"))
    return cases


def _build(cls, example):
    try:
        return cls(**example.kwargs)
    except (TypeError, ValueError) as error:
        pytest.fail(
            f"Public class {cls.__name__} cannot be built with "
            f"{example.kwargs or 'its defaults'} ({error}); add an entry "
            "for it to EXAMPLES in tests/test_serialization.py."
        )


def _host_model(kind, obj, example):
    if kind == "layer":
        return keras.Sequential([keras.Input((3, 4)), obj]), (2, 3, 4)
    if example.host == "conv2d":
        layer = keras.layers.Conv2D(4, 3, kernel_initializer=obj)
        return keras.Sequential([keras.Input((6, 6, 2)), layer]), (2, 6, 6, 2)
    layer = keras.layers.Dense(5, kernel_initializer=obj)
    return keras.Sequential([keras.Input((3, 4)), layer]), (2, 3, 4)


@pytest.mark.parametrize("kind, cls, example", _cases())
def test_round_trip(kind, cls, example, tmp_path):
    obj = _build(cls, example)
    assert keras.saving.get_registered_name(cls) == (
        f"kerasinit>{cls.__name__}"
    )

    # (a) Config round trip through the registry.
    config = obj.get_config()
    serialized = keras.saving.serialize_keras_object(obj)
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is cls
    assert restored.get_config() == config
    assert type(cls.from_config(config)) is cls

    # (b) A model using it, saved to .keras and loaded in safe mode.
    model, input_shape = _host_model(kind, obj, example)
    rng = np.random.default_rng(0)
    # Weights the layer creates (slopes, beta, projections) get values no
    # initializer would give, so that loading must restore them.
    for weight in obj.weights if kind == "layer" else ():
        weight.assign(rng.uniform(0.1, 1.0, size=weight.shape))
    x = rng.normal(size=input_shape).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x))

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x)), expected
    )
    if kind == "layer":
        loaded_obj = loaded.layers[0]
    else:
        loaded_obj = loaded.layers[0].kernel_initializer
    assert type(loaded_obj) is cls
    assert loaded_obj.get_config() == config


def test_examples_name_public_classes():
    public = {
        name
        for module, base in (
            (kerasinit.initializers, keras.initializers.Initializer),
            (kerasinit.layers, keras.layers.Layer),
        )
        for name, _ in _public_classes(module, base)
    }
    # A stale entry would silently stop covering anything.
    stale = set(EXAMPLES) - public
    assert not stale, f"EXAMPLES names no public class: {sorted(stale)}"
