"""The loops behind ``Sequential.fit`` and ``Sequential.evaluate``.

Host reads are few and deliberate: the per-batch losses and metric sums stay on the
device, and are read back when the progress bar refreshes (about ten times an epoch with
``verbose=1``) and once at the end of each epoch. A training step itself never waits for
the device.
"""
from __future__ import annotations

import math
import numbers
import warnings

from . import backend as B
from . import data as D
from ._validate import check_seed
from .callbacks import Callback
from .history import History
from .training import train_step

__all__ = ["run_fit", "run_evaluate"]

_BAR_UPDATES = 10


def _is_int(n):
    return isinstance(n, numbers.Integral) and not isinstance(n, bool)


def _check_fit_args(epochs, validation_split, initial_epoch, verbose):
    if not _is_int(epochs) or epochs < 0:
        raise ValueError(f"epochs must be an int >= 0, got {epochs!r}")
    if not _is_int(initial_epoch) or initial_epoch < 0:
        raise ValueError(f"initial_epoch must be an int >= 0, got {initial_epoch!r}")
    if not isinstance(validation_split, numbers.Real) or not 0 <= validation_split < 1:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")


def _prepare(model, x, y, name=""):
    """Check ``x``/``y`` against the model; build it from ``x`` if needed."""
    backend = model.backend if model.built else B.current()
    x = D.as_data(x, backend, name + "x")
    y = D.as_data(y, backend, name + "y")
    D.check_xy(x, y)
    model.check_input(x)
    D.check_finite(x, name + "x", model.dtype_name)  # as the model sees it, after the cast
    D.check_finite(y, name + "y", None if model.loss.sparse else model.dtype_name)
    y_dtype = D.check_targets(y, model.loss, model.output_shape, name + "y") or model.dtype_name
    return x, y, y_dtype


def _metric_names(model):
    return [spec if isinstance(spec, str) else m.name
            for spec, m in zip(model._metric_specs, model.metrics)]


def _read_logs(model, xp, losses, metric_parts, weights, n):
    """One host read: the weighted means of the per-batch values so far."""
    w = xp.asarray(weights, dtype=losses[0].dtype, device=getattr(losses[0], "device", None))
    logs = {"loss": float(xp.sum(xp.stack(losses) * w[:len(losses)])) / n}
    for name, parts in zip(_metric_names(model), metric_parts):
        logs[name] = float(xp.sum(xp.stack(parts))) / n
    return logs


def _progress(total, desc, verbose):
    if verbose != 1:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=True, dynamic_ncols=True)


def _fmt(logs):
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


def run_fit(model, x, y, *, epochs=1, batch_size=32, validation_data=None, validation_split=0.0,
            shuffle=True, callbacks=None, verbose=1, seed=None, initial_epoch=0):
    """Train ``model`` with mini-batches; return a :class:`~xpnet.history.History`.

    ``x``/``y``: NumPy arrays (moved a batch at a time) or arrays of the active backend.
    ``validation_split`` holds out the *last* fraction of the rows, before shuffling (as
    Keras). ``seed`` (default: the model's) fixes the shuffling and dropout masks; each
    epoch's order depends only on (seed, epoch), so ``initial_epoch=k`` after
    :meth:`~xpnet.Sequential.load_checkpoint` continues exactly. A non-finite loss stops
    training with a ``RuntimeWarning`` naming the epoch and batch; that epoch's logs
    (the non-finite loss) are recorded in the history, but no callback sees them.
    ``callbacks`` is a list of :class:`~xpnet.callbacks.Callback` (or one of them). Each
    callback's ``on_train_end`` runs on every exit path, even when another one raises.
    The layers' ``trainable`` flags are read here, once: frozen layers are not updated.
    """
    model._require_layers("fit")
    seed = check_seed(seed, "fit(seed)")
    batch_size = D.check_batch_size(batch_size)
    _check_fit_args(epochs, validation_split, initial_epoch, verbose)
    epochs, initial_epoch = int(epochs), int(initial_epoch)
    x, y, y_dtype = _prepare(model, x, y)
    backend, xp, dtype = model.backend, model.backend.xp, model.dtype_name
    n = D.num_rows(x)
    val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a tuple (x_val, y_val)")
        val = validation_data
    elif validation_split > 0:
        n_val = int(n * validation_split)
        if n_val == 0 or n_val == n:
            raise ValueError(f"validation_split={validation_split} leaves no rows on one side of {n}")
        val = (x[n - n_val:, ...], y[n - n_val:, ...])
        x, y, n = x[:n - n_val, ...], y[:n - n_val, ...], n - n_val
    if val is not None:  # checked once here, not every epoch
        val = _prepare(model, *val, name="val_")
    callbacks = _check_callbacks(callbacks)
    if model._plan_training() == 0:
        raise ValueError(
            "every layer of the model is frozen (trainable=False), so fit has nothing to "
            "train: set layer.trainable = True on a layer, or use evaluate"
        )
    on_device = isinstance(x, backend.array_type) and backend.name != "numpy"
    slices = D.batch_slices(n, batch_size)
    weights = [j - i for i, j in slices]
    if model.opt_state is None:
        model.opt_state = model.optimizer.init_state(model.get_params())
    base_seed = seed if seed is not None else model.seed
    if base_seed is None:
        base_seed = int(B.host_rng(None).integers(2**31))
    history = History({"epochs": epochs, "batch_size": batch_size, "steps": len(slices),
                       "samples": n, "backend": backend.name})
    log_keys = ["loss", *_metric_names(model)]
    log_keys += [f"val_{k}" for k in log_keys] if val is not None else []
    for cb in callbacks:
        cb.set_model(model)
        cb.params = dict(history.params)
        cb.log_keys = list(log_keys)
    model.history = history
    model.stop_training, model.stop_reason = False, None
    nonfinite = False
    begun = []
    try:
        for cb in callbacks:
            begun.append(cb)
            cb.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            _reseed_dropout(model, base_seed, epoch, backend)
            order = B.host_rng([base_seed, epoch]).permutation(n) if shuffle else None
            if order is not None and on_device:
                order = xp.asarray(order, device=backend.device)
            bar = _progress(len(slices), f"Epoch {epoch + 1}/{epochs}", verbose)
            refresh = max(1, math.ceil(len(slices) / _BAR_UPDATES))  # at most 10 reads
            params, state = model.get_params(trainable_only=True), model.opt_state
            losses, metric_parts = [], [[] for _ in model.metrics]
            for b, (i, j) in enumerate(slices):
                index = slice(i, j) if order is None else order[i:j]
                xb = D.take_rows(x, index, backend, dtype)
                yb = D.take_rows(y, index, backend, y_dtype)
                params, state, loss, y_pred = train_step(model, model.optimizer, params, state, xb, yb)
                losses.append(loss)
                for parts, metric in zip(metric_parts, model.metrics):
                    parts.append(metric.batch_sum(y_pred, yb))
                if bar is not None and ((b + 1) % refresh == 0 or b + 1 == len(slices)):
                    bar.update(b + 1 - bar.n)
                    bar.set_postfix(_read_logs(model, xp, losses, metric_parts, weights, j), refresh=False)
            model.set_params(params)
            # the step keeps the slots of the trainable parameters; a frozen one keeps its own
            model.opt_state = {"step": state["step"],
                               "slots": {**model.opt_state["slots"], **state["slots"]}}
            logs = _read_logs(model, xp, losses, metric_parts, weights, n)
            if not math.isfinite(logs["loss"]):
                if bar is not None:
                    bar.close()
                _stop_on_nonfinite(model, xp, losses, epoch)
                nonfinite = True
                history.record(epoch, {k: logs.get(k, math.nan) for k in log_keys})
                break
            if val is not None:
                val_logs = _evaluate_prepared(model, *val, batch_size=batch_size)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            if bar is not None:
                bar.set_postfix(logs, refresh=False)
                bar.close()
            elif verbose == 2:
                print(f"Epoch {epoch + 1}/{epochs} - {_fmt(logs)}", flush=True)
            history.record(epoch, logs)
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
    finally:
        _end_training(begun)
    history.stop_reason = model.stop_reason
    if model.stop_reason and verbose and not nonfinite:  # the warning has said it
        print(f"xpnet: training stopped: {model.stop_reason}", flush=True)
    return history


def _check_callbacks(callbacks):
    if isinstance(callbacks, Callback):
        return [callbacks]
    if callbacks is None:
        return []
    if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise TypeError(f"callbacks must be a list of xpnet Callback objects, got "
                        f"{type(callbacks).__name__}")
    callbacks = list(callbacks)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be xpnet Callback objects, got {type(cb).__name__}")
    return callbacks


def _end_training(callbacks):
    """Every callback's ``on_train_end``, even after one raises (EarlyStopping restores
    the best weights there); the first error is raised after all have run."""
    error = None
    for cb in callbacks:
        try:
            cb.on_train_end()
        except BaseException as exc:  # KeyboardInterrupt too: the others still run
            error = error or exc
    if error is not None:
        raise error


def _reseed_dropout(model, base_seed, epoch, backend):
    for index, layer in enumerate(model.layers):
        if hasattr(layer, "rate") and hasattr(layer, "rng"):
            seed = int(B.host_rng([base_seed, epoch, index]).integers(2**31))
            layer.rng = B.DeviceRNG(seed, backend)


def _stop_on_nonfinite(model, xp, losses, epoch):
    finite = xp.isfinite(xp.stack(losses))
    first_bad = int(xp.argmin(xp.astype(finite, xp.int64)))  # first False
    model.stop_training = True
    model.stop_reason = (
        f"the loss became non-finite (nan or inf) at epoch {epoch + 1}, batch {first_bad + 1}; "
        "the learning rate is probably too high for this model and data"
    )
    warnings.warn(f"xpnet: {model.stop_reason}. Training stopped.", RuntimeWarning, stacklevel=4)


def _evaluate_prepared(model, x, y, y_dtype, batch_size=32, verbose=0):
    backend, xp, dtype = model.backend, model.backend.xp, model.dtype_name
    n = D.num_rows(x)
    slices = D.batch_slices(n, batch_size)
    weights = [j - i for i, j in slices]
    bar = _progress(len(slices), "Evaluate", verbose)
    losses, metric_parts = [], [[] for _ in model.metrics]
    for i, j in slices:
        xb = D.take_rows(x, slice(i, j), backend, dtype)
        yb = D.take_rows(y, slice(i, j), backend, y_dtype)
        y_pred = model.forward(xb, training=False)
        losses.append(model.loss.value(y_pred, yb))  # data checked up front
        for parts, metric in zip(metric_parts, model.metrics):
            parts.append(metric.batch_sum(y_pred, yb))
        if bar is not None:
            bar.update(1)
    logs = _read_logs(model, xp, losses, metric_parts, weights, n)
    if bar is not None:
        bar.set_postfix(logs, refresh=False)
        bar.close()
    elif verbose == 2:
        print(_fmt(logs), flush=True)
    return logs


def run_evaluate(model, x, y, batch_size=32, verbose=1):
    """Loss and metrics over ``(x, y)`` as a dict (read from the device once)."""
    model._require_layers("evaluate")
    batch_size = D.check_batch_size(batch_size)
    x, y, y_dtype = _prepare(model, x, y)
    return _evaluate_prepared(model, x, y, y_dtype, batch_size=batch_size, verbose=verbose)
