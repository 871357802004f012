"""Reader for the IDX file format (the format of MNIST and Fashion-MNIST).

An IDX file is a 4-byte magic number ``00 00 TT DD`` (``TT`` the element type,
``DD`` the number of dimensions), then ``DD`` big-endian unsigned 32-bit sizes,
then the elements, big-endian, in C order. The files are often gzip-compressed;
compression is detected from the first two bytes (``1f 8b``), never from the
file name.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["IDXFormatError", "read_idx", "IDX_DTYPES"]

#: IDX element type code -> big-endian NumPy dtype (per the IDX specification).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),  # unsigned byte
    0x09: np.dtype(">i1"),  # signed byte
    0x0B: np.dtype(">i2"),  # short
    0x0C: np.dtype(">i4"),  # int
    0x0D: np.dtype(">f4"),  # float
    0x0E: np.dtype(">f8"),  # double
}

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


class IDXFormatError(ValueError):
    """An IDX file is truncated, corrupt or not an IDX file at all.

    The message names the file and says what is wrong.
    """


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a NumPy array.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Gzip compression is detected from the magic bytes
        ``1f 8b``, not from the file name.

    Returns
    -------
    numpy.ndarray
        A writable array in native byte order with the file's shape and
        element type (uint8, int8, int16, int32, float32 or float64).

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    IDXFormatError
        A subclass of ValueError: the file is empty, truncated, has a wrong
        magic number, an unknown type code, trailing bytes after the data,
        or a corrupt gzip stream. The message names the file.
    """
    return _read_idx(path, None)


def _read_idx(path: str | os.PathLike, hasher) -> np.ndarray:
    """Read an IDX file; feed every decompressed byte into ``hasher`` if given."""
    path = Path(path)
    try:
        raw = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"IDX file not found: {path}") from None
    with raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if not compressed:
            return _parse(raw, path, hasher, os.fstat(raw.fileno()).st_size)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                return _parse(stream, path, hasher, None)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise IDXFormatError(f"{path}: corrupt gzip stream ({exc})") from exc


def _read_upto(stream: BinaryIO, n: int, hasher) -> bytearray:
    """Read at most ``n`` bytes; memory grows only with the data really there."""
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(min(_CHUNK, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    if hasher is not None:
        hasher.update(buf)
    return buf


def _parse(stream: BinaryIO, path: Path, hasher, file_size: int | None) -> np.ndarray:
    what = "decompressed data" if file_size is None else "file"
    magic = _read_upto(stream, 4, hasher)
    if len(magic) == 0:
        raise IDXFormatError(f"{path}: the {what} is empty; expected a 4-byte IDX magic number")
    if len(magic) < 4:
        raise IDXFormatError(
            f"{path}: truncated header: expected a 4-byte magic number, found {len(magic)} bytes"
        )
    if magic[0] != 0 or magic[1] != 0:
        raise IDXFormatError(
            f"{path}: wrong magic number 0x{bytes(magic).hex()}: an IDX file starts with two zero bytes"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise IDXFormatError(
            f"{path}: wrong magic number 0x{bytes(magic).hex()}: unknown element type code "
            f"0x{code:02x} (known: {known})"
        )
    dims_raw = _read_upto(stream, 4 * ndim, hasher)
    if len(dims_raw) < 4 * ndim:
        raise IDXFormatError(
            f"{path}: truncated header: expected {4 * ndim} bytes of dimension sizes "
            f"for {ndim} dimensions, found {len(dims_raw)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(bytes(dims_raw), dtype=">u4"))
    dtype = IDX_DTYPES[code]
    count = 1
    for d in shape:
        count *= d
    nbytes = count * dtype.itemsize
    header = 4 + 4 * ndim
    if file_size is not None and file_size != header + nbytes:
        found = file_size - header
        if found < nbytes:
            raise IDXFormatError(
                f"{path}: truncated: expected {nbytes} bytes of data, found {found} "
                f"(shape {shape} of {dtype.name})"
            )
        raise IDXFormatError(
            f"{path}: trailing garbage: expected {nbytes} bytes of data for shape {shape}, "
            f"found {found - nbytes} extra bytes after them"
        )
    data = _read_upto(stream, nbytes, hasher)
    if len(data) < nbytes:
        raise IDXFormatError(
            f"{path}: truncated: expected {nbytes} bytes of data, found {len(data)} "
            f"(shape {shape} of {dtype.name})"
        )
    extra = 0
    while chunk := stream.read(_CHUNK):
        extra += len(chunk)
    if extra:
        raise IDXFormatError(
            f"{path}: trailing garbage: expected {nbytes} bytes of data for shape {shape}, "
            f"found {extra} extra bytes after them"
        )
    arr = np.frombuffer(data, dtype=dtype).reshape(shape)
    if dtype.itemsize > 1:
        arr = arr.astype(dtype.newbyteorder("="))
    elif dtype.kind == "u":
        arr = arr.view(np.uint8)
    else:
        arr = arr.view(np.int8)
    return arr
