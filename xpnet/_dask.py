"""``predict`` and ``evaluate`` over Dask arrays, block by block (``pip install 'xpnet[dask]'``).

Dask does the scheduling; xpnet only says what one block is. The model goes into the graph
once, as one task that every block depends on: with ``dask.distributed`` it is pickled once
(a few hundred kilobytes: :mod:`xpnet._pickling` leaves out the last batch) and each worker
fetches it once. Each block is predicted with the in-memory ``predict``, ``batch_size`` rows
at a time, so a worker holds one block, its outputs and a batch, whatever the size of the
whole array. Inference keeps nothing in the layers, so the threaded scheduler may run
blocks of one model in several threads at once.
"""
from __future__ import annotations

import uuid

import array_api_compat

from . import backend as B
from . import data as D

__all__ = ["predict", "evaluate", "is_dask_array"]

is_dask_array = array_api_compat.is_dask_array


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError:  # pragma: no cover - is_dask_array() was True, so dask is imported
        raise ImportError("Dask arrays need dask: pip install 'xpnet[dask]'") from None
    return dask, da


def _model_task(model):
    """The model as one task of the graph (a unique key: never merged with another model's)."""
    dask, _ = _dask()
    return dask.delayed(model, name=f"xpnet-model-{uuid.uuid4().hex}", traverse=False)


def _whole_rows(x):
    """``x`` chunked along the rows only: a block holds whole samples."""
    if x.ndim > 1 and any(len(c) > 1 for c in x.chunks[1:]):
        x = x.rechunk({axis: -1 for axis in range(1, x.ndim)})
    return x


def _predict_block(block, model, batch_size, check_finite):
    return model.predict(block, batch_size=batch_size, check_finite=check_finite)


def predict(model, x, batch_size, check_finite):
    """A lazy Dask array of the model's outputs for the Dask array ``x`` (rows in blocks)."""
    _, da = _dask()
    if x.ndim < 2:
        raise ValueError(f"x must have one row per sample (2-D or more), got a Dask array of "
                         f"shape {x.shape}")
    model.check_input(x)
    x = _whole_rows(x)
    out = model.output_shape
    xp = array_api_compat.array_namespace(x._meta)
    meta = xp.empty((0,) * (1 + len(out)), dtype=getattr(xp, model.dtype_name))
    axes = dict(drop_axis=list(range(1 + len(out), x.ndim)),
                new_axis=list(range(x.ndim, 1 + len(out))))
    return da.map_blocks(_predict_block, x, _model_task(model), batch_size, check_finite,
                         chunks=(x.chunks[0], *((d,) for d in out)), meta=meta,
                         **{k: v for k, v in axes.items() if v})


def _evaluate_block(xb, yb, model, batch_size):
    """``[rows, loss * rows, metric * rows ...]`` for one block: sums that add up."""
    if D.num_rows(xb) == 0:
        return [0] + [0.0] * (1 + len(model.metric_names))
    logs = model.evaluate(xb, yb, batch_size=batch_size, verbose=0, return_dict=True)
    rows = D.num_rows(xb)
    return [rows] + [value * rows for value in logs.values()]


def _combine(parts, names):
    rows = sum(p[0] for p in parts)
    if rows == 0:
        raise ValueError("evaluate got Dask arrays with no rows")
    return {name: sum(p[k + 1] for p in parts) / rows for k, name in enumerate(names)}


def evaluate(model, x, y, batch_size):
    """Loss and metrics over Dask arrays ``x``/``y`` (``y`` may be in memory): one
    :meth:`~xpnet.Sequential.evaluate` per block of rows on the workers, the sums added up
    by one more task, and the dict of means read back (as the in-memory ``evaluate``)."""
    dask, da = _dask()
    if x.ndim < 2:
        raise ValueError(f"x must have one row per sample, got a Dask array of shape {x.shape}")
    model.check_input(x)
    ratio = [n for n, m in zip(model.metric_names, model.metrics)
             if m.stat_shape(model.output_shape) != ()]
    if ratio:  # the blocks' means would not add up to theirs
        raise NotImplementedError(f"evaluate on Dask arrays averages the blocks' means; "
                                  f"{ratio} are not means over the rows: evaluate in memory")
    x = _whole_rows(x)
    if not is_dask_array(y):
        y = D.as_data(y, B.load("numpy"), "y")  # targets in memory, on the host
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"x and y have different numbers of rows: {x.shape[0]} and {y.shape[0]}")
    if not is_dask_array(y):
        y = da.from_array(y, chunks=(x.chunks[0], *((d,) for d in y.shape[1:])))
    y = y.rechunk({0: x.chunks[0], **{axis: -1 for axis in range(1, y.ndim)}})
    task = _model_task(model)
    parts = [dask.delayed(_evaluate_block)(xb, yb, task, batch_size)
             for xb, yb in zip(x.to_delayed().ravel(), y.to_delayed().ravel())]
    names = ["loss", *model.metric_names]
    (logs,) = dask.compute(dask.delayed(_combine)(parts, names))
    return logs
