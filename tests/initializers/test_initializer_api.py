"""Seeds, serialization and argument validation of every initializer."""

import inspect
import math

import keras
import numpy as np
import pytest

from kerasinit import initializers as ki

EXAMPLES = {
    "DeltaOrthogonal": dict(gain=1.2),
    "ForActivation": dict(activation="leaky_relu", param=0.2),
    "Glorot": dict(distribution="normal", gain=5 / 3, fans=(10, 30)),
    "He": dict(nonlinearity="leaky_relu", negative_slope=0.1, mode="fan_out"),
    "Kumar": dict(activation="tanh", distribution="truncated_normal"),
    "LeCun": dict(distribution="uniform"),
    "Orthogonal": dict(gain=2.0),
    "ScaledNormal": dict(stddev=0.01, num_layers=6),
}
SHAPE = (3, 8, 16)


def _classes():
    return [
        getattr(ki, name)
        for name in ki.__all__
        if isinstance(getattr(ki, name), type)
        and issubclass(getattr(ki, name), keras.initializers.Initializer)
    ]


def _values(init, shape=SHAPE):
    return keras.ops.convert_to_numpy(init(shape))


def test_every_exported_initializer_has_an_example():
    assert sorted(cls.__name__ for cls in _classes()) == sorted(EXAMPLES)


def test_config_round_trip_and_registration():
    for cls in _classes():
        name = cls.__name__
        init = cls(**EXAMPLES[name], seed=42)
        config = init.get_config()
        # Exactly the constructor's arguments, no more, no fewer.
        assert set(config) == set(inspect.signature(cls).parameters), name
        for key, value in EXAMPLES[name].items():
            expected = list(value) if isinstance(value, tuple) else value
            assert config[key] == expected, (name, key)
        clone = cls.from_config(config)
        np.testing.assert_array_equal(_values(clone), _values(init))
        serialized = keras.initializers.serialize(init)
        assert serialized["registered_name"] == f"kerasinit>{name}"
        restored = keras.initializers.deserialize(serialized)
        assert type(restored) is cls
        np.testing.assert_array_equal(_values(restored), _values(init))
        by_string = (
            keras.initializers.get(f"kerasinit>{name}")
            if (name != "ForActivation")
            else None
        )
        if by_string is not None:
            assert type(by_string) is cls


def test_string_identifier_in_a_layer():
    layer = keras.layers.Dense(4, kernel_initializer="kerasinit>He")
    layer.build((None, 3))
    assert type(layer.kernel_initializer) is ki.He


def test_seed_semantics_match_keras():
    # Keras: an int seed or None gives the same values on every call; a
    # SeedGenerator advances on every call.
    reference = keras.initializers.RandomNormal(seed=3)
    assert np.array_equal(_values(reference), _values(reference))
    unseeded = keras.initializers.RandomNormal()
    assert np.array_equal(_values(unseeded), _values(unseeded))
    for cls in _classes():
        kwargs = EXAMPLES[cls.__name__]
        seeded = cls(**kwargs, seed=3)
        np.testing.assert_array_equal(_values(seeded), _values(seeded))
        np.testing.assert_array_equal(
            _values(seeded), _values(cls(**kwargs, seed=3))
        )
        assert not np.array_equal(
            _values(seeded), _values(cls(**kwargs, seed=4))
        )
        unseeded = cls(**kwargs)
        np.testing.assert_array_equal(_values(unseeded), _values(unseeded))
        generator = cls(**kwargs, seed=keras.random.SeedGenerator(5))
        first, second = _values(generator), _values(generator)
        assert not np.array_equal(first, second), cls.__name__


def test_seed_generator_survives_config():
    init = ki.He(seed=keras.random.SeedGenerator(7))
    clone = ki.He.from_config(init.get_config())
    assert isinstance(clone.seed, keras.random.SeedGenerator)
    np.testing.assert_array_equal(
        _values(clone), _values(ki.He(seed=keras.random.SeedGenerator(7)))
    )


def test_unseeded_is_reproducible_under_set_random_seed():
    keras.utils.set_random_seed(11)
    first = _values(ki.He())
    keras.utils.set_random_seed(11)
    assert np.array_equal(first, _values(ki.He()))


def test_for_activation_delegates_by_family():
    cases = {
        "relu": (ki.He, math.sqrt(2.0)),
        "gelu": (ki.He, None),
        "tanh": (ki.Glorot, 5.0 / 3.0),
        "linear": (ki.Glorot, 1.0),
        "selu": (ki.LeCun, None),
        "sigmoid": (ki.Kumar, None),
        "softsign": (ki.Kumar, None),
    }
    for name, (cls, gain) in cases.items():
        delegate = ki.ForActivation(name).delegate
        assert type(delegate) is cls, name
        if gain is not None:
            assert delegate.gain == pytest.approx(gain, rel=1e-12)
    leaky = ki.ForActivation("leaky_relu", 0.2, fans=(9, 18)).delegate
    assert leaky.gain == pytest.approx(math.sqrt(2 / 1.04))
    assert leaky.fans == (9, 18)
    assert "He(" in repr(ki.ForActivation("relu"))
    init = ki.ForActivation("elu", 0.5, seed=9)
    np.testing.assert_array_equal(
        _values(init), _values(ki.He("elu", param=0.5, seed=9))
    )


BAD = [
    (lambda: ki.Glorot("gaussian"), ValueError, "distribution"),
    (lambda: ki.Glorot(gain=0.0), ValueError, "gain"),
    (lambda: ki.Glorot(gain=-1.0), ValueError, "gain"),
    (lambda: ki.Glorot(gain=float("inf")), ValueError, "gain"),
    (lambda: ki.Glorot(gain="1"), TypeError, "gain"),
    (lambda: ki.Glorot(fans=(3,)), ValueError, "fans"),
    (lambda: ki.Glorot(fans=(3, 0)), ValueError, "fans"),
    (lambda: ki.Glorot(fans=12), TypeError, "fans"),
    (lambda: ki.Glorot(seed=1.5), TypeError, "seed"),
    (lambda: ki.Glorot(seed="1"), TypeError, "seed"),
    (lambda: ki.He("relu", mode="fan_avg"), ValueError, "mode"),
    (lambda: ki.He("relu", distribution="normal2"), ValueError, "distribution"),
    (
        lambda: ki.He("leaky_relu", negative_slope=-0.1),
        ValueError,
        "negative_slope",
    ),
    (
        lambda: ki.He("leaky_relu", negative_slope=1.5),
        ValueError,
        "negative_slope",
    ),
    (
        lambda: ki.He("leaky_relu", negative_slope=float("nan")),
        ValueError,
        "negative_slope",
    ),
    (
        lambda: ki.He("leaky_relu", negative_slope="0.1"),
        TypeError,
        "negative_slope",
    ),
    (lambda: ki.He("relu", negative_slope=0.1), ValueError, "negative_slope"),
    (lambda: ki.He("leaky_relu", 0.1, param=0.1), ValueError, "negative_slope"),
    (lambda: ki.He("relu", param=0.1), ValueError, "param"),
    (lambda: ki.He("relux"), ValueError, "activation"),
    (lambda: ki.He(3), TypeError, "activation"),
    (lambda: ki.LeCun("truncated"), ValueError, "distribution"),
    (lambda: ki.Kumar("relu"), ValueError, "activation"),
    (lambda: ki.Kumar("sigmoid", param=0.3), ValueError, "param"),
    (lambda: ki.Kumar("tanh", param="x"), TypeError, "param"),
    (lambda: ki.Kumar("nope"), ValueError, "activation"),
    (lambda: ki.Orthogonal(gain=0), ValueError, "gain"),
    (lambda: ki.Orthogonal(seed=2.0), TypeError, "seed"),
    (lambda: ki.DeltaOrthogonal(gain=-2), ValueError, "gain"),
    (lambda: ki.ScaledNormal(num_layers=0), ValueError, "num_layers"),
    (lambda: ki.ScaledNormal(num_layers=2.5), TypeError, "num_layers"),
    (lambda: ki.ScaledNormal(stddev=-0.02), ValueError, "stddev"),
    (lambda: ki.ForActivation("softmaxx"), ValueError, "activation"),
    (lambda: ki.ForActivation("selu", param=1.0), ValueError, "param"),
    (
        lambda: ki.ForActivation("relu", distribution="x"),
        ValueError,
        "distribution",
    ),
]


def test_bad_arguments_raise_at_construction_naming_the_argument():
    for make, error, name in BAD:
        with pytest.raises(error) as info:
            make()
        message = str(info.value)
        assert f"{name}=" in message, message
        assert "Received:" in message, message
