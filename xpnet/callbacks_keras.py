"""Keras' CSVLogger, LambdaCallback, LearningRateScheduler and ReduceLROnPlateau
(importable from :mod:`xpnet.callbacks`)."""
from __future__ import annotations

import csv
import os

from .callbacks import Callback
from .distributed import is_main_process

__all__ = ["CSVLogger", "LambdaCallback", "LearningRateScheduler", "ReduceLROnPlateau"]


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
    ``on_train_end(logs)``, ``on_train_batch_begin(batch, logs)``,
    ``on_train_batch_end(batch, logs)``; each is optional (a batch hook not given costs
    the batch loop nothing)."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None):
        hooks = {"on_epoch_begin": on_epoch_begin, "on_epoch_end": on_epoch_end,
                 "on_train_begin": on_train_begin, "on_train_end": on_train_end,
                 "on_train_batch_begin": on_train_batch_begin,
                 "on_train_batch_end": on_train_batch_end}
        for name, fn in hooks.items():
            if fn is not None and not callable(fn):
                raise TypeError(f"LambdaCallback({name}) must be a function, got {type(fn).__name__}")
        self._hooks = hooks
        for name in ("on_train_batch_begin", "on_train_batch_end"):
            if hooks[name] is not None:  # as Keras: an attribute only for a hook given
                setattr(self, name, hooks[name])

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


def _rate(model):
    """The optimizer's current rate as a float (a schedule's, at the current step)."""
    lr, state = model.optimizer.lr, model.opt_state
    if callable(lr):
        lr = lr(int(state["step"]) if state is not None else 0)
    return float(lr)


def _set_rate(model, value, who):
    if callable(model.optimizer.lr):
        raise ValueError(f"{who} sets the learning rate, but the optimizer's is a schedule "
                         f"({model.optimizer.lr!r}): use one or the other")
    model.optimizer.lr = float(value)


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, lr)`` (Keras'
    ``LearningRateScheduler``; ``epoch`` counts from 0, ``lr`` is the current rate); the
    rate used is logged as ``learning_rate``."""

    adds_logs = ("learning_rate",)

    def __init__(self, schedule, verbose=0):
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler(schedule) takes a function, got "
                            f"{type(schedule).__name__}")
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = float(self.schedule(epoch, _rate(self.model)))
        if not lr > 0 or lr != lr or lr == float("inf"):
            raise ValueError(f"LearningRateScheduler: the schedule gave {lr!r} for epoch {epoch}; "
                             "a learning rate is a finite number > 0")
        _set_rate(self.model, lr, "LearningRateScheduler")
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _rate(self.model)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved by more
    than ``min_delta`` for ``patience`` epochs, then wait ``cooldown`` epochs; never below
    ``min_lr``. Keras' ``ReduceLROnPlateau`` and its defaults (``factor=0.1``,
    ``patience=10``, ``min_delta=1e-4``); the rate of each epoch is logged as
    ``learning_rate`` (the one used, before a reduction)."""

    adds_logs = ("learning_rate",)

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        from .callbacks import _monitor_mode

        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau(factor) must be in (0, 1), got {factor!r}")
        self.monitor, self.factor, self.patience = monitor, float(factor), int(patience)
        self.verbose, self.min_delta = verbose, abs(float(min_delta))
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)
        self.mode = _monitor_mode(monitor, mode)

    def on_train_begin(self, logs=None):
        self.best = float("inf") if self.mode == "min" else -float("inf")
        self.wait = self.cooldown_counter = 0

    def _improved(self, value):
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = old = _rate(self.model)
        current = logs.get(self.monitor)
        if current is None:
            raise KeyError(f"ReduceLROnPlateau monitors {self.monitor!r}, which fit does not log "
                           f"(it logs {sorted(logs)})")
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and old > self.min_lr:
                new = max(old * self.factor, self.min_lr)
                _set_rate(self.model, new, "ReduceLROnPlateau")
                if self.verbose:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                self.cooldown_counter, self.wait = self.cooldown, 0
