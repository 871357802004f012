"""Per-batch callback hooks: Keras 3's ``on_train_batch_begin``/``on_train_batch_end``,
called only for callbacks that override them, with logs read from the device only when a
callback reads them."""
from __future__ import annotations

import math

import numpy as np
import pytest

import xpnet as xn
from xpnet._batch_hooks import BatchHooks, implements
from xpnet.callbacks import Callback, CallbackList, LambdaCallback

N, BATCH = 70, 16  # 5 batches, the last one short


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, 4)), rng.integers(0, 3, N)


def _model(lr=0.1, dtype="float64"):
    model = xn.Sequential([xn.layers.Dense(8, input_dim=4, activation="tanh"),
                           xn.layers.Dense(3, activation="softmax")], seed=1, dtype=dtype)
    model.compile(optimizer=xn.optimizers.SGD(lr=lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch", epoch))

    def on_train_batch_begin(self, batch, logs=None):
        self.events.append(("begin", batch, logs))

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(("end", batch, sorted(logs)))


def test_hooks_in_order_every_epoch(backend):
    x, y = _data()
    rec = Recorder()
    _model().fit(x, y, epochs=2, batch_size=BATCH, callbacks=[rec], verbose=0)
    expected = []
    for epoch in range(2):
        expected.append(("epoch", epoch))
        for b in range(5):
            expected += [("begin", b, None), ("end", b, ["accuracy", "loss"])]
    assert rec.events == expected


def test_logs_are_the_running_means_of_the_batch_losses(backend):
    """With a learning rate too small to move float64 weights, each batch's loss is the
    evaluate loss of its rows: logs["loss"] after batch 0 is that batch's loss, after
    batch b the row-weighted mean of batches 0..b (Keras 3), after the last the epoch's."""
    x, y = _data()
    model = _model(lr=1e-300)
    model.build()
    batch_losses = [model.evaluate(x[i:i + BATCH], y[i:i + BATCH], batch_size=N, verbose=0)[0]
                    for i in range(0, N, BATCH)]
    rows = [min(BATCH, N - i) for i in range(0, N, BATCH)]
    seen = []
    cb = LambdaCallback(on_train_batch_end=lambda b, logs: seen.append((b, logs["loss"],
                                                                         logs["accuracy"])))
    history = model.fit(x, y, epochs=1, batch_size=BATCH, shuffle=False, callbacks=[cb],
                        verbose=0)
    assert [b for b, _, _ in seen] == list(range(5))
    assert seen[0][1] == pytest.approx(batch_losses[0], rel=1e-12)
    for b, loss, _ in seen:
        mean = sum(l * r for l, r in zip(batch_losses[:b + 1], rows)) / sum(rows[:b + 1])
        assert loss == pytest.approx(mean, rel=1e-12)
    assert seen[-1][1] == pytest.approx(history.history["loss"][0], rel=1e-12)
    assert seen[-1][2] == pytest.approx(history.history["accuracy"][0], rel=1e-12)


def test_logs_of_metrics_that_keep_statistics(backend):
    """Precision and AUC keep confusion counts (a vector a batch): the last batch's logs
    are the epoch's, read through each metric's ``result``, also when read at every batch."""
    x, y = _data()
    y = (y > 0).astype("int64")
    for read_every_batch in (True, False):
        model = xn.Sequential([xn.layers.Dense(8, input_dim=4, activation="tanh"),
                               xn.layers.Dense(1, activation="sigmoid")], seed=1,
                              dtype="float64")
        model.compile(optimizer=xn.optimizers.SGD(lr=0.1), loss="binary_crossentropy",
                      metrics=["precision", "auc", "accuracy"])
        seen = []
        cb = LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(
            dict(logs) if read_every_batch or b == 4 else None))
        history = model.fit(x, y, epochs=1, batch_size=BATCH, callbacks=[cb], verbose=0)
        for key in ("loss", "precision", "auc", "accuracy"):
            assert seen[-1][key] == pytest.approx(history.history[key][0], rel=1e-12), key
        if read_every_batch:
            assert 0.0 <= seen[0]["precision"] <= 1.0 and 0.0 <= seen[0]["auc"] <= 1.0


def test_only_overriding_callbacks_are_called():
    class EpochOnly(Callback):
        def on_epoch_end(self, epoch, logs=None):
            pass

    model = _model()
    model.build()
    hooks = CallbackList([EpochOnly(), LambdaCallback(on_epoch_end=print)])
    hooks.set_model(model, {}, ["loss"])
    assert hooks.batch_hooks is None  # the batch loop runs as without callbacks
    assert not implements(LambdaCallback(), "on_train_batch_end")
    assert implements(LambdaCallback(on_train_batch_begin=print), "on_train_batch_begin")
    assert not implements(LambdaCallback(on_train_batch_begin=print), "on_train_batch_end")
    assert implements(Recorder(), "on_train_batch_end")


def test_a_batch_hook_stops_training_after_its_batch(backend):
    x, y = _data()
    model = _model()
    seen = []

    def stop(batch, logs):
        seen.append(batch)
        if batch == 1:
            model.stop_training = True

    history = model.fit(x, y, epochs=3, batch_size=BATCH, verbose=0,
                        callbacks=LambdaCallback(on_train_batch_end=stop))
    assert seen == [0, 1] and history.epoch == [0]
    assert math.isfinite(history.history["loss"][0])


def test_logs_ignored_read_nothing_from_a_meta_device():
    """A hook that does not read its logs never touches the values: on the meta device
    (no data) any read would raise."""
    torch = pytest.importorskip("torch", reason="the meta-device check needs PyTorch")
    with xn.use_backend("torch"):
        model = _model(dtype="float32")
        model.build()
    counted = []
    hooks = BatchHooks.of([LambdaCallback(on_train_batch_begin=lambda b, logs: counted.append(b),
                                          on_train_batch_end=lambda b, logs: counted.append(
                                              (b, list(logs), len(logs))))], model)
    losses, parts, slices = [], [[]], []
    hooks.epoch(losses, parts, slices)
    for b in range(3):
        hooks.begin(b)
        losses.append(torch.empty((), device="meta"))
        parts[0].append(torch.empty((), device="meta"))
        slices.append((b * 4, b * 4 + 4))
        hooks.end(b)
    assert counted == [0, (0, ["loss", "accuracy"], 2), 1, (1, ["loss", "accuracy"], 2),
                       2, (2, ["loss", "accuracy"], 2)]
    logs_reader = []
    hooks = BatchHooks.of([LambdaCallback(on_train_batch_end=lambda b, logs: logs_reader.append(
        logs["loss"]))], model)
    hooks.epoch(losses, parts, slices)
    with pytest.raises((RuntimeError, NotImplementedError)):
        hooks.end(2)  # reading a value is a host read: it fails on meta tensors


def test_fit_reads_the_host_per_batch_only_for_a_hook_that_reads_its_logs(monkeypatch):
    """Counting torch's host reads over a whole fit: a counting hook adds none; a hook that
    reads logs["loss"] after each batch adds about one per batch."""
    torch = pytest.importorskip("torch", reason="counting tensor reads needs PyTorch")
    reads = []
    for name in ("__float__", "__bool__", "__int__", "__index__", "item", "tolist", "numpy",
                 "cpu", "__array__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            reads.append(_name)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, counted)
    x, y = _data()

    def run(callbacks):
        with xn.use_backend("torch"):
            model = _model()
            model.build()
            reads.clear()
            model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0, callbacks=callbacks)
        return len(reads)

    base = run(None)
    batches = []
    counting = run([LambdaCallback(on_train_batch_begin=lambda b, logs: batches.append(b),
                                   on_train_batch_end=lambda b, logs: batches.append(b))])
    assert len(batches) == 20 and counting == base
    reading = run([LambdaCallback(on_train_batch_end=lambda b, logs: logs["loss"])])
    assert reading == base + 2 * 10  # per batch: a read of the loss, one of the accuracy
