"""``sample_weight`` and ``class_weight`` in fit and evaluate, with Keras 3's semantics.

The reference for the numbers is PyTorch (per-row losses with ``reduction="none"``,
weighted and divided by the batch size, differentiated by autograd) and the rules in
Keras' documentation: the default reduction ``"sum_over_batch_size"`` divides the sum of
the weighted row losses by the number of rows (a weight of 0 removes a row without
renormalising the others); ``class_weight`` maps each row's label to a weight (classes
not named weigh 1.0) and cannot be combined with ``sample_weight``; the ``metrics`` of
``compile`` are not weighted.
"""
from __future__ import annotations

import numpy as np
import pytest

import xpnet as xn
from xpnet import losses as L
from xpnet.layers import Dense
from xpnet.sample_weights import class_weights

N, D_IN, K = 12, 4, 3


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is the reference here")


def _data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D_IN))
    y = rng.integers(0, K, n)
    w = rng.random(n) * 2
    w[::4] = 0.0  # some rows out
    return x, y, w


def _losses(torch):
    """(xpnet loss, y, t, torch per-row loss of (y, t)) with y, t as float64 NumPy."""
    F = torch.nn.functional
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(N, K)) * 2
    probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    labels = rng.integers(0, K, N)
    onehot = np.eye(K)[labels]
    p01 = 1 / (1 + np.exp(-scores))
    b01 = (rng.random((N, K)) > 0.5).astype(float)
    t_real = rng.normal(size=(N, K))
    tprobs = np.exp(t_real) / np.exp(t_real).sum(axis=1, keepdims=True)
    return [
        (L.MeanSquaredError(), scores, t_real, lambda y, t: F.mse_loss(y, t, reduction="none").mean(1)),
        (L.CategoricalCrossentropy(), probs, onehot, lambda y, t: -(t * torch.log(y)).sum(1)),
        (L.CategoricalCrossentropy(from_logits=True), scores, onehot,
         lambda y, t: F.cross_entropy(y, t, reduction="none")),
        (L.SparseCategoricalCrossentropy(), probs, labels,
         lambda y, t: F.nll_loss(torch.log(y), t, reduction="none")),
        (L.BinaryCrossentropy(), p01, b01,
         lambda y, t: F.binary_cross_entropy(y, t, reduction="none").mean(1)),
        (L.BinaryCrossentropy(from_logits=True), scores, b01,
         lambda y, t: F.binary_cross_entropy_with_logits(y, t, reduction="none").mean(1)),
        (L.MeanAbsoluteError(), scores, t_real, lambda y, t: F.l1_loss(y, t, reduction="none").mean(1)),
        (L.Huber(0.7), scores, t_real,
         lambda y, t: F.huber_loss(y, t, delta=0.7, reduction="none").mean(1)),
        (L.KLDivergence(), probs, tprobs,
         lambda y, t: F.kl_div(torch.log(y), t, reduction="none").sum(1)),
        (L.LogCosh(), scores, t_real, lambda y, t: torch.log(torch.cosh(y - t)).mean(1)),
        (L.Hinge(), scores, 2 * b01 - 1, lambda y, t: torch.clamp(1 - t * y, min=0).mean(1)),
    ]


def test_weighted_loss_and_gradient_against_pytorch(backend, to_xp):
    """Every loss: sum(w * per-row loss) / n and its gradient (autograd) to 1e-12."""
    torch = _torch()
    w = _data()[2]
    for loss, y, t, ref in _losses(torch):
        ty = torch.tensor(y, requires_grad=True)
        tt = torch.from_numpy(t)
        value = (torch.from_numpy(w) * ref(ty, tt)).sum() / N
        value.backward()
        value = value.detach()
        tx = to_xp(t) if t.dtype.kind == "f" else to_xp(t, "int64")
        got, grad = loss.weighted_value_and_grad(to_xp(y, "float64"), tx, to_xp(w, "float64"))
        assert float(got) == pytest.approx(float(value), rel=1e-12, abs=1e-14), loss
        np.testing.assert_allclose(xn.to_numpy(grad), ty.grad.numpy(), rtol=1e-10, atol=1e-14,
                                   err_msg=repr(loss))
        # unit weights: the unweighted loss
        ones = to_xp(np.ones(N), "float64")
        assert float(loss.weighted_value(to_xp(y, "float64"), tx, ones)) == pytest.approx(
            float(loss.value(to_xp(y, "float64"), tx)), rel=1e-12)


def _model(dtype="float64", opt=None, seed=0, loss="sparse_categorical_crossentropy"):
    model = xn.Sequential([Dense(6, activation="tanh", input_dim=D_IN),
                           Dense(K, activation="softmax")], seed=seed, dtype=dtype)
    model.compile(opt or xn.optimizers.SGD(lr=0.5), loss=loss, metrics=["accuracy"])
    return model


def test_a_weighted_step_matches_pytorch(backend):
    """One full-batch SGD step with weights (the fused softmax/cross-entropy path) against
    PyTorch autograd of sum(w * cross_entropy) / n."""
    torch = _torch()
    x, y, w = _data()
    model = _model()
    before = [np.array(a) for a in model.get_weights()]  # W1, b1, W2, b2
    model.fit(x, y, batch_size=N, epochs=1, shuffle=False, verbose=0, sample_weight=w)
    W1, b1, W2, b2 = (torch.tensor(a, requires_grad=True) for a in before)
    z = torch.tanh(torch.from_numpy(x) @ W1 + b1) @ W2 + b2
    loss = (torch.from_numpy(w) * torch.nn.functional.cross_entropy(
        z, torch.from_numpy(y), reduction="none")).sum() / N
    loss.backward()
    expected = [a.detach().numpy() - 0.5 * a.grad.numpy() for a in (W1, b1, W2, b2)]
    for got, ref in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-13)


def test_a_zero_weight_removes_rows_without_renormalising(backend):
    """sum_over_batch_size: with weights 1 on k of n rows and 0 on the rest, an SGD step
    equals an SGD step on the k rows with the rate scaled by k / n; weights of 2 equal
    twice the rate."""
    x, y, _ = _data(2)
    keep = np.arange(N) % 3 != 0
    w = keep.astype(float)
    a, b = _model(), _model(opt=xn.optimizers.SGD(lr=0.5 * keep.sum() / N))
    a.fit(x, y, batch_size=N, epochs=1, shuffle=False, verbose=0, sample_weight=w)
    b.fit(x[keep], y[keep], batch_size=N, epochs=1, shuffle=False, verbose=0)
    for p, q in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)
    c, d = _model(), _model(opt=xn.optimizers.SGD(lr=1.0))
    c.fit(x, y, batch_size=N, epochs=1, shuffle=False, verbose=0, sample_weight=np.full(N, 2.0))
    d.fit(x, y, batch_size=N, epochs=1, shuffle=False, verbose=0)
    for p, q in zip(c.get_weights(), d.get_weights()):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)


def _row_losses(model, x, y):
    """Per-row cross-entropy of the model's predictions, by NumPy."""
    p = model.predict(x)
    return -np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1 - 1e-7))


def test_reported_losses_follow_keras_and_metrics_are_not_weighted(backend):
    x, y, w = _data(3, n=30)
    model = _model()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, sample_weight=w)
    rows = _row_losses(model, x, y)
    logs = model.evaluate(x, y, batch_size=7, verbose=0, sample_weight=w, return_dict=True)
    assert logs["loss"] == pytest.approx(np.sum(w * rows) / len(y), rel=1e-10)
    acc = np.mean(np.argmax(model.predict(x), axis=1) == y)
    assert logs["accuracy"] == pytest.approx(acc, rel=1e-12)  # compile(metrics=): unweighted
    plain = model.evaluate(x, y, verbose=0, return_dict=True)
    assert plain["loss"] == pytest.approx(np.mean(rows), rel=1e-10)


def test_the_epoch_loss_is_the_weighted_sum_over_all_rows(backend):
    """An epoch's logged loss: the sum over batches of sum(w * l) / N (each batch loss is
    divided by its rows and weighted by them), here with lr=1e-30 so the model stays put (in float64)."""
    x, y, w = _data(4, n=25)
    model = _model(opt=xn.optimizers.SGD(lr=1e-30))
    history = model.fit(x, y, batch_size=10, epochs=1, verbose=0, sample_weight=w)
    assert history.history["loss"][0] == pytest.approx(
        np.sum(w * _row_losses(model, x, y)) / 25, rel=1e-10)


def test_validation_weights_from_the_tuple_and_from_the_split(backend):
    x, y, w = _data(5, n=40)
    xv, yv, wv = _data(6, n=15)
    model = _model(opt=xn.optimizers.SGD(lr=1e-30))
    h = model.fit(x, y, batch_size=10, epochs=1, verbose=0, sample_weight=w,
                  validation_data=(xv, yv, wv))
    assert h.history["val_loss"][0] == pytest.approx(
        np.sum(wv * _row_losses(model, xv, yv)) / 15, rel=1e-10)
    h = model.fit(x, y, batch_size=10, epochs=1, verbose=0, sample_weight=w,
                  validation_split=0.25)  # the last 10 rows, and their weights
    assert h.history["val_loss"][0] == pytest.approx(
        np.sum(w[30:] * _row_losses(model, x[30:], y[30:])) / 10, rel=1e-10)
    assert h.history["loss"][0] == pytest.approx(
        np.sum(w[:30] * _row_losses(model, x[:30], y[:30])) / 30, rel=1e-10)


def test_class_weight_is_a_sample_weight_by_label(backend):
    x, y, _ = _data(7, n=24)
    cw = {0: 0.5, 2: 3.0}  # class 1 not named: 1.0
    by_hand = np.array([cw.get(int(c), 1.0) for c in y])
    a, b = _model(), _model()
    a.fit(x, y, batch_size=6, epochs=2, verbose=0, seed=1, class_weight=cw)
    b.fit(x, y, batch_size=6, epochs=2, verbose=0, seed=1, sample_weight=by_hand)
    for p, q in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)
    onehot = np.eye(K)[y]
    c = _model(loss="categorical_crossentropy")
    c.fit(x, onehot, batch_size=6, epochs=2, verbose=0, seed=1, class_weight=cw)
    for p, q in zip(a.get_weights(), c.get_weights()):
        np.testing.assert_allclose(p, q, rtol=1e-10, atol=1e-13)


def test_class_weights_of_each_kind_of_target(xp):
    labels = np.array([0, 1, 2, 1])
    cw = {1: 4.0}
    expected = [1.0, 4.0, 1.0, 4.0]
    for t in (labels, labels[:, None] * 1.0, np.eye(3)[labels]):
        got = class_weights(xp.asarray(t), cw, "float32")
        np.testing.assert_array_equal(xn.to_numpy(got), expected)
    binary = np.array([[0.0], [1.0], [0.9], [0.2]])  # rounded, as Keras
    got = class_weights(xp.asarray(binary), {0: 2.0, 1: 5.0}, "float32")
    np.testing.assert_array_equal(xn.to_numpy(got), [2.0, 5.0, 5.0, 2.0])


@pytest.mark.parametrize("kwargs, error, words", [
    ({"sample_weight": np.ones(5)}, ValueError, "one weight per row"),
    ({"sample_weight": np.ones((12, 2))}, ValueError, "shape (12,)"),
    ({"sample_weight": -np.ones(12)}, ValueError, "negative"),
    ({"sample_weight": np.full(12, np.nan)}, ValueError, "NaN"),
    ({"sample_weight": np.ones(12), "class_weight": {0: 1.0}}, ValueError, "not both"),
    ({"class_weight": {-1: 1.0}}, ValueError, "class indices"),
    ({"class_weight": {0: -2.0}}, ValueError, ">= 0"),
    ({"class_weight": [1.0, 2.0]}, TypeError, "dict"),
])
def test_bad_weights_are_named(kwargs, error, words):
    x, y, _ = _data()
    with pytest.raises(error) as info:
        _model().fit(x, y, epochs=1, verbose=0, **kwargs)
    assert words in str(info.value)


def test_a_loss_without_per_row_values_says_so():
    class Mine(L.Loss):
        name = "mine"

        def value_and_grad(self, y, t):
            return ((y - t) ** 2).mean(), 2 * (y - t) / y.size

    x, y, w = _data()
    model = xn.Sequential([Dense(1, input_dim=D_IN)], dtype="float64")
    model.compile("sgd", loss=Mine())
    with pytest.raises(NotImplementedError, match="per_sample"):
        model.fit(x, y[:, None] * 1.0, epochs=1, verbose=0, sample_weight=w)


def test_a_compiled_weighted_step_equals_the_eager_one():
    pytest.importorskip("jax", reason="the compiled step runs on JAX")
    x, y, w = _data(8, n=40)
    with xn.use_backend("jax"):
        runs = []
        for jit in (False, True):
            model = _model(opt=xn.optimizers.Adam(lr=0.01))
            model.compile(xn.optimizers.Adam(lr=0.01), "sparse_categorical_crossentropy",
                          metrics=["accuracy"], jit_compile=jit)
            h = model.fit(x, y, batch_size=16, epochs=2, verbose=0, seed=2, sample_weight=w,
                          validation_data=(x, y, w))
            runs.append((model.get_weights(), h.history))
    for p, q in zip(runs[0][0], runs[1][0]):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-12)
    for k in runs[0][1]:
        np.testing.assert_allclose(runs[0][1][k], runs[1][1][k], rtol=1e-12)
