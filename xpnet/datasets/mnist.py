"""MNIST and Fashion-MNIST loaders with the book's ``load_mnist`` interface.

Where the files are looked for, in order (each file may be ``NAME.gz`` or the
un-gzipped ``NAME``; the first folder holding it wins):

1. ``path``, if given;
2. ``$XPNET_DATA/mnist`` or ``$XPNET_DATA/fashion-mnist`` if ``XPNET_DATA`` is
   set. Files directly in ``$XPNET_DATA`` are *not* used: both data sets use
   the same file names, so a flat folder could silently mix them up;
3. ``~/.cache/xpnet/mnist`` or ``~/.cache/xpnet/fashion-mnist`` (the cache
   folder is ``$XPNET_CACHE_DIR/<name>`` when ``XPNET_CACHE_DIR`` is set);
4. Fashion-MNIST only: ``/usr/share/datasets/fashion-mnist`` (the Debian
   package ``dataset-fashion-mnist``), unless ``XPNET_NO_SYSTEM_DATA=1``.

``XPNET_CACHE_DIR`` and ``XPNET_NO_SYSTEM_DATA`` let a test run see the machine as
a new user's would (no cache, no system package), without touching either.

Missing files are downloaded (unless ``download=False``) into ``path`` if given,
else into the cache folder, from ``base_url=`` if given, else from
``$XPNET_MNIST_URL`` / ``$XPNET_FASHION_MNIST_URL``, else from
:data:`MNIST_URL` / :data:`FASHION_MNIST_URL`. A download is kept only if the
archive's SHA-256 is the known one; every file, found or downloaded, is then
checked against the known SHA-256 of its decompressed content before use.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ._download import DEADLINE, ChecksumError, DatasetNotFoundError
from ._locate import _find, _locate, _search_dirs, _system_dirs  # noqa: F401 (tests)
from ._sources import (FASHION_MNIST, FASHION_MNIST_URL, MNIST, MNIST_URL, TEST_FILES,
                       TRAIN_FILES, DatasetSource)
from .idx import _read_idx, read_idx

__all__ = ["load_mnist", "load_fashion_mnist", "load_mnist_test", "load_idx_pair", "find_dataset_files",
           "MNIST_URL", "FASHION_MNIST_URL"]


def load_mnist(normalize=True, flatten=True, one_hot_label=False, path=None, *,
               download=True, base_url=None, progress=True, timeout=DEADLINE):
    """Load MNIST as in the book: ``((x_train, t_train), (x_test, t_test))``.

    Parameters
    ----------
    normalize : bool, default True
        Images as float32 in [0, 1] (divided by 255); else uint8 in [0, 255].
    flatten : bool, default True
        Images of shape (N, 784); else (N, 1, 28, 28).
    one_hot_label : bool, default False
        Labels as float32 one-hot rows of shape (N, 10); else uint8 class
        indices of shape (N,) (uint8 as in the book; cast with
        ``t.astype(np.int64)`` where an index type is needed).
    path : str or os.PathLike, optional
        Folder searched first, and where missing files are downloaded to.
    download : bool, default True
        Download missing files; with False a missing file is an error.
    base_url : str, optional
        Mirror to download from (http/https); default ``$XPNET_MNIST_URL``,
        else :data:`MNIST_URL`.
    progress : bool, default True
        Show a progress bar while downloading.
    timeout : float, default 600
        Seconds each file's download may take in all (a mirror that trickles bytes is
        cut off); each read from the server also waits at most 30 s.

    Returns
    -------
    ((x_train, t_train), (x_test, t_test)) : tuple of numpy.ndarray
        60,000 training and 10,000 test examples.

    Raises
    ------
    DatasetNotFoundError
        Files missing and not downloadable (offline, HTTP error, past `timeout`);
        the message lists the folders searched and how to get the files.
    NotADirectoryError
        `path` is a file, not a folder.
    ChecksumError
        A file (found or downloaded) is not the known MNIST file.
    """
    return _load_splits(MNIST, (TRAIN_FILES, TEST_FILES), normalize, flatten, one_hot_label,
                        path, download, base_url, progress, timeout)


def load_fashion_mnist(normalize=True, flatten=True, one_hot_label=False, path=None, *,
                       download=True, base_url=None, progress=True, timeout=DEADLINE):
    """Load Fashion-MNIST: ``((x_train, t_train), (x_test, t_test))``.

    Same parameters, shapes and dtypes as :func:`load_mnist`. Also searched:
    ``/usr/share/datasets/fashion-mnist`` (``apt-get install
    dataset-fashion-mnist``). The download mirror is ``base_url``, else
    ``$XPNET_FASHION_MNIST_URL``, else :data:`FASHION_MNIST_URL`.

    Returns
    -------
    ((x_train, t_train), (x_test, t_test)) : tuple of numpy.ndarray
        60,000 training and 10,000 test examples of 10 clothing classes.
    """
    return _load_splits(FASHION_MNIST, (TRAIN_FILES, TEST_FILES), normalize, flatten,
                        one_hot_label, path, download, base_url, progress, timeout)


def load_mnist_test(normalize=True, flatten=True, one_hot_label=False, path=None, *,
                    download=True, base_url=None, progress=True, timeout=DEADLINE):
    """Load only the MNIST test set: ``(x_test, t_test)``.

    Needs only ``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]``
    (enough for the book's inference example). Same search, download and
    checks as :func:`load_mnist`, whose parameters it takes.

    Returns
    -------
    (x_test, t_test) : tuple of numpy.ndarray
        10,000 examples.
    """
    ((x, t),) = _load_splits(MNIST, (TEST_FILES,), normalize, flatten, one_hot_label,
                             path, download, base_url, progress, timeout)
    return x, t


def load_idx_pair(images_path, labels_path, normalize=True, flatten=True,
                  one_hot_label=False, *, num_classes=10):
    """Load one images/labels pair of IDX files, with no checksum, as ``(x, t)``.

    For any MNIST-like pair, e.g. only the test set in a folder ``d``::

        x, t = load_idx_pair(d / "t10k-images-idx3-ubyte.gz", d / "t10k-labels-idx1-ubyte.gz")

    Parameters
    ----------
    images_path, labels_path : str or os.PathLike
        An (N, H, W) uint8 IDX file and an (N,) uint8 IDX file, raw or gzip.
    normalize, flatten, one_hot_label : bool
        As in :func:`load_mnist`; flatten gives (N, H*W), else (N, 1, H, W).
    num_classes : int, default 10
        Width of the one-hot rows.

    Returns
    -------
    (x, t) : tuple of numpy.ndarray

    Raises
    ------
    IDXFormatError
        A file is not a valid IDX file.
    ValueError
        The shapes or dtypes do not form an images/labels pair, or a label is
        out of range for `num_classes` (with or without `one_hot_label`).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    images, labels = read_idx(images_path), read_idx(labels_path)
    return _prepare(images, labels, normalize, flatten, one_hot_label, num_classes,
                    f"{images_path} / {labels_path}")


def _read_checked(source: DatasetSource, name: str, path: Path) -> np.ndarray:
    hasher = hashlib.sha256()
    arr = _read_idx(path, hasher)
    expected, actual = source.content_sha256.get(name), hasher.hexdigest()
    if expected is not None and actual != expected:
        raise ChecksumError(
            f"{path}: SHA-256 of the decompressed IDX data is {actual}, expected {expected}: "
            f"this is not the {source.title} file {name} (corrupt or different data). "
            f"Delete or replace it; load_idx_pair() loads IDX files without checks.")
    return arr


def _load_splits(source, splits, normalize, flatten, one_hot_label, path, download,
                 base_url, progress, timeout):
    names = [n for split in splits for n in split]
    paths = _locate(source, names, path, download, base_url, progress, timeout)
    out = []
    for images_name, labels_name in splits:
        images = _read_checked(source, images_name, paths[images_name])
        labels = _read_checked(source, labels_name, paths[labels_name])
        out.append(_prepare(images, labels, normalize, flatten, one_hot_label, 10,
                            f"{paths[images_name]} / {paths[labels_name]}"))
    return tuple(out)


def _prepare(images, labels, normalize, flatten, one_hot_label, num_classes, where):
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{where}: images must be (N, H, W) uint8, got {images.shape} {images.dtype}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{where}: labels must be (N,) uint8, got {labels.shape} {labels.dtype}")
    if len(images) != len(labels):
        raise ValueError(f"{where}: {len(images)} images but {len(labels)} labels")
    n = len(images)
    if n and int(labels.max()) >= num_classes:
        raise ValueError(f"{where}: label {int(labels.max())} out of range for "
                         f"{num_classes} classes (labels must be 0..{num_classes - 1}; "
                         f"pass num_classes=)")
    x = images.reshape(n, -1) if flatten else images.reshape(n, 1, *images.shape[1:])
    if normalize:
        x = x.astype(np.float32)
        x /= np.float32(255.0)
    t = labels
    if one_hot_label:
        t = np.zeros((n, num_classes), dtype=np.float32)
        t[np.arange(n), labels] = 1.0
    return x, t


def find_dataset_files(name: str):
    """Where the loaders would find each IDX file of data set ``name`` ("mnist" or
    "fashion-mnist"), without reading or checking them, and where they looked.

    Returns ``(files, searched)``: IDX name -> path or None, and the folders in search order.
    """
    sources = {s.name: s for s in (MNIST, FASHION_MNIST)}
    if name not in sources:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(sources)}")
    dirs = _search_dirs(sources[name], None)
    files = {n: _find(n, dirs) for n in (*TRAIN_FILES, *TEST_FILES)}
    return files, [d for d, _ in dirs]
