"""No host sync inside a training step (issue 3, a hard requirement).

A PyTorch tensor on the "meta" device has a shape and a dtype but no data: any read
back to the host (``.item()``, ``float()``, ``bool()``, ``.cpu()``, NumPy conversion)
raises. A Sequential whose parameters, layer state and optimizer state are all meta
tensors therefore runs ``train_step`` only if nothing in the step waits for the device.
"""
from __future__ import annotations

import numpy as np
import pytest

import xpnet as xn
from xpnet import backend as B
from xpnet import data as D
from xpnet.layers import BatchNormalization, Dense, Dropout
from xpnet.metrics import get_metric
from xpnet.optimizers import OPTIMIZERS, get_optimizer
from xpnet.training import forward_backward, train_step

torch = pytest.importorskip("torch", reason="the meta-device check needs PyTorch")

BATCH = 8


# name: (layers, loss, target kind, metrics)
MODELS = {
    "relu-softmax-sparse_ce": (
        lambda: [Dense(8, input_dim=4, activation="relu"), Dense(3, activation="softmax")],
        "sparse_categorical_crossentropy", "labels", ["accuracy"]),
    "sigmoid-mse": (
        lambda: [Dense(8, input_dim=4, activation="sigmoid"), Dense(1, activation="sigmoid")],
        "mse", "dense1", ["mae", "mse"]),
    "dropout-batchnorm-softmax-ce": (
        lambda: [Dense(8, input_dim=4, activation="relu"), Dropout(0.5), BatchNormalization(),
                 Dense(3, activation="softmax")],
        "categorical_crossentropy", "onehot", ["accuracy"]),
    "batchnorm-dropout-sigmoid-bce": (
        lambda: [Dense(8, input_dim=4, activation="tanh"), BatchNormalization(), Dropout(0.2),
                 Dense(2, activation="sigmoid")],
        "binary_crossentropy", "dense2", ["accuracy", "mae"]),
    "relu-linear-mse": (
        lambda: [Dense(8, input_dim=4, activation="relu"), Dense(2)],
        "mse", "dense2", ["mse"]),
}


def _meta(shape, dtype=torch.float32):
    return torch.empty(shape, dtype=dtype, device="meta")


def _meta_target(kind, n=BATCH):
    if kind == "labels":
        return _meta((n,), torch.int64)
    if kind == "onehot":
        return _meta((n, 3))
    return _meta((n, int(kind[-1])))


def _meta_model(name, optimizer):
    """A built, compiled Sequential on torch with every array moved to the meta device."""
    layers_fn, loss, kind, metrics = MODELS[name]
    with xn.use_backend("torch"):
        model = xn.Sequential(layers_fn(), seed=0)
        model.compile(optimizer=get_optimizer(optimizer), loss=loss, metrics=metrics)
        model.build()
    for layer in model.layers:
        for store in (layer.params, layer.state):
            for key in store:
                store[key] = torch.empty_like(store[key], device="meta")
    meta_backend = B.backend_of(next(iter(model.get_params().values())))
    assert str(meta_backend.device) == "meta"
    for index, layer in enumerate(model.layers):
        if isinstance(layer, Dropout):  # as fit does each epoch, on the model's device
            layer.rng = B.DeviceRNG(100 + index, meta_backend)
    model.backend = meta_backend
    return model, kind


def test_meta_tensors_raise_on_every_host_read():
    """The premise of this file: each kind of host read fails on a meta tensor."""
    t = _meta(())
    for read in (lambda: t.item(), lambda: float(t), lambda: bool(t), lambda: t.cpu(),
                 lambda: t.numpy(), lambda: B.to_numpy(t), lambda: np.asarray(t)):
        with pytest.raises((RuntimeError, NotImplementedError, TypeError)):
            read()


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_train_step_does_not_read_the_host(name, optimizer):
    model, kind = _meta_model(name, optimizer)
    params = model.get_params()
    opt_state = model.optimizer.init_state(params)
    x, y = _meta((BATCH, 4)), _meta_target(kind)
    for _ in range(3):
        params, opt_state, loss, y_pred = train_step(model, model.optimizer, params, opt_state,
                                                     x, y)
    assert loss.device.type == "meta" and tuple(loss.shape) == ()
    assert y_pred.device.type == "meta" and tuple(y_pred.shape) == (BATCH, model.output_shape[0])
    assert opt_state["step"] == 3
    assert set(params) == set(model.get_params())
    for key, p in params.items():
        assert p.device.type == "meta" and p.shape == model.get_params()[key].shape
        for slot in opt_state["slots"][key].values():
            assert slot.device.type == "meta" and slot.shape == p.shape
    for layer in model.layers:  # BatchNormalization's running statistics stay on the device
        assert all(s.device.type == "meta" for s in layer.state.values())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_backward_and_metrics_do_not_read_the_host(name):
    """The rest of fit's per-batch work: rows by a shuffled index, gradients, metric sums."""
    model, kind = _meta_model(name, "adam")
    x_all, y_all = _meta((3 * BATCH, 4)), _meta_target(kind, 3 * BATCH)
    order = _meta((BATCH,), torch.int64)  # one batch of a shuffled order, on the device
    xb = D.take_rows(x_all, order, model.backend, "float32")
    yb = D.take_rows(y_all, order, model.backend, "int64" if kind == "labels" else None)
    loss, y_pred, grads = forward_backward(model, model.get_params(), xb, yb)
    assert loss.device.type == "meta"
    assert all(g.device.type == "meta" for g in grads.values())
    for metric in model.metrics:
        total = metric.batch_sum(y_pred, yb)
        assert total.device.type == "meta" and tuple(total.shape) == ()
    accuracy = get_metric("accuracy", model.loss, model.output_shape[-1])
    assert accuracy.batch_sum(y_pred, yb).device.type == "meta"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_predict_batches_do_not_read_the_host(name):
    """predict's batch loop (its input checks, once per call, may read the host)."""
    model, _ = _meta_model(name, "sgd")
    n = 3 * BATCH + 3  # the last batch is short
    x = _meta((n, 4))
    outs = []
    for i, j in D.batch_slices(n, BATCH):
        xb = D.take_rows(x, slice(i, j), model.backend, model.dtype_name)
        outs.append(model.forward(xb, training=False))
        assert outs[-1].device.type == "meta"
        assert tuple(outs[-1].shape) == (j - i, model.output_shape[0])
    out = model.backend.xp.concat(outs, axis=0)
    assert out.device.type == "meta" and tuple(out.shape) == (n, model.output_shape[0])


def test_device_rng_on_the_meta_device():
    backend = B.backend_of(_meta((1,)))
    rng = B.DeviceRNG(5, backend)
    u = rng.uniform((4, 3), torch.float32)
    assert u.device.type == "meta" and tuple(u.shape) == (4, 3) and u.dtype == torch.float32
    rng.reset()
    assert rng.uniform((2,), torch.float64).device.type == "meta"
