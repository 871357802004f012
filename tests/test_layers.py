"""Layers: the book's computational graphs, a float64 gradient check for every layer on
every backend, and the shape/mode behaviour of each layer."""
from __future__ import annotations

import numpy as np
import pytest

import xpnet as xn
from xpnet import functions as F
from xpnet.functions import numerical_gradient
from xpnet.gradcheck import check_function, check_layer, relative_error
from xpnet.layers import (
    AddLayer, Affine, BatchNormalization, Dense, Dropout, Flatten, Layer, Linear, MulLayer, Relu,
    Sigmoid, Softmax, SoftmaxWithLoss, Tanh, get_activation,
)

TOL = 1e-6


def _np(a):
    return xn.to_numpy(a)


def _normal(shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).normal(size=shape) * scale


def _away_from_zero(x, gap=0.1):
    """Push values at least ``gap`` away from 0 (Relu's kink)."""
    return np.sign(x) * (np.abs(x) + gap) + (x == 0) * gap


def _assert_grads_ok(errors, layer):
    expected = set(layer.params) | ({"x"} if layer.need_input_grad else set())
    assert set(errors) == expected
    for name, err in errors.items():
        assert err < TOL, f"{type(layer).__name__}: gradient of {name!r} off by {err:.2e}"


# -- the book's shopping graphs (chapter 5), on plain Python numbers ----------------------

def test_buy_apple_and_orange():
    apple, apple_num, orange, orange_num, tax = 100, 2, 150, 3, 1.1
    mul_apple, mul_orange, add, mul_tax = MulLayer(), MulLayer(), AddLayer(), MulLayer()
    apple_price = mul_apple.forward(apple, apple_num)
    orange_price = mul_orange.forward(orange, orange_num)
    all_price = add.forward(apple_price, orange_price)
    price = mul_tax.forward(all_price, tax)
    assert price == pytest.approx(715.0000000000001, abs=1e-9)

    dall_price, dtax = mul_tax.backward(1)
    dapple_price, dorange_price = add.backward(dall_price)
    dorange, dorange_num = mul_orange.backward(dorange_price)
    dapple, dapple_num = mul_apple.backward(dapple_price)
    assert dapple == pytest.approx(2.2)
    assert dapple_num == pytest.approx(110)
    assert dorange == pytest.approx(3.3)
    assert dorange_num == pytest.approx(165)
    assert dtax == pytest.approx(650)


def test_buy_apple():
    mul_apple, mul_tax = MulLayer(), MulLayer()
    price = mul_tax.forward(mul_apple.forward(100, 2), 1.1)
    assert price == pytest.approx(220.00000000000003, abs=1e-9)
    dapple_price, dtax = mul_tax.backward(1)
    dapple, dapple_num = mul_apple.backward(dapple_price)
    assert dapple == pytest.approx(2.2)
    assert dapple_num == pytest.approx(110)
    assert dtax == pytest.approx(200)


def test_graph_layers_on_arrays(to_xp):
    mul = MulLayer()
    out = mul.forward(to_xp([1.0, 2.0]), to_xp([3.0, 4.0]))
    dx, dy = mul.backward(to_xp([1.0, 1.0]))
    np.testing.assert_array_equal(_np(out), [3.0, 8.0])
    np.testing.assert_array_equal(_np(dx), [3.0, 4.0])
    np.testing.assert_array_equal(_np(dy), [1.0, 2.0])


# -- float64 gradient checks, every layer, every backend ----------------------------------

def test_gradcheck_affine_nd_input(to_xp):
    layer = Affine(to_xp(_normal((6, 5), 1)), to_xp(_normal((5,), 2)))
    x = to_xp(_normal((4, 2, 3), 3))
    _assert_grads_ok(check_layer(layer, x), layer)


@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_gradcheck_dense(to_xp, xp, activation):
    layer = Dense(5, activation=activation)
    x = to_xp(_normal((4, 2, 3), 4))
    layer.forward(x)  # builds float64 weights from the input
    assert layer.params["W"].dtype == xp.float64
    layer.params["W"] = to_xp(_normal((6, 5), 6))  # seeded: the check must not depend on luck
    layer.params["b"] = to_xp(_normal((5,), 5, 0.5))
    if activation == "relu":  # keep the pre-activations away from Relu's kink
        z = _np(xp.reshape(x, (4, 6)) @ layer.params["W"] + layer.params["b"])
        assert np.abs(z).min() > 1e-3
    _assert_grads_ok(check_layer(layer, x), layer)


@pytest.mark.parametrize("make, shape", [
    (Relu, (4, 5)), (Sigmoid, (4, 5)), (Tanh, (4, 5)), (Softmax, (4, 5)),
    (Softmax, (2, 3, 4)), (Linear, (3, 2)), (Flatten, (3, 2, 4)),
], ids=["relu", "sigmoid", "tanh", "softmax", "softmax3d", "linear", "flatten"])
def test_gradcheck_parameter_free_layers(to_xp, make, shape):
    x = _normal(shape, 6, 2.0)
    if make is Relu:
        x = _away_from_zero(x)
    layer = make()
    _assert_grads_ok(check_layer(layer, to_xp(x)), layer)


def test_gradcheck_dropout_same_mask(to_xp):
    layer = Dropout(0.4, seed=3)
    x = to_xp(_normal((6, 5), 7))
    errors = check_layer(layer, x, training=True)
    _assert_grads_ok(errors, layer)
    assert float(np.mean(_np(layer.mask) == 0)) > 0  # the mask did drop something


@pytest.mark.parametrize("shape", [(16, 5), (16, 2, 3)])
def test_gradcheck_batch_normalization(to_xp, xp, shape):
    layer = BatchNormalization()
    x = to_xp(_normal(shape, 8, 3.0) + 1.5)
    layer.forward(x)  # builds float64 gamma/beta from the input
    n = layer.params["gamma"].shape[0]
    assert layer.params["gamma"].dtype == xp.float64
    layer.params["gamma"] = to_xp(1.0 + _normal((n,), 9, 0.3))
    layer.params["beta"] = to_xp(_normal((n,), 10))
    _assert_grads_ok(check_layer(layer, x), layer)


@pytest.mark.parametrize("labels", ["integer", "one_hot"])
def test_gradcheck_softmax_with_loss(to_xp, labels):
    x = to_xp(_normal((5, 4), 11, 2.0))
    t_int = np.array([0, 3, 1, 1, 2])
    t = to_xp(t_int, "int64") if labels == "integer" else to_xp(np.eye(4)[t_int])
    layer = SoftmaxWithLoss()
    layer.forward(x, t)
    dx = layer.backward(1)
    numeric = numerical_gradient(lambda xx: layer.forward(xx, t), x)
    assert relative_error(dx, numeric) < TOL


def test_softmax_with_loss_values(to_xp):
    x_host = _normal((5, 4), 12)
    t_int = np.array([1, 0, 3, 2, 2])
    layer = SoftmaxWithLoss()
    loss = layer.forward(to_xp(x_host), to_xp(t_int, "int64"))
    y = np.exp(x_host) / np.exp(x_host).sum(axis=1, keepdims=True)
    assert float(loss) == pytest.approx(-np.mean(np.log(y[np.arange(5), t_int])), rel=1e-12)
    np.testing.assert_allclose(_np(layer.backward(2.0)), 2.0 * (y - np.eye(4)[t_int]) / 5,
                               rtol=1e-12, atol=1e-15)
    one = SoftmaxWithLoss().forward(to_xp(x_host[0]), to_xp(np.array(1), "int64"))
    assert float(one) == pytest.approx(-np.log(y[0, 1]), rel=1e-12)


# -- shapes and modes ---------------------------------------------------------------------

def test_affine_restores_nd_shape(to_xp):
    layer = Affine(to_xp(_normal((12, 3), 1)), to_xp(np.zeros(3)))
    x = to_xp(_normal((2, 3, 4), 2))
    out = layer.forward(x)
    assert out.shape == (2, 3)
    assert layer.backward(to_xp(np.ones((2, 3)))).shape == (2, 3, 4)
    assert layer.grads["W"].shape == (12, 3) and layer.grads["b"].shape == (3,)


def test_affine_skips_input_grad_when_not_needed(to_xp):
    layer = Affine(to_xp(_normal((3, 2), 1)))
    layer.need_input_grad = False
    layer.forward(to_xp(_normal((4, 3), 2)))
    assert layer.backward(to_xp(np.ones((4, 2)))) is None
    assert set(layer.grads) == {"W"}


def test_flatten_shapes(to_xp):
    layer = Flatten()
    out = layer.forward(to_xp(np.zeros((2, 3, 4, 5))))
    assert out.shape == (2, 60)
    assert layer.backward(out).shape == (2, 3, 4, 5)
    assert layer.compute_output_shape((3, 4, 5)) == (60,)


def test_dropout_is_identity_in_inference(to_xp):
    layer = Dropout(0.5, seed=0)
    x = to_xp(_normal((4, 6), 1))
    np.testing.assert_array_equal(_np(layer.forward(x, training=False)), _np(x))
    dout = to_xp(_normal((4, 6), 2))
    np.testing.assert_array_equal(_np(layer.backward(dout)), _np(dout))


@pytest.mark.parametrize("rate", [0.3, 0.6])
def test_dropout_drops_rate_and_scales(to_xp, xp, rate):
    layer = Dropout(rate, seed=5)
    x = to_xp(np.ones((200, 500), dtype=np.float32))
    out = _np(layer.forward(x, training=True))
    assert out.dtype == np.float32
    dropped = np.mean(out == 0)
    assert abs(dropped - rate) < 0.01
    np.testing.assert_allclose(out[out != 0], 1.0 / (1.0 - rate), rtol=1e-6)
    assert abs(out.mean() - 1.0) < 0.03  # inverted dropout keeps the expected value
    back = _np(layer.backward(x))
    np.testing.assert_array_equal(back, out)  # the same mask on the way back
    out2 = _np(layer.forward(x, training=True))
    assert not np.array_equal(out, out2)  # a new mask each step


def test_dropout_rejects_bad_rate():
    for bad in (1.0, -0.1, "0.5", True):
        with pytest.raises(ValueError, match="rate"):
            Dropout(bad)


def test_batch_normalization_inference_uses_running_stats(to_xp):
    layer = BatchNormalization(epsilon=1e-5)
    x_host = _normal((16, 3), 3, 2.0) + 4.0
    x = to_xp(x_host)
    layer.forward(x, training=False)  # builds: running mean 0, var 1
    mu, var = np.array([1.0, -2.0, 0.5]), np.array([4.0, 0.25, 1.0])
    gamma, beta = np.array([2.0, 1.0, 0.5]), np.array([0.1, 0.2, 0.3])
    layer.state["running_mean"], layer.state["running_var"] = to_xp(mu), to_xp(var)
    layer.params["gamma"], layer.params["beta"] = to_xp(gamma), to_xp(beta)
    out = _np(layer.forward(x, training=False))
    np.testing.assert_allclose(out, gamma * (x_host - mu) / np.sqrt(var + 1e-5) + beta,
                               rtol=1e-12)
    np.testing.assert_array_equal(_np(layer.state["running_mean"]), mu)  # unchanged
    np.testing.assert_array_equal(_np(layer.state["running_var"]), var)


def test_batch_normalization_training_moves_running_stats(to_xp):
    layer = BatchNormalization(momentum=0.9)
    x_host = _normal((32, 4), 4, 3.0) + np.array([5.0, -1.0, 0.0, 2.0])
    x = to_xp(x_host)
    out = _np(layer.forward(x, training=True))
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=0), 1.0, rtol=1e-4)
    m_b, v_b = x_host.mean(axis=0), x_host.var(axis=0)
    np.testing.assert_allclose(_np(layer.state["running_mean"]), 0.1 * m_b, rtol=1e-12)
    np.testing.assert_allclose(_np(layer.state["running_var"]), 0.9 + 0.1 * v_b, rtol=1e-12)
    gap = np.abs(_np(layer.state["running_mean"]) - m_b).max()
    for _ in range(60):
        layer.forward(x, training=True)
    new_gap = np.abs(_np(layer.state["running_mean"]) - m_b).max()
    assert new_gap < 0.01 * gap
    np.testing.assert_allclose(_np(layer.state["running_var"]), v_b, rtol=1e-2)


def test_dense_builds_lazily(to_xp, xp):
    layer = Dense(4, activation="relu")
    assert not layer.built and layer.params == {} and layer.xp is None
    out = layer.forward(to_xp(_normal((5, 3), 1), "float32"))
    assert layer.built and layer.input_shape == (3,)
    assert out.shape == (5, 4)
    assert layer.params["W"].shape == (3, 4) and layer.params["b"].shape == (4,)
    assert layer.params["W"].dtype == xp.float32
    np.testing.assert_array_equal(_np(layer.params["b"]), np.zeros(4))
    assert layer.count_params() == 16
    assert layer.xp is xp


def test_dense_build_uses_floatx(backend, xp):
    before = xn.get_floatx()
    try:
        xn.set_floatx("float32")
        layer = Dense(3)
        layer.build((4,), xp=xp, device=backend.device)
        assert layer.params["W"].dtype == xp.float32
        xn.set_floatx("float64")
        layer = Dense(3)
        assert layer.build((4,), xp=xp, device=backend.device) == (3,)
        assert layer.params["W"].dtype == xp.float64
        assert layer.params["b"].dtype == xp.float64
    finally:
        xn.set_floatx(before)


def test_dense_rejects_bad_units():
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="units"):
            Dense(bad)


@pytest.mark.parametrize("make", [Relu, Sigmoid, Tanh, Softmax, Flatten, Dropout,
                                  BatchNormalization])
def test_layer_on_its_own_binds_namespace_from_input(to_xp, xp, make):
    layer = make()
    assert layer.xp is None
    out = layer.forward(to_xp(_normal((16, 3), 1)), training=True)
    assert layer.xp is xp
    assert isinstance(layer.backward(out), type(out))


def test_three_layer_backward_through_layers(to_xp):
    # Affine -> Sigmoid -> Affine -> SoftmaxWithLoss, checked end to end on W1
    W1, W2 = to_xp(_normal((3, 4), 1)), to_xp(_normal((4, 2), 2))
    x, t = to_xp(_normal((6, 3), 3)), to_xp(np.array([0, 1, 1, 0, 1, 0]), "int64")
    a1, s, a2, loss = Affine(W1), Sigmoid(), Affine(W2), SoftmaxWithLoss()

    def forward(w1):
        a1.params["W"] = w1
        return loss.forward(a2.forward(s.forward(a1.forward(x))), t)

    forward(W1)
    a1.backward(s.backward(a2.backward(loss.backward(1))))
    assert relative_error(a1.grads["W"], numerical_gradient(forward, W1)) < TOL


def test_get_activation():
    assert isinstance(get_activation("ReLU"), Relu)
    assert isinstance(get_activation(None), Linear)
    assert isinstance(get_activation(Tanh), Tanh)
    s = Sigmoid()
    assert get_activation(s) is s
    with pytest.raises(ValueError) as info:
        get_activation("mish")
    for name in ("relu", "sigmoid", "tanh", "softmax", "linear"):
        assert name in str(info.value)
    with pytest.raises(TypeError):
        get_activation(3)


def test_functions_and_layers_agree(to_xp):
    x = to_xp(_normal((3, 4), 1))
    for fn, make in ((F.sigmoid, Sigmoid), (F.relu, Relu), (F.tanh, Tanh), (F.softmax, Softmax)):
        np.testing.assert_allclose(_np(make().forward(x)), _np(fn(x)), rtol=1e-15)


# -- the gradient checker itself ----------------------------------------------------------

class _WrongIdentity(Layer):
    """Identity forward with a wrong backward (2 * dout): the checker must catch it."""

    def forward(self, x, training=True):
        self._ns(x)
        return x

    def backward(self, dout):
        return 2 * dout


class _WrongScale(Layer):
    """``x * w`` whose backward forgets to sum ``dw`` over the batch correctly."""

    def __init__(self, w):
        super().__init__()
        self.params["w"] = w

    def forward(self, x, training=True):
        self._ns(x)
        self.x = x
        return x * self.params["w"]

    def backward(self, dout):
        self.grads["w"] = self.xp.sum(dout, axis=0)  # wrong: should be sum(dout * x)
        return dout * self.params["w"]


def test_relative_error_of_equal_arrays_is_zero(to_xp):
    a = to_xp(_normal((3, 4), 1))
    assert relative_error(a, a) == 0.0
    z = to_xp(np.zeros(3))
    assert relative_error(z, z) == 0.0
    b = to_xp(np.array([1.0, 2.0]))
    assert relative_error(b, to_xp(np.array([1.0, 2.2]))) == pytest.approx(0.2 / 4.2)


def test_gradcheck_reports_a_wrong_backward(to_xp):
    errors = check_layer(_WrongIdentity(), to_xp(_normal((4, 3), 2)))
    assert errors["x"] > 0.1  # |2g - g| / |2g + g| = 1/3


def test_gradcheck_reports_a_wrong_parameter_gradient(to_xp):
    layer = _WrongScale(to_xp(_normal((3,), 3)))
    errors = check_layer(layer, to_xp(_normal((4, 3), 4)))
    assert errors["x"] < TOL  # the input gradient is right ...
    assert errors["w"] > 0.1  # ... the parameter gradient is not, and it shows


def test_check_function(to_xp, xp):
    x = to_xp(_normal((5,), 5))
    assert check_function(lambda a: xp.sum(a ** 3), lambda a: 3 * a ** 2, x) < TOL
    assert check_function(lambda a: xp.sum(a ** 3), lambda a: 2 * a ** 2, x) > 0.1


# -- a whole network: gradcheck.check_model ------------------------------------------------

@pytest.mark.parametrize("last, loss, target", [
    ("softmax", "sparse_categorical_crossentropy", "labels"),
    ("softmax", "categorical_crossentropy", "onehot"),
    ("sigmoid", "binary_crossentropy", "binary"),
    ("linear", "mse", "real"),
])
def test_check_model_every_parameter_of_a_network(backend, to_xp, last, loss, target):
    from xpnet import Sequential
    from xpnet.gradcheck import check_model
    from xpnet.layers import BatchNormalization, Dropout

    rng = np.random.default_rng(7)
    units = 1 if target == "binary" else 3
    model = Sequential([Dense(6, activation="tanh", input_dim=4), BatchNormalization(),
                        Dropout(0.3), Dense(units, activation=last)], seed=3, dtype="float64")
    model.compile(optimizer="sgd", loss=loss)
    model.build()
    x = to_xp(rng.standard_normal((16, 4)), "float64")
    labels = rng.integers(0, units, 16)
    y = {"labels": to_xp(labels, "int64"),
         "onehot": to_xp(np.eye(units)[labels], "float64"),
         "binary": to_xp(rng.integers(0, 2, (16, 1)), "float64"),
         "real": to_xp(rng.standard_normal((16, units)), "float64")}[target]
    for layer in model.layers:  # a fixed dropout stream, reset before every evaluation
        if isinstance(layer, Dropout):
            layer.rng = xn.backend.DeviceRNG(11, backend)
    errors = check_model(model, x, y)
    assert set(errors) == set(model.get_params())
    assert max(errors.values()) < 1e-6, errors


def test_check_model_catches_a_wrong_gradient(backend, to_xp):
    from xpnet import Sequential
    from xpnet.gradcheck import check_model

    model = Sequential([Dense(3, activation="tanh", input_dim=2), Dense(1)], seed=0, dtype="float64")
    model.compile(optimizer="sgd", loss="mse")
    model.build()
    rng = np.random.default_rng(0)
    x, y = to_xp(rng.standard_normal((8, 2)), "float64"), to_xp(rng.standard_normal((8, 1)), "float64")
    first = model.layers[0]
    right = first.backward_preactivation
    first.backward_preactivation = lambda dout: right(dout * 1.01)  # a 1% error in the first layer
    assert max(check_model(model, x, y).values()) > 1e-3
