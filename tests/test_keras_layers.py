"""Keras' other activations, LayerNormalization and initializers.

Values are checked against PyTorch's functional forms (an independent implementation) and
Keras' documented defaults and formulas; backward passes by float64 gradient checks on
every backend.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import xpnet as xn
from xpnet.gradcheck import check_layer
from xpnet.initializers import initialize
from xpnet.layers import (ELU, GELU, Activation, LayerNormalization, LeakyReLU, Relu, SiLU,
                          Softplus, Swish, get_activation)


def _normal(shape, seed, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def _away_from_zero(x, gap=1e-2):
    return np.where(np.abs(x) < gap, np.sign(x + 1e-12) * gap * 3, x)


LAYERS = {
    "leaky_relu": lambda: LeakyReLU(0.1),
    "elu": lambda: ELU(0.7),
    "gelu": GELU,
    "gelu_tanh": lambda: GELU(approximate=True),
    "softplus": Softplus,
    "swish": Swish,
    "activation_tanh": lambda: Activation("tanh"),
    "layer_norm": lambda: LayerNormalization(epsilon=1e-3),
}


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("shape", [(5, 4), (3, 2, 4)], ids=["2d", "3d"])
def test_gradcheck(to_xp, name, shape):
    layer = LAYERS[name]()
    x = _away_from_zero(_normal(shape, 3, 2.0))  # kinks of LeakyReLU/ELU at 0 avoided
    if name == "layer_norm":
        layer.forward(to_xp(x))
        layer.params["gamma"] = to_xp(1.0 + _normal((4,), 4, 0.3))
        layer.params["beta"] = to_xp(_normal((4,), 5, 0.3))
    errors = check_layer(layer, to_xp(x))
    assert set(errors) == {"x", *layer.params}
    assert max(errors.values()) < 1e-7, errors


def _torch_reference(name, x):
    torch = pytest.importorskip("torch", reason="PyTorch is the reference here")
    f = torch.nn.functional
    t = torch.from_numpy(x)
    out = {
        "leaky_relu": lambda: f.leaky_relu(t, 0.3),
        "elu": lambda: f.elu(t, 1.0),
        "gelu": lambda: f.gelu(t),  # approximate="none": the erf form, Keras' default
        "gelu_tanh": lambda: f.gelu(t, approximate="tanh"),
        "softplus": lambda: f.softplus(t),
        "swish": lambda: f.silu(t),
        "layer_norm": lambda: f.layer_norm(t, (x.shape[-1],), eps=1e-3),
    }[name]()
    return out.numpy()


@pytest.mark.parametrize("name, make", [
    ("leaky_relu", LeakyReLU), ("elu", ELU), ("gelu", GELU),
    ("gelu_tanh", lambda: GELU(approximate=True)), ("softplus", Softplus),
    ("swish", SiLU), ("layer_norm", LayerNormalization),
])
def test_values_against_pytorch(backend, to_xp, name, make):
    layer = make()
    x = _normal((6, 7), 1, 3.0)
    x[0, :3] = [-40.0, 40.0, 0.0]  # far tails: no overflow, no NaN
    got = xn.to_numpy(layer.forward(to_xp(x), training=False))
    np.testing.assert_allclose(got, _torch_reference(name, x), rtol=1e-12, atol=1e-12)


def test_keras_defaults():
    assert LeakyReLU().negative_slope == 0.3          # keras.layers.LeakyReLU
    assert get_activation("leaky_relu").negative_slope == 0.2  # keras.activations.leaky_relu
    assert ELU().alpha == 1.0
    norm = LayerNormalization()
    assert (norm.axis, norm.epsilon, norm.center, norm.scale) == (-1, 1e-3, True, True)
    for name, cls in [("elu", ELU), ("gelu", GELU), ("softplus", Softplus), ("swish", Swish),
                      ("silu", Swish)]:
        assert type(get_activation(name)) is cls


def test_refusals():
    with pytest.raises(xn.InvalidParameterError, match="True .* or False"):
        GELU(approximate="tanh")
    with pytest.raises(xn.InvalidParameterError, match="last axis only"):
        LayerNormalization(axis=1)
    with pytest.raises(xn.InvalidParameterError):
        LeakyReLU(-0.1)
    with pytest.raises(ValueError, match="unknown activation"):
        Activation("no_such")


def test_erf_against_math_erf_with_and_without_the_library_one(monkeypatch):
    """The standard's-operations erf (array-api-strict, NumPy without SciPy) and the
    library's own (NumPy with SciPy, torch, JAX, CuPy) against Python's math.erf."""
    import math

    grid = np.concatenate([np.linspace(-7, 7, 4001), [0.0, 2.5, -2.5, 1e-300, 40.0, -40.0]])
    ref = np.array([math.erf(v) for v in grid])
    for name in ("numpy", "array_api_strict", "torch", "jax"):
        try:
            backend = xn.backend.load(name)
        except xn.BackendUnavailableError:
            continue
        with xn.use_backend(name):
            got = xn.to_numpy(xn.functions.erf(xn.backend.asarray(grid, dtype="float64")))
        np.testing.assert_allclose(got, ref, rtol=0, atol=2e-15, err_msg=name)
        if backend.erf is not None:  # the computed one, here too
            monkeypatch.setitem(xn.backend._erfs, backend.xp, None)
            with xn.use_backend(name):
                got = xn.to_numpy(xn.functions.erf(xn.backend.asarray(grid, dtype="float64")))
            monkeypatch.undo()
            np.testing.assert_allclose(got, ref, rtol=0, atol=2e-15, err_msg=f"{name}, computed")


def test_activation_layer_is_the_named_one(to_xp):
    x = to_xp(_normal((4, 3), 2))
    np.testing.assert_array_equal(xn.to_numpy(Activation("relu").forward(x)),
                                  xn.to_numpy(Relu().forward(x)))


def test_a_model_of_them_trains_and_pickles(backend):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 6)).astype("float32")
    y = (x[:, 0] * x[:, 1] > 0).astype("int64")
    model = xn.Sequential([xn.layers.Dense(32, activation="gelu", input_dim=6,
                                           kernel_initializer="he_uniform"),
                           LayerNormalization(), LeakyReLU(),
                           xn.layers.Dense(16, activation="swish", kernel_initializer="lecun_normal"),
                           Activation("elu"),
                           xn.layers.Dense(2, activation="softmax",
                                           kernel_initializer="glorot_normal")], seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    back = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(xn.to_numpy(back.predict(x)), xn.to_numpy(model.predict(x)))


# -- initializers: Keras' VarianceScaling as documented ----------------------------------

@pytest.mark.parametrize("name, scale, mode", [
    ("he_normal", 2.0, "fan_in"), ("lecun_normal", 1.0, "fan_in"),
    ("glorot_normal", 1.0, "fan_avg"),
])
def test_truncated_normal_initializers(name, scale, mode):
    fan_in, fan_out = 300, 500
    w = initialize(name, (fan_in, fan_out), 0, "float64")
    n = fan_in if mode == "fan_in" else (fan_in + fan_out) / 2
    std = np.sqrt(scale / n)  # "standard deviation (after truncation)"
    assert w.std() == pytest.approx(std, rel=0.01)
    bound = 2 * std / 0.87962566103423978  # truncated at two of the underlying normal's
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound


@pytest.mark.parametrize("name, scale, mode", [
    ("he_uniform", 2.0, "fan_in"), ("lecun_uniform", 1.0, "fan_in"),
    ("glorot_uniform", 1.0, "fan_avg"),
])
def test_uniform_initializers(name, scale, mode):
    fan_in, fan_out = 300, 500
    w = initialize(name, (fan_in, fan_out), 0, "float64")
    n = fan_in if mode == "fan_in" else (fan_in + fan_out) / 2
    limit = np.sqrt(3 * scale / n)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.999 * limit
    assert w.std() == pytest.approx(limit / np.sqrt(3), rel=0.01)


def test_callable_and_bias_initializers(backend):
    def fives(shape, dtype=None):
        return np.full(shape, 5.0)

    layer = xn.layers.Dense(3, input_dim=2, kernel_initializer=fives, bias_initializer="ones")
    model = xn.Sequential([layer], seed=0)
    model.build()
    np.testing.assert_array_equal(xn.to_numpy(layer.params["W"]), np.full((2, 3), 5.0))
    np.testing.assert_array_equal(xn.to_numpy(layer.params["b"]), np.ones(3))
    with pytest.raises(ValueError, match="returned shape"):
        initialize(lambda shape, dtype: np.zeros((1,)), (2, 3), 0)
