"""Where MNIST and Fashion-MNIST come from, and their known SHA-256 sums.

Two sums per file:

* ``archive_sha256`` -- of the ``.gz`` archive as the mirror serves it. A
  download is kept only if it matches. Source: TensorFlow Datasets,
  ``tensorflow_datasets/url_checksums/mnist.txt`` and ``fashion_mnist.txt``
  (github.com/tensorflow/datasets). The MNIST sums there agree with the
  gzip-ed test labels in ``shared/data/mnist``; the Fashion-MNIST ones are
  those of the publisher's archives (the same files torchvision checks by MD5).
* ``content_sha256`` -- of the decompressed IDX file. Every file is checked
  against it before use, whatever its compression: repackaged copies (the
  Debian package ``dataset-fashion-mnist`` re-gzips the archives without the
  file name; ``shared/data/mnist/t10k-images-idx3-ubyte.gz`` is a re-gzipped
  copy too) have other archive sums but the same content. These sums are
  widely published (e.g. the ``SHA256_*``/``SHA256F_*`` tables of several
  public MNIST loaders); the test-set and all Fashion-MNIST ones were also
  recomputed here from the files on this machine and agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

__all__ = ["DatasetSource", "MNIST", "FASHION_MNIST", "MNIST_URL", "FASHION_MNIST_URL",
           "TRAIN_FILES", "TEST_FILES"]

#: Default base URL of the MNIST mirror (PyTorch's copy of the original files).
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
#: Default base URL of the Fashion-MNIST mirror (the publisher's).
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

#: IDX file names (without ``.gz``) of the training images and labels.
TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
#: IDX file names (without ``.gz``) of the test images and labels.
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class DatasetSource:
    """Everything the loaders need to find, fetch and check one data set.

    Attributes
    ----------
    name : str
        Folder name under ``$XPNET_DATA`` and ``~/.cache/xpnet``.
    title : str
        Human name for messages.
    base_url : str
        Default download base URL (file names are appended).
    url_env : str
        Environment variable that overrides `base_url`.
    system_dirs : tuple of pathlib.Path
        Folders searched last (e.g. a Debian package's).
    archive_sha256 : Mapping[str, str]
        IDX name -> SHA-256 of the ``.gz`` archive served at `base_url`.
    content_sha256 : Mapping[str, str]
        IDX name -> SHA-256 of the decompressed IDX file.
    hint : str
        Extra advice for the not-found message.
    """

    name: str
    title: str
    base_url: str
    url_env: str
    system_dirs: tuple[Path, ...] = ()
    archive_sha256: Mapping[str, str] = field(default_factory=dict)
    content_sha256: Mapping[str, str] = field(default_factory=dict)
    hint: str = ""


MNIST = DatasetSource(
    name="mnist",
    title="MNIST",
    base_url=MNIST_URL,
    url_env="XPNET_MNIST_URL",
    archive_sha256=MappingProxyType({
        # tensorflow/datasets: tensorflow_datasets/url_checksums/mnist.txt
        "train-images-idx3-ubyte": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    }),
    content_sha256=MappingProxyType({
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    }),
)

FASHION_MNIST = DatasetSource(
    name="fashion-mnist",
    title="Fashion-MNIST",
    base_url=FASHION_MNIST_URL,
    url_env="XPNET_FASHION_MNIST_URL",
    system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    archive_sha256=MappingProxyType({
        # tensorflow/datasets: tensorflow_datasets/url_checksums/fashion_mnist.txt
        "train-images-idx3-ubyte": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    }),
    content_sha256=MappingProxyType({
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    }),
    hint="On Debian/Ubuntu: `apt-get install dataset-fashion-mnist`.",
)
