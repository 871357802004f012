"""xpnet.functions against the book's numbers and a float64 NumPy reference, on every backend."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import xpnet as xn
from xpnet import functions as F
from xpnet.layers import Affine, Sigmoid

# the book's example for the loss functions (chapter 4): the answer is class 2
T_BOOK = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
Y_GOOD = [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]
Y_BAD = [0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0]


def _np(a):
    return xn.to_numpy(a)


def _ref_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# -- softmax ------------------------------------------------------------------------------

def test_softmax_book_values(to_xp):
    y = F.softmax(to_xp([0.3, 2.9, 4.0], "float64"))
    np.testing.assert_allclose(_np(y), [0.01821127, 0.24519181, 0.73659691], rtol=1e-6)
    assert float(np.sum(_np(y))) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 7)])
def test_softmax_batched_and_3d_along_last_axis(to_xp, shape):
    x = np.random.default_rng(0).normal(size=shape) * 3
    y = _np(F.softmax(to_xp(x)))
    assert y.shape == shape
    np.testing.assert_allclose(y, _ref_softmax(x), rtol=1e-12)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_does_not_overflow(to_xp, dtype):
    y = _np(F.softmax(to_xp([1010.0, 1000.0, 990.0], dtype)))
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, _ref_softmax([20.0, 10.0, 0.0]), rtol=1e-6)


# -- elementwise activations --------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_extremes_without_warning(to_xp, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = _np(F.sigmoid(to_xp([-1000.0, -50.0, -10.0, 0.0, 10.0, 50.0, 1000.0], dtype)))
    assert y.dtype == np.dtype(dtype)
    eps = np.finfo(dtype).eps
    # the tanh form saturates: 0 and 1 exactly, never outside [0, 1]
    assert y[0] == 0.0 and y[-1] == 1.0
    assert y[3] == 0.5
    assert np.all((y >= 0) & (y <= 1))
    exact = [1.0 / (1.0 + math.exp(-v)) for v in (-50.0, -10.0, 10.0, 50.0)]
    # absolute error within half an eps of 1 (plus rounding of the last step)
    np.testing.assert_allclose(y[[1, 2, 4, 5]], exact, rtol=0, atol=0.6 * eps)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_absolute_error_is_below_one_ulp_of_one(dtype):
    """Dense sweep against an exact reference: |error| <= 0.55 eps everywhere."""
    x = np.linspace(-60.0, 60.0, 200_001).astype(dtype)
    y = F.sigmoid(x).astype(np.longdouble)
    exact = 1.0 / (1.0 + np.exp(-x.astype(np.longdouble)))
    err = np.abs(y - exact).max() / np.finfo(dtype).eps
    assert err <= 0.55, err
    # sigmoid(-x) = 1 - sigmoid(x), to the same absolute accuracy on both sides
    np.testing.assert_allclose(F.sigmoid(-x), 1.0 - F.sigmoid(x), rtol=0,
                               atol=np.finfo(dtype).eps)


REFERENCES = {
    "sigmoid": (F.sigmoid, lambda x: 1.0 / (1.0 + np.exp(-x))),
    "relu": (F.relu, lambda x: np.maximum(0.0, x)),
    "tanh": (F.tanh, np.tanh),
    "identity": (F.identity, lambda x: x),
    "step_function": (F.step_function, lambda x: (x > 0).astype(np.float64)),
    "log_softmax": (F.log_softmax, lambda x: np.log(_ref_softmax(x))),
    "logsumexp": (F.logsumexp, lambda x: np.log(np.exp(x).sum(axis=-1))),
}


@pytest.mark.parametrize("name", list(REFERENCES))
def test_function_matches_float64_numpy_reference(to_xp, xp, name):
    f, ref = REFERENCES[name]
    x = np.random.default_rng(1).normal(size=(3, 6)) * 4
    y = f(to_xp(x))
    assert y.dtype == xp.float64
    np.testing.assert_allclose(_np(y), ref(x), rtol=1e-12, atol=1e-15)


def test_step_function_dtypes(to_xp, xp):
    y = F.step_function(to_xp([-1.0, 0.0, 2.0], "float32"))
    assert y.dtype == xp.float32
    np.testing.assert_array_equal(_np(y), [0.0, 0.0, 1.0])
    yi = F.step_function(to_xp([-3, 0, 5], "int64"))
    assert yi.dtype == xp.int64
    np.testing.assert_array_equal(_np(yi), [0, 0, 1])


def test_logsumexp_keepdims_and_large_values(to_xp):
    x = to_xp([[1000.0, 1000.0], [-1000.0, -1000.0]])
    out = _np(F.logsumexp(x, keepdims=True))
    assert out.shape == (2, 1)
    np.testing.assert_allclose(out[:, 0], [1000.0 + math.log(2), -1000.0 + math.log(2)])


# -- one_hot ------------------------------------------------------------------------------

def test_one_hot(to_xp, xp):
    oh = F.one_hot(to_xp([0, 2, 1], "int64"), 3)
    assert oh.dtype == xp.float32
    np.testing.assert_array_equal(_np(oh), np.eye(3)[[0, 2, 1]])
    oh2 = F.one_hot(to_xp([[1, 0], [3, 3]], "int64"), 4, dtype=xp.float64)
    assert oh2.shape == (2, 2, 4) and oh2.dtype == xp.float64
    np.testing.assert_array_equal(_np(oh2), np.eye(4)[[[1, 0], [3, 3]]])


# -- the book's losses --------------------------------------------------------------------

def test_mean_squared_error_book(to_xp):
    t = to_xp(T_BOOK, "float64")
    assert float(F.mean_squared_error(to_xp(Y_GOOD), t)) == pytest.approx(0.0975, rel=1e-12)
    assert float(F.mean_squared_error(to_xp(Y_BAD), t)) == pytest.approx(0.5975, rel=1e-12)


def test_mean_squared_error_batch_mean(to_xp):
    y = to_xp([Y_GOOD, Y_BAD])
    t = to_xp([T_BOOK, T_BOOK], "float64")
    assert float(F.mean_squared_error(y, t)) == pytest.approx((0.0975 + 0.5975) / 2, rel=1e-12)


def test_cross_entropy_error_book(to_xp):
    t = to_xp(T_BOOK, "float64")
    assert float(F.cross_entropy_error(to_xp(Y_GOOD), t)) == pytest.approx(0.510825457099338, rel=1e-12)
    assert float(F.cross_entropy_error(to_xp(Y_BAD), t)) == pytest.approx(2.302584092994546, rel=1e-12)


def test_cross_entropy_error_labels_equal_one_hot(to_xp):
    y = to_xp([Y_GOOD, Y_BAD])
    with_labels = float(F.cross_entropy_error(y, to_xp([2, 2], "int64")))
    with_one_hot = float(F.cross_entropy_error(y, to_xp([T_BOOK, T_BOOK], "float64")))
    assert with_labels == pytest.approx(with_one_hot, rel=1e-14)
    assert with_labels == pytest.approx((0.510825457099338 + 2.302584092994546) / 2, rel=1e-12)
    single = float(F.cross_entropy_error(to_xp(Y_GOOD), to_xp(np.array(2))))
    assert single == pytest.approx(0.510825457099338, rel=1e-12)


# -- numerical differentiation and gradient descent ---------------------------------------

def _function_1(x):
    return 0.01 * x ** 2 + 0.1 * x


def _function_2(x):
    return x[0] ** 2 + x[1] ** 2


def test_numerical_diff_book():
    assert F.numerical_diff(_function_1, 5.0) == pytest.approx(0.1999999999990898, abs=1e-15)
    assert F.numerical_diff(_function_1, 10.0) == pytest.approx(0.2999999999986347, abs=1e-15)


def test_numerical_diff_on_backend_arrays(to_xp):
    d5 = F.numerical_diff(_function_1, to_xp(np.float64(5.0)))
    assert float(d5) == pytest.approx(0.1999999999990898, abs=1e-15)


@pytest.mark.parametrize("point, expected", [((3.0, 4.0), (6.0, 8.0)),
                                             ((0.0, 2.0), (0.0, 4.0)),
                                             ((3.0, 0.0), (6.0, 0.0))])
def test_numerical_gradient_book(to_xp, xp, point, expected):
    x = to_xp(np.array(point))
    g = F.numerical_gradient(_function_2, x)
    assert g.dtype == xp.float64 and g.shape == (2,)
    np.testing.assert_allclose(_np(g), expected, atol=1e-8)
    np.testing.assert_array_equal(_np(x), point)  # x is not written into


def test_numerical_gradient_2d(to_xp, xp):
    host = np.arange(6.0).reshape(2, 3) - 2.5
    x = to_xp(host)
    g = F.numerical_gradient(lambda a: xp.sum(a * a * a), x)
    assert g.shape == (2, 3)
    np.testing.assert_allclose(_np(g), 3 * host ** 2, rtol=1e-7)
    np.testing.assert_array_equal(_np(x), host)


@pytest.mark.parametrize("lr, expected, rtol", [
    (0.1, [-6.11110793e-10, 8.14814391e-10], 1e-8),
    (10.0, [-2.58983747e13, -1.29524862e12], 1e-8),
    (1e-10, [-2.99999994, 3.99999992], 1e-8),
])
def test_gradient_descent_book(to_xp, lr, expected, rtol):
    init = to_xp(np.array([-3.0, 4.0]))
    x = F.gradient_descent(_function_2, init, lr=lr, step_num=100)
    np.testing.assert_allclose(_np(x), expected, rtol=rtol)
    np.testing.assert_array_equal(_np(init), [-3.0, 4.0])


def test_gradient_descent_lr_0_1_matches_closed_form(to_xp):
    # the central difference of x**2 is exactly 2x, so each step multiplies x by 0.8
    x = F.gradient_descent(_function_2, to_xp(np.array([-3.0, 4.0])), lr=0.1, step_num=100)
    np.testing.assert_allclose(_np(x), np.array([-3.0, 4.0]) * 0.8 ** 100, rtol=1e-6)


# -- the book's 3-layer network with fixed weights (chapter 3) ----------------------------

NET = {
    "W1": [[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]], "b1": [0.1, 0.2, 0.3],
    "W2": [[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]], "b2": [0.1, 0.2],
    "W3": [[0.1, 0.3], [0.2, 0.4]], "b3": [0.1, 0.2],
}
NET_OUT = [0.31682708, 0.69627909]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_three_layer_forward_with_functions(to_xp, dtype):
    p = {k: to_xp(v, dtype) for k, v in NET.items()}
    x = to_xp([1.0, 0.5], dtype)
    z1 = F.sigmoid(x @ p["W1"] + p["b1"])
    z2 = F.sigmoid(z1 @ p["W2"] + p["b2"])
    y = F.identity(z2 @ p["W3"] + p["b3"])
    np.testing.assert_allclose(_np(y), NET_OUT, rtol=1e-6)


def test_three_layer_forward_with_layers(to_xp):
    p = {k: to_xp(v, "float64") for k, v in NET.items()}
    net = [Affine(p["W1"], p["b1"]), Sigmoid(), Affine(p["W2"], p["b2"]), Sigmoid(),
           Affine(p["W3"], p["b3"])]
    out = to_xp([[1.0, 0.5]], "float64")
    for layer in net:
        out = layer.forward(out, training=False)
    np.testing.assert_allclose(_np(out), [NET_OUT], rtol=1e-7)


def test_sigmoid_uses_the_library_kernel_where_there_is_one(backend, to_xp):
    """torch.sigmoid on PyTorch (one kernel); the portable tanh form everywhere else, and
    both agree with the exact value to within an eps of 1."""
    from xpnet import backend as B

    native = B.native_sigmoid(backend.xp)
    assert (native is not None) == (backend.name == "torch")
    x = np.linspace(-30.0, 30.0, 6001).astype("float32")
    y = _np(F.sigmoid(to_xp(x)))
    exact = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    assert np.abs(y - exact).max() <= np.finfo(np.float32).eps
    owned = to_xp(x.copy())
    out = F.sigmoid(owned, overwrite_x=True)
    np.testing.assert_array_equal(_np(out), y)
    if native is not None:  # torch.sigmoid_ works in the array it was given
        assert out is owned
