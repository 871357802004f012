"""Hyper-parameters, layer sizes and seeds are checked where they are given, naming the
parameter; Nesterov and the book's batch norm follow the book -- on every backend.

References are independent of xpnet: the book's code (oreilly-japan/deep-learning-from-
scratch, ``common/optimizer.py`` and ``common/layers.py``) written out in NumPy as the
book writes it, and PyTorch's ``torch.optim.SGD(nesterov=True)``.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import xpnet as xn
from xpnet import backend as B
from xpnet import optimizers as O
from xpnet.initializers import initialize
from xpnet.layers import Affine, BatchNormalization, Dense, Dropout, Flatten
from xpnet.models import MultiLayerNet, Trainer, TwoLayerNet

N, D, K = 12, 4, 3
RNG = np.random.default_rng(11)
X = RNG.normal(size=(N, D)).astype("float32")
Y = RNG.integers(0, K, size=N)
NAN, INF = float("nan"), float("inf")


def _model(seed=0, layers=None):
    m = xn.Sequential(layers or [Dense(5, activation="relu", input_dim=D),
                                 Dense(K, activation="softmax")], seed=seed)
    m.compile("sgd", loss="sparse_categorical_crossentropy")
    return m


# (id, call() -> None, exception, regex the message must match)
CASES = [
    # optimizers: decay factors in [0, 1), lr finite > 0, weight_decay finite >= 0
    ("adam-beta1-1", lambda: O.Adam(beta1=1.0), ValueError, r"Adam\(beta1\).*\[0, 1\).*1\.0"),
    ("adam-beta2-1.5", lambda: O.Adam(beta2=1.5), ValueError, r"Adam\(beta2\).*\[0, 1\).*1\.5"),
    ("adam-beta1-negative", lambda: O.Adam(beta1=-0.1), ValueError, r"Adam\(beta1\)"),
    ("rmsprop-decay-2", lambda: O.RMSprop(decay_rate=2), ValueError,
     r"RMSprop\(decay_rate\).*\[0, 1\).*got 2"),
    ("momentum-nan", lambda: O.Momentum(momentum=NAN), ValueError,
     r"Momentum\(momentum\).*\[0, 1\).*nan"),
    ("momentum-1", lambda: O.Momentum(momentum=1.0), ValueError, r"Momentum\(momentum\)"),
    ("nesterov-nan", lambda: O.Nesterov(momentum=NAN), ValueError,
     r"Nesterov\(momentum\).*nan"),
    ("nesterov-string", lambda: O.Nesterov(momentum="0.9"), TypeError, r"Nesterov\(momentum\)"),
    ("sgd-lr-nan", lambda: O.SGD(lr=NAN), ValueError, r"SGD\(lr\) needs a finite positive"),
    ("adam-lr-inf", lambda: O.Adam(lr=INF), ValueError, r"Adam\(lr\).*finite.*inf"),
    ("momentum-weight-decay-nan", lambda: O.Momentum(weight_decay=NAN), ValueError,
     r"Momentum\(weight_decay\).*finite.*nan"),
    ("sgd-weight-decay-inf", lambda: O.SGD(weight_decay=INF), ValueError,
     r"SGD\(weight_decay\).*finite.*inf"),
    # BatchNormalization: momentum in [0, 1], epsilon > 0
    ("bn-momentum-5", lambda: BatchNormalization(momentum=5, epsilon=-1), ValueError,
     r"BatchNormalization\(momentum\).*\[0, 1\].*got 5"),
    ("bn-epsilon-negative", lambda: BatchNormalization(epsilon=-1), ValueError,
     r"BatchNormalization\(epsilon\).*positive.*-1"),
    ("bn-epsilon-0", lambda: BatchNormalization(epsilon=0), ValueError,
     r"BatchNormalization\(epsilon\)"),
    ("bn-momentum-nan", lambda: BatchNormalization(momentum=NAN), ValueError,
     r"BatchNormalization\(momentum\)"),
    ("bn-variance-start", lambda: BatchNormalization(moving_variance_initializer="twos"),
     ValueError, r"moving_variance_initializer.*'ones'.*'zeros'.*'twos'"),
    # Dropout: rate in [0, 1) (refused on the base too, by another message), seeds
    ("dropout-rate-1", lambda: Dropout(1.0), ValueError,
     r"Dropout\(rate\) needs a number in \[0, 1\)"),
    ("dropout-rate-negative", lambda: Dropout(-0.2), ValueError, r"Dropout\(rate\).*\[0, 1\)"),
    ("dropout-seed-negative", lambda: Dropout(0.5, seed=-1), ValueError,
     r"Dropout\(seed\).*int in \[0, 2\*\*64\).*-1"),
    ("dropout-seed-float", lambda: Dropout(0.5, seed=2.5), TypeError, r"Dropout\(seed\).*2\.5"),
    ("dropout-seed-string", lambda: Dropout(0.5, seed="3"), TypeError, r"Dropout\(seed\).*'3'"),
    ("dropout-seed-huge", lambda: Dropout(0.5, seed=2**64), ValueError, r"Dropout\(seed\)"),
    # seeds of models and fit
    ("sequential-seed-negative", lambda: xn.Sequential([Dense(3, input_dim=D)], seed=-1),
     ValueError, r"Sequential\(seed\).*-1"),
    ("sequential-seed-float", lambda: xn.Sequential([Dense(3, input_dim=D)], seed=2.5),
     TypeError, r"Sequential\(seed\).*2\.5"),
    ("sequential-seed-string", lambda: xn.Sequential([Dense(3, input_dim=D)], seed="0"),
     TypeError, r"Sequential\(seed\).*'0'"),
    ("sequential-seed-bool", lambda: xn.Sequential([Dense(3, input_dim=D)], seed=True),
     TypeError, r"Sequential\(seed\).*True"),
    ("sequential-seed-generator",
     lambda: xn.Sequential([Dense(3, input_dim=D)], seed=np.random.default_rng(0)),
     TypeError, r"Sequential\(seed\).*not a generator"),
    ("fit-seed-negative", lambda: _model().fit(X, Y, verbose=0, seed=-1), ValueError,
     r"fit\(seed\).*-1"),
    ("fit-seed-float", lambda: _model().fit(X, Y, verbose=0, seed=1.5), TypeError,
     r"fit\(seed\).*1\.5"),
    ("fit-seed-string", lambda: _model().fit(X, Y, verbose=0, seed="1"), TypeError,
     r"fit\(seed\).*'1'"),
    ("multilayernet-seed-negative", lambda: MultiLayerNet(D, [3], K, seed=-5), ValueError,
     r"MultiLayerNet\(seed\).*-5"),
    ("multilayernet-seed-float", lambda: MultiLayerNet(D, [3], K, seed=0.5), TypeError,
     r"MultiLayerNet\(seed\)"),
    ("initialize-seed-negative", lambda: initialize("he", (3, 2), -1), ValueError,
     r"initialize\(rng\).*-1"),
    ("initialize-seed-string", lambda: initialize("he", (3, 2), "7"), TypeError,
     r"initialize\(rng\).*'7'"),
    # sizes: positive ints, at the layer, the parameter named
    ("dense-0", lambda: Dense(0), ValueError, r"Dense\(units\) needs a positive int, got 0"),
    ("dense-float", lambda: Dense(2.5), TypeError, r"Dense\(units\).*2\.5"),
    ("dense-bool", lambda: Dense(True), TypeError, r"Dense\(units\).*True"),
    ("input-shape-negative", lambda: Dense(3, input_shape=(-3,)), ValueError,
     r"Dense\(input_shape\) needs positive ints.*\(-3,\)"),
    ("input-shape-0", lambda: Dense(3, input_shape=(0,)), ValueError,
     r"Dense\(input_shape\).*0 or negative size has no features.*\(0,\)"),
    ("input-dim-0", lambda: Dense(3, input_dim=0), ValueError,
     r"Dense\(input_dim\) needs a positive int, got 0"),
    ("input-dim-float", lambda: Dense(3, input_dim=2.5), TypeError, r"Dense\(input_dim\).*2\.5"),
    ("input-shape-int", lambda: Dense(3, input_shape=4), TypeError,
     r"Dense\(input_shape\) needs a tuple.*\(4,\)"),
    ("flatten-input-shape-0", lambda: Flatten(input_shape=(0, 28)), ValueError,
     r"Flatten\(input_shape\).*\(0, 28\)"),
    ("bn-input-shape-negative", lambda: BatchNormalization(input_shape=(-1,)), ValueError,
     r"BatchNormalization\(input_shape\)"),
    ("sequential-0-features", lambda: _model(layers=[Dense(K, input_dim=0)]), ValueError,
     r"Dense\(input_dim\)"),
    ("affine-1d-W", lambda: Affine(B.asarray(np.ones(3))), ValueError,
     r"Affine\(W, b\) needs a 2-D W.*\(3,\)"),
    ("affine-b-mismatch", lambda: Affine(B.asarray(np.ones((3, 2))), B.asarray(np.ones(3))),
     ValueError, r"Affine\(W, b\).*W \(3, 2\) and b \(3,\)"),
    ("multilayernet-input-size-0", lambda: MultiLayerNet(0, [3], K), ValueError,
     r"MultiLayerNet\(input_size\).*got 0"),
    ("multilayernet-hidden-float", lambda: MultiLayerNet(D, [3, 2.0], K), TypeError,
     r"MultiLayerNet\(hidden_size_list\[1\]\).*2\.0"),
    ("multilayernet-hidden-int", lambda: MultiLayerNet(D, 5, K), TypeError,
     r"MultiLayerNet\(hidden_size_list\) needs a list"),
    ("multilayernet-dropout-ratio", lambda: MultiLayerNet(D, [3], K, use_dropout=True,
                                                          dropout_ratio=1.5), ValueError,
     r"MultiLayerNet\(dropout_ratio\).*1\.5"),
    ("multilayernet-weight-decay-inf", lambda: MultiLayerNet(D, [3], K,
                                                             weight_decay_lambda=INF),
     ValueError, r"MultiLayerNet\(weight_decay_lambda\).*inf"),
    ("twolayernet-seed-negative", lambda: TwoLayerNet(D, 3, K, seed=-1), ValueError,
     r"TwoLayerNet\(seed\).*-1"),
    ("twolayernet-hidden-float", lambda: TwoLayerNet(D, 2.5, K), TypeError,
     r"hidden_size needs a positive int.*2\.5"),
    ("trainer-seed-string", lambda: Trainer(TwoLayerNet(D, 3, K), X[:8], Y[:8], X[:4], Y[:4],
                                             seed="7"), TypeError, r"Trainer\(seed\).*'7'"),
    ("compile-empty-model", lambda: xn.Sequential().compile("sgd", "mse"), ValueError,
     r"no layers, so it cannot compile"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_hyper_parameters_are_refused_where_given(backend, case):
    _, call, exc, pattern = case
    with pytest.raises(exc, match=pattern):
        call()


def test_the_error_is_both_value_and_type_error():
    """``except ValueError`` and ``except TypeError`` both catch a bad hyper-parameter."""
    for call in (lambda: Dense(2.5), lambda: O.Adam(beta1=1.0)):
        for kind in (ValueError, TypeError):
            with pytest.raises(kind):
                call()


# -- what a user gives today keeps working, NumPy scalars included -----------------------

def test_numpy_integers_size_and_seed_the_book_nets(backend):
    a = TwoLayerNet(np.int64(D), np.int32(3), np.int64(K), seed=np.int64(4))
    b = TwoLayerNet(D, 3, K, seed=4)
    np.testing.assert_array_equal(xn.to_numpy(a.params["W1"]), xn.to_numpy(b.params["W1"]))


def test_numpy_integers_are_sizes(backend):
    m = _model(layers=[Dense(np.int64(5), activation="relu", input_dim=np.int64(D)),
                       Dense(np.int32(K), activation="softmax")])
    assert m.layers[0].units == 5 and type(m.layers[0].units) is int
    assert m.layers[0].input_shape == (D,) and type(m.layers[0].input_shape[0]) is int
    assert xn.to_numpy(m.predict(X)).shape == (N, K)
    shaped = Dense(2, input_shape=(np.int64(2), np.int64(2)))
    assert shaped.input_shape == (2, 2)
    net = MultiLayerNet(np.int64(D), [np.int64(3)], np.int64(K), seed=np.random.default_rng(0))
    assert xn.to_numpy(net.predict(X)).shape == (N, K)


def test_numpy_floats_and_ends_of_ranges_are_hyper_parameters(backend):
    assert O.SGD(lr=np.float64(0.25)).lr == 0.25
    adam = O.Adam(lr=np.float32(0.5), beta1=np.float64(0.0), beta2=0.0)
    assert (adam.lr, adam.beta1, adam.beta2) == (0.5, 0.0, 0.0)
    assert O.Momentum(momentum=0).momentum == 0.0
    assert O.RMSprop(decay_rate=np.float64(0.5)).decay_rate == 0.5
    assert Dropout(np.float32(0.25)).rate == 0.25 and Dropout(0).rate == 0.0
    for m in (0, 1, np.float64(0.5)):
        assert BatchNormalization(momentum=m).momentum == float(m)


def test_numpy_integer_seeds_match_int_seeds(backend):
    runs = []
    for seed in (3, np.int64(3)):
        m = _model(seed=seed, layers=[Dense(5, activation="relu", input_dim=D),
                                      Dropout(0.5, seed=seed), Dense(K, activation="softmax")])
        hist = m.fit(X, Y, epochs=2, batch_size=4, verbose=0, seed=seed * 2)
        runs.append((hist.history["loss"], [xn.to_numpy(w) for w in m.get_weights()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(initialize("he", (3, 2), 5),
                                  initialize("he", (3, 2), np.random.default_rng(5)))


# -- Nesterov ---------------------------------------------------------------------------
# The book's common/optimizer.py (since "Fix Nesterov update function", 2021), in place:
#     params[key] += self.momentum * self.momentum * self.v[key]
#     params[key] -= (1 + self.momentum) * self.lr * grads[key]
#     self.v[key] *= self.momentum
#     self.v[key] -= self.lr * grads[key]
# PyTorch's SGD(momentum=m, nesterov=True): b = m*b + g; p -= lr * (g + m*b).
# With u = -lr*b: u_t = m*u_{t-1} - lr*g_t and p_t = p_{t-1} - lr*g_t + m*u_t
# = p_{t-1} + m*m*u_{t-1} - (1 + m)*lr*g_t: the book's step with v = u, exactly.

A = np.array([[3.0, 0.5, 0.0], [0.5, 1.0, -0.2], [0.0, -0.2, 0.4]])
BVEC = np.array([1.0, -2.0, 0.5])
W0 = np.array([2.0, 1.5, -1.0])
LR, MOM, STEPS = 0.1, 0.8, 12


def _grad(w):
    """Gradient of 0.5 * w.A.w - b.w: it depends on where the weights are."""
    return A @ w - BVEC


def _book_nesterov():
    params, v = {"w": W0.copy()}, {"w": np.zeros(3)}
    path = []
    for _ in range(STEPS):
        grads = {"w": _grad(params["w"])}
        for key in params.keys():
            params[key] += MOM * MOM * v[key]
            params[key] -= (1 + MOM) * LR * grads[key]
            v[key] *= MOM
            v[key] -= LR * grads[key]
        path.append((params["w"].copy(), v["w"].copy()))
    return path


def _xpnet_nesterov(to_xp):
    opt = O.Nesterov(lr=LR, momentum=MOM)
    params = {"w": to_xp(W0)}
    path = []
    for _ in range(STEPS):
        opt.update(params, {"w": to_xp(_grad(xn.to_numpy(params["w"])))})
        path.append((xn.to_numpy(params["w"]), xn.to_numpy(opt.state["slots"]["w"]["v"])))
    return path


def test_nesterov_follows_the_books_code(to_xp):
    for step, ((w, v), (w_ref, v_ref)) in enumerate(zip(_xpnet_nesterov(to_xp),
                                                        _book_nesterov())):
        np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-14, err_msg=f"step {step}")
        np.testing.assert_allclose(v, v_ref, rtol=1e-12, atol=1e-14, err_msg=f"step {step}")


def test_nesterov_is_torch_sgd_nesterov(to_xp):
    """The same trajectory as PyTorch, with xpnet's v = -lr * torch's momentum buffer."""
    torch = pytest.importorskip("torch")
    p = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=LR, momentum=MOM, nesterov=True)
    At, bt = torch.tensor(A), torch.tensor(BVEC)
    ours = _xpnet_nesterov(to_xp)
    for step in range(STEPS):
        opt.zero_grad()
        (0.5 * p @ At @ p - bt @ p).backward()
        opt.step()
        w, v = ours[step]
        buf = opt.state[p]["momentum_buffer"].detach().numpy()
        np.testing.assert_allclose(w, p.detach().numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=f"step {step}")
        np.testing.assert_allclose(v, -LR * buf, rtol=1e-12, atol=1e-14, err_msg=f"step {step}")


def test_the_old_nesterov_formula_is_not_nesterov():
    """The test above tells the forms apart: v updated first and the new v used
    (W += m**3 v - (1 + m + m**2) lr g) leaves the book's trajectory at the first step."""
    w, v = W0.copy(), np.zeros(3)
    g = _grad(w)
    v = MOM * v - LR * g
    w = w + MOM * MOM * v - (1 + MOM) * LR * g
    assert np.abs(w - _book_nesterov()[0][0]).max() > 1e-2


# -- the book's batch norm in MultiLayerNet ----------------------------------------------
# The book's common/layers.py BatchNormalization: running_mean = running_var = zeros at
# the first forward, momentum 0.9, std = sqrt(var + 10e-7) with the biased variance,
# running = momentum * running + (1 - momentum) * batch; inference uses the running values.

def _book_bn_train(x, gamma, beta, running_mean, running_var, momentum=0.9):
    mu = x.mean(axis=0)
    xc = x - mu
    var = np.mean(xc ** 2, axis=0)
    std = np.sqrt(var + 10e-7)
    out = gamma * (xc / std) + beta
    return (out, momentum * running_mean + (1 - momentum) * mu,
            momentum * running_var + (1 - momentum) * var)


def _book_bn_test(x, gamma, beta, running_mean, running_var):
    return gamma * ((x - running_mean) / np.sqrt(running_var + 10e-7)) + beta


def _book_forward(p, x, bn, train):
    h = x @ p["W1"] + p["b1"]
    if train:
        h, rm, rv = _book_bn_train(h, p["gamma1"], p["beta1"], *bn)
        bn = (rm, rv)
    else:
        h = _book_bn_test(h, p["gamma1"], p["beta1"], *bn)
    h = np.maximum(h, 0)
    return h @ p["W2"] + p["b2"], bn


def test_multi_layer_net_batch_norm_is_the_books(backend, to_xp):
    net = MultiLayerNet(D, [6], K, use_batchnorm=True, seed=4, dtype="float64")
    rng = np.random.default_rng(5)
    net.params["gamma1"] = to_xp(rng.uniform(0.5, 2.0, 6))
    net.params["beta1"] = to_xp(rng.normal(size=6))
    p = {k: xn.to_numpy(v) for k, v in net.params.items()}
    bn = (np.zeros(6), np.zeros(6))
    x0 = 0.01 * rng.normal(size=(5, D))  # before any training: the book's zero variance
    ref, _ = _book_forward(p, x0, bn, train=False)
    np.testing.assert_allclose(xn.to_numpy(net.predict(to_xp(x0))), ref, rtol=1e-9)
    layer = net.layers["BatchNorm1"]
    for _ in range(3):  # training: batch statistics, running statistics move
        x = rng.normal(size=(8, D)) * 3.0 + 1.0
        ref, bn = _book_forward(p, x, bn, train=True)
        np.testing.assert_allclose(xn.to_numpy(net.predict(to_xp(x), train_flg=True)), ref,
                                   rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(xn.to_numpy(layer.state["running_mean"]), bn[0], rtol=1e-12)
        np.testing.assert_allclose(xn.to_numpy(layer.state["running_var"]), bn[1], rtol=1e-12)
    x = rng.normal(size=(7, D))
    ref, _ = _book_forward(p, x, bn, train=False)
    np.testing.assert_allclose(xn.to_numpy(net.predict(to_xp(x))), ref, rtol=1e-10, atol=1e-12)


def test_keras_style_batch_norm_follows_the_book_when_asked(backend, to_xp):
    layer = BatchNormalization(epsilon=10e-7, moving_variance_initializer="zeros")
    rng = np.random.default_rng(6)
    x = rng.normal(size=(9, 3)) * 2.0
    out = xn.to_numpy(layer.forward(to_xp(x), training=True))
    ref, rm, rv = _book_bn_train(x, np.ones(3), np.zeros(3), np.zeros(3), np.zeros(3))
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xn.to_numpy(layer.state["running_var"]), rv, rtol=1e-12)
    x2 = rng.normal(size=(4, 3))
    np.testing.assert_allclose(xn.to_numpy(layer.forward(to_xp(x2), training=False)),
                               _book_bn_test(x2, 1.0, 0.0, rm, rv), rtol=1e-10, atol=1e-12)


# -- batch norm on a batch of one row ----------------------------------------------------

def test_batch_norm_on_one_row_warns_once_naming_the_layer(backend):
    m = _model(layers=[Dense(5, activation="relu", input_dim=D), BatchNormalization(),
                       Dense(K, activation="softmax")])
    x, y = X[:9], Y[:9]  # batch_size 4: the last batch of every epoch has 1 row
    with pytest.warns(RuntimeWarning, match=r"BatchNormalization layer 'batch_normalization'"
                      r".*batch of 1 row.*variance of one row is 0.*batch_size") as record:
        m.fit(x, y, epochs=3, batch_size=4, verbose=0, seed=0)
    assert len([w for w in record if "batch of 1 row" in str(w.message)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.fit(x, y, epochs=1, batch_size=3, verbose=0)  # no batch of 1: no warning
        m.predict(x[:1])  # inference on one row uses the running statistics: fine


def test_book_net_batch_norm_on_one_row_warns(backend):
    net = MultiLayerNet(D, [5], K, use_batchnorm=True, seed=0)
    with pytest.warns(RuntimeWarning, match=r"'BatchNorm1'.*batch of 1 row"):
        net.gradient(X[:1], Y[:1])
