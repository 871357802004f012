"""Which library an array belongs to, and the host side of moving data: user data read
into NumPy, any backend's array read back to NumPy."""
from __future__ import annotations

import contextlib

import array_api_compat
import numpy as np

__all__ = ["library_of", "is_array", "to_numpy", "host_asarray", "host_cast", "host_full",
           "host_dtype", "HOST_ARRAY", "quiet_invalid"]

#: the host array type (``isinstance(x, HOST_ARRAY)`` is cheaper than :func:`library_of`)
HOST_ARRAY = np.ndarray


def library_of(x) -> str | None:
    """The name of the array library ``x`` belongs to ("numpy", "torch", "cupy",
    "array_api_strict", "jax", "dask"), or None when ``x`` is not an array."""
    if array_api_compat.is_numpy_array(x):
        return "numpy"
    if array_api_compat.is_torch_array(x):
        return "torch"
    if array_api_compat.is_cupy_array(x):
        return "cupy"
    if type(x).__module__.startswith("array_api_strict"):
        return "array_api_strict"
    if array_api_compat.is_jax_array(x):
        return "jax"
    if array_api_compat.is_dask_array(x):
        return "dask"
    return None


def is_array(x) -> bool:
    """True for an array of any library xpnet knows (NumPy, CuPy, torch, array-api-strict...)."""
    return library_of(x) is not None


def to_numpy(x) -> np.ndarray:
    """Any backend's array (or a Python number or list) as a ``numpy.ndarray`` on the host."""
    if type(x) is np.ndarray:  # the common case first: no library lookup
        return x
    lib = library_of(x)
    if lib == "torch":
        return x.detach().cpu().numpy()
    if lib == "cupy":
        return x.get()
    if lib == "array_api_strict":
        return np.from_dlpack(x)
    return np.asarray(x)


def host_asarray(x) -> np.ndarray:
    """User data (NumPy, lists, pandas-like objects) as a numeric NumPy array on the host.

    Raises ``TypeError`` for what cannot be numeric data (strings, objects, None).
    """
    if hasattr(x, "to_numpy") and not is_array(x):  # pandas DataFrame/Series, polars...
        x = _frame_to_numpy(x)
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(
            f"expected numeric array data (a NumPy array, an array of the active backend, "
            f"a list of numbers or a pandas-like object), got {type(x).__name__}"
        )
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"cannot read this {type(x).__name__} as a numeric array: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"expected numeric data (bool, int or float), got an array of dtype {arr.dtype} "
            "(strings and objects are not accepted: convert them to numbers first)"
        )
    return arr


def _frame_to_numpy(frame) -> np.ndarray:
    """A pandas-like object as NumPy. pandas' nullable columns (``Float32``, ``Int64``...)
    become their NumPy dtype (pandas gives ``object`` for a frame of them, or NaN for a
    missing integer); a missing value (``pd.NA``) is a ValueError, not a silent NaN."""
    dtypes = getattr(frame, "dtypes", getattr(frame, "dtype", None))
    dtypes = dtypes.tolist() if hasattr(dtypes, "tolist") else (
        list(dtypes) if isinstance(dtypes, (list, tuple)) else [dtypes])
    nullable = [d for d in dtypes if hasattr(d, "numpy_dtype") and hasattr(d, "na_value")]
    if not nullable or not hasattr(frame, "isna"):
        return frame.to_numpy()
    missing = np.asarray(frame.isna())
    if missing.any():
        rows = missing.reshape(missing.shape[0], -1).any(axis=1)
        raise ValueError(
            f"holds {int(missing.sum())} missing value(s) (pd.NA, first in row "
            f"{int(np.argmax(rows))}) in nullable columns ({nullable[0]}); fill or drop them "
            "first, e.g. df.fillna(0) or df.dropna()"
        )
    try:
        dtype = np.result_type(*(getattr(d, "numpy_dtype", d) for d in dtypes))
    except TypeError:
        return frame.to_numpy()
    return frame.to_numpy(dtype=dtype)


def host_cast(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` cast to ``dtype`` on the host (IEEE round-to-nearest, the same everywhere)."""
    return np.asarray(values).astype(dtype)


def host_dtype(name: str):
    """The host (NumPy) dtype named ``name``: compares with ``x.dtype`` at C speed, where
    ``str(x.dtype)`` runs Python code."""
    return np.dtype(name)


def host_full(shape, value, dtype="float32") -> np.ndarray:
    """A host NumPy array of ``shape`` filled with ``value``."""
    return np.full(shape, value, dtype=dtype)


def quiet_invalid(backend):
    """A context in which NumPy does not warn about invalid operations (``inf * 0``,
    ``inf - inf``) in ``backend``'s computations; a no-op for libraries that never warn.

    predict computes the first layer's ``x @ W + b`` in it when it reads that product for
    NaN/inf: an infinity in ``x`` makes it invalid, and the ValueError that follows says so
    better than a RuntimeWarning. ``np.errstate`` is thread- and context-local.
    """
    if backend.name in ("numpy", "array_api_strict"):  # array-api-strict computes with NumPy
        return np.errstate(invalid="ignore")
    return contextlib.nullcontext()
