"""Training that ``tests/test_faults.py`` kills with SIGKILL and resumes.

One definition of the model, the data and the run, used both by the child processes
(``train``, started through a multiprocessing fork server that has xpnet and the backends
imported already, so a start costs milliseconds, not the seconds of ``import torch``) and
by the test itself (``reference``: the same run in-process, never interrupted).

Not a test module (the leading underscore keeps pytest from collecting it).
"""
from __future__ import annotations

import os
import signal

import numpy as np

import xpnet as xn
from xpnet.callbacks import Callback, ModelCheckpoint
from xpnet.layers import Dense, Dropout

EPOCHS = 150
SEED = 11


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 1).astype("int64")
    return x, y


def make_model():
    model = xn.Sequential([Dense(8, activation="relu", input_dim=4), Dropout(0.25),
                           Dense(3, activation="softmax")], seed=SEED,
                          dtype="float32")  # children and the test agree, whatever XPNET_FLOATX says
    model.compile(xn.optimizers.Adam(lr=0.01), loss="sparse_categorical_crossentropy")
    return model


class Progress(Callback):
    """After the checkpoint of an epoch is written, publish the epoch (1-based)."""

    def __init__(self, counter):
        self.counter = counter

    def on_epoch_end(self, epoch, logs=None):
        self.counter.value = epoch + 1


class KillSelf(Callback):
    """Kill this process with SIGKILL inside a chosen step of the save of one epoch."""

    def __init__(self, epoch, where):
        self.epoch, self.where = epoch, where

    def on_epoch_begin(self, epoch, logs=None):
        if epoch + 1 != self.epoch:
            return
        import xpnet.io as xio

        die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)  # noqa: E731
        if self.where == "before-fsync":  # data written to the temp file, not synced
            xio.os.fsync = die
        elif self.where == "before-rename":  # synced, not yet renamed over the target
            xio.os.replace = die
        elif self.where == "mid-write":  # half the arrays written to the temp file
            real = np.savez

            def half(f, **arrays):
                keys = sorted(arrays)[: len(arrays) // 2]
                real(f, **{k: arrays[k] for k in keys})
                f.flush()
                die()
            xio.np.savez = half


def train(backend_name, path, counter, kill_at=None):
    """Resume from ``path`` if it exists, train to ``EPOCHS``, checkpoint every epoch."""
    if backend_name == "torch":
        import torch

        torch.set_num_threads(1)  # tiny matrices; the test process does the same
    with xn.use_backend(backend_name):
        model = make_model()
        start = model.load_checkpoint(path) if os.path.exists(path) else 0
        counter.value = start
        callbacks = [ModelCheckpoint(path), Progress(counter)]
        if kill_at is not None:
            callbacks.insert(0, KillSelf(*kill_at))
        x, y = data()
        model.fit(x, y, epochs=EPOCHS, batch_size=8, initial_epoch=start, seed=SEED,
                  callbacks=callbacks, verbose=0)


class Record(Callback):
    def __init__(self):
        self.weights = {}

    def on_epoch_end(self, epoch, logs=None):
        state = self.model.opt_state
        slots = {f"optimizer/{k}/{s}": xn.to_numpy(v)
                 for k, d in state["slots"].items() for s, v in d.items()}
        self.weights[epoch + 1] = (self.model.get_weights(), slots, state["step"])


def reference():
    """Weights, optimizer slots and step after every epoch of the uninterrupted run."""
    model = make_model()
    rec = Record()
    x, y = data()
    model.fit(x, y, epochs=EPOCHS, batch_size=8, seed=SEED, callbacks=[rec], verbose=0)
    return rec.weights
