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
import time
import zipfile
import zlib

import numpy as np

from .backend import to_numpy

__all__ = ["WeightFileError", "save_arrays", "load_arrays", "checked_array", "load_book_weights",
           "HEADER_KEY"]

HEADER_KEY = "__xpnet__"
FORMAT_VERSION = 1
TEMP_SUFFIX = ".npz.tmp"
#: a temporary file this old is a killed save's, not a save in progress
STALE_TEMP_SECONDS = 600


class WeightFileError(ValueError):
    """A weight file that is corrupt, truncated, unsafe or of another architecture."""


def save_arrays(path, arrays: dict, header: dict) -> None:
    """Write ``arrays`` (name -> any backend's array) and a JSON ``header`` to ``path``.

    The file is written to a temporary file in the same folder, flushed, fsync'ed and
    renamed over ``path``: a crash leaves either the old file or the new one, never a
    half-written one. A process killed mid-save leaves its temporary file
    (``.xpnet-<name>.*.npz.tmp``); the next successful save of the same ``path`` removes
    those older than :data:`STALE_TEMP_SECONDS` (a younger one may be another writer's).
    """
    path = os.fspath(path)
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


def load_arrays(path) -> tuple[dict, dict]:
    """Read a file written by :func:`save_arrays`: ``(arrays as NumPy, header)``.

    Raises ``FileNotFoundError`` for a missing file and :class:`WeightFileError` for a
    truncated, corrupt or pickle-holding file, or one without an xpnet header.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no weight file at {path!r}")
    try:
        # our own handle: np.load leaks the one it opens when the zip is corrupt
        with open(path, "rb") as f:
            data = np.load(f, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):  # an .npy: one plain array
                arrays = None
            else:
                with data:
                    arrays = {name: data[name] for name in data.files}
    except ValueError as exc:
        if "object arrays" in str(exc).lower() or _looks_pickled(path):
            raise WeightFileError(
                f"{path!r} holds pickled objects, which xpnet does not load (a pickle can run "
                "code); save weights with model.save_weights"
            ) from exc
        raise WeightFileError(f"{path!r} is not a readable .npz weight file: {exc}") from exc
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError, NotImplementedError) as exc:
        raise WeightFileError(
            f"{path!r} is truncated or corrupt ({type(exc).__name__}: {exc})"
        ) from exc
    if arrays is None:
        raise WeightFileError(f"{path!r} is an .npy array, not an .npz weight file")
    if HEADER_KEY not in arrays:
        raise WeightFileError(f"{path!r} is an .npz file but not an xpnet weight file (no header)")
    try:
        header = json.loads(arrays.pop(HEADER_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightFileError(f"{path!r} has a corrupt header: {exc}") from exc
    _check_header(path, header)
    return arrays, header


def checked_array(path, arrays: dict, key: str, shape, what: str):
    """``arrays[key]`` once it is there, holds numbers and has ``shape``; else a
    :class:`WeightFileError` naming ``what`` (e.g. "layer 'dense' W") and both shapes."""
    if key not in arrays:
        raise WeightFileError(f"{path!r} has no {key!r} for {what}")
    value = arrays[key]
    if value.dtype.kind not in "biuf":
        raise WeightFileError(f"{path!r}: {key!r} has dtype {value.dtype}, not a number type")
    if tuple(value.shape) != tuple(shape):
        raise WeightFileError(f"{what}: the model has shape {tuple(shape)}, {path!r} has "
                              f"{tuple(value.shape)}")
    return value


def _looks_pickled(path) -> bool:
    """True when the file starts as a pickle does (protocol 2 and up: byte 0x80)."""
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"


def _check_header(path, header) -> None:
    """The header's structure, so that a crafted file fails here and not deep in a loader."""
    layers = header.get("layers", []) if isinstance(header, dict) else None
    if not isinstance(layers, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) for e in layers):
        raise WeightFileError(f"{path!r} has a malformed header (expected a dict with a list "
                              "of layers, each with a name)")
    shape = header.get("input_shape")
    if shape is not None and not (isinstance(shape, list) and all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
        raise WeightFileError(f"{path!r} has a malformed header: input_shape {shape!r}")
    epoch = header.get("epoch", 0)
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise WeightFileError(f"{path!r} has a malformed header: epoch {epoch!r}")


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
