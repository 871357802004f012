"""CSVLogger and LambdaCallback, with Keras' documented behaviour."""
from __future__ import annotations

import csv

import numpy as np
import pytest

import xpnet as xn
from xpnet.callbacks import CSVLogger, LambdaCallback


def _fit(model, callbacks, epochs=3, initial_epoch=0):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 4)).astype("float32")
    y = rng.integers(0, 3, 120)
    return model.fit(x, y, epochs=epochs, batch_size=40, validation_split=0.25, verbose=0,
                     callbacks=callbacks, initial_epoch=initial_epoch, seed=1)


def _model():
    model = xn.Sequential([xn.layers.Dense(3, activation="softmax", input_dim=4)], seed=0)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_csv_logger_writes_sorted_keys_per_epoch(backend, tmp_path):
    path = tmp_path / "log.csv"
    history = _fit(_model(), [CSVLogger(path)])
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    for k, key in enumerate(rows[0][1:], start=1):
        assert [float(r[k]) for r in rows[1:]] == history.history[key]


def test_csv_logger_appends_for_a_resumed_training(tmp_path):
    path = tmp_path / "log.csv"
    model = _model()
    _fit(model, [CSVLogger(path, append=True)], epochs=2)
    _fit(model, [CSVLogger(path, append=True)], epochs=4, initial_epoch=2)
    rows = path.read_text().splitlines()
    assert rows[0].startswith("epoch,") and sum(r.startswith("epoch") for r in rows) == 1
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2", "3"]
    _fit(model, [CSVLogger(path, separator=";")], epochs=1)  # append=False: a new file
    assert path.read_text().splitlines()[0] == "epoch;accuracy;loss;val_accuracy;val_loss"


def test_lambda_callback_calls_its_functions(backend):
    calls = []
    cb = LambdaCallback(on_train_begin=lambda logs: calls.append("begin"),
                        on_epoch_begin=lambda epoch, logs: calls.append(f"e{epoch}"),
                        on_epoch_end=lambda epoch, logs: calls.append(round(logs["loss"], 9)),
                        on_train_end=lambda logs: calls.append("end"))
    history = _fit(_model(), [cb], epochs=2)
    assert calls == ["begin", "e0", round(history.history["loss"][0], 9), "e1",
                     round(history.history["loss"][1], 9), "end"]
    with pytest.raises(TypeError, match="must be a function"):
        LambdaCallback(on_epoch_end=3)
