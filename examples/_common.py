"""What every example shares: the command line, the backend, the output folder, plots,
and where the data sets are.

Not part of the library: the examples are scripts, and this is their toolbox. Run an
example from anywhere; if xpnet is not installed, the repository it sits in is used.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
REPO = EXAMPLES.parent
DEFAULT_OUT = EXAMPLES / "output"

try:  # an installed xpnet, or the repository this folder belongs to
    import xpnet  # noqa: F401
except ImportError:  # pragma: no cover - depends on how the example is started
    sys.path.insert(0, str(REPO))
    import xpnet  # noqa: F401

import xpnet as xn  # noqa: E402
from xpnet.datasets import DatasetNotFoundError  # noqa: E402

__all__ = ["parser", "session", "savefig", "pyplot", "shared_dir", "mnist_dirs", "find_mnist_file",
           "Timer", "load_fashion", "load_training_data", "DatasetNotFoundError", "xn"]


def parser(doc: str) -> argparse.ArgumentParser:
    """The options every example takes: ``--backend``, ``--quick``, ``--out``."""
    first = (doc or "").strip().splitlines()[0] if doc else None
    p = argparse.ArgumentParser(description=first,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default=None,
                   help=f"array backend: one of {', '.join(xn.BACKENDS)} "
                        "(default: $XPNET_BACKEND, else numpy)")
    p.add_argument("--quick", action="store_true",
                   help="a short run (less data, fewer epochs), for tests and a first look")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"folder for the PNG figures (default: {DEFAULT_OUT})")
    return p


@contextlib.contextmanager
def session(args):
    """Switch to the backend the command line asks for, print which one and why, and
    switch back afterwards. An unavailable backend ends the example with its message
    and exit status 2 (no traceback)."""
    if args.backend:
        name, why = args.backend, "--backend"
    elif os.environ.get(xn.backend.ENV_VAR):
        name, why = os.environ[xn.backend.ENV_VAR], f"${xn.backend.ENV_VAR}"
    else:
        name, why = xn.get_backend(), "default"
    try:
        xn.backend.load(name)
    except (xn.BackendUnavailableError, ValueError) as exc:
        print(f"error: backend {name!r} cannot be used: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    with xn.use_backend(name) as backend:
        print(f"backend: {backend.name} (device {backend.device}; chosen by {why})")
        yield backend


def pyplot():
    """``matplotlib.pyplot`` with the Agg backend, or None when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def savefig(fig, out: Path, name: str) -> Path:
    """Save ``fig`` as ``out/name``, close it, print and return the path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    fig.savefig(path, dpi=100, bbox_inches="tight")
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"saved {path}")
    return path


def no_plot_note():
    print("(matplotlib is not installed: no figure saved; pip install 'xpnet[plot]')")


def shared_dir() -> Path:
    """The team's shared folder: ``$XPNET_SHARED``, else ``../shared`` beside the repo."""
    return Path(os.environ.get("XPNET_SHARED", REPO.parent / "shared"))


def mnist_dirs(path=None) -> list[Path]:
    """Where the examples look for MNIST files, in order: ``path``, ``$XPNET_DATA/mnist``,
    ``~/.cache/xpnet/mnist``, the shared folder's ``data/mnist``."""
    dirs = [Path(path)] if path is not None else []
    if os.environ.get("XPNET_DATA"):
        dirs.append(Path(os.environ["XPNET_DATA"]).expanduser() / "mnist")
    dirs += [Path.home() / ".cache" / "xpnet" / "mnist", shared_dir() / "data" / "mnist"]
    return dirs


def find_mnist_file(name: str, path=None) -> Path | None:
    """The first file called ``name`` in :func:`mnist_dirs`, or None."""
    return next((d / name for d in mnist_dirs(path) if (d / name).is_file()), None)


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False


FASHION_HELP = (
    "Fashion-MNIST was not found. To get it:\n"
    "  - Debian/Ubuntu: apt-get install dataset-fashion-mnist  (files go to "
    "/usr/share/datasets/fashion-mnist)\n"
    "  - or put the four IDX files in $XPNET_DATA/fashion-mnist (export XPNET_DATA=...)\n"
    "  - or pass the folder in code: xn.datasets.load_fashion_mnist(path=...)\n"
    "  - or download them once (online): xn.datasets.load_fashion_mnist(download=True)"
)


def load_fashion(flatten=True):
    """Fashion-MNIST from disk (never downloads); raises DatasetNotFoundError."""
    return xn.datasets.load_fashion_mnist(flatten=flatten, download=False)


def load_training_data(n_train=None, n_test=None):
    """A training/test split for the examples that train on images.

    Fashion-MNIST when it is installed, else the MNIST test set split 8,000 / 2,000 (the
    MNIST training files are often absent). ``n_train``/``n_test`` keep the first rows.
    Returns ``(x_train, t_train, x_test, t_test, description)``.
    """
    try:
        (x_tr, t_tr), (x_te, t_te) = load_fashion()
        what = "Fashion-MNIST (60,000 training / 10,000 test images)"
    except DatasetNotFoundError:
        x, t = load_mnist_test_anywhere()
        x_tr, t_tr, x_te, t_te = x[:8000], t[:8000], x[8000:], t[8000:]
        what = ("MNIST test set split 8,000 / 2,000 (Fashion-MNIST not installed: "
                "apt-get install dataset-fashion-mnist)")
    if n_train is not None:
        x_tr, t_tr = x_tr[:n_train], t_tr[:n_train]
    if n_test is not None:
        x_te, t_te = x_te[:n_test], t_te[:n_test]
    if n_train is not None or n_test is not None:
        what += f", using {len(x_tr):,} / {len(x_te):,} of them"
    return x_tr, t_tr.astype("int64"), x_te, t_te.astype("int64"), what


def load_mnist_test_anywhere(path=None, **kwargs):
    """The MNIST test set from ``path``, the usual places, or the shared folder."""
    if path is not None:
        return xn.datasets.load_mnist_test(path=path, download=False, **kwargs)
    try:
        return xn.datasets.load_mnist_test(download=False, **kwargs)
    except DatasetNotFoundError:
        return xn.datasets.load_mnist_test(path=shared_dir() / "data" / "mnist",
                                           download=False, **kwargs)
