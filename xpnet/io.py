"""Weight files: ``.npz`` written atomically, read without pickle, checked on load.

A file holds one array per parameter, named ``"<layer name>/<param name>"`` (e.g.
``"dense_1/W"``), the non-trainable state (``"state/<layer>/<name>"``), optionally the
optimizer state (``"optimizer/..."``), and a JSON header ``"__xpnet__"`` that lists the
layers, their parameter shapes and, for a checkpoint, the epoch. Arrays are saved from
the host (``to_numpy``), so a file written on one backend loads on every other; saving
never moves the model.

Reading is header first (:class:`WeightFile`, in :mod:`xpnet.io_npz`): a crafted file
is refused at the cost of its headers, and holds no pickle. Names read from a file are
compared with the model's own names; they are never used as paths.
:func:`load_book_weights` is the one trusted pickle loader, for the book's
``sample_weight.pkl``, and needs ``trusted=True``.
"""
from __future__ import annotations

import json
import os
import pickle
import tempfile
import time

import numpy as np

from .backend import to_numpy
from .io_npz import (FORMAT_VERSION, HEADER_KEY, MAX_COUNT, WeightFile, WeightFileError,
                     checked_count, file_path, load_arrays)

__all__ = ["WeightFileError", "WeightFile", "save_arrays", "load_arrays", "load_book_weights",
           "file_path", "save_path", "host_values", "checked_count", "HEADER_KEY",
           "FORMAT_VERSION", "MAX_COUNT"]

TEMP_SUFFIX = ".npz.tmp"
#: a temporary file this old is a killed save's, not a save in progress
STALE_TEMP_SECONDS = 600
#: names that promise another format than the .npz xpnet writes
OTHER_FORMATS = (".h5", ".hdf5", ".keras", ".pt", ".pth", ".pkl", ".pickle", ".npy",
                 ".safetensors", ".onnx", ".joblib")


def refuse_other_format(path: str) -> str:
    """``path`` unless its name is another format's (``.h5``, ``.keras``, ``.pt`` ...)."""
    lower = path.lower()
    for suffix in OTHER_FORMATS:
        if lower.endswith(suffix):
            raise ValueError(
                f"{path!r} names a {suffix} file, but xpnet writes NumPy .npz weight files "
                f"(not HDF5, Keras, PyTorch or pickle): use a name ending in .npz, such as "
                f"{path[:-len(suffix)] + '.npz'!r}")
    return path


def save_path(path) -> str:
    """``path`` as a ``str`` once it may be written: not a folder, and not named after
    another format (``w.h5`` would hold an .npz that h5py and Keras cannot read)."""
    path = refuse_other_format(file_path(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a folder: give a file name in it, such as "
                                f"{os.path.join(path, 'weights.npz')!r}")
    return path


def save_arrays(path, arrays: dict, header: dict) -> None:
    """Write ``arrays`` (name -> any backend's array) and a JSON ``header`` to ``path``.

    The file is written to a temporary file in the same folder, flushed, fsync'ed and
    renamed over ``path``: a crash leaves either the old file or the new one, never a
    half-written one. A process killed mid-save leaves its temporary file
    (``.xpnet-<name>.*.npz.tmp``); the next successful save of the same ``path`` removes
    those older than :data:`STALE_TEMP_SECONDS` (a younger one may be another writer's).
    """
    path = save_path(path)
    folder = os.path.dirname(os.path.abspath(path))
    prefix = f".xpnet-{os.path.basename(path)}."
    host = {name: to_numpy(a) for name, a in arrays.items()}
    meta = dict(header, format=FORMAT_VERSION)
    host[HEADER_KEY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **host)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    _remove_stale_temps(folder, prefix)


def _remove_stale_temps(folder, prefix) -> None:
    """Delete this target's temporary files left by killed saves (older than
    :data:`STALE_TEMP_SECONDS`); never anything else, never a failure."""
    cutoff = time.time() - STALE_TEMP_SECONDS
    try:
        names = os.listdir(folder)
    except OSError:  # pragma: no cover
        return
    for name in names:
        if name.startswith(prefix) and name.endswith(TEMP_SUFFIX):
            full = os.path.join(folder, name)
            try:
                if os.lstat(full).st_mtime < cutoff:
                    os.unlink(full)
            except OSError:  # gone already, or not ours to remove
                pass


def host_values(value, shape, dtype, what, error=ValueError):
    """``value`` as a NumPy array of ``dtype``, once it has ``shape``, holds numbers and is
    finite after the cast (one reduction); else ``error`` naming ``what``.

    For values given at load time (a file, ``set_weights``), never per training step.
    """
    a = np.asarray(to_numpy(value))
    if a.dtype.kind not in "biuf":
        raise error(f"{what}: dtype {a.dtype} is not a number type")
    if tuple(a.shape) != tuple(shape):
        raise error(f"{what}: expected shape {tuple(shape)}, got {tuple(a.shape)}")
    with np.errstate(over="ignore", invalid="ignore"):  # the check below says it
        cast = a.astype(dtype, copy=False)
    if not np.isfinite(cast).all():
        after = f" after the cast to {dtype} (beyond its range)" if cast.dtype != a.dtype \
            and np.isfinite(a).all() else ""
        raise error(f"{what} holds NaN or infinite values{after}: weights must be finite")
    return cast


def load_book_weights(path, *, trusted: bool = False) -> dict:
    """Load the book's pickled weight dict (``W1``, ``b1``, ``W2`` ...) as NumPy arrays.

    **A pickle runs code when it is loaded.** Pass ``trusted=True`` only for a file you
    trust, such as the book's own ``sample_weight.pkl``; otherwise this refuses.
    """
    if not trusted:
        raise PermissionError(
            "loading a pickle can run arbitrary code; call load_book_weights(path, trusted=True) "
            "only for a file you trust (such as the book's sample_weight.pkl)"
        )
    with open(os.fspath(path), "rb") as f:
        weights = pickle.load(f)  # noqa: S301 - the caller vouched for this file
    if not isinstance(weights, dict):
        raise WeightFileError(f"{path!r} does not hold a dict of weights")
    return {str(k): np.asarray(v) for k, v in weights.items()}
