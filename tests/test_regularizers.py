"""kernel_regularizer / bias_regularizer with Keras' scale (l2 * sum(W**2), no 0.5), the
penalty in the reported loss, the gradient checked against PyTorch's autograd."""
from __future__ import annotations

import numpy as np
import pytest

import xpnet as xn
from xpnet.regularizers import L1, L1L2, L2, get_regularizer
from xpnet.training import forward_backward


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)), rng.standard_normal((n, 2))


def _model(frozen_first=False, dtype="float64"):
    model = xn.Sequential([
        xn.layers.Dense(6, activation="tanh", input_dim=4, kernel_regularizer=L2(0.05),
                        bias_regularizer=L1(0.02)),
        xn.layers.Dense(2, kernel_regularizer=L1L2(l1=0.01, l2=0.03))], seed=0, dtype=dtype)
    model.layers[0].trainable = not frozen_first
    model.compile("sgd", "mse")
    model.build()
    return model


def _keras_penalty(model, include_first=True):
    (W1, b1), (W2, _) = [(xn.to_numpy(l.params["W"]), xn.to_numpy(l.params["b"]))
                         for l in model.layers]
    first = 0.05 * np.sum(W1 ** 2) + 0.02 * np.sum(np.abs(b1))
    return (first if include_first else 0.0) + 0.01 * np.sum(np.abs(W2)) + 0.03 * np.sum(W2 ** 2)


def test_the_reported_loss_holds_the_penalty(backend):
    x, y = _data()
    model = _model()
    mse = np.mean((xn.to_numpy(model.predict(x)) - y) ** 2)
    got = model.evaluate(x, y, verbose=0)
    assert got == pytest.approx(mse + _keras_penalty(model), rel=1e-12)
    frozen = _model(frozen_first=True)
    frozen.plan_training()
    mse = np.mean((xn.to_numpy(frozen.predict(x)) - y) ** 2)
    # Keras adds the penalties of trainable weights only
    assert frozen.evaluate(x, y, verbose=0) == pytest.approx(
        mse + _keras_penalty(frozen, include_first=False), rel=1e-12)


def test_gradients_against_pytorch_autograd(backend):
    torch = pytest.importorskip("torch", reason="PyTorch autograd is the reference")
    x, y = _data()
    model = _model()
    params = model.get_params(trainable_only=True)
    loss, _, grads = forward_backward(model, params, xn.backend.asarray(x), xn.backend.asarray(y))
    t = {k: torch.tensor(xn.to_numpy(v), requires_grad=True) for k, v in params.items()}
    h = torch.tanh(torch.from_numpy(x) @ t["dense/W"] + t["dense/b"])
    out = h @ t["dense_1/W"] + t["dense_1/b"]
    ref = (torch.mean((out - torch.from_numpy(y)) ** 2)
           + 0.05 * torch.sum(t["dense/W"] ** 2) + 0.02 * torch.sum(torch.abs(t["dense/b"]))
           + 0.01 * torch.sum(torch.abs(t["dense_1/W"])) + 0.03 * torch.sum(t["dense_1/W"] ** 2))
    ref.backward()
    assert float(loss) == pytest.approx(float(ref.detach()), rel=1e-12)
    for k in params:
        np.testing.assert_allclose(xn.to_numpy(grads[k]), t[k].grad.numpy(), rtol=1e-10, atol=1e-12)


def test_fit_history_and_saving(backend, tmp_path):
    x, y = _data(64)
    model = _model(dtype="float32")
    history = model.fit(x.astype("float32"), y.astype("float32"), epochs=2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    model.save(tmp_path / "m.xpnet")
    back = xn.load_model(tmp_path / "m.xpnet")
    assert back.layers[1].kernel_regularizer.get_config() == {"l1": 0.01, "l2": 0.03}
    assert back.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))


def test_names_and_refusals():
    assert get_regularizer("l2").l2 == 0.01 and get_regularizer("l1").l1 == 0.01
    both = get_regularizer("l1_l2")
    assert (both.l1, both.l2) == (0.01, 0.01)
    assert get_regularizer(None) is None
    with pytest.raises(ValueError, match="unknown regularizer"):
        get_regularizer("l3")
    with pytest.raises(xn.InvalidParameterError):
        L2(-1.0)
