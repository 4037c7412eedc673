"""LayerOutputs: outputs recorded inside, every layer restored on exit."""

import threading

import keras
import numpy as np
import pytest

from kerasinit.monitor.capture import LayerOutputs


def _model():
    inner = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, name="inner_dense")],
        name="encoder",
    )
    return keras.Sequential(
        [keras.Input((3,)), inner, keras.layers.Dense(2, name="head")]
    )


def test_outputs_of_nested_layers_are_recorded():
    model = _model()
    inner = model.get_layer("encoder").get_layer("inner_dense")
    head = model.get_layer("head")
    x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    with LayerOutputs({"encoder/inner_dense": inner, "head": head}) as out:
        y = model(x)
    np.testing.assert_allclose(out["head"].numpy(), y.numpy())
    kernel, bias = inner.get_weights()
    np.testing.assert_allclose(
        out["encoder/inner_dense"].numpy(), x @ kernel + bias, rtol=1e-6
    )
    assert "call" not in vars(inner) and "call" not in vars(head)


def test_layers_are_restored_when_the_body_raises():
    model = _model()
    head = model.get_layer("head")
    own = head.call
    # A `call` the user installed on the instance is put back as it was.
    object.__setattr__(head, "call", own)
    inner = model.get_layer("encoder").get_layer("inner_dense")
    with pytest.raises(RuntimeError, match="boom"):
        with LayerOutputs({"head": head, "inner": inner}):
            raise RuntimeError("boom")
    assert vars(head)["call"] is own
    assert "call" not in vars(inner)


def test_calls_from_other_threads_are_not_recorded():
    model = _model()
    head = model.get_layer("head")
    x = np.ones((2, 3), "float32")
    with LayerOutputs({"head": head}) as out:
        thread = threading.Thread(target=model, args=(x,))
        thread.start()
        thread.join()
        assert out == {}
        model(x)
    assert set(out) == {"head"}
