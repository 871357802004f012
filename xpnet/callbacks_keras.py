"""Keras' CSVLogger and LambdaCallback (importable from :mod:`xpnet.callbacks`)."""
from __future__ import annotations

import csv
import os

from .callbacks import Callback
from .distributed import is_main_process

__all__ = ["CSVLogger", "LambdaCallback"]


class CSVLogger(Callback):
    """Write each epoch's logs to a CSV file, as ``keras.callbacks.CSVLogger``.

    The first column is ``epoch`` (counted from 0), then the log keys in sorted order
    (``accuracy, loss, val_accuracy, val_loss``); a row is flushed at the end of every
    epoch, so the file can be read while training runs. ``append=True`` adds to an existing
    file (the header only if the file was empty or missing), for a resumed training.
    In a data-parallel run (:mod:`xpnet.distributed`) only rank 0 writes (every rank logs
    the same numbers).
    """

    def __init__(self, filename, separator=",", append=False):
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = bool(append)
        self._file = self._writer = None

    def on_train_begin(self, logs=None):
        if not is_main_process():
            return
        header = not (self.append and os.path.exists(self.filename)
                      and os.path.getsize(self.filename) > 0)
        self._file = open(self.filename, "a" if self.append else "w", newline="", encoding="utf-8")
        self._keys = sorted(self.log_keys)
        self._writer = csv.DictWriter(self._file, fieldnames=["epoch", *self._keys],
                                      delimiter=self.separator)
        if header:
            self._writer.writeheader()

    def on_epoch_end(self, epoch, logs=None):
        if self._writer is None:  # a rank > 0
            return
        logs = logs or {}
        self._writer.writerow({"epoch": epoch, **{k: logs.get(k, "NA") for k in self._keys}})
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = self._writer = None


class LambdaCallback(Callback):
    """A callback from plain functions, as ``keras.callbacks.LambdaCallback``:
    ``on_epoch_begin(epoch, logs)``, ``on_epoch_end(epoch, logs)``, ``on_train_begin(logs)``,
    ``on_train_end(logs)``; each is optional."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None):
        hooks = {"on_epoch_begin": on_epoch_begin, "on_epoch_end": on_epoch_end,
                 "on_train_begin": on_train_begin, "on_train_end": on_train_end}
        for name, fn in hooks.items():
            if fn is not None and not callable(fn):
                raise TypeError(f"LambdaCallback({name}) must be a function, got {type(fn).__name__}")
        self._hooks = hooks

    def on_train_begin(self, logs=None):
        if self._hooks["on_train_begin"]:
            self._hooks["on_train_begin"](logs)

    def on_epoch_begin(self, epoch, logs=None):
        if self._hooks["on_epoch_begin"]:
            self._hooks["on_epoch_begin"](epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self._hooks["on_epoch_end"]:
            self._hooks["on_epoch_end"](epoch, logs)

    def on_train_end(self, logs=None):
        if self._hooks["on_train_end"]:
            self._hooks["on_train_end"](logs)
