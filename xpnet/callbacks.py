"""Callbacks for :meth:`xpnet.Sequential.fit`: EarlyStopping, ModelCheckpoint, TerminateOnNaN,
CSVLogger, LambdaCallback, LearningRateScheduler, ReduceLROnPlateau and TensorBoard.

A callback sees the model and the per-epoch ``logs`` (host floats, read once per epoch).
Set ``model.stop_training = True`` to stop after the current epoch (from a batch hook:
after the current batch). The per-batch hooks run only for callbacks that override them,
and their ``logs`` are read from the device only when a key is read
(:mod:`xpnet._batch_hooks`).
"""
from __future__ import annotations

import math
import os
import string

from ._batch_hooks import BatchHooks
from .io import refuse_other_format

__all__ = ["Callback", "CallbackList", "EarlyStopping", "ModelCheckpoint", "TerminateOnNaN",
           "CSVLogger", "LambdaCallback", "LearningRateScheduler", "ReduceLROnPlateau",
           "TensorBoard"]


class Callback:
    """Base class; every hook is optional.

    ``fit`` sets ``model``, ``params`` (its settings: epochs, steps ...) and ``log_keys``
    (the keys each epoch's ``logs`` will hold) before ``on_train_begin``.
    """

    model = None
    params: dict = {}
    log_keys: list = []

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        """Before batch ``batch`` (counted from 0 in each epoch); ``logs`` is None."""

    def on_train_batch_end(self, batch, logs=None):
        """After batch ``batch``: ``logs`` maps ``loss`` and each metric to its mean over
        the epoch's batches so far (as Keras 3), read from the device on access."""


class CallbackList:
    """The callbacks of one ``fit``, each hook called on every callback in order.

    ``callbacks`` is a list of :class:`Callback` (or one, or None), checked here.
    ``on_train_end`` runs for every callback whose ``on_train_begin`` was called, even
    after one raises (EarlyStopping restores the best weights there); the first error is
    raised after all have run.
    """

    def __init__(self, callbacks=None):
        if isinstance(callbacks, Callback):
            callbacks = [callbacks]
        elif callbacks is None:
            callbacks = []
        elif isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
            raise TypeError(f"callbacks must be a list of xpnet Callback objects, got "
                            f"{type(callbacks).__name__}")
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be xpnet Callback objects, got {type(cb).__name__}")
        self._begun = []
        self.batch_hooks = None

    def set_model(self, model, params, log_keys):
        # keys a callback adds to the logs (the learning rate), for those that list keys
        log_keys = list(log_keys) + [k for cb in self.callbacks for k in getattr(cb, "adds_logs", ())
                                     if k not in log_keys]
        log_keys = list(dict.fromkeys(log_keys))
        for cb in self.callbacks:
            cb.set_model(model)
            cb.params, cb.log_keys = dict(params), list(log_keys)
        self.batch_hooks = BatchHooks.of(self.callbacks, model)

    def on_train_begin(self):
        for cb in self.callbacks:
            self._begun.append(cb)
            cb.on_train_begin()

    def on_epoch_begin(self, epoch):
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch)

    def on_epoch_end(self, epoch, logs):
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_train_end(self):
        error = None
        for cb in self._begun:
            try:
                cb.on_train_end()
            except BaseException as exc:  # KeyboardInterrupt too: the others still run
                error = error or exc
        if error is not None:
            raise error


def _monitor_mode(monitor, mode):
    """``mode="auto"``: "max" for accuracies, precision, recall and AUC (Keras' metrics
    whose direction is "up"), else "min"."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        up = ("acc", "auc", "precision", "recall")
        mode = "max" if any(k in monitor for k in up) else "min"
    return mode


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights=True`` the weights of the best epoch are put back when
    training ends, on every path: stopped early, ran to the last epoch, or stopped by
    another callback or a non-finite loss.
    """

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto",
                 restore_best_weights=False, verbose=0):
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = abs(float(min_delta))
        self.mode = _monitor_mode(monitor, mode)
        self.restore_best_weights = bool(restore_best_weights)
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.best_weights = None
        self.stopped_epoch = None

    def _improved(self, value):
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(
                f"EarlyStopping monitors {self.monitor!r}, which fit does not log; "
                f"available: {', '.join(logs)} (val_ keys need validation_data or validation_split)"
            )
        value = logs[self.monitor]
        if math.isfinite(value) and (self.best_epoch is None or self._improved(value)):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:  # as Keras: `patience` epochs without improvement
            self.stopped_epoch = epoch
            self.model.stop_training = True
            self.model.stop_reason = (
                f"early stopping: {self.monitor} did not improve for {self.wait} epochs "
                f"(best {self.best:.6g} at epoch {self.best_epoch})"
            )

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
            if self.verbose:
                print(f"EarlyStopping: restored the weights of epoch {self.best_epoch}")


class ModelCheckpoint(Callback):
    """Save the model after each epoch, atomically (see :func:`xpnet.io.save_weights`).

    The file name in ``filepath`` may hold ``{epoch}`` and any logged key, e.g.
    ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``; the folder part is used as it is (braces in
    a folder name stay braces). A key that ``fit`` will not log is refused when training
    begins.
    With ``save_best_only`` only an improvement of ``monitor`` writes. The file holds the
    weights, the optimizer state and the epoch, so ``model.load_checkpoint(path)`` and
    ``fit(..., initial_epoch=...)`` resume training.
    """

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto",
                 save_weights_only=False, verbose=0):
        if not isinstance(filepath, (str, bytes, os.PathLike)):
            raise TypeError(f"ModelCheckpoint filepath must be a str, bytes or os.PathLike, "
                            f"got {type(filepath).__name__}")
        self.filepath = refuse_other_format(os.fsdecode(os.fspath(filepath)))
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        self.mode = _monitor_mode(monitor, mode)
        self.save_weights_only = bool(save_weights_only)
        self.verbose = verbose
        self.best = None
        folder, name = os.path.split(self.filepath)
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(name) if f is not None]
        except ValueError as exc:
            raise ValueError(f"ModelCheckpoint filepath {self.filepath!r}: the file name is "
                             f"a format string and {exc} (write a literal brace as {{{{ or }}}})"
                             ) from None
        self._folder, self._name = folder, name
        self._fields = [f.split(".")[0].split("[")[0] for f in fields]

    def on_train_begin(self, logs=None):
        available = ["epoch", *self.log_keys]
        wanted = self._fields + ([self.monitor] if self.save_best_only else [])
        missing = [f for f in wanted if f not in available]
        if missing:
            raise ValueError(
                f"ModelCheckpoint needs {missing[0]!r} (in filepath {self.filepath!r} or as "
                f"monitor), which fit does not log; available: {', '.join(available)} "
                "(val_ keys need validation_data or validation_split)"
            )

    def _path(self, epoch, logs):
        return os.path.join(self._folder, self._name.format(epoch=epoch + 1, **logs))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            if self.monitor not in logs:
                raise KeyError(f"ModelCheckpoint monitors {self.monitor!r}, which fit does not log; "
                               f"available: {', '.join(logs)}")
            value = logs[self.monitor]
            better = (self.best is None or (value < self.best if self.mode == "min" else value > self.best))
            if not (math.isfinite(value) and better):
                return
            self.best = value
        path = self._path(epoch, logs)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save_checkpoint(path, epoch=epoch + 1)
        if self.verbose:
            print(f"ModelCheckpoint: saved {path}")


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite.

    ``fit`` tracks the first non-finite batch on the device (no per-batch host sync) and
    reports the epoch and batch. ``fit`` stops on a non-finite loss even without this
    callback; it is here for code written for Keras.
    """

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("loss")
        if value is not None and not math.isfinite(value):
            self.model.stop_training = True


# Keras' CSVLogger and LambdaCallback (they subclass Callback, so they come last)
from .callbacks_keras import (CSVLogger, LambdaCallback, LearningRateScheduler,  # noqa: E402
                              ReduceLROnPlateau)
from .callbacks_tensorboard import TensorBoard  # noqa: E402
