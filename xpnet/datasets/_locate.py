"""Where the MNIST and Fashion-MNIST files are found, and fetching the missing ones.

The search order is in :mod:`xpnet.datasets.mnist`'s docstring. ``XPNET_CACHE_DIR``
moves the cache folder; ``XPNET_NO_SYSTEM_DATA=1`` leaves out the system folders
(Debian's ``/usr/share/datasets``).
"""
from __future__ import annotations

import os
from pathlib import Path

from ._download import DatasetNotFoundError, DownloadError, download_file
from ._sources import DatasetSource

CACHE_ENV = "XPNET_CACHE_DIR"
NO_SYSTEM_ENV = "XPNET_NO_SYSTEM_DATA"


def _cache_dir(source: DatasetSource) -> Path:
    root = os.environ.get(CACHE_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "xpnet"
    return base / source.name


def _system_dirs(source: DatasetSource) -> tuple[Path, ...]:
    flag = os.environ.get(NO_SYSTEM_ENV, "").strip().lower()
    return () if flag not in ("", "0", "false", "no") else source.system_dirs


def _search_dirs(source: DatasetSource, path) -> list[tuple[Path, str]]:
    dirs = []
    if path is not None:
        dirs.append((Path(path).expanduser(), "path="))
    env = os.environ.get("XPNET_DATA")
    if env:
        dirs.append((Path(env).expanduser() / source.name, f"$XPNET_DATA/{source.name}"))
    cache_why = f"cache, ${CACHE_ENV}" if os.environ.get(CACHE_ENV) else "cache"
    dirs.append((_cache_dir(source), cache_why))
    dirs.extend((d, "system") for d in _system_dirs(source))
    seen, unique = set(), []
    for d, why in dirs:
        if d not in seen:
            seen.add(d)
            unique.append((d, why))
    return unique


def _find(name: str, dirs) -> Path | None:
    for d, _ in dirs:
        for candidate in (d / f"{name}.gz", d / name):
            if candidate.is_file():
                return candidate
    return None


def _not_found(source, missing, dirs, base, reason) -> DatasetNotFoundError:
    lines = [f"{source.title} files not found: " + ", ".join(f"{n}[.gz]" for n in missing),
             "Searched, in order:"]
    lines += [f"  {d}  ({why})" for d, why in dirs]
    if not os.environ.get("XPNET_DATA"):
        lines.append("  ($XPNET_DATA is not set)")
    lines.append(reason)
    lines.append(
        f"To get the files: pass path= a folder that holds them; or set XPNET_DATA to a folder "
        f"with a '{source.name}' subfolder that holds them; or call with download=True when "
        f"online (mirror {base}; change it with base_url= or ${source.url_env})."
        + (f" {source.hint}" if source.hint else ""))
    return DatasetNotFoundError("\n".join(lines))


def _check_folder(source, path):
    if path is None:
        return
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(
            f"path must be a folder that holds (or will hold) the {source.title} IDX files, "
            f"but {folder} is a file; pass its folder instead: path={str(folder.parent)!r}")


def _locate(source, names, path, download, base_url, progress, timeout) -> dict[str, Path]:
    _check_folder(source, path)
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0 (or None), got {timeout!r}")
    dirs = _search_dirs(source, path)
    found = {n: _find(n, dirs) for n in names}
    missing = [n for n, p in found.items() if p is None]
    if not missing:
        return found
    base = base_url or os.environ.get(source.url_env) or source.base_url
    if not download:
        raise _not_found(source, missing, dirs, base, "Downloading is off (download=False).")
    target = Path(path).expanduser() if path is not None else _cache_dir(source)
    for name in missing:
        sha = source.archive_sha256.get(name)
        if sha is None:
            raise _not_found(source, missing, dirs, base,
                             f"No known SHA-256 for {name}.gz, so it is not downloaded.")
        url = base.rstrip("/") + "/" + name + ".gz"
        try:
            found[name] = download_file(url, target / f"{name}.gz", sha, progress=progress,
                                        deadline=timeout)
        except DownloadError as exc:
            raise _not_found(source, missing, dirs, base,
                             f"Downloading into {target} failed: {exc}") from exc
    return found
