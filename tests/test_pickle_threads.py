"""Models and layers with plain pickle, and models shared between threads.

A pickled model carries its weights (as NumPy) and optimizer state, never its last batch
nor a module; it comes back on the backend it was pickled on. Inference keeps nothing in
the layers, so threads may predict with one model; training is one thread at a time.
"""
from __future__ import annotations

import copy
import pickle
import threading

import numpy as np
import pytest

import xpnet as xn
from xpnet import backend as B
from xpnet.training import ModelInUseError, claim, forward_backward


def _model(seed=0, dropout=False):
    layers = [xn.layers.Dense(64, activation="relu", input_dim=20),
              xn.layers.BatchNormalization(),
              xn.layers.Dense(32, activation="tanh"),
              xn.layers.Dense(3, activation="softmax")]
    if dropout:
        layers.insert(1, xn.layers.Dropout(0.2))
    model = xn.Sequential(layers, seed=seed)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _data(n=400, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 20)).astype("float32"), rng.integers(0, 3, n)


def _weight_bytes(model):
    return sum(w.nbytes for w in model.get_weights())


def test_a_fitted_model_pickles_and_trains_on(backend):
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=1, batch_size=50, verbose=0, seed=3)
    clone = pickle.loads(pickle.dumps(model))
    assert clone.backend.name == backend.name
    assert all(isinstance(p, backend.array_type) for l in clone.layers for p in l.params.values())
    np.testing.assert_array_equal(xn.to_numpy(clone.predict(x)), xn.to_numpy(model.predict(x)))
    # the optimizer state came along: a second epoch moves both models alike
    model.fit(x, y, epochs=1, batch_size=50, verbose=0, seed=4)
    clone.fit(x, y, epochs=1, batch_size=50, verbose=0, seed=4)
    for a, b in zip(model.get_weights(), clone.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_a_pickle_holds_no_batch(backend):
    x, _ = _data(n=20_000)
    model = _model()
    model.predict(x, batch_size=10_000)
    size = len(pickle.dumps(model))
    # the weights, the names and a little structure; the batch (10,000 x 64 floats at the
    # first layer alone, 2.4 MiB) must not be in it
    assert size < 2 * _weight_bytes(model) + 20_000, size


def test_an_inference_forward_keeps_nothing(backend):
    x, _ = _data()
    model = _model(dropout=True)
    model.predict(x, batch_size=100)
    for layer in model.layers:
        for sub in (layer, getattr(layer, "activation", None)):
            if sub is not None:
                kept = [name for name in type(sub).scratch if getattr(sub, name, None) is not None]
                assert kept == [], f"{sub!r} kept {kept} after predict"


def test_a_training_forward_keeps_what_backward_needs(backend):
    x, y = _data()
    model = _model()
    model.build_for(x)
    xb, yb = B.asarray(x[:10]), B.asarray(y[:10])
    loss, _, grads = forward_backward(model, model.get_params(trainable_only=True), xb, yb)
    assert model.layers[0].x.shape == (10, 20)
    assert set(grads) == set(model.get_params(trainable_only=True))


def test_pickled_layer_on_its_own(backend, to_xp):
    layer = xn.layers.Dense(4, activation="sigmoid")
    x = to_xp(np.ones((2, 3)), "float32")
    out = layer(x)
    back = pickle.loads(pickle.dumps(layer))
    assert isinstance(back.params["W"], backend.array_type)
    np.testing.assert_array_equal(xn.to_numpy(back(x)), xn.to_numpy(out))


def test_deepcopy_is_independent(backend):
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)
    twin = copy.deepcopy(model)
    before = [w.copy() for w in model.get_weights()]
    twin.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_threads_predict_with_one_model(backend):
    x, y = _data(n=2_000)
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)
    expected = xn.to_numpy(model.predict(x, batch_size=50))
    chunks = np.array_split(np.arange(len(x)), 8)
    results, errors = {}, []

    def work(k):
        try:
            for _ in range(5):
                results[k] = xn.to_numpy(model.predict(x[chunks[k]], batch_size=50))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(chunks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    np.testing.assert_allclose(np.concatenate([results[k] for k in range(len(chunks))]),
                               expected, rtol=0, atol=1e-6)


def test_a_second_thread_may_not_train_the_model(backend):
    x, y = _data()
    model = _model()
    model.build_for(x)
    lock = claim(model, "this test")  # this thread trains
    errors = []

    def other():
        for step in (lambda: model.fit(x, y, epochs=1, verbose=0),
                     lambda: forward_backward(model, model.get_params(trainable_only=True),
                                              B.asarray(x[:5]), B.asarray(y[:5]))):
            try:
                step()
            except ModelInUseError as exc:
                errors.append(str(exc))

    try:
        t = threading.Thread(target=other)
        t.start()
        t.join()
        # the thread that holds it may go on (the claim is re-entrant)
        model.fit(x, y, epochs=1, verbose=0)
    finally:
        lock.release()
    assert len(errors) == 2 and all("another thread" in e and "deepcopy" in e for e in errors)
    model.fit(x, y, epochs=1, verbose=0)  # released: any thread may train it now


def test_unpickling_on_a_missing_backend_says_which():
    model = _model()
    model.build_for(_data()[0])
    state = model.__getstate__()
    state["backend"] = "cupy"
    reason = None
    try:
        B.load("cupy")
    except xn.BackendUnavailableError as exc:
        reason = exc
    if reason is None:
        pytest.skip("CuPy runs here: nothing is missing")
    with pytest.raises(xn.BackendUnavailableError):
        xn.Sequential().__setstate__(state)
