"""Weight files: ``.npz`` written atomically, read without pickle, checked on load.

A file holds one array per parameter, named ``"<layer name>/<param name>"`` (e.g.
``"dense_1/W"``), the non-trainable state (``"state/<layer>/<name>"``), optionally the
optimizer state (``"optimizer/..."``), and a JSON header ``"__xpnet__"`` that lists the
layers, their parameter shapes and, for a checkpoint, the epoch. Arrays are saved from
the host (``to_numpy``), so a file written on one backend loads on every other; saving
never moves the model.

Reading is header first (:class:`WeightFile`): the zip directory, the JSON header and
each member's ``.npy`` header are checked before any array data is read, so a crafted
file that declares huge shapes is refused at the cost of its headers. Names read from a
file are compared with the model's own names; they are never used as paths. Object
arrays are refused (``allow_pickle=False``), so a file cannot run code;
:func:`load_book_weights` is the one trusted pickle loader, for the book's
``sample_weight.pkl``, and needs ``trusted=True``.
"""
from __future__ import annotations

import contextlib
import json
import math
import operator
import os
import pickle
import struct
import tempfile
import time
import zipfile
import zlib

import numpy as np
from numpy.lib import format as npformat

from .backend import to_numpy

__all__ = ["WeightFileError", "WeightFile", "save_arrays", "load_arrays", "load_book_weights",
           "file_path", "save_path", "host_values", "checked_count", "HEADER_KEY",
           "FORMAT_VERSION", "MAX_COUNT"]

HEADER_KEY = "__xpnet__"
FORMAT_VERSION = 1
TEMP_SUFFIX = ".npz.tmp"
#: a temporary file this old is a killed save's, not a save in progress
STALE_TEMP_SECONDS = 600
#: names that promise another format than the .npz xpnet writes
OTHER_FORMATS = (".h5", ".hdf5", ".keras", ".pt", ".pth", ".pkl", ".pickle", ".npy",
                 ".safetensors", ".onnx", ".joblib")
#: the JSON header is at most this long: a crafted file cannot make the loader parse more
MAX_HEADER_BYTES = 1 << 24
#: epochs, step counts and dimensions in a header are below this (exact in a float64)
MAX_COUNT = 2**53
#: how far a member's bytes may expand: 1 when stored, deflate's limit when compressed
_RATIO = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: 1032}
_PICKLED = ("{path!r} holds pickled objects, which xpnet does not load (a pickle can run "
            "code); save weights with model.save_weights")


class WeightFileError(ValueError):
    """A weight file that is corrupt, truncated, unsafe or of another architecture."""


def file_path(path) -> str:
    """``path`` (``str``, ``bytes`` or ``os.PathLike``) as a ``str``, as ``open`` takes it."""
    try:
        return os.fsdecode(os.fspath(path))
    except TypeError:
        raise TypeError(f"path must be a file name (str, bytes or os.PathLike), got "
                        f"{type(path).__name__}") from None


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


def load_arrays(path) -> tuple[dict, dict]:
    """Read a whole file written by :func:`save_arrays`: ``(arrays as NumPy, header)``.

    Every member is checked as :class:`WeightFile` checks it before its data is read.
    """
    with WeightFile(path) as f:
        return {key: f.read(key) for key in f.names if key != HEADER_KEY}, f.header


class WeightFile:
    """A weight file opened for checking; ``with WeightFile(path) as f: ...``.

    Opening reads the zip directory and the JSON header only. :meth:`spec` reads one
    member's ``.npy`` header (shape, dtype); :meth:`read` reads its data once the member
    holds exactly the bytes that header declares. A loader checks names and shapes
    against the model first, so a crafted file costs its headers, never its declared
    sizes. Raises ``FileNotFoundError`` for a missing file and :class:`WeightFileError`
    for a truncated, corrupt, pickle-holding or malformed one.
    """

    def __init__(self, path):
        self.path = path = file_path(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no weight file at {path!r}")
        if os.path.isdir(path):
            raise IsADirectoryError(f"{path!r} is a folder, not a weight file")
        self._file = open(path, "rb")  # our own handle: closed on every error
        self._specs = {}
        try:
            with self._errors():
                self._size = os.fstat(self._file.fileno()).st_size
                try:
                    self._zip = zipfile.ZipFile(self._file)
                except zipfile.BadZipFile:
                    raise WeightFileError(self._not_a_zip()) from None
                self._members = self._directory()
                self.header = self._read_header()
        except BaseException:
            self.close()
            raise

    @property
    def names(self) -> tuple:
        """Every member's name, as the zip directory lists them (nothing read)."""
        return tuple(self._members)

    def __contains__(self, key) -> bool:
        return key in self._members

    def data_bytes(self) -> int:
        """The bytes the arrays of the file hold, at most (from the zip directory)."""
        return sum(i.file_size for k, i in self._members.items() if k != HEADER_KEY)

    def spec(self, key) -> tuple:
        """``(shape, dtype)`` of member ``key`` from its ``.npy`` header; its data unread.

        Object dtypes (pickles) and other non-number dtypes are refused here.
        """
        if key not in self._specs:
            info = self._members[key]
            with self._errors(), self._zip.open(info) as f:
                version = npformat.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise WeightFileError(f"{self.path!r}: {key!r} is an .npy of version "
                                          f"{version}, which xpnet does not read")
                read_header = (npformat.read_array_header_1_0 if version == (1, 0)
                               else npformat.read_array_header_2_0)
                shape, _, dtype = read_header(f)
                offset = f.tell()
            if dtype.hasobject:
                raise WeightFileError(_PICKLED.format(path=self.path))
            if dtype.kind not in "biuf":
                raise WeightFileError(f"{self.path!r}: {key!r} has dtype {dtype}, not a number "
                                      "type")
            self._specs[key] = (tuple(shape), dtype, offset)
        return self._specs[key][:2]

    def read(self, key):
        """The data of member ``key`` as a NumPy array, once :meth:`spec` has passed and the
        member holds exactly the bytes its header declares (so numpy allocates no more)."""
        shape, dtype = self.spec(key)
        offset, held = self._specs[key][2], self._members[key].file_size
        declared = math.prod(shape) * dtype.itemsize
        if offset + declared != held:
            raise WeightFileError(
                f"{self.path!r}: {key!r} declares shape {shape} of {dtype} ({declared:,} "
                f"bytes) but holds {held - offset:,} bytes (truncated or crafted)")
        with self._errors(), self._zip.open(self._members[key]) as f:
            array = npformat.read_array(f, allow_pickle=False)
            f.read(1)  # at the end: the zip checks the member's CRC
        return array

    def close(self) -> None:
        if getattr(self, "_zip", None) is not None:
            self._zip.close()
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- checks made on opening ------------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self):
        """Whatever the zip and .npy readers raise for a damaged file, as WeightFileError."""
        try:
            yield
        except WeightFileError:
            raise
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError, ValueError,
                NotImplementedError, RuntimeError, struct.error, OverflowError) as exc:
            raise WeightFileError(f"{self.path!r} is truncated or corrupt "
                                  f"({type(exc).__name__}: {exc})") from exc

    def _not_a_zip(self) -> str:
        self._file.seek(0)
        start = self._file.read(len(npformat.MAGIC_PREFIX))
        if start[:1] == b"\x80":  # a pickle (protocol 2 and up)
            return _PICKLED.format(path=self.path)
        if start == npformat.MAGIC_PREFIX:
            return f"{self.path!r} is an .npy array, not an .npz weight file"
        return f"{self.path!r} is not a readable .npz weight file (not a zip archive)"

    def _directory(self) -> dict:
        """Member name -> ZipInfo, each an .npy whose stored bytes lie inside the file."""
        members = {}
        for info in self._zip.infolist():
            name = info.filename
            if not name.endswith(".npy") or info.is_dir():
                raise WeightFileError(f"{self.path!r} holds {name!r}, which is not an array "
                                      "of an .npz file")
            key = name[:-len(".npy")]
            if key in members:
                raise WeightFileError(f"{self.path!r} holds {key!r} twice")
            if info.flag_bits & 0x1 or info.compress_type not in _RATIO:
                raise WeightFileError(f"{self.path!r}: {key!r} is encrypted or compressed in a "
                                      "way xpnet does not read (np.savez writes stored members)")
            if (info.header_offset + info.compress_size > self._size
                    or info.file_size > _RATIO[info.compress_type] * info.compress_size + 64):
                raise WeightFileError(f"{self.path!r}: {key!r} declares {info.file_size:,} "
                                      "bytes, more than the file holds (truncated or crafted)")
            members[key] = info
        return members

    def _read_header(self) -> dict:
        if HEADER_KEY not in self._members:
            raise WeightFileError(f"{self.path!r} is an .npz file but not an xpnet weight file "
                                  "(no header)")
        shape, dtype = self.spec(HEADER_KEY)
        if dtype != np.uint8 or len(shape) != 1 or shape[0] > MAX_HEADER_BYTES:
            raise WeightFileError(f"{self.path!r} has a malformed header: {shape} of {dtype}, "
                                  f"not at most {MAX_HEADER_BYTES:,} bytes of JSON")
        raw = self.read(HEADER_KEY).tobytes()
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise WeightFileError(f"{self.path!r} has a corrupt header: {exc}") from exc
        _check_header(self.path, header)
        return header


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


def checked_count(value, what) -> int:
    """``value`` as an int in [0, MAX_COUNT) (an epoch, a step count); NumPy ints accepted."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an integer, got {value!r}") from None
    if not 0 <= value < MAX_COUNT:
        raise ValueError(f"{what} must be in [0, 2**53), got {value!r}")
    return value


def _check_header(path, header) -> None:
    """The header's structure and numbers, so that a crafted file fails here and not deep
    in a loader (or later, in training)."""
    layers = header.get("layers", []) if isinstance(header, dict) else None
    if not isinstance(layers, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) for e in layers):
        raise WeightFileError(f"{path!r} has a malformed header (expected a dict with a list "
                              "of layers, each with a name)")
    if header.get("format", FORMAT_VERSION) != FORMAT_VERSION:
        raise WeightFileError(f"{path!r} is of format {header['format']!r:.40}; this xpnet reads "
                              f"format {FORMAT_VERSION}")
    shape = header.get("input_shape")
    if shape is not None and not (isinstance(shape, list) and all(
            isinstance(d, int) and not isinstance(d, bool) and 0 < d < MAX_COUNT
            for d in shape)):
        raise WeightFileError(f"{path!r} has a malformed header: input_shape {shape!r:.80}")
    optimizer = header.get("optimizer")
    if optimizer is not None and not (isinstance(optimizer, dict)
                                      and isinstance(optimizer.get("class"), str)):
        raise WeightFileError(f"{path!r} has a malformed header: optimizer {optimizer!r:.80}")
    for what, value in (("epoch", header.get("epoch", 0)),
                        ("optimizer step", (optimizer or {}).get("step", 0))):
        try:
            checked_count(value, what)
        except (TypeError, ValueError) as exc:
            raise WeightFileError(f"{path!r} has a malformed header: {exc}") from None


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
