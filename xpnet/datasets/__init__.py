"""Data sets for xpnet: IDX files, MNIST/Fashion-MNIST, and small synthetic sets.

Everything here runs on the host and returns NumPy arrays; models move the
batches to their backend. Nothing is ever unpickled.

Errors: :class:`IDXFormatError` and :class:`ChecksumError` are ValueErrors;
:class:`DatasetNotFoundError` is a FileNotFoundError.
"""

from ._download import ChecksumError, DatasetNotFoundError, DownloadError
from ._sources import FASHION_MNIST_URL, MNIST_URL
from .idx import IDXFormatError, read_idx
from .mnist import (find_dataset_files, load_fashion_mnist, load_idx_pair, load_mnist,
                    load_mnist_test)
from .synthetic import STUDY_SLEEP_3ROWS, make_spirals, make_study_sleep, make_xor

__all__ = [
    "read_idx",
    "load_mnist",
    "load_fashion_mnist",
    "load_mnist_test",
    "load_idx_pair",
    "find_dataset_files",
    "make_study_sleep",
    "make_spirals",
    "make_xor",
    "STUDY_SLEEP_3ROWS",
    "MNIST_URL",
    "FASHION_MNIST_URL",
    "IDXFormatError",
    "ChecksumError",
    "DatasetNotFoundError",
    "DownloadError",
]
