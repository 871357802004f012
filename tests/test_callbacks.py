"""Callbacks of ``Sequential.fit``: EarlyStopping, ModelCheckpoint, TerminateOnNaN and a
custom ``Callback`` subclass, on every backend.

The data: a linear regression whose validation targets come from the point halfway
between the model's initial weights and the training solution, so with plain SGD the
validation loss falls for a few epochs, then rises (measured: best at epoch 4 of 10).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import xpnet as xn
from xpnet.callbacks import Callback, EarlyStopping, ModelCheckpoint, TerminateOnNaN
from xpnet.layers import Dense

EPOCHS = 10


def _model_and_data():
    model = xn.Sequential([Dense(1, input_dim=3)], seed=0)
    model.compile(optimizer=xn.optimizers.SGD(lr=0.01), loss="mse", metrics=["mae"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 3)).astype("float32")
    w_true = np.array([[2.0], [-1.0], [0.5]], dtype="float32")
    y = x @ w_true + 0.3
    W0, b0 = model.get_weights()
    x_val = rng.standard_normal((64, 3)).astype("float32")
    y_val = x_val @ ((W0 + w_true) / 2) + (b0 + 0.3) / 2
    return model, x, y, (x_val, y_val)


def _fit(callbacks, epochs=EPOCHS, **kwargs):
    model, x, y, val = _model_and_data()
    history = model.fit(x, y, epochs=epochs, validation_data=val, verbose=0, seed=0,
                        callbacks=callbacks, **kwargs)
    return model, history, val


class Recorder(Callback):
    """Records every hook call, the logs and the weights at each epoch's end."""

    def __init__(self):
        self.events, self.weights = [], []

    def on_train_begin(self, logs=None):
        self.events.append(("train_begin",))

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, dict(logs)))
        self.weights.append(self.model.get_weights())

    def on_train_end(self, logs=None):
        self.events.append(("train_end",))


class Act(Callback):
    """Runs ``action(model)`` at the end of epoch ``at``."""

    def __init__(self, at, action):
        self.at, self.action = at, action

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            self.action(self.model)


def _assert_weights(model, expected):
    got = model.get_weights()
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def _keras_rule(values, patience, min_delta):
    """Keras' EarlyStopping on a list of monitored values: (stopped epoch or None, best)."""
    best, best_epoch, wait = math.inf, None, 0
    for epoch, value in enumerate(values):
        wait += 1
        if value < best - min_delta:
            best, best_epoch, wait = value, epoch, 0
            continue
        if wait >= patience and epoch > 0:
            return epoch, best_epoch
    return None, best_epoch


@pytest.fixture(scope="module")
def reference_val_loss():
    """The validation losses of a full run without callbacks (numpy)."""
    with xn.use_backend("numpy"):
        _, history, _ = _fit([])
    values = history.history["val_loss"]
    best = int(np.argmin(values))
    assert 0 < best < EPOCHS - 2 and values[-1] > 2 * values[best]  # falls, then rises
    return values


# -- EarlyStopping ------------------------------------------------------------------------

def test_early_stopping_restores_best_weights_when_training_runs_to_the_last_epoch(backend):
    rec = Recorder()
    es = EarlyStopping(monitor="val_loss", patience=EPOCHS, restore_best_weights=True)
    model, history, val = _fit([rec, es])
    assert history.epoch == list(range(EPOCHS))  # never stopped
    assert es.stopped_epoch is None and history.stop_reason is None
    val_loss = history.history["val_loss"]
    best = int(np.argmin(val_loss))
    assert best < EPOCHS - 1 and val_loss[-1] > val_loss[best]
    assert es.best_epoch == best
    _assert_weights(model, rec.weights[best])
    np.testing.assert_allclose(model.evaluate(*val, verbose=0)[0], val_loss[best], rtol=1e-5)


def test_without_restore_the_last_weights_stay(backend):
    rec = Recorder()
    model, history, _ = _fit([rec, EarlyStopping(patience=EPOCHS)])
    assert len(history.epoch) == EPOCHS
    _assert_weights(model, rec.weights[-1])


@pytest.mark.parametrize("patience,min_delta", [(0, 0.0), (1, 0.0), (2, 0.0), (1, 0.05),
                                                (3, 0.01)])
def test_early_stopping_patience_and_min_delta_as_keras(backend, reference_val_loss,
                                                         patience, min_delta):
    stop, best = _keras_rule(reference_val_loss, patience, min_delta)
    assert stop is not None
    rec = Recorder()
    es = EarlyStopping(patience=patience, min_delta=min_delta, restore_best_weights=True)
    model, history, _ = _fit([rec, es])
    assert history.epoch == list(range(stop + 1))
    np.testing.assert_allclose(history.history["val_loss"], reference_val_loss[:stop + 1],
                               rtol=1e-4)
    assert es.stopped_epoch == stop and es.best_epoch == best
    assert model.stop_training and "early stopping" in history.stop_reason
    _assert_weights(model, rec.weights[best])


def test_early_stopping_restores_when_another_callback_stops(backend):
    rec = Recorder()
    es = EarlyStopping(patience=EPOCHS, restore_best_weights=True)

    def stop(model):
        model.stop_training = True

    model, history, _ = _fit([rec, es, Act(EPOCHS - 2, stop)])
    assert len(history.epoch) == EPOCHS - 1
    best = int(np.argmin(history.history["val_loss"]))
    assert best < EPOCHS - 2
    _assert_weights(model, rec.weights[best])


def test_early_stopping_restores_when_a_callback_raises(backend):
    rec = Recorder()
    es = EarlyStopping(patience=EPOCHS, restore_best_weights=True)

    def fail(model):
        raise KeyboardInterrupt

    model, x, y, val = _model_and_data()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=EPOCHS, validation_data=val, verbose=0, seed=0,
                  callbacks=[rec, es, Act(EPOCHS - 2, fail)])
    losses = [e[2]["val_loss"] for e in rec.events if e[0] == "epoch_end"]
    _assert_weights(model, rec.weights[int(np.argmin(losses))])
    assert rec.events[-1] == ("train_end",)


def _diverge(model):
    model.optimizer.lr = 1e30


def test_early_stopping_restores_after_a_non_finite_loss(backend):
    rec = Recorder()
    es = EarlyStopping(monitor="val_loss", patience=EPOCHS, restore_best_weights=True)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning, match="non-finite"):
        model, history, _ = _fit([rec, es, Act(2, _diverge)])
    assert history.epoch == [0, 1, 2, 3]  # the non-finite epoch is recorded, not seen by es
    assert math.isnan(history.history["val_loss"][3])
    assert not math.isfinite(history.history["loss"][3])
    assert "non-finite" in history.stop_reason and "epoch 4" in history.stop_reason
    best = int(np.nanargmin(history.history["val_loss"]))
    _assert_weights(model, rec.weights[best])
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


# -- TerminateOnNaN -------------------------------------------------------------------------

def test_terminate_on_nan_stops_training(backend):
    rec = Recorder()
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning, match="epoch 3, batch"):
        model, history, _ = _fit([rec, TerminateOnNaN(), Act(1, _diverge)])
    assert model.stop_training
    assert history.epoch == [0, 1, 2]  # epoch 3 recorded with its non-finite loss
    assert all(math.isfinite(v) for v in history.history["loss"][:2])
    assert not math.isfinite(history.history["loss"][2])
    assert rec.events[-1] == ("train_end",)


def test_terminate_on_nan_callback_sets_stop_training():
    model, _, _, _ = _model_and_data()
    cb = TerminateOnNaN()
    cb.set_model(model)
    cb.on_epoch_end(0, {"loss": 1.0})
    assert not model.stop_training
    cb.on_epoch_end(1, {"loss": float("nan")})
    assert model.stop_training
    model.stop_training = False
    cb.on_epoch_end(2, {"loss": float("inf")})
    assert model.stop_training


# -- ModelCheckpoint -------------------------------------------------------------------------

def test_model_checkpoint_writes_every_epoch(backend, tmp_path):
    rec = Recorder()
    ckpt = ModelCheckpoint(str(tmp_path / "ckpt-{epoch:02d}.npz"))
    model, history, _ = _fit([rec, ckpt], epochs=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"ckpt-0{i}.npz" for i in range(1, 5)]
    for i in range(1, 5):
        fresh, _, _, _ = _model_and_data()
        assert fresh.load_checkpoint(tmp_path / f"ckpt-0{i}.npz") == i
        _assert_weights(fresh, rec.weights[i - 1])
        assert fresh.opt_state["step"] == 8 * i  # 256 rows / 32 per batch


def test_model_checkpoint_save_best_only(backend, tmp_path):
    rec = Recorder()
    ckpt = ModelCheckpoint(tmp_path / "best-{epoch}-{val_loss:.4f}.npz", monitor="val_loss",
                           save_best_only=True)
    model, history, _ = _fit([rec, ckpt])
    val_loss = history.history["val_loss"]
    improved = [e for e in range(EPOCHS) if val_loss[e] < min(val_loss[:e], default=math.inf)]
    assert improved == list(range(int(np.argmin(val_loss)) + 1))  # falls, then rises
    expected = {f"best-{e + 1}-{val_loss[e]:.4f}.npz" for e in improved}
    assert {p.name for p in tmp_path.iterdir()} == expected
    last = improved[-1]
    fresh, _, _, _ = _model_and_data()
    fresh.load_weights(tmp_path / f"best-{last + 1}-{val_loss[last]:.4f}.npz")
    _assert_weights(fresh, rec.weights[last])


def test_model_checkpoint_weights_only_monitoring_training_loss(backend, tmp_path):
    ckpt = ModelCheckpoint(tmp_path / "w.npz", monitor="loss", save_best_only=True,
                           save_weights_only=True)
    model, history, _ = _fit([ckpt], epochs=3)
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # rewritten in place, atomically
    fresh, _, _, _ = _model_and_data()
    header = fresh.load_weights(tmp_path / "w.npz")
    assert "optimizer" not in header
    _assert_weights(fresh, model.get_weights())  # the training loss fell every epoch


# -- a custom Callback ----------------------------------------------------------------------

def test_custom_callback_sees_every_hook_in_order(backend):
    rec = Recorder()
    model, history, _ = _fit([rec], epochs=3)
    assert rec.model is model
    kinds = [e[0] if len(e) == 1 else (e[0], e[1]) for e in rec.events]
    assert kinds == ["train_begin",
                     ("epoch_begin", 0), ("epoch_end", 0),
                     ("epoch_begin", 1), ("epoch_end", 1),
                     ("epoch_begin", 2), ("epoch_end", 2),
                     "train_end"]
    logs = [e[2] for e in rec.events if e[0] == "epoch_end"]
    assert all(list(l) == ["loss", "mae", "val_loss", "val_mae"] for l in logs)
    for key, values in history.history.items():
        assert [l[key] for l in logs] == values
        assert all(isinstance(v, float) for v in values)


def test_custom_callback_with_initial_epoch(backend):
    rec = Recorder()
    model, x, y, val = _model_and_data()
    model.fit(x, y, epochs=4, initial_epoch=2, verbose=0, callbacks=[rec])
    assert [e[1] for e in rec.events if e[0] == "epoch_begin"] == [2, 3]

