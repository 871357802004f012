"""Acceptance tests for the Keras-style ``Sequential`` API (issue 3), on every backend.

Each test runs on numpy, array_api_strict and torch through the ``backend`` fixture;
NumPy is the reference wherever values are compared.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import xpnet as xn
from xpnet import backend as B
from xpnet import epoch_logs
from xpnet.functions import numerical_gradient
from xpnet.layers import BatchNormalization, Dense, Dropout, Flatten
from xpnet.metrics import (BinaryAccuracy, CategoricalAccuracy, MeanAbsoluteError,
                           MeanSquaredError, SparseCategoricalAccuracy, get_metric)
from xpnet.training import forward_backward

EPS = 1e-7  # the losses' clipping, as Keras


# -- data and NumPy references ---------------------------------------------------------

def _binary_data(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 2)).astype("float32")
    y = (X[:, 0] + X[:, 1] > 1.0).astype("float32").reshape(-1, 1)
    return X, y


def _images(n, seed=0, noise=0.3):
    """Ten random 28x28 prototypes plus noise: a synthetic stand-in for Fashion-MNIST."""
    protos = np.random.default_rng(1234).random((10, 28, 28))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype("uint8")
    x = np.clip(protos[labels] + noise * rng.standard_normal((n, 28, 28)), 0, 1)
    return x.astype("float32"), labels


def _classes(n=120, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype("float32")
    labels = (np.argmax(x[:, :k], axis=1)).astype("int64")
    return x, labels


def _np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _np_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _np_reference_loss(name, p, t):
    p = p.astype("float64")
    if name == "mse":
        return np.mean((p - t.reshape(p.shape)) ** 2)
    pc = np.clip(p, EPS, 1 - EPS)
    if name == "sparse_categorical_crossentropy":
        return -np.mean(np.log(pc[np.arange(len(t)), t.reshape(-1)]))
    if name == "categorical_crossentropy":
        return -np.mean(np.sum(t * np.log(pc), axis=1))
    t = t.reshape(p.shape)
    return -np.mean(t * np.log(pc) + (1 - t) * np.log(1 - pc))


def _np_reference_metric(name, kind, p, t):
    p = p.astype("float64")
    if name == "mae":
        return np.mean(np.abs(p - t.reshape(p.shape)))
    if name == "mse":
        return np.mean((p - t.reshape(p.shape)) ** 2)
    if kind == "sparse":
        return np.mean(np.argmax(p, axis=1) == t.reshape(-1))
    if kind == "categorical":
        return np.mean(np.argmax(p, axis=1) == np.argmax(t, axis=1))
    return np.mean((p > 0.5) == (t.reshape(p.shape) > 0.5))


# -- the issue's two snippets ----------------------------------------------------------

def test_issue_snippet_binary_mlp(backend):
    X, y = _binary_data()
    model = xn.Sequential()
    model.add(Dense(3, input_dim=2, activation="sigmoid"))
    model.add(Dense(1, activation="sigmoid"))
    model.compile(optimizer="sgd", loss="mse", metrics=["mae", "mse"])
    history = model.fit(X, y, epochs=50)

    assert list(history.history.keys()) == ["loss", "mae", "mse"]
    assert history.params["steps"] == 32 and history.params["batch_size"] == 32
    assert history.epoch == list(range(50))
    loss = history.history["loss"]
    assert len(loss) == 50 and all(isinstance(v, float) for v in loss)
    assert loss[-1] < loss[25] < loss[0]
    # the "mse" metric is the loss itself, summed over the same batches
    np.testing.assert_allclose(history.history["mse"], loss, rtol=1e-5)


def _snippet_2(x_train, y_train, x_test, y_test, epochs, capsys):
    model = xn.Sequential([Flatten(input_shape=(28, 28)), Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    text = model.summary()
    assert "Total params: 7,850" in text
    assert "7,850" in capsys.readouterr().out
    history = model.fit(x_train, y_train, epochs=epochs, validation_data=(x_test, y_test),
                        verbose=0)
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert history.history["loss"][-1] < history.history["loss"][0]

    p = model.predict(x_test[0:1])
    assert isinstance(p, np.ndarray) and p.shape == (1, 10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(p >= 0)

    result = model.evaluate(x_test, y_test, verbose=2)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "loss" in out[0] and "accuracy" in out[0]
    assert isinstance(result, list) and len(result) == 2
    loss, acc = result
    # evaluate after the last epoch sees the same weights as the last validation pass
    np.testing.assert_allclose(loss, history.history["val_loss"][-1], rtol=1e-6)
    assert acc == pytest.approx(history.history["val_accuracy"][-1])
    return acc


def test_issue_snippet_images_synthetic(backend, capsys):
    x_train, y_train = _images(600, seed=0)
    x_test, y_test = _images(200, seed=1)
    acc = _snippet_2(x_train, y_train, x_test, y_test, epochs=3, capsys=capsys)
    assert acc > 0.9  # ten well-separated prototypes: measured 1.0 over 10 seeds


def test_issue_snippet_fashion_mnist(backend, capsys):
    try:
        (x_train, y_train), (x_test, y_test) = xn.datasets.load_fashion_mnist(
            flatten=False, download=False, progress=False)
    except xn.datasets.DatasetNotFoundError as exc:
        pytest.skip(f"Fashion-MNIST is not installed here: {exc}")
    x_train, y_train = x_train[:3000].reshape(-1, 28, 28), y_train[:3000]
    x_test, y_test = x_test[:1000].reshape(-1, 28, 28), y_test[:1000]
    acc = _snippet_2(x_train, y_train, x_test, y_test, epochs=5, capsys=capsys)
    assert acc > 0.7  # measured 0.79-0.81 over 10 seeds; chance is 0.1


# -- fit, predict, __call__, evaluate ---------------------------------------------------

def test_fit_lowers_the_loss(backend):
    x, labels = _classes(200)
    model = xn.Sequential([Dense(16, input_dim=4, activation="relu"),
                           Dense(3, activation="softmax")], seed=0)
    model.compile(optimizer=xn.optimizers.Adam(lr=0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    before = model.evaluate(x, labels, verbose=0)
    history = model.fit(x, labels, epochs=15, batch_size=16, verbose=0)
    after = model.evaluate(x, labels, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert after[0] < 0.5 * before[0]
    assert after[1] > 0.85


@pytest.mark.parametrize("batch_size", [1, 7, 16, 50, 64])
def test_predict_in_batches_equals_one_forward_pass(backend, batch_size):
    x, _ = _classes(50)
    model = xn.Sequential([Dense(8, input_dim=4, activation="tanh"),
                           Dense(3, activation="softmax")], seed=1)
    full = B.to_numpy(model(x))
    p = model.predict(x, batch_size=batch_size)
    assert isinstance(p, np.ndarray) and p.shape == (50, 3)
    np.testing.assert_allclose(p, full, rtol=1e-5, atol=1e-7)
    # an array of the backend gives one of the same backend
    p_dev = model.predict(B.asarray(x, backend=backend), batch_size=batch_size)
    assert isinstance(p_dev, backend.array_type)
    np.testing.assert_allclose(B.to_numpy(p_dev), full, rtol=1e-5, atol=1e-7)


def test_call_is_a_direct_forward_pass(backend):
    x, _ = _classes(10)
    model = xn.Sequential([Dense(5, input_dim=4, activation="relu"),
                           Dense(2, activation="sigmoid")], seed=2)
    out = model(x)
    assert isinstance(out, backend.array_type) and tuple(out.shape) == (10, 2)
    W1, b1, W2, b2 = model.get_weights()
    expected = _np_sigmoid(np.maximum(x @ W1 + b1, 0) @ W2 + b2)
    np.testing.assert_allclose(B.to_numpy(out), expected, rtol=1e-5, atol=1e-7)


_EVAL_CASES = [
    # loss, output units, activation, target kind, expected accuracy metric class
    ("mse", 2, "linear", "dense", None),
    ("sparse_categorical_crossentropy", 3, "softmax", "sparse", SparseCategoricalAccuracy),
    ("categorical_crossentropy", 3, "softmax", "categorical", CategoricalAccuracy),
    ("binary_crossentropy", 1, "sigmoid", "binary", BinaryAccuracy),
    ("binary_crossentropy", 2, "sigmoid", "binary", BinaryAccuracy),
]


def _targets(kind, x, units):
    labels = np.argmax(x[:, :3], axis=1)
    if kind == "sparse":
        return labels.astype("int64")
    if kind == "categorical":
        return np.eye(3, dtype="float32")[labels]
    if kind == "binary":
        return (x[:, :units] > 0).astype("float32")
    return x[:, :units] * 0.5 + 0.1


@pytest.mark.parametrize("loss,units,act,kind,acc_class", _EVAL_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in _EVAL_CASES])
def test_evaluate_equals_numpy_reference(backend, loss, units, act, kind, acc_class):
    x, _ = _classes(50, seed=3)
    y = _targets(kind, x, units)
    metrics = ["mae", "mse"] if acc_class is None else ["accuracy"]
    if kind in ("categorical", "binary"):
        metrics.append("mae")
    model = xn.Sequential([Dense(6, input_dim=4, activation="relu"),
                           Dense(units, activation=act)], seed=4)
    model.compile(optimizer="sgd", loss=loss, metrics=metrics)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    if acc_class is not None:
        assert type(model.metrics[0]) is acc_class
    p = model.predict(x)
    logs = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)  # 16 does not divide 50
    assert list(logs) == ["loss", *metrics]
    np.testing.assert_allclose(logs["loss"], _np_reference_loss(loss, p, y), rtol=2e-5)
    for name in metrics:
        want = _np_reference_metric(name, kind, p, y)
        np.testing.assert_allclose(logs[name], want, rtol=2e-5, atol=1e-7)
    assert model.evaluate(x, y, verbose=0) == pytest.approx([logs[k] for k in logs])


# -- metrics -----------------------------------------------------------------------------

@pytest.mark.parametrize("loss,units,expected", [
    ("sparse_categorical_crossentropy", 10, SparseCategoricalAccuracy),
    ("categorical_crossentropy", 10, CategoricalAccuracy),
    ("binary_crossentropy", 1, BinaryAccuracy),
    ("binary_crossentropy", 4, BinaryAccuracy),
    ("mse", 1, BinaryAccuracy),
    ("mse", 4, CategoricalAccuracy),
])
def test_accuracy_form_follows_the_loss(loss, units, expected):
    for name in ("accuracy", "acc"):
        assert type(get_metric(name, xn.losses.get_loss(loss), units)) is expected
    assert type(get_metric("mae")) is MeanAbsoluteError
    assert type(get_metric("mse")) is MeanSquaredError


@pytest.mark.parametrize("metric,kind", [
    (SparseCategoricalAccuracy(), "sparse"), (CategoricalAccuracy(), "categorical"),
    (BinaryAccuracy(), "binary"), (MeanAbsoluteError(), "mae"), (MeanSquaredError(), "mse"),
])
def test_metric_batch_sums_equal_numpy(backend, metric, kind):
    rng = np.random.default_rng(5)
    if kind == "binary":
        p = rng.random((13, 4)).astype("float32")  # independent probabilities
    else:
        p = _np_softmax(rng.standard_normal((13, 4))).astype("float32")
    if kind == "sparse":
        t = rng.integers(0, 4, 13)
    elif kind == "categorical":
        t = np.eye(4, dtype="float32")[rng.integers(0, 4, 13)]
    else:
        t = (rng.random((13, 4)) > 0.5).astype("float32")
    got = metric.batch_sum(B.asarray(p, backend=backend), B.asarray(t, backend=backend))
    assert B.is_array(got) and tuple(got.shape) == ()  # a 0-d array: no host read
    name = kind if kind in ("mae", "mse") else "accuracy"
    want = _np_reference_metric(name, kind, p, t) * 13  # a sum over the batch
    np.testing.assert_allclose(float(B.to_numpy(got)), want, rtol=1e-5)


# -- determinism across backends --------------------------------------------------------

def _seeded_run(name, layers_fn, epochs=3):
    x, labels = _classes(96, seed=6)
    with xn.use_backend(name):
        model = xn.Sequential(layers_fn(), seed=11)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        w0 = model.get_weights()
        history = model.fit(x, labels, epochs=epochs, batch_size=20, validation_split=0.25,
                            verbose=0)
        return w0, history, model.predict(x)


def _mlp():
    return [Dense(12, input_dim=4, activation="relu"), BatchNormalization(),
            Dense(3, activation="softmax")]


def _mlp_dropout():
    return [Dense(12, input_dim=4, activation="relu"), Dropout(0.3),
            Dense(3, activation="softmax")]


def test_same_seed_same_weights_and_history_on_every_backend(backend):
    w_ref, h_ref, p_ref = _seeded_run("numpy", _mlp)
    w0, history, p = _seeded_run(backend.name, _mlp)
    assert len(w0) == len(w_ref)
    for a, b in zip(w0, w_ref):
        np.testing.assert_array_equal(a, b)  # drawn on the host: bit-identical
    assert list(history.history) == list(h_ref.history)
    for key in h_ref.history:
        np.testing.assert_allclose(history.history[key], h_ref.history[key], rtol=1e-4,
                                   err_msg=key)
    np.testing.assert_allclose(p, p_ref, rtol=1e-4, atol=1e-6)


def test_same_seed_same_history_twice_with_dropout(backend):
    _, h1, p1 = _seeded_run(backend.name, _mlp_dropout)
    _, h2, p2 = _seeded_run(backend.name, _mlp_dropout)
    assert h1.history == h2.history
    np.testing.assert_array_equal(p1, p2)
    if backend.name == "array_api_strict":  # host-drawn masks: the same as NumPy's
        _, h_np, _ = _seeded_run("numpy", _mlp_dropout)
        for key in h_np.history:
            np.testing.assert_allclose(h1.history[key], h_np.history[key], rtol=1e-4)


# -- Dropout and BatchNormalization in a model -------------------------------------------

def test_dropout_in_sequential(backend):
    x, labels = _classes(200, seed=7)
    model = xn.Sequential([Dense(32, input_dim=4, activation="relu"), Dropout(0.5),
                           Dense(3, activation="softmax")], seed=8)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(x, labels, epochs=5, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    # inference: the identity, deterministic
    p1, p2 = model.predict(x), model.predict(x)
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_allclose(B.to_numpy(model(x)), p1, rtol=1e-5, atol=1e-7)
    # training: each hidden unit is dropped (0) or scaled by 1 / (1 - rate)
    hidden = Dense(32, input_dim=4, activation="relu")
    net = xn.Sequential([hidden, Dropout(0.5)], seed=9)
    h_inf = B.to_numpy(net(x, training=False))
    h_train = B.to_numpy(net(x, training=True))
    active = h_inf > 0
    kept = np.isclose(h_train, 2.0 * h_inf, rtol=1e-5)
    dropped = h_train == 0
    assert np.all(kept | dropped)
    assert 0.4 < dropped[active].mean() < 0.6


def test_batch_normalization_in_sequential(backend):
    x, labels = _classes(160, seed=10)
    x = x * 3.0 + 5.0  # far from zero mean / unit variance
    model = xn.Sequential([Dense(6, input_dim=4), BatchNormalization(momentum=0.8),
                           Dense(3, activation="softmax")], seed=12)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, labels, epochs=4, batch_size=32, verbose=0)
    W1, b1, gamma, beta, rmean, rvar, W2, b2 = model.get_weights()
    assert not np.allclose(rmean, 0.0) and not np.allclose(rvar, 1.0)
    h = x @ W1 + b1
    # predict uses the running statistics ...
    want = _np_softmax((gamma * (h - rmean) / np.sqrt(rvar + 1e-5) + beta) @ W2 + b2)
    np.testing.assert_allclose(model.predict(x, batch_size=7), want, rtol=1e-4, atol=1e-6)
    # ... training mode uses the batch's own statistics
    batch = h[:40]
    hn = (batch - batch.mean(0)) / np.sqrt(batch.var(0) + 1e-5)
    train_out = B.to_numpy(model(x[:40], training=True))
    np.testing.assert_allclose(train_out, _np_softmax((gamma * hn + beta) @ W2 + b2),
                               rtol=1e-4, atol=1e-6)


# -- loss/activation fusion: gradients against numerical ones ------------------------------

def _fd_check(backend, layers, loss, y_host, x_host):
    model = xn.Sequential(layers, seed=13, dtype="float64")
    model.compile(optimizer="sgd", loss=loss)
    model.build()
    x = B.asarray(x_host, dtype="float64", backend=backend)
    y = B.asarray(y_host, backend=backend)
    params = model.get_params()
    _, _, grads = forward_backward(model, params, x, y)
    grads = {k: B.to_numpy(v).copy() for k, v in grads.items()}
    assert set(grads) == set(params)
    for key, p in params.items():
        def f(probe, key=key):
            trial = dict(params)
            trial[key] = probe
            model.set_params(trial)
            return model.loss(model.forward(x, training=True), y)

        num = B.to_numpy(numerical_gradient(f, p))
        err = np.max(np.abs(num - grads[key])) / np.max(np.abs(num) + np.abs(grads[key]))
        assert err < 1e-6, f"{key}: relative error {err:.2e}"
    model.set_params(params)
    return model


def test_fused_softmax_categorical_crossentropy_gradients(backend):
    rng = np.random.default_rng(14)
    x = rng.standard_normal((6, 3))
    t = np.eye(4)[rng.integers(0, 4, 6)]
    model = _fd_check(backend, [Dense(5, input_dim=3, activation="tanh"),
                                Dense(4, activation="softmax")], "categorical_crossentropy", t, x)
    assert model._fused


def test_fused_softmax_sparse_crossentropy_gradients(backend):
    rng = np.random.default_rng(15)
    x = rng.standard_normal((6, 3))
    labels = rng.integers(0, 4, 6).astype("int64")
    model = _fd_check(backend, [Dense(5, input_dim=3, activation="sigmoid"),
                                Dense(4, activation="softmax")],
                      "sparse_categorical_crossentropy", labels, x)
    assert model._fused


@pytest.mark.parametrize("units", [1, 2])
def test_fused_sigmoid_binary_crossentropy_gradients(backend, units):
    rng = np.random.default_rng(16)
    x = rng.standard_normal((6, 3))
    t = (rng.random((6, units)) > 0.5).astype("float64")
    model = _fd_check(backend, [Dense(5, input_dim=3, activation="tanh"),
                                Dense(units, activation="sigmoid")], "binary_crossentropy", t, x)
    assert model._fused


def test_unfused_relu_linear_mse_gradients(backend):
    rng = np.random.default_rng(17)
    x = rng.standard_normal((6, 3))
    t = rng.standard_normal((6, 2))
    model = _fd_check(backend, [Dense(5, input_dim=3, activation="relu"),
                                Dense(2)], "mse", t, x)
    assert not model._fused


def test_unfused_softmax_mse_and_batchnorm_gradients(backend):
    rng = np.random.default_rng(18)
    x = rng.standard_normal((6, 3))
    t = _np_softmax(rng.standard_normal((6, 3)))
    model = _fd_check(backend, [Dense(4, input_dim=3, activation="tanh"), BatchNormalization(),
                                Dense(3, activation="softmax")], "mse", t, x)
    assert not model._fused


# -- verbosity and host reads ----------------------------------------------------------

def _small_fit(verbose, n=64, epochs=2, batch_size=32, validation=False):
    x, labels = _classes(n, seed=19)
    model = xn.Sequential([Dense(3, input_dim=4, activation="softmax")], seed=20)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    val = (x[:16], labels[:16]) if validation else None
    return model.fit(x, labels, epochs=epochs, batch_size=batch_size, verbose=verbose,
                     validation_data=val)


def test_verbose_0_prints_nothing(backend, capsys):
    _small_fit(0, validation=True)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_verbose_2_prints_one_line_per_epoch(backend, capsys):
    history = _small_fit(2, epochs=3, validation=True)
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 3 and captured.err == ""
    for i, line in enumerate(lines):
        assert line.startswith(f"Epoch {i + 1}/3")
        assert "loss:" in line and "val_accuracy:" in line
        assert f"{history.history['loss'][i]:.4f}" in line


def test_verbose_1_shows_a_tqdm_bar(backend, capsys):
    _small_fit(1, n=96, epochs=2)
    captured = capsys.readouterr()
    assert "Epoch 1/2" in captured.err and "Epoch 2/2" in captured.err
    assert "3/3" in captured.err and "batch" in captured.err and "loss=" in captured.err


@pytest.mark.parametrize("steps", [3, 15, 37, 100])
@pytest.mark.parametrize("verbose", [0, 1, 2])
def test_losses_are_read_from_the_device_at_most_11_times_per_epoch(
        backend, monkeypatch, steps, verbose):
    calls = []
    real = epoch_logs.read_logs

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(epoch_logs, "read_logs", counting)
    history = _small_fit(verbose, n=4 * steps, epochs=2, batch_size=4)
    assert history.params["steps"] == steps
    per_epoch = len(calls) / 2
    if verbose == 1:
        assert 1 < per_epoch <= 11
    else:
        assert per_epoch == 1


# -- History ------------------------------------------------------------------------------

def test_history_attributes(backend):
    history = _small_fit(0, n=64, epochs=3, batch_size=10, validation=True)
    assert isinstance(history, xn.History)
    assert history.epoch == [0, 1, 2]
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 and all(math.isfinite(e) for e in v) for v in history.history.values())
    assert history.params["epochs"] == 3 and history.params["batch_size"] == 10
    assert history.params["steps"] == 7 and history.params["samples"] == 64
    assert history.params["backend"] == backend.name
    assert history.stop_reason is None
    assert "keys=" in repr(history)


def test_history_plot_writes_a_png(backend, tmp_path):
    matplotlib = pytest.importorskip("matplotlib", reason="History.plot needs matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = _small_fit(0, epochs=3, validation=True)
    path = tmp_path / "curves.png"
    fig = history.plot(path=path)
    try:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(fig.axes) == 2  # loss / val_loss and accuracy / val_accuracy
    finally:
        plt.close(fig)
