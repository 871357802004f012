"""Model state, callbacks and the training loop: no wrong answer passes silently.

A layer instance has one place in a model; ``add`` after training keeps the trained
layers; ``trainable = False`` freezes a layer as in Keras (and ``summary`` counts it);
EarlyStopping restores on every exit path; torch inputs that require grad are data, not
a graph; an empty model, a single callback, an unbuilt model and checkpoint paths get
clear answers; ``History`` leaves matplotlib's session alone and records a non-finite
first epoch. Every case runs on every backend.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import xpnet as xn
from xpnet import backend as B
from xpnet.callbacks import Callback, EarlyStopping, ModelCheckpoint
from xpnet.layers import BatchNormalization, Dense

N, D, K = 16, 3, 2
RNG = np.random.default_rng(3)
X = RNG.normal(size=(N, D)).astype("float32")
Y = (X[:, 0] > 0).astype("int64")


def model(*layers, optimizer="sgd", loss="sparse_categorical_crossentropy", seed=0):
    layers = layers or (Dense(4, activation="relu", input_dim=D), Dense(K, activation="softmax"))
    m = xn.Sequential(list(layers), seed=seed)
    m.compile(optimizer, loss=loss)
    return m


def _fit(m, **kwargs):
    return m.fit(X, Y, verbose=0, seed=0, **kwargs)


def _shared_twice():
    d = Dense(4, input_dim=D)
    return xn.Sequential([d, d])


def _all_frozen():
    m = model()
    for layer in m.layers:
        layer.trainable = False
    _fit(m)


# (id, call() -> None, exception, regex the message must match)
CASES = [
    ("same-layer-twice", lambda: _shared_twice(), ValueError,
     r"layer 'dense' is already in this model \(layer 0\).*new layer"),
    ("empty-fit", lambda: _compiled_empty().fit(X, Y, verbose=0), ValueError,
     r"no layers, so it cannot compile.*model\.add"),  # compile refuses it first
    ("empty-evaluate", lambda: _compiled_empty().evaluate(X, Y, verbose=0), ValueError,
     r"no layers, so it cannot compile"),
    ("empty-predict", lambda: xn.Sequential().predict(X), ValueError,
     r"no layers, so it cannot predict"),
    ("empty-call", lambda: xn.Sequential()(X), ValueError, r"no layers, so it cannot run"),
    ("empty-summary", lambda: xn.Sequential().summary(print_fn=None), ValueError,
     r"no layers, so it cannot summarise"),
    ("all-frozen-fit", _all_frozen, ValueError, r"every layer .* frozen.*nothing to train"),
    ("callbacks-a-number", lambda: _fit(model(), callbacks=5), TypeError,
     r"callbacks must be a list of xpnet Callback objects, got int"),
    ("checkpoint-val-key-without-validation",
     lambda: _fit(model(), callbacks=[ModelCheckpoint("w-{val_loss:.3f}.npz")]), ValueError,
     r"needs 'val_loss'.*available: epoch, loss.*validation_data"),
    ("checkpoint-monitor-without-validation",
     lambda: _fit(model(), callbacks=[ModelCheckpoint("w.npz", save_best_only=True)]),
     ValueError, r"needs 'val_loss'.*available: epoch, loss"),
    ("checkpoint-unclosed-brace", lambda: ModelCheckpoint("w-{epoch.npz"), ValueError,
     r"filepath 'w-\{epoch\.npz'.*literal brace"),
]


def _compiled_empty():
    m = xn.Sequential()
    m.compile("sgd", loss="mse")
    return m


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_state_is_refused(backend, case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a checkpoint that slipped through writes here
    _, call, exc, pattern = case
    with pytest.raises(exc, match=pattern):
        call()
    assert not list(tmp_path.iterdir())


# -- one layer, one place ---------------------------------------------------------------

def test_a_layer_in_two_models_shares_its_parameters(backend):
    shared = Dense(3, activation="relu", input_dim=D)
    a = model(shared, Dense(K, activation="softmax"))
    _fit(a, epochs=2)
    trained = [B.to_numpy(p) for p in shared.params.values()]
    b = model(shared, Dense(K, activation="softmax"), seed=1)
    b.build()  # building b keeps the trained weights (it used to draw new ones)
    for p, q in zip(shared.params.values(), trained):
        np.testing.assert_array_equal(B.to_numpy(p), q)
    # second place in c: the shared layer now passes a gradient on (first in a, b)
    c = model(Dense(D, input_dim=D), shared, Dense(K, activation="softmax"))
    for m in (c, a, c, b):
        h = _fit(m)
        assert math.isfinite(h.history["loss"][0])
    np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])
    np.testing.assert_array_equal(a.get_weights()[0], c.get_weights()[2])


def test_add_after_training_keeps_the_trained_layers(backend):
    m = model(Dense(4, activation="relu", input_dim=D), Dense(2), loss="mse")
    m.fit(X, np.stack([X[:, 0], X[:, 1]], axis=1), epochs=3, verbose=0, seed=0)
    trained = m.get_weights()
    hidden = np.maximum(X @ trained[0] + trained[1], 0) @ trained[2] + trained[3]
    m.add(Dense(1))
    out = m.predict(X)
    after = m.get_weights()
    for a, b in zip(after[:4], trained):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(out, hidden @ after[4] + after[5], rtol=1e-5, atol=1e-6)


# -- EarlyStopping on every exit path ---------------------------------------------------

def _regression():
    """Validation loss falls, then rises (as in test_callbacks: best epoch in the middle)."""
    m = xn.Sequential([Dense(1, input_dim=3)], seed=0)
    m.compile(optimizer=xn.optimizers.SGD(lr=0.01), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 3)).astype("float32")
    w = np.array([[2.0], [-1.0], [0.5]], dtype="float32")
    W0, b0 = m.get_weights()
    x_val = rng.standard_normal((64, 3)).astype("float32")
    return m, x, x @ w + 0.3, (x_val, x_val @ ((W0 + w) / 2) + (b0 + 0.3) / 2)


class Snapshots(Callback):
    def __init__(self):
        self.val, self.weights = [], []

    def on_epoch_end(self, epoch, logs=None):
        self.val.append(logs["val_loss"])
        self.weights.append(self.model.get_weights())


class Raise(Callback):
    """Raises ``exc`` in hook ``hook`` (at epoch ``at`` for the epoch hooks)."""

    def __init__(self, hook, exc, at=7):
        self.hook, self.exc, self.at = hook, exc, at

    def on_epoch_begin(self, epoch, logs=None):
        if self.hook == "epoch_begin" and epoch == self.at:
            raise self.exc

    def on_epoch_end(self, epoch, logs=None):
        if self.hook == "epoch_end" and epoch == self.at:
            raise self.exc

    def on_train_end(self, logs=None):
        if self.hook == "train_end":
            raise self.exc


@pytest.mark.parametrize("hook,exc", [("epoch_end", ValueError("user bug")),
                                      ("epoch_begin", KeyboardInterrupt()),
                                      ("train_end", ValueError("user bug")),
                                      ("train_end", KeyboardInterrupt())],
                         ids=["epoch_end-error", "epoch_begin-interrupt", "train_end-error",
                              "train_end-interrupt"])
def test_early_stopping_restores_when_an_earlier_callback_raises(backend, hook, exc):
    m, x, y, val = _regression()
    snaps = Snapshots()
    es = EarlyStopping(patience=20, restore_best_weights=True)
    with pytest.raises(type(exc)):
        m.fit(x, y, epochs=10, validation_data=val, verbose=0, seed=0,
              callbacks=[snaps, Raise(hook, exc), es])
    best = int(np.argmin(snaps.val))
    assert best < len(snaps.val) - 1  # the last weights are not the best ones
    for a, b in zip(m.get_weights(), snaps.weights[best]):
        np.testing.assert_array_equal(a, b)


# -- trainable ----------------------------------------------------------------------------

def test_frozen_layer_gets_no_update_and_no_optimizer_slots(backend):
    m = model(optimizer="adam")
    _fit(m)
    m.layers[0].trainable = False  # after compile and a fit: takes effect at the next fit
    host = lambda arrays: [B.to_numpy(a) for a in arrays]  # noqa: E731
    frozen, head = host(m.layers[0].params.values()), host(m.layers[1].params.values())
    slots = {k: host(m.opt_state["slots"][k].values()) for k in ("dense/W", "dense/b")}
    _fit(m, epochs=3)
    for a, b in zip(host(m.layers[0].params.values()), frozen):
        np.testing.assert_array_equal(a, b)
    assert not any(np.array_equal(a, b) for a, b in zip(host(m.layers[1].params.values()), head))
    for key, before in slots.items():  # the optimizer leaves the frozen layer's slots alone
        for a, b in zip(host(m.opt_state["slots"][key].values()), before):
            np.testing.assert_array_equal(a, b)
    assert set(m.get_params(trainable_only=True)) == {"dense_1/W", "dense_1/b"}
    m.layers[0].trainable = True
    _fit(m)
    assert not np.array_equal(B.to_numpy(m.layers[0].params["W"]), frozen[0])


def test_frozen_batchnorm_runs_in_inference_mode_as_keras_and_torch(backend):
    """One full-batch SGD step through a frozen BatchNormalization against PyTorch (BN in
    eval mode, its parameters without requires_grad), the Keras semantics of freezing."""
    torch = pytest.importorskip("torch")
    m = model(Dense(4, activation="relu", input_dim=D), BatchNormalization(),
              Dense(K, activation="softmax"), optimizer=xn.optimizers.SGD(lr=0.5))
    _fit(m, epochs=2)  # running statistics away from their start
    m.layers[1].trainable = False
    before = m.get_weights()
    m.fit(X, Y, epochs=1, batch_size=N, shuffle=False, verbose=0)
    after = m.get_weights()
    for a, b in zip(after[2:6], before[2:6]):  # gamma, beta, running mean and variance
        np.testing.assert_array_equal(a, b)
    t = [torch.tensor(w, dtype=torch.float64, requires_grad=i in (0, 1, 6, 7))
         for i, w in enumerate(before)]
    W1, b1, gamma, beta, mean, var, W2, b2 = t
    h = torch.relu(torch.tensor(X, dtype=torch.float64) @ W1 + b1)
    h = torch.nn.functional.batch_norm(h, mean, var, gamma, beta, training=False, eps=1e-5)
    loss = torch.nn.functional.cross_entropy(h @ W2 + b2, torch.tensor(Y))
    loss.backward()
    for i in (0, 1, 6, 7):
        expected = (t[i] - 0.5 * t[i].grad).detach().numpy()
        np.testing.assert_allclose(after[i], expected, rtol=1e-4, atol=1e-6)


def test_summary_counts_trainable_and_non_trainable_params_as_keras(backend):
    m = model(Dense(4, input_dim=D), BatchNormalization(), Dense(K, activation="softmax"))
    text = m.summary(print_fn=None)
    # Keras: Dense 3->4: 16; BatchNormalization(4): 16, of which 8 non-trainable; Dense 4->2: 10
    assert "Total params: 42" in text and "Trainable params: 34" in text
    assert "Non-trainable params: 8" in text
    assert m.count_params() == 42
    m.layers[0].trainable = False
    text = m.summary(print_fn=None)
    assert "Trainable params: 18" in text and "Non-trainable params: 24" in text


# -- torch inputs that require grad -------------------------------------------------------

def test_torch_inputs_with_requires_grad_build_no_graph(backend):
    if backend.name != "torch":
        pytest.skip("requires_grad is a property of torch tensors")
    import torch

    x = torch.tensor(X, device=backend.device, requires_grad=True)
    y = torch.tensor(Y, device=backend.device)
    m = model()
    m.fit(x, y, epochs=2, batch_size=4, verbose=0, validation_data=(x, y))
    m.evaluate(x, y, verbose=0)
    outs = [m.predict(x), m(x, training=True)]
    arrays = [*m.get_params().values(), *m.opt_state["slots"]["dense/W"].values(), *outs]
    assert all(a.grad_fn is None and not a.requires_grad for a in arrays)


# -- the loop's smaller promises ----------------------------------------------------------

def test_a_single_callback_is_a_one_element_list(backend):
    seen = []

    class Count(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(epoch)

    h1 = _fit(model(), epochs=2, callbacks=Count())
    h2 = _fit(model(), epochs=2, callbacks=[Count()])
    assert seen == [0, 1, 0, 1] and h1.history == h2.history


def test_predict_and_call_build_an_unbuilt_model_from_x(backend):
    for run in (lambda m: m.predict(X), lambda m: m(X.tolist())):
        m = xn.Sequential([Dense(K)], seed=0)
        out = B.to_numpy(run(m))
        W, b = m.get_weights()
        assert m.input_shape == (D,)
        np.testing.assert_allclose(out, X @ W + b, rtol=1e-5, atol=1e-6)


def test_model_checkpoint_formats_only_the_file_name(backend, tmp_path):
    folder = tmp_path / "run{1}" / "{epoch}"
    folder.mkdir(parents=True)
    cb = ModelCheckpoint(folder / "w-{epoch:02d}-{loss:.1f}.npz", save_weights_only=True)
    h = _fit(model(), epochs=2, callbacks=[cb])
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"w-{e + 1:02d}-{h.history['loss'][e]:.1f}.npz" for e in range(2)]


# -- History ------------------------------------------------------------------------------

def test_history_plot_to_a_file_leaves_matplotlib_alone(backend, tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    h = _fit(model(), epochs=2)
    before = matplotlib.get_backend()
    matplotlib.use("svg")  # a session's backend that is not Agg (a notebook's inline one)
    try:
        figures = plt.get_fignums()
        fig = h.plot(path=tmp_path / "h.png")
        assert matplotlib.get_backend() == "svg"
        assert plt.get_fignums() == figures  # no pyplot figure left open
        assert (tmp_path / "h.png").stat().st_size > 1000 and fig.axes
    finally:
        matplotlib.use(before)


def test_a_non_finite_first_epoch_is_recorded_and_reported_once(backend, capsys):
    m = model(Dense(1, input_dim=D), loss="mse", optimizer=xn.optimizers.SGD(lr=1e30))
    y = (X @ np.ones((D, 1), "float32")) * 1e10
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning) as warned:
        h = m.fit(X, y, epochs=3, batch_size=4, verbose=2, validation_data=(X, y))
    assert h.epoch == [0]
    assert set(h.history) == {"loss", "val_loss"}
    assert not math.isfinite(h.history["loss"][0]) and math.isnan(h.history["val_loss"][0])
    said = [str(w.message) for w in warned] + capsys.readouterr().out.splitlines()
    assert sum("non-finite" in s for s in said) == 1, said
