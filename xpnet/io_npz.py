"""Reading a weight file header first: nothing is read that its headers have not vouched for.

The zip directory, the JSON header and each member's ``.npy`` header are checked before
any array data is read, so a crafted file that declares huge shapes is refused at the cost
of its headers. Object arrays are refused (``allow_pickle=False``), so a file cannot run
code. Writing, and the format itself, are :mod:`xpnet.io`.
"""
from __future__ import annotations

import contextlib
import json
import math
import operator
import os
import struct
import zipfile
import zlib

import numpy as np
from numpy.lib import format as npformat

__all__ = ["WeightFileError", "WeightFile", "load_arrays", "file_path", "checked_count",
           "HEADER_KEY", "FORMAT_VERSION", "MAX_COUNT"]

HEADER_KEY = "__xpnet__"
FORMAT_VERSION = 1
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


def load_arrays(path) -> tuple[dict, dict]:
    """Read a whole file written by :func:`xpnet.io.save_arrays`: ``(arrays as NumPy, header)``.

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
