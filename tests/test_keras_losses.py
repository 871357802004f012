"""Keras' other losses and the top-k accuracies.

Values against PyTorch's losses where it has them and against the formulas in Keras'
documentation otherwise; gradients by float64 numerical checks on every backend.
"""
from __future__ import annotations

import numpy as np
import pytest

import xpnet as xn
from xpnet import losses as L
from xpnet import metrics as M
from xpnet.gradcheck import check_loss

TOL = 1e-7


def _yt(seed=0, shape=(6, 4)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) * 2, rng.standard_normal(shape) * 2


def _probs(seed, shape=(6, 4), least=0.05):
    p = np.random.default_rng(seed).random(shape) + least
    return p / p.sum(axis=1, keepdims=True)


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is the reference here")


def _value(loss, to_xp, y, t):
    return float(loss(to_xp(y), to_xp(t)))


def test_mae_and_huber_against_pytorch(backend, to_xp):
    torch = _torch()
    y, t = _yt()
    ty, tt = torch.from_numpy(y), torch.from_numpy(t)
    assert _value(L.MeanAbsoluteError(), to_xp, y, t) == pytest.approx(
        float(torch.nn.functional.l1_loss(ty, tt)), rel=1e-12)
    for delta in (1.0, 0.5, 3.0):
        assert _value(L.Huber(delta), to_xp, y, t) == pytest.approx(
            float(torch.nn.functional.huber_loss(ty, tt, delta=delta)), rel=1e-12)


def test_kl_divergence_against_pytorch(backend, to_xp):
    torch = _torch()
    y, t = _probs(1), _probs(2)
    ref = torch.nn.functional.kl_div(torch.log(torch.from_numpy(y)), torch.from_numpy(t),
                                     reduction="batchmean")  # sum(t * log(t / y)) / n
    assert _value(L.KLDivergence(), to_xp, y, t) == pytest.approx(float(ref), rel=1e-12)


def test_log_cosh_and_hinge_against_keras_formulas(backend, to_xp):
    y, t = _yt(3)
    # keras.losses.log_cosh: mean(log(cosh(y_pred - y_true)), axis=-1), then over the batch
    assert _value(L.LogCosh(), to_xp, y, t) == pytest.approx(np.mean(np.log(np.cosh(y - t))),
                                                             rel=1e-12)
    big = np.array([[800.0, -800.0]])  # cosh overflows; log-cosh is |d| - log 2 there
    assert _value(L.LogCosh(), to_xp, big, np.zeros_like(big)) == pytest.approx(800 - np.log(2))
    # keras.losses.hinge: mean(maximum(1 - y_true * y_pred, 0), axis=-1); 0/1 -> -1/1
    signs = np.sign(t)
    expected = np.mean(np.maximum(1 - signs * y, 0))
    assert _value(L.Hinge(), to_xp, y, signs) == pytest.approx(expected, rel=1e-12)
    assert _value(L.Hinge(), to_xp, y, (signs + 1) / 2) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("loss", [L.MeanAbsoluteError(), L.Huber(0.7), L.LogCosh(), L.Hinge(),
                                  L.KLDivergence()], ids=lambda l: l.name)
def test_gradients(to_xp, loss):
    if loss.name == "kl_divergence":
        # off small y, where the central difference of log(y) itself errs by ~h^2 / y^3
        y, t = _probs(4, least=0.5), _probs(5)
    elif loss.name == "hinge":
        y, t = _yt(6)
        t = np.sign(t)
        y = np.where(np.abs(1 - t * y) < 1e-2, y + 0.1, y)  # off the kink at t * y = 1
    else:
        y, t = _yt(7)
        if loss.name == "huber":
            d = y - t
            y = np.where(np.abs(np.abs(d) - 0.7) < 1e-2, y + 0.1, y)
    assert check_loss(loss, to_xp(y), to_xp(t)) < TOL


def test_names_resolve():
    for name, cls in [("mae", L.MeanAbsoluteError), ("huber", L.Huber), ("hinge", L.Hinge),
                      ("kl_divergence", L.KLDivergence), ("kld", L.KLDivergence),
                      ("log_cosh", L.LogCosh)]:
        assert type(L.get_loss(name)) is cls
    assert L.Huber().delta == 1.0  # keras.losses.Huber(delta=1.0)


def test_a_function_loss_needs_its_gradient(backend):
    def squares(y_true, y_pred):
        xp = xn.backend.get_namespace()
        return xp.mean((y_pred - y_true) ** 2, axis=-1)

    with pytest.raises(TypeError, match="FunctionLoss"):
        L.get_loss(squares)
    with pytest.raises(TypeError, match="needs its gradient"):
        L.FunctionLoss(squares)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]])).astype("float32")
    histories = []
    for loss in ("mse", L.FunctionLoss(squares, grad=lambda t, p: 2.0 * (p - t) / p.shape[-1])):
        model = xn.Sequential([xn.layers.Dense(1, input_dim=3)], seed=0)
        model.compile("sgd", loss)
        histories.append(model.fit(x, y, epochs=3, batch_size=16, verbose=0).history["loss"])
    np.testing.assert_allclose(histories[1], histories[0], rtol=1e-6)


# -- top-k accuracy ----------------------------------------------------------------------

def _in_top_k(scores, labels, k):
    """tf.math.in_top_k: the label's score is not below the k-th largest score."""
    kth = np.sort(scores, axis=1)[:, -k]
    return scores[np.arange(len(labels)), labels] >= kth


@pytest.mark.parametrize("k", [1, 2, 5])
def test_top_k_accuracy(backend, to_xp, k):
    rng = np.random.default_rng(k)
    scores = rng.random((50, 7))
    labels = rng.integers(0, 7, 50)
    expected = _in_top_k(scores, labels, k).sum()
    got = M.SparseTopKCategoricalAccuracy(k).batch_sum(to_xp(scores), to_xp(labels))
    assert float(got) == expected
    got = M.TopKCategoricalAccuracy(k).batch_sum(to_xp(scores), to_xp(np.eye(7)[labels]))
    assert float(got) == expected


def test_top_k_ties_count_as_in(to_xp):
    scores = to_xp(np.array([[0.5, 0.5, 0.5, 0.1]]))
    assert float(M.SparseTopKCategoricalAccuracy(1).batch_sum(scores, to_xp(np.array([2])))) == 1


def test_top_k_in_a_model(backend):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 8)).astype("float32")
    y = rng.integers(0, 10, 200)
    model = xn.Sequential([xn.layers.Dense(10, activation="softmax", input_dim=8)], seed=0)
    model.compile("adam", "sparse_categorical_crossentropy",
                  metrics=["accuracy", "sparse_top_k_categorical_accuracy"])
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    probs = xn.to_numpy(model.predict(x))
    assert logs["sparse_top_k_categorical_accuracy"] == pytest.approx(
        _in_top_k(probs, y, 5).mean())
    assert logs["accuracy"] <= logs["sparse_top_k_categorical_accuracy"]
