"""``evaluate``: the loss and the metrics over data, a batch at a time, read from the
device once (``fit``'s validation runs the same loop)."""
from __future__ import annotations

from . import compiled as _compiled
from . import data as D
from . import epoch_logs as EL
from . import sample_weights as SW
from .fit_data import prepare

__all__ = ["run_evaluate", "evaluate_arrays", "eval_batch"]


def run_evaluate(model, x, y, batch_size=32, verbose=1, sample_weight=None):
    """Loss and metrics over ``(x, y)`` as a dict (read from the device once);
    ``sample_weight`` weighs the rows' losses as in ``fit``."""
    batch_size = D.check_batch_size(batch_size)
    x, y, y_dtype = prepare(model, x, y)
    w = SW.prepare_weights(sample_weight, None, x, y, model.backend, model.dtype_name)
    return evaluate_arrays(model, x, y, y_dtype, w, batch_size, verbose)


def evaluate_arrays(model, x, y, y_dtype, w, batch_size, verbose=0):
    """Loss and metrics of data already checked by :func:`xpnet.fit_data.prepare` (``w``: the
    rows' weights, or None)."""
    backend, dtype = model.backend, model.dtype_name
    slices = D.batch_slices(D.num_rows(x), batch_size)
    bar = EL.progress(len(slices), "Evaluate", verbose)
    losses, metric_parts = [], [[] for _ in model.metrics]
    jit = _compiled.steps(model)
    for i, j in slices:
        xb = D.take_rows(x, slice(i, j), backend, dtype)
        yb = D.take_rows(y, slice(i, j), backend, y_dtype)
        wb = None if w is None else D.take_rows(w, slice(i, j), backend, dtype)
        loss, sums = eval_batch(model, jit, xb, yb, wb)
        losses.append(loss)
        for parts, value in zip(metric_parts, sums):
            parts.append(value)
        if bar is not None:
            bar.update(1)
    logs = EL.read_logs(model, losses, metric_parts, slices)
    EL.show(bar, logs, verbose)
    return logs


def eval_batch(model, jit, xb, yb, wb=None):
    """``(loss, metric sums)`` of one batch in inference mode (``jit``: the compiled
    steps, or None)."""
    if jit is not None:
        return jit.evaluate_batch(xb, yb, wb)
    y_pred = model.forward(xb, training=False)
    loss = model.loss.value(y_pred, yb) if wb is None else model.loss.weighted_value(y_pred, yb, wb)
    loss = loss + model.regularization_loss() if model._penalized else loss
    return loss, [m.batch_sum(y_pred, yb) for m in model.metrics]
