"""An epoch's logs and its progress bar, for every training loop (``fit`` on arrays, on
input pipelines, data-parallel) and ``evaluate``.

The loops keep each batch's loss (a 0-d array) and metric sums on the device;
:func:`read_logs` turns them into the logs' numbers with one host read, when the bar
refreshes (about :data:`BAR_UPDATES` times an epoch with ``verbose=1``) and once at the
end (:func:`finish_epoch`, which also stops training on a non-finite loss).
"""
from __future__ import annotations

import math
import warnings

import array_api_compat

__all__ = ["BAR_UPDATES", "read_logs", "finish_epoch", "stop_on_nonfinite", "progress", "show"]

BAR_UPDATES = 10


def read_logs(model, losses, metric_parts, slices):
    """One host read: the means over the rows of the batches so far (``len(losses)``);
    a metric's summed statistics (a 1-D array per batch) go to its ``result``."""
    xp, n = model.backend.xp, slices[len(losses) - 1][1]
    w = xp.asarray([j - i for i, j in slices[:len(losses)]], dtype=losses[0].dtype,
                   device=array_api_compat.device(losses[0]))
    logs = {"loss": float(xp.sum(xp.stack(losses) * w)) / n}
    for metric, name, parts in zip(model.metrics, model.metric_names, metric_parts):
        stacked = xp.stack(parts)
        total = xp.sum(stacked) if stacked.ndim == 1 else xp.sum(stacked, axis=0)
        logs[name] = metric.result(total, n)
    return logs


def finish_epoch(model, params, state, losses, metric_parts, slices, bar, epoch):
    """The end of an epoch's loop: put the parameters and optimizer state on the model,
    read the epoch's logs (one host read) and stop training on a non-finite loss."""
    model.set_params(params)
    # the step keeps the slots of the trainable parameters; a frozen one keeps its own
    model.opt_state = {"step": state["step"], "slots": {**model.opt_state["slots"], **state["slots"]}}
    logs = read_logs(model, losses, metric_parts, slices)
    if not math.isfinite(logs["loss"]):
        if bar is not None:
            bar.close()
        stop_on_nonfinite(model, model.backend.xp, losses, epoch)
    return logs


def stop_on_nonfinite(model, xp, losses, epoch):
    finite = xp.isfinite(xp.stack(losses))
    first_bad = int(xp.argmin(xp.astype(finite, xp.int32)))  # first False
    model.stop_training = True
    model.stop_reason = (
        f"the loss became non-finite (nan or inf) at epoch {epoch + 1}, batch {first_bad + 1}; "
        "the learning rate is probably too high for this model and data"
    )
    warnings.warn(f"xpnet: {model.stop_reason}. Training stopped.", RuntimeWarning, stacklevel=5)


def progress(total, desc, verbose):
    if verbose != 1:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=True, dynamic_ncols=True)


def show(bar, logs, verbose, prefix=""):
    """The logs at the end of an epoch or an evaluation: on the bar, or printed (verbose 2)."""
    if bar is not None:
        bar.set_postfix(logs, refresh=False)
        bar.close()
    elif verbose == 2:
        print(prefix + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()), flush=True)
