"""Checked downloads: temp file in the target folder, SHA-256, then rename."""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

__all__ = ["ChecksumError", "DatasetNotFoundError", "DownloadError", "download_file", "sha256_file"]

#: Seconds to wait for the server (connect and each read).
TIMEOUT = 30.0
#: Seconds a whole file may take (the loaders' ``timeout=`` default).
DEADLINE = 600.0
#: A download larger than this is aborted (the largest known file is ~26 MB).
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024


class ChecksumError(ValueError):
    """A file's SHA-256 is not the known one. The message names the file and both sums."""


class DatasetNotFoundError(FileNotFoundError):
    """The data set's files are in none of the searched folders and could not be downloaded.

    The message lists every folder searched and how to get the files.
    """


class DownloadError(OSError):
    """A download failed (server unreachable, HTTP error, cut-off transfer)."""


def sha256_file(path: str | os.PathLike) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _progress_bar(total: int | None, desc: str, enabled: bool):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        enabled = False
    if not enabled:
        class _Null:
            def update(self, n):
                pass

            def close(self):
                pass

        return _Null()
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False)


def download_file(
    url: str,
    dest: str | os.PathLike,
    sha256: str,
    *,
    timeout: float | None = None,
    deadline: float | None = None,
    progress: bool = True,
) -> Path:
    """Download `url` to `dest`, keeping it only if its SHA-256 is `sha256`.

    The bytes go to a temporary file in ``dest``'s folder, which is renamed to
    `dest` only after the checksum matches; on any failure the temporary file
    is removed and `dest` is left untouched.

    Parameters
    ----------
    url : str
        An ``http://`` or ``https://`` URL.
    dest : str or os.PathLike
        The file to create (its folder is created if needed).
    sha256 : str
        The expected hex SHA-256 of the downloaded bytes.
    timeout : float, optional
        Seconds to wait for the server (connect and each read); default :data:`TIMEOUT`.
    deadline : float, optional
        Seconds the whole download may take (a mirror that trickles bytes is cut off);
        None for no limit. Each read then waits at most this long too.
    progress : bool, default True
        Show a ``tqdm.auto`` progress bar.

    Returns
    -------
    pathlib.Path
        `dest`.

    Raises
    ------
    ChecksumError
        The bytes' SHA-256 is not `sha256` (nothing is kept).
    DownloadError
        The server could not be reached, answered with an HTTP error, the
        transfer was cut off, passed `deadline`, or exceeded :data:`MAX_DOWNLOAD_BYTES`.
    ValueError
        `url` is not http(s).
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"refusing to download {url!r}: only http:// and https:// URLs are allowed")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        per_read = TIMEOUT if timeout is None else timeout
        if deadline is not None:
            if not deadline > 0:
                raise ValueError(f"timeout must be a number of seconds > 0, got {deadline!r}")
            per_read = min(per_read, deadline)
        end = None if deadline is None else time.monotonic() + deadline
        with os.fdopen(fd, "wb") as out:
            try:
                resp = urllib.request.urlopen(url, timeout=per_read)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                if isinstance(exc, urllib.error.HTTPError):
                    exc.close()  # it holds the connection open
                raise DownloadError(f"download of {url} failed: {_reason(exc, per_read)}") from exc
            with resp:
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                if total is not None and total > MAX_DOWNLOAD_BYTES:
                    raise DownloadError(f"download of {url} refused: {total} bytes is too large")
                bar = _progress_bar(total, dest.name, progress)
                got = 0
                try:
                    while chunk := resp.read1(1 << 16):  # what has come: a trickle cannot block
                        if end is not None and time.monotonic() > end:
                            raise DownloadError(
                                f"download of {url} passed its deadline of {deadline:g} s "
                                f"({got + len(chunk)} of {total or '?'} bytes came): the mirror "
                                f"is too slow; retry, pass a larger timeout=, or use another "
                                f"mirror (base_url=)")
                        got += len(chunk)
                        if got > MAX_DOWNLOAD_BYTES:
                            raise DownloadError(f"download of {url} aborted: more than "
                                                f"{MAX_DOWNLOAD_BYTES} bytes")
                        out.write(chunk)
                        h.update(chunk)
                        bar.update(len(chunk))
                except (http.client.HTTPException, OSError) as exc:
                    if isinstance(exc, DownloadError):
                        raise
                    raise DownloadError(f"download of {url} failed: {_reason(exc, per_read)}") from exc
                finally:
                    bar.close()
                if total is not None and got != total:
                    raise DownloadError(f"download of {url} cut off: got {got} of {total} bytes")
        actual = h.hexdigest()
        if actual != sha256.lower():
            raise ChecksumError(
                f"SHA-256 mismatch for {dest.name} downloaded from {url}: expected {sha256}, "
                f"got {actual}; the downloaded file was removed"
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def _reason(exc: BaseException, per_read: float) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP Error {exc.code}: {exc.reason}"
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return f"no answer within {per_read:g} s (timed out)"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return f"{type(exc).__name__}: {exc}"
