"""Weights in and out of a ``Sequential``: get/set_weights, weight files and checkpoints
across backends, and moving a trained model with ``model.to(...)``.

Only working paths are tested here; corrupt and mismatched files have their own tests.
"""
from __future__ import annotations

import numpy as np
import pytest

import xpnet as xn
from xpnet import backend as B
from xpnet import io as xio
from xpnet.layers import BatchNormalization, Dense, Dropout
from _backends import param

TARGETS = [param(name) for name in ("numpy", "array_api_strict", "torch")]


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype("float32") * 2 + 1
    labels = np.argmax(x[:, :2], axis=1).astype("int64")
    return x, labels


def _layers(first_input=True, dropout=False):
    kw = {"input_dim": 3} if first_input else {}
    layers = [Dense(5, activation="relu", **kw), BatchNormalization()]
    if dropout:
        layers.append(Dropout(0.25))
    layers.append(Dense(2, activation="softmax"))
    return layers


def _model(optimizer="adam", seed=1, **kw):
    model = xn.Sequential(_layers(**kw), seed=seed)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _trained(optimizer="adam", epochs=2, **kw):
    x, labels = _data()
    model = _model(optimizer, **kw)
    model.fit(x, labels, epochs=epochs, batch_size=16, verbose=0, seed=3)
    return model


def _all_arrays(model):
    arrays = [a for l in model.layers for d in (l.params, l.state) for a in d.values()]
    if model.opt_state is not None:
        arrays += [a for slots in model.opt_state["slots"].values() for a in slots.values()]
    return arrays


def _assert_on(model, name):
    backend = B.load(name)
    assert model.backend.name == name
    for a in _all_arrays(model):
        assert isinstance(a, backend.array_type), type(a)
        assert B.backend_of(a).device == backend.device


def _np_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _np_predict(weights, x, eps=1e-5):
    W1, b1, gamma, beta, rmean, rvar, W2, b2 = weights
    h = np.maximum(x @ W1 + b1, 0)
    h = gamma * (h - rmean) / np.sqrt(rvar + eps) + beta
    return _np_softmax(h @ W2 + b2)


# -- get_weights / set_weights ---------------------------------------------------------

def test_get_weights_order_is_kernel_then_bias_per_layer(backend):
    model = _model()
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(3, 5), (5,), (5,), (5,), (5,), (5,), (5, 2), (2,)]
    assert all(isinstance(w, np.ndarray) and w.dtype == xn.get_floatx() for w in weights)
    dense1, bn, dense2 = model.layers
    expected = [dense1.params["W"], dense1.params["b"], bn.params["gamma"], bn.params["beta"],
                bn.state["running_mean"], bn.state["running_var"],
                dense2.params["W"], dense2.params["b"]]
    for w, a in zip(weights, expected):
        np.testing.assert_array_equal(w, B.to_numpy(a))
    # fresh: biases and beta zero, gamma and the running variance one
    for i in (1, 3, 4, 7):
        np.testing.assert_array_equal(weights[i], 0.0)
    for i in (2, 5):
        np.testing.assert_array_equal(weights[i], 1.0)


def test_set_weights_then_get_weights_and_predict(backend):
    model = _model()
    rng = np.random.default_rng(2)
    new = [rng.standard_normal(w.shape).astype("float32") for w in model.get_weights()]
    new[5] = np.abs(new[5]) + 0.5  # a variance
    model.set_weights(new)
    for got, want in zip(model.get_weights(), new):
        np.testing.assert_array_equal(got, want)
    _assert_on(model, backend.name)
    x, _ = _data(20)
    np.testing.assert_allclose(model.predict(x), _np_predict(new, x), rtol=1e-4, atol=1e-6)


# -- weight files ------------------------------------------------------------------------

@pytest.mark.parametrize("target", TARGETS)
def test_save_on_one_backend_load_on_another(backend, target, tmp_path):
    model = _trained()
    x, _ = _data(40, seed=5)
    expected = model.predict(x)
    path = tmp_path / "weights.npz"
    model.save_weights(path)
    with xn.use_backend(target):
        other = _model(seed=99)  # other initial weights, overwritten by the file
        header = other.load_weights(path)
        _assert_on(other, target)
    assert [e["name"] for e in header["layers"]] == [l.name for l in model.layers]
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(other.predict(x), expected, rtol=1e-5, atol=1e-7)


def test_saving_does_not_move_the_model(backend, tmp_path):
    model = _trained()
    before = _all_arrays(model)
    x, _ = _data(16)
    p = model.predict(x)
    model.save_weights(tmp_path / "w.npz")
    model.save_checkpoint(tmp_path / "c.npz", epoch=2)
    _assert_on(model, backend.name)
    after = _all_arrays(model)
    assert all(a is b for a, b in zip(before, after))  # not even copied
    np.testing.assert_array_equal(model.predict(x), p)
    arrays, header = xio.load_arrays(tmp_path / "w.npz")
    assert set(arrays) == {"dense/W", "dense/b", "batch_normalization/gamma",
                           "batch_normalization/beta", "state/batch_normalization/running_mean",
                           "state/batch_normalization/running_var", "dense_1/W", "dense_1/b"}
    assert all(isinstance(a, np.ndarray) for a in arrays.values())
    assert header["input_shape"] == [3]


@pytest.mark.parametrize("first_input", [False, True], ids=["no-input-shape", "input_dim"])
def test_load_weights_into_an_unbuilt_model_builds_it(backend, tmp_path, first_input):
    model = _trained()
    model.save_weights(tmp_path / "w.npz")
    fresh = xn.Sequential(_layers(first_input=first_input), seed=7)
    assert not fresh.built
    fresh.load_weights(tmp_path / "w.npz")
    assert fresh.built and fresh.input_shape == (3,)
    _assert_on(fresh, backend.name)
    x, _ = _data(30)
    np.testing.assert_allclose(fresh.predict(x), model.predict(x), rtol=1e-6, atol=1e-7)
    assert fresh.count_params() == model.count_params()


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
@pytest.mark.parametrize("target", TARGETS)
def test_checkpoint_round_trips_the_optimizer_state(backend, target, optimizer, tmp_path):
    x, labels = _data()
    model = _trained(optimizer)
    path = tmp_path / "ckpt.npz"
    model.save_checkpoint(path, epoch=2)
    with xn.use_backend(target):
        resumed = _model(optimizer, seed=42)
        assert resumed.load_checkpoint(path) == 2
        _assert_on(resumed, target)
    assert resumed.opt_state["step"] == model.opt_state["step"] == 12  # 2 epochs x 6 steps
    for key, slots in model.opt_state["slots"].items():
        assert set(resumed.opt_state["slots"][key]) == set(slots) != set()
        for slot, value in slots.items():
            np.testing.assert_array_equal(B.to_numpy(resumed.opt_state["slots"][key][slot]),
                                          B.to_numpy(value))
    # resuming continues exactly where the first model is going
    h1 = model.fit(x, labels, epochs=4, initial_epoch=2, batch_size=16, verbose=0, seed=3)
    h2 = resumed.fit(x, labels, epochs=4, initial_epoch=2, batch_size=16, verbose=0, seed=3)
    assert h1.epoch == h2.epoch == [2, 3]
    for key in h1.history:
        np.testing.assert_allclose(h2.history[key], h1.history[key], rtol=1e-4, err_msg=key)
    # ... and where one uninterrupted run of 4 epochs ends
    straight = _trained(optimizer, epochs=4)
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# -- moving a model between backends ------------------------------------------------------

@pytest.mark.parametrize("target", TARGETS)
def test_to_moves_a_trained_model(backend, target):
    x, labels = _data()
    model = _trained()
    p_before = model.predict(x)
    assert model.to(target) is model
    _assert_on(model, target)
    np.testing.assert_allclose(model.predict(x), p_before, rtol=1e-5, atol=1e-7)
    # training continues after the move, as it would have without it
    history = model.fit(x, labels, epochs=4, initial_epoch=2, batch_size=16, verbose=0, seed=3)
    assert history.params["backend"] == target
    _assert_on(model, target)
    with xn.use_backend("numpy"):
        reference = _trained(epochs=4)
    np.testing.assert_allclose(model.predict(x), reference.predict(x), rtol=1e-4, atol=1e-6)
    with xn.use_backend(target):
        np.testing.assert_allclose(model.evaluate(x, labels, verbose=0),
                                   reference.evaluate(x, labels, verbose=0), rtol=1e-4)


@pytest.mark.parametrize("target", TARGETS)
def test_to_and_back_with_dropout(backend, target):
    x, labels = _data()
    model = _trained(dropout=True)
    p = model.predict(x)
    model.to(target)
    np.testing.assert_allclose(model.predict(x), p, rtol=1e-5, atol=1e-7)
    history = model.fit(x, labels, epochs=3, initial_epoch=2, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    p2 = model.predict(x)
    model.to(backend.name)
    _assert_on(model, backend.name)
    np.testing.assert_allclose(model.predict(x), p2, rtol=1e-5, atol=1e-7)


def test_a_save_removes_stale_temp_files_of_its_own_target_only(tmp_path):
    """A SIGKILL mid-save leaves ``.xpnet-<name>.*.npz.tmp``; the next save of that name
    removes it once it is older than STALE_TEMP_SECONDS, and touches nothing else."""
    import os
    import time

    old = time.time() - xio.STALE_TEMP_SECONDS - 60
    stale = tmp_path / ".xpnet-w.npz.k1ll3d.npz.tmp"
    fresh = tmp_path / ".xpnet-w.npz.inprogress.npz.tmp"        # maybe another writer's
    other = tmp_path / ".xpnet-other.npz.k1ll3d.npz.tmp"        # another target's
    mine_but_not_temp = tmp_path / ".xpnet-w.npz.notes.txt"
    for p in (stale, fresh, other, mine_but_not_temp):
        p.write_bytes(b"partial")
    for p in (stale, other, mine_but_not_temp):
        os.utime(p, (old, old))
    xio.save_arrays(tmp_path / "w.npz", {"a": np.ones(3)}, {"kind": "test"})
    assert not stale.exists()
    assert fresh.exists() and other.exists() and mine_but_not_temp.exists()
    arrays, header = xio.load_arrays(tmp_path / "w.npz")
    np.testing.assert_array_equal(arrays["a"], np.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [fresh.name, other.name, mine_but_not_temp.name, "w.npz"])
