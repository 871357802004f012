"""Weight files: ``.npz`` written atomically, read without pickle, checked on load.

A file holds one array per parameter, named ``"<layer name>/<param name>"`` (e.g.
``"dense_1/W"``), the non-trainable state (``"state/<layer>/<name>"``), optionally the
optimizer state (``"optimizer/..."``), and a JSON header ``"__xpnet__"`` that lists the
layers, their parameter shapes and, for a checkpoint, the epoch. Arrays are saved from
the host (``to_numpy``), so a file written on one backend loads on every other; saving
never moves the model.

Names read from a file are compared with the model's own names; they are never used as
paths. ``np.load(..., allow_pickle=False)`` refuses object arrays, so a file cannot run
code; :func:`load_book_weights` is the one trusted pickle loader, for the book's
``sample_weight.pkl``, and needs ``trusted=True``.
"""
from __future__ import annotations

import json
import os
import pickle
import tempfile
import zipfile

import numpy as np

from .backend import to_numpy

__all__ = ["WeightFileError", "save_arrays", "load_arrays", "load_book_weights", "HEADER_KEY"]

HEADER_KEY = "__xpnet__"
FORMAT_VERSION = 1


class WeightFileError(ValueError):
    """A weight file that is corrupt, truncated, unsafe or of another architecture."""


def save_arrays(path, arrays: dict, header: dict) -> None:
    """Write ``arrays`` (name -> any backend's array) and a JSON ``header`` to ``path``.

    The file is written to a temporary file in the same folder, flushed, fsync'ed and
    renamed over ``path``: a crash leaves either the old file or the new one, never a
    half-written one.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    host = {name: to_numpy(a) for name, a in arrays.items()}
    meta = dict(header, format=FORMAT_VERSION)
    host[HEADER_KEY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(prefix=".xpnet-", suffix=".npz.tmp", dir=folder)
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


def load_arrays(path) -> tuple[dict, dict]:
    """Read a file written by :func:`save_arrays`: ``(arrays as NumPy, header)``.

    Raises ``FileNotFoundError`` for a missing file and :class:`WeightFileError` for a
    truncated, corrupt or pickle-holding file, or one without an xpnet header.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no weight file at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise WeightFileError(
                f"{path!r} holds pickled objects, which xpnet does not load (a pickle can run "
                "code); save weights with model.save_weights"
            ) from exc
        raise WeightFileError(f"{path!r} is not a readable .npz weight file: {exc}") from exc
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise WeightFileError(
            f"{path!r} is truncated or corrupt ({type(exc).__name__}: {exc})"
        ) from exc
    if HEADER_KEY not in arrays:
        raise WeightFileError(f"{path!r} is an .npz file but not an xpnet weight file (no header)")
    try:
        header = json.loads(arrays.pop(HEADER_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightFileError(f"{path!r} has a corrupt header: {exc}") from exc
    return arrays, header


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
