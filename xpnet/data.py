"""Checking and batching the data given to ``fit``, ``evaluate`` and ``predict``.

Data stays where the user put it: NumPy arrays (and lists, pandas-like objects) stay on
the host and are moved to the backend one batch at a time, cast to the model's float
type on the way (integer pixels are cast as they are, not rescaled: divide by 255
yourself, as the book does); arrays of the active backend are used in place. Neither
path copies the whole data set.
"""
from __future__ import annotations

import math

from . import _validate as V
from . import backend as B
from .layers import Affine, Dense, Flatten

__all__ = ["as_data", "check_batch_size", "batch_slices", "check_xy", "check_finite",
           "first_product_check", "finite_checker", "check_targets", "take_rows", "num_rows",
           "gather_on_host", "Dataset"]

_FINITE_CHUNK = 1 << 18  # elements per chunk when locating the first bad rows
_FINITE_BATCH = 1 << 16  # predict checks host batches of this many elements or more one by one


def as_data(x, backend, name="x"):
    """``x`` as a host NumPy array or an array of ``backend`` (no copy where possible)."""
    if isinstance(x, backend.array_type):
        try:
            return B.asarray(x, backend=backend)  # checks the device
        except TypeError as exc:  # a NumPy array of strings or objects
            if isinstance(exc, B.BackendMismatchError):
                raise
            raise TypeError(f"{name}: {exc}") from None
    lib = B.library_of(x)
    if lib == "dask":
        raise TypeError(
            f"{name} is a Dask array: predict and evaluate take Dask arrays (block by block); "
            f"here the data must be in memory: {name}.compute(), or a NumPy array")
    if lib is not None and lib != "numpy":
        raise B.BackendMismatchError(
            f"{name} is a {lib} array, but the model runs on {backend.name!r}: convert it "
            f"with xn.to_numpy({name}), or move the model with model.to({lib!r})"
        )
    try:
        arr = B.host_asarray(x)
    except (TypeError, ValueError) as exc:  # strings, objects; pandas' missing values
        raise type(exc)(f"{name}: {exc}") from None
    if arr.ndim == 0:
        raise TypeError(
            f"{name} is a single number; pass an array with one row per sample "
            f"(e.g. [[...]] for one sample)"
        )
    return arr


def check_batch_size(batch_size) -> int:
    """A positive int (NumPy ints too), else a clear error (bool and float are refused)."""
    return V.positive_int(batch_size, "batch_size")


def batch_slices(n: int, batch_size: int):
    """``(start, stop)`` pairs covering ``range(n)`` in batches (the last may be short)."""
    return [(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def num_rows(x) -> int:
    return int(x.shape[0])


def check_xy(x, y):
    """Same number of rows, at least one row, both on the host or both on the backend."""
    if y is not None and (B.library_of(x) == "numpy") != (B.library_of(y) == "numpy"):
        what = {"numpy": "a NumPy array"}
        lx, ly = B.library_of(x), B.library_of(y)
        lib = ly if lx == "numpy" else lx
        raise B.BackendMismatchError(
            f"x is {what.get(lx, f'an array of the {lx} backend')} but y is "
            f"{what.get(ly, f'an array of the {ly} backend')}: pass both as NumPy arrays "
            f"(moved a batch at a time) or both as {lib} arrays (convert with xn.to_numpy(...) "
            f"or xn.backend.asarray(...))"
        )
    if num_rows(x) == 0:
        raise ValueError("the data set is empty (x has 0 rows)")
    if y is not None and num_rows(y) != num_rows(x):
        raise ValueError(
            f"x and y have different lengths: x has {num_rows(x)} rows, y has {num_rows(y)}"
        )


class _Plan:
    """How to check ``x``: its namespace, rows per chunk, elements per row, and the largest
    magnitude allowed (``x``'s own float max, or the smaller one of the type it is cast to)."""

    def __init__(self, x, dtype):
        is_host = B.library_of(x) == "numpy"
        self.xp = xp = B.load("numpy").xp if is_host else B.backend_of(x).xp
        self.row_size = math.prod(int(d) for d in x.shape[1:])
        self.rows = max(1, _FINITE_CHUNK // max(self.row_size, 1))
        if not xp.isdtype(x.dtype, "real floating"):
            self.xp = None  # integers and bools: finite, and no int overflows float32
            return
        self.own_max = self.max = float(xp.finfo(x.dtype).max)
        self.cast_to = None
        if dtype is not None:
            target = float(xp.finfo(getattr(xp, dtype)).max)
            if target < self.max:  # float64 data, float32 model: 1e39 would become inf
                self.max, self.cast_to = target, dtype


def _finite_plan(x, dtype=None):
    """A :class:`_Plan`, or None if ``x`` needs no check (not float)."""
    plan = _Plan(x, dtype)
    return plan if plan.xp is not None else None


def _in_range(xp, x, limit) -> bool:
    # max and min read the rows once, with no temporary: NaN propagates through both
    # (the array API standard says so) and fails both comparisons; an infinity, or a
    # value that the cast to the model's float type would turn into one, is the max or
    # the min
    return bool((xp.max(x) <= limit) & (xp.min(x) >= -limit))


def _check_rows(x, plan, name, begin, end):
    """One host read for rows ``begin..end-1``; only if it fails, find the bad chunk."""
    xp = plan.xp
    if _in_range(xp, x[begin:end, ...], plan.max):  # "...": array-api-strict wants every axis
        return
    for start in range(begin, end, plan.rows):
        stop = min(start + plan.rows, end)
        chunk = x[start:stop, ...]
        if _in_range(xp, chunk, plan.max):
            continue
        if plan.cast_to is not None and _in_range(xp, chunk, plan.own_max):
            raise ValueError(
                f"{name} holds values that are not finite in {plan.cast_to} (first in rows "
                f"{start}..{stop - 1}: larger in magnitude than {plan.max:.4g}, e.g. 1e39 "
                f"overflows to inf): the model computes in {plan.cast_to}; scale the data, "
                f"or build the model with dtype='float64'"
            )
        raise ValueError(
            f"{name} holds NaN or infinite values (first in rows {start}..{stop - 1}); "
            "clean the data before using it"
        )


def check_finite(x, name="x", dtype=None):
    """Raise ValueError if ``x`` holds NaN or infinity, or values that become infinite
    when cast to ``dtype`` (the model's float type); one host read when it holds none."""
    plan = _finite_plan(x, dtype)
    if plan is not None:
        _check_rows(x, plan, name, 0, num_rows(x))


def finite_checker(x, batch_size, name="x", dtype=None):
    """Check ``x`` as :func:`check_finite` does, now or batch by batch.

    Returns ``check(i, j)`` to call before the model computes with rows ``i..j-1``. Host
    data in batches of at least ``_FINITE_BATCH`` elements is checked batch by batch,
    while the rows are in cache (``predict`` then reads the data once, not twice); device
    data (so the batch loop never waits for the device) and small batches (where a call
    per batch costs more than it saves) are checked here, all at once.
    """
    plan = _finite_plan(x, dtype)
    if plan is not None and (B.library_of(x) != "numpy"
                             or batch_size * plan.row_size < _FINITE_BATCH):
        _check_rows(x, plan, name, 0, num_rows(x))
        plan = None
    if plan is None:
        return lambda i, j: None
    return lambda i, j: _check_rows(x, plan, name, i, j)


def first_product_check(layers, x, backend, dtype=None, name="x"):
    """predict's forward pass that checks ``x`` for NaN/inf through the first Dense's
    pre-activations ``z = x @ W + b``: ``forward(h, i, j)`` for batch ``h`` = rows ``i..j-1``.

    A NaN or infinity anywhere in a row of ``x`` makes that whole row of ``z`` NaN or
    infinite (IEEE: ``nan * w`` is NaN, ``inf * 0`` is NaN), so a finite ``z`` proves the rows
    finite, and one ``sum(z)`` reads 50 numbers a row for the book's network instead of 784.
    Only when ``z`` is not finite are the rows of ``x`` read, deciding exactly as
    :func:`check_finite` (a finite ``x`` whose product overflows is not refused).
    None -- check ``x`` itself -- unless the network starts with a Dense/Affine (after
    Flatten) whose ``forward`` is xpnet's own, the backend's arrays live on the host (a read
    per batch would wait for a GPU), and ``x`` is float data that the cast to ``dtype``
    cannot overflow.
    """
    plan = _finite_plan(x, dtype)
    at = next((k for k, layer in enumerate(layers) if not isinstance(layer, Flatten)), None)
    if (plan is None or plan.cast_to is not None or not backend.on_host or at is None
            or not isinstance(layers[at], Affine)
            or type(layers[at]).forward not in (Affine.forward, Dense.forward)):
        return None
    before, first, after, xp = layers[:at], layers[at], layers[at + 1:], backend.xp

    def forward(h, i, j):
        for layer in before:
            h = layer.forward(h, False)
        with B.quiet_invalid(backend):  # inf in x: the ValueError says it, not a warning
            z = first.preactivation(h, False)
            if not xp.isfinite(xp.sum(z)):  # NaN and inf propagate through a sum
                _check_rows(x, plan, name, i, j)
        h = first.activate(z, False)
        for layer in after:
            h = layer.forward(h, False)
        return h

    return forward


def check_targets(y, loss, output_shape, name="y"):
    """Targets that fit the loss and the model's output, else a ValueError that says why.

    The shape is checked here, the values by the loss (:meth:`xpnet.losses.Loss.check_targets`:
    class labels in range, binary targets in [0, 1], categorical rows that sum to 1),
    on the host, once per call of ``fit``/``evaluate``. Returns the dtype name targets
    are moved with ("int64" for sparse labels).
    """
    units = output_shape[-1]
    host = B.to_numpy(y) if B.library_of(y) != "numpy" else y
    if loss.sparse:
        if host.ndim > 2 or (host.ndim == 2 and host.shape[1] != 1):
            raise ValueError(
                f"{loss.name} takes integer class labels of shape (n,) or (n, 1); {name} has "
                f"shape {tuple(host.shape)} (one-hot targets go with categorical_crossentropy)"
            )
        loss.check_targets(host, units, name)
        return "int64"
    want = tuple(output_shape)
    got = tuple(host.shape[1:])
    if got != want and not (units == 1 and got == () and len(want) == 1):
        if loss.name == "categorical_crossentropy" and host.ndim == 1:
            hint = " (integer labels go with sparse_categorical_crossentropy)"
        else:
            hint = ""
        raise ValueError(
            f"{name} has per-sample shape {got}, but the model outputs {want} per sample "
            f"for the loss {loss.name}{hint}"
        )
    loss.check_targets(host, units, name)
    return None


def take_rows(data, index, backend, dtype=None):
    """Rows ``index`` (a slice or an integer index array) of host or device ``data``, as an
    array of ``backend`` cast to ``dtype``."""
    if isinstance(data, backend.array_type):
        if isinstance(index, slice):
            rows = data[index, ...]  # "...": array-api-strict wants every axis
        else:
            rows = backend.xp.take(data, index, axis=0)
        if dtype is not None and rows.dtype != getattr(backend.xp, dtype):
            rows = backend.xp.astype(rows, getattr(backend.xp, dtype))
        return rows
    return B.asarray(data[index], dtype=dtype, backend=backend)


def gather_on_host(batches, slices, backend):
    """Per-batch outputs (an iterable, in ``slices`` order) as one host NumPy array.

    Peak memory is the result plus a batch, not twice the result as a concat would
    take. On a CPU backend each batch is copied as it comes; on a GPU the batches are
    queued first and copied after, so the device is not waited for once per batch.
    """
    on_cpu = backend.on_host
    if not on_cpu:
        batches = list(batches)
    out = None
    for k, ((i, j), batch) in enumerate(zip(slices, batches)):
        host = B.to_numpy(batch)
        if len(slices) == 1:
            return host
        if out is None:
            out = B.host_full((slices[-1][1], *host.shape[1:]), 0, dtype=host.dtype)
        out[i:j] = host
        if not on_cpu:
            batches[k] = None  # drop the device copy once it is on the host
    return out


from .dataset import Dataset  # noqa: E402  (xn.data.Dataset; it uses this module)
