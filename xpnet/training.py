"""Training: the loop behind ``Sequential.fit`` and the step it runs (``evaluate``'s loop
is in :mod:`xpnet.evaluation`, input pipelines in :mod:`xpnet.pipelines`).

:func:`run_fit` checks its arguments and the data once (:mod:`xpnet.fit_data`), then runs epochs of
:func:`train_step`, a pure function of (parameters, optimizer state, batch): it reads
nothing global and writes nothing but its return values (and the layers' scratch space),
so it can be mapped over devices. A data-parallel trainer calls :func:`forward_backward`
on each shard, all-reduces the ``grads`` dicts (each weighted by its shard's share of the
batch), and calls ``optimizer.apply(params, grads, opt_state)`` everywhere: that is what
``fit(distributed=...)`` does (:mod:`xpnet._distributed_fit`).

Host reads are few and deliberate: the step never reads a value back (the loss is a 0-d
array on the device); the per-batch losses and metric sums are read when the progress bar
refreshes (about ten times an epoch with ``verbose=1``) and once at the end of each epoch
(:mod:`xpnet.epoch_logs`).
"""
from __future__ import annotations

import math
import numbers

from . import backend as B
from . import compiled as _compiled
from . import data as D
from . import _validate as V
from . import _distributed_fit as _dp
from . import epoch_logs as EL
from . import pipelines as P
from . import sample_weights as SW
from ._validate import check_seed
from .callbacks import CallbackList
from .evaluation import evaluate_arrays as _evaluate, run_evaluate
from .fit_data import prepare, split_validation
from .history import History
from .layers.regularization import Dropout

__all__ = ["run_fit", "run_evaluate", "train_step", "forward_backward", "claim",
           "ModelInUseError"]


def run_fit(model, x, y=None, *, epochs=1, batch_size=32, validation_data=None,
            validation_split=0.0, shuffle=True, callbacks=None, verbose=1, seed=None,
            initial_epoch=0, distributed=None, sample_weight=None, class_weight=None,
            steps_per_epoch=None, validation_steps=None):
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
    ``distributed`` (a communicator of :mod:`xpnet.distributed`, None for one process)
    trains data-parallel, ``batch_size`` being the global batch.
    ``sample_weight`` (one weight per row) or ``class_weight`` (``{class: weight}``)
    weigh each row's loss as Keras does (:mod:`xpnet.sample_weights`);
    ``validation_data`` may be ``(x_val, y_val, sample_weight_val)``.
    ``x`` may also be an input pipeline, with ``y=None``: an :class:`xpnet.data.Dataset`,
    or an iterable or generator of ``(x, y)`` / ``(x, y, w)`` batches
    (:mod:`xpnet.pipelines`: ``steps_per_epoch``, ``validation_steps``).
    """
    seed = check_seed(seed, "fit(seed)")
    epochs, initial_epoch = _check_fit_args(epochs, validation_split, initial_epoch, verbose)
    callbacks = CallbackList(callbacks)
    source = dp = None
    if P.is_pipeline(x, y):  # batches come from an iterable (it builds the model)
        source = P.FitSource(model, x, y, batch_size, shuffle, steps_per_epoch,
                             validation_data, validation_split, validation_steps,
                             distributed, sample_weight, class_weight)
        val, validator = None, source.validator
    else:
        P.refuse_steps(steps_per_epoch)
        validator = P.validation_pipeline(model, validation_data, validation_steps, batch_size)
        validation_data = None if validator is not None else validation_data
        batch_size = D.check_batch_size(batch_size)
        dp = _dp.plan(distributed, model)  # data-parallel: None on one process
        verbose = verbose if dp is None else dp.verbose(verbose)
        x, y, y_dtype = prepare(model, x, y)
        w = SW.prepare_weights(sample_weight, class_weight, x, y, model.backend, model.dtype_name)
        x, y, w, val = split_validation(model, x, y, w, validation_data, validation_split)
    if model.plan_training() == 0:
        raise ValueError("every layer of the model is frozen (trainable=False), so fit has nothing "
                         "to train: set layer.trainable = True on a layer, or use evaluate")
    if model.opt_state is None:
        model.opt_state = model.optimizer.init_state(model.get_params())
    base_seed = seed if seed is not None else model.seed
    if base_seed is None:
        base_seed = int(B.host_rng(None).integers(2**31))
    if dp is not None:  # the ranks agree, and start from rank 0's arrays and seed
        base_seed = dp.start(base_seed, x, y, batch_size, epochs, initial_epoch, shuffle,
                             w is not None)
    train_epoch = _train_epoch if dp is None else dp.train_epoch
    if source is None:
        slices = D.batch_slices(D.num_rows(x), batch_size)
        params = {"epochs": epochs, "batch_size": batch_size, "steps": len(slices),
                  "samples": slices[-1][1]}
    else:
        params = {"epochs": epochs, **source.params}
    history = model.history = History({**params, "backend": model.backend.name})
    log_keys = ["loss", *model.metric_names]
    log_keys += [f"val_{k}" for k in log_keys] if val or validator else []
    callbacks.set_model(model, history.params, log_keys)
    hooks = callbacks.batch_hooks
    model.stop_training, model.stop_reason = False, None
    nonfinite = False
    try:
        callbacks.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            callbacks.on_epoch_begin(epoch)
            if source is None:
                order = _seed_epoch(model, x, base_seed, epoch, shuffle)
                bar = EL.progress(len(slices), f"Epoch {epoch + 1}/{epochs}", verbose)
                logs = train_epoch(model, x, y, y_dtype, slices, order, bar, epoch, w, hooks)
            else:
                _seed_epoch(model, None, base_seed, epoch, False)  # the dropout masks
                bar = EL.progress(source.steps, f"Epoch {epoch + 1}/{epochs}", verbose)
                logs = source.train_epoch(epoch, base_seed, bar, hooks)
                if logs is None:  # the data ran out before the epoch's first batch
                    break
            nonfinite = not math.isfinite(logs["loss"])
            if nonfinite:  # the epoch has warned and stopped training
                history.record(epoch, {k: logs.get(k, math.nan) for k in log_keys})
                break
            if val is not None:
                logs.update({f"val_{k}": v for k, v in _evaluate(model, *val, batch_size).items()})
            elif validator is not None:
                logs.update({f"val_{k}": v for k, v in validator.validate().items()})
            EL.show(bar, logs, verbose, f"Epoch {epoch + 1}/{epochs} - ")
            callbacks.on_epoch_end(epoch, logs)  # they may add to the logs (learning_rate)
            history.record(epoch, logs)
            if model.stop_training:
                break
    finally:
        callbacks.on_train_end()
    history.stop_reason = model.stop_reason
    if model.stop_reason and verbose and not nonfinite:  # the warning has said it
        print(f"xpnet: training stopped: {model.stop_reason}", flush=True)
    return history


def _check_fit_args(epochs, validation_split, initial_epoch, verbose):
    if not V.is_int(epochs) or epochs < 0:
        raise ValueError(f"epochs must be an int >= 0, got {epochs!r}")
    if not V.is_int(initial_epoch) or initial_epoch < 0:
        raise ValueError(f"initial_epoch must be an int >= 0, got {initial_epoch!r}")
    if not isinstance(validation_split, numbers.Real) or not 0 <= validation_split < 1:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    return int(epochs), int(initial_epoch)


def _seed_epoch(model, x, base_seed, epoch, shuffle):
    """Reseed the dropout masks and return the epoch's row order (None: in order); both
    depend only on (seed, epoch)."""
    backend = model.backend
    for index, layer in enumerate(model.layers):
        if isinstance(layer, Dropout):
            layer.rng = B.DeviceRNG(int(B.host_rng([base_seed, epoch, index]).integers(2**31)),
                                    backend)
    if not shuffle:
        return None
    order = B.host_rng([base_seed, epoch]).permutation(D.num_rows(x))
    if isinstance(x, backend.array_type) and backend.name != "numpy":  # rows taken on the device
        order = backend.xp.asarray(order, device=backend.device)
    return order


def _train_epoch(model, x, y, y_dtype, slices, order, bar, epoch, w=None, hooks=None):
    """One :func:`train_step` per batch (``w``: the rows' weights, or None); return the
    epoch's logs (one host read). ``hooks``: the callbacks' batch hooks, or None."""
    backend, dtype = model.backend, model.dtype_name
    refresh = max(1, math.ceil(len(slices) / EL.BAR_UPDATES))  # at most 10 reads
    params, state = model.get_params(trainable_only=True), model.opt_state
    jit = _compiled.train_steps(model)  # jit_compile: one compiled call (or graph) a batch
    if jit is not None:
        state = jit.begin_epoch(params, state)
    losses, metric_parts = [], [[] for _ in model.metrics]
    if hooks is not None:
        hooks.epoch(losses, metric_parts, slices)
    for b, (i, j) in enumerate(slices):
        if hooks is not None:
            hooks.begin(b)
        if jit is not None:  # takes the rows itself
            params, state, loss, sums = jit.train_batch(params, state, x, y, order, i, j,
                                                        y_dtype, w)
        else:
            index = slice(i, j) if order is None else order[i:j]
            xb = D.take_rows(x, index, backend, dtype)
            yb = D.take_rows(y, index, backend, y_dtype)
            wb = None if w is None else D.take_rows(w, index, backend, dtype)
            params, state, loss, y_pred = train_step(model, model.optimizer, params, state,
                                                     xb, yb, wb)
            sums = [metric.batch_sum(y_pred, yb) for metric in model.metrics]
        losses.append(loss)
        for parts, value in zip(metric_parts, sums):
            parts.append(value)
        if bar is not None and ((b + 1) % refresh == 0 or b + 1 == len(slices)):
            bar.update(b + 1 - bar.n)
            bar.set_postfix(EL.read_logs(model, losses, metric_parts, slices), refresh=False)
        if hooks is not None:
            hooks.end(b)
            if model.stop_training:  # as Keras: a batch hook stops after its batch
                break
    if jit is not None:
        state = jit.end_epoch(state)
    return EL.finish_epoch(model, params, state, losses, metric_parts, slices, bar, epoch)


def train_step(model, optimizer, params: dict, opt_state: dict, x, y, sample_weight=None):
    """One optimizer step: ``(new params, new optimizer state, loss, y_pred)``."""
    loss, y_pred, grads = forward_backward(model, params, x, y, sample_weight)
    params, opt_state = optimizer.apply(params, grads, opt_state)
    return params, opt_state, loss, y_pred


class ModelInUseError(RuntimeError):
    """A model is being trained by another thread (its layers hold that thread's batch)."""


def claim(model, what: str):
    """Hold ``model`` for training in this thread; raise :class:`ModelInUseError` if another
    thread holds it. Returns the lock to release (re-entrant: ``fit`` holds it, and each
    step claims it again).

    A training pass keeps each layer's batch in the layer for ``backward``, so two threads
    training one model would mix their batches into wrong gradients. Inference keeps
    nothing: any number of threads may ``predict`` with one model, but train one model
    per thread (``copy.deepcopy(model)`` or ``pickle``).
    """
    lock = model._lock
    if not lock.acquire(blocking=False):
        raise ModelInUseError(
            f"{what}: model {model.name!r} is being trained by another thread; a model trains "
            "in one thread at a time (predict and evaluate may share it): give each thread "
            "its own copy (copy.deepcopy(model))")
    return lock


def forward_backward(model, params: dict, x, y, sample_weight=None):
    """Loss, predictions and gradients of ``model`` with ``params`` on one batch.

    Parameters
    ----------
    model : xpnet.Sequential
        A built, compiled model (its layers do the computing).
    params : dict
        ``{"<layer>/<name>": array}`` as ``model.get_params(trainable_only=True)`` gives
        (the parameters of frozen layers stay as they are in the model).
    x, y : arrays of the model's backend
        One batch of inputs and targets.
    sample_weight : array of shape (n,), optional
        The rows' weights (Keras' ``"sum_over_batch_size"``: :mod:`xpnet.sample_weights`).

    Raises :class:`ModelInUseError` while another thread trains ``model`` (:func:`claim`).

    Returns
    -------
    loss : 0-d array
        Mean loss over the batch (weighted: the sum of the weighted row losses over the
        batch's rows), on the device.
    y_pred : array
        The model's output for ``x`` (training mode).
    grads : dict
        ``{"<layer>/<name>": d loss / d param}`` for the trainable parameters.
    """
    lock = claim(model, "forward_backward")
    try:
        model.set_params(params)
        y_pred = model.forward(x, training=True)
        loss = model.backward_from_loss(y_pred, y, sample_weight)
        return loss, y_pred, model.get_grads()
    finally:
        lock.release()
