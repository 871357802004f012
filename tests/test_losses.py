"""Losses: float64 gradient checks on every backend, names, fused gradients, known values."""
from __future__ import annotations

import math

import numpy as np
import pytest

import xpnet as xn
from xpnet import functions as F
from xpnet import losses as L
from xpnet.gradcheck import check_loss, relative_error
from xpnet.layers import Sigmoid, Softmax

TOL = 1e-6


def _np(a):
    return xn.to_numpy(a)


def _rng(seed):
    return np.random.default_rng(seed)


def _probs(n, k, seed):
    """Softmax probabilities of small logits: every one well above 0 (> ~0.1 for k=5), so
    the central difference of -log(y) with h=1e-4 is accurate to well below 1e-6."""
    z = _rng(seed).normal(size=(n, k)) * 0.3
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# -- gradient checks ----------------------------------------------------------------------

def test_gradcheck_mse(to_xp):
    y, t = to_xp(_rng(0).normal(size=(4, 3))), to_xp(_rng(1).normal(size=(4, 3)))
    assert check_loss(L.MeanSquaredError(), y, t) < TOL


def test_gradcheck_mse_flat_targets(to_xp):
    y, t = to_xp(_rng(0).normal(size=(5, 1))), to_xp(_rng(1).normal(size=(5,)))
    assert check_loss(L.MeanSquaredError(), y, t) < TOL


def test_gradcheck_categorical_crossentropy(to_xp):
    y = to_xp(_probs(4, 5, 2))
    t = to_xp(np.eye(5)[[0, 4, 2, 2]])
    assert check_loss(L.CategoricalCrossentropy(), y, t) < TOL


@pytest.mark.parametrize("label_shape", [(4,), (4, 1)])
def test_gradcheck_sparse_categorical_crossentropy(to_xp, label_shape):
    y = to_xp(_probs(4, 5, 3))
    t = to_xp(np.array([1, 0, 4, 3]).reshape(label_shape), "int64")
    assert check_loss(L.SparseCategoricalCrossentropy(), y, t) < TOL


def test_gradcheck_binary_crossentropy(to_xp):
    y = to_xp(_rng(4).uniform(0.05, 0.95, size=(6, 2)))
    t = to_xp(_rng(5).integers(0, 2, size=(6, 2)).astype(np.float64))
    assert check_loss(L.BinaryCrossentropy(), y, t) < TOL


# -- the fused gradients equal the gradient through the activation's backward -------------

@pytest.mark.parametrize("loss_cls, sparse", [(L.CategoricalCrossentropy, False),
                                              (L.SparseCategoricalCrossentropy, True)])
def test_grad_from_output_matches_softmax_backward(to_xp, loss_cls, sparse):
    z = to_xp(_rng(6).normal(size=(5, 4)))
    labels = np.array([3, 0, 1, 1, 2])
    t = to_xp(labels, "int64") if sparse else to_xp(np.eye(4)[labels])
    loss = loss_cls()
    assert loss.fused_activation is Softmax
    softmax = Softmax()
    y = softmax.forward(z)
    _, grad_y = loss.value_and_grad(y, t)
    through = softmax.backward(grad_y)
    assert relative_error(loss.grad_from_output(y, t), through) < 1e-10
    # and both equal the numerical gradient with respect to the logits
    numeric = F.numerical_gradient(lambda zz: loss(F.softmax(zz), t), z)
    assert relative_error(through, numeric) < TOL


def test_grad_from_output_matches_sigmoid_backward(to_xp):
    z = to_xp(_rng(7).normal(size=(6, 1)))
    t = to_xp(np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0]))  # flat targets are reshaped
    loss = L.BinaryCrossentropy()
    assert loss.fused_activation is Sigmoid
    sigmoid = Sigmoid()
    y = sigmoid.forward(z)
    _, grad_y = loss.value_and_grad(y, t)
    through = sigmoid.backward(grad_y)
    assert relative_error(loss.grad_from_output(y, t), through) < 1e-10
    numeric = F.numerical_gradient(lambda zz: loss(F.sigmoid(zz), t), z)
    assert relative_error(through, numeric) < TOL


def test_fused_gradient_is_the_books_softmax_with_loss_backward(to_xp):
    """The book's SoftmaxWithLoss.backward for labels (``dx[arange(n), t] -= 1``, written
    with NumPy), the layer's backward and the loss's fused gradient are one gradient."""
    z_host, labels = _rng(8).normal(size=(5, 4)), np.array([3, 0, 1, 1, 2])
    y_host = np.exp(z_host) / np.exp(z_host).sum(axis=1, keepdims=True)
    book = y_host.copy()
    book[np.arange(5), labels] -= 1
    book /= 5
    layer = xn.layers.SoftmaxWithLoss()
    layer.forward(to_xp(z_host), to_xp(labels, "int64"))
    loss = L.SparseCategoricalCrossentropy()
    fused = loss.fused_value_and_grad(to_xp(y_host), to_xp(labels, "int64"))[1]
    logits = L.SparseCategoricalCrossentropy(from_logits=True).value_and_grad(
        to_xp(z_host), to_xp(labels, "int64"))[1]
    for grad in (layer.backward(), fused, logits):
        np.testing.assert_allclose(_np(grad), book, rtol=1e-12, atol=1e-15)


# -- known values -------------------------------------------------------------------------

def test_mse_is_mean_of_squares(to_xp):
    y = to_xp([[1.0, 2.0], [3.0, 4.0]])
    t = to_xp(np.zeros((2, 2)))
    value, grad = L.MeanSquaredError().value_and_grad(y, t)
    assert float(value) == 7.5
    np.testing.assert_allclose(_np(grad), [[0.5, 1.0], [1.5, 2.0]])
    assert float(L.get_loss("mse")(to_xp([0.5, 1.5]), to_xp([1.0, 1.0]))) == 0.25


def test_binary_crossentropy_hand_computed(to_xp):
    y, t = to_xp([0.9, 0.2, 0.6]), to_xp([1.0, 0.0, 0.0])
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.4)) / 3
    assert float(L.BinaryCrossentropy()(y, t)) == pytest.approx(expected, rel=1e-12)


def test_binary_crossentropy_clips_instead_of_inf(to_xp):
    value = float(L.BinaryCrossentropy()(to_xp([0.0, 1.0]), to_xp([1.0, 0.0])))
    assert value == pytest.approx(-math.log(1e-7), rel=1e-6)


def test_categorical_crossentropy_hand_computed(to_xp):
    y = to_xp([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]])
    expected = -(math.log(0.7) + math.log(0.25)) / 2
    one_hot = to_xp([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert float(L.CategoricalCrossentropy()(y, one_hot)) == pytest.approx(expected, rel=1e-12)
    for labels in ([1, 2], [[1], [2]]):
        sparse = L.SparseCategoricalCrossentropy()(y, to_xp(labels, "int64"))
        assert float(sparse) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("loss", [L.MeanSquaredError(), L.BinaryCrossentropy()])
def test_loss_value_is_a_0d_array_of_the_backend(backend, xp, to_xp, loss):
    value = loss(to_xp([0.25]), to_xp([0.0]))
    assert value.shape == () and value.dtype == xp.float64
    if backend.name != "numpy":  # NumPy reductions give a NumPy scalar, not a 0-d array
        assert isinstance(value, backend.array_type)


def test_book_style_forward_backward(to_xp):
    loss = L.MeanSquaredError()
    y, t = to_xp([1.0, 3.0]), to_xp([0.0, 0.0])
    assert float(loss.forward(y, t)) == 5.0
    np.testing.assert_allclose(_np(loss.backward(2.0)), [2.0, 6.0])


# -- names --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(L.LOSSES))
def test_names_resolve(name):
    loss = L.get_loss(name)
    assert isinstance(loss, L.LOSSES[name])
    assert isinstance(L.get_loss(name.upper()), L.LOSSES[name])


def test_instances_and_classes_resolve():
    loss = L.BinaryCrossentropy()
    assert L.get_loss(loss) is loss
    assert isinstance(L.get_loss(L.MeanSquaredError), L.MeanSquaredError)


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError) as info:
        L.get_loss("squared_hinge")
    for name in L.LOSSES:
        assert name in str(info.value)
    with pytest.raises(TypeError):
        L.get_loss(3)
