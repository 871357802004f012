"""The ``xpnet`` command: ``xpnet demo`` trains and times a small network, ``xpnet info``
says what this machine can run. (The benchmarks live in the source repository:
``python -m benchmarks`` there.)

    python -m xpnet demo [--backend NAME] [--epochs N] [--quick] [--data WHICH]
    python -m xpnet info

Every failure the user can fix (a backend that cannot run here, missing data asked for
by name) is one message on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from . import __version__
from . import _info
from . import backend as B
from .datasets import ChecksumError, DatasetNotFoundError, load_fashion_mnist, make_spirals
from .layers import Dense
from .optimizers import Adam
from .sequential import Sequential


__all__ = ["main", "build_parser", "resolve_backend"]

FASHION_HINT = (
    "To train on real images, install Fashion-MNIST: `apt-get install dataset-fashion-mnist` "
    "(Debian/Ubuntu), or put its four IDX files in $XPNET_DATA/fashion-mnist, or download them "
    "once with `python -c \"import xpnet; xpnet.datasets.load_fashion_mnist()\"`."
)
DESCRIPTION = ("xpnet demo trains and times a small network, xpnet info says what this "
               "machine can run. The benchmarks run from a source checkout: python -m benchmarks.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xpnet", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"xpnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = sub.add_parser("demo", help="train a small MLP, report accuracy and inference speed")
    demo.add_argument("--backend", default=None,
                      help=f"one of {', '.join(B.BACKENDS)} (default: $XPNET_BACKEND, else numpy)")
    demo.add_argument("--epochs", type=_positive, default=None,
                      help="training epochs (default: 5 on Fashion-MNIST, 30 on spirals; 1 / 10 with --quick)")
    demo.add_argument("--quick", action="store_true", help="a few seconds: a subset of the data")
    demo.add_argument("--data", choices=("auto", "fashion-mnist", "spirals"), default="auto",
                      help="auto: Fashion-MNIST when installed or downloadable, else synthetic "
                           "spirals")
    demo.add_argument("--no-download", action="store_true",
                      help="never download Fashion-MNIST (--quick never does either)")
    demo.add_argument("--batch-size", type=_positive, default=32)
    demo.add_argument("--seed", type=int, default=0)
    sub.add_parser("info", help="versions, backends (and why any cannot run), BLAS, data")
    return parser


def _positive(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def resolve_backend(flag):
    """``(name, why)``: the backend the command line or the environment asks for."""
    if flag:
        return flag, "chosen with --backend"
    env = os.environ.get(B.ENV_VAR)
    if env:
        return env, f"from the environment variable {B.ENV_VAR}={env}"
    return B.get_backend(), f"the default: {B.ENV_VAR} is not set"


def _fail(message) -> int:
    print(f"xpnet: error: {message}", file=sys.stderr)
    return 2


# -- demo ---------------------------------------------------------------------------------

_CONNECT_TIMEOUT = 3.0  # seconds: offline, the demo falls back to the spirals this fast


def _mirror_answers(url, timeout=_CONNECT_TIMEOUT) -> bool:
    """True if the mirror's host accepts a TCP connection within ``timeout`` seconds."""
    import socket
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except (OSError, ValueError):  # offline, refused, timed out, no host name
        return False


def _fashion_mnist(download):
    """Fashion-MNIST from disk; else, with ``download`` and a mirror that answers, downloaded
    into the cache (checksummed, with a progress bar and the loaders' deadline)."""
    try:
        return load_fashion_mnist(download=False)
    except DatasetNotFoundError as exc:
        if not download:
            raise
        from .datasets import FASHION_MNIST_URL

        mirror = os.environ.get("XPNET_FASHION_MNIST_URL") or FASHION_MNIST_URL
        if not _mirror_answers(mirror):
            raise _with_reason(exc, f"the mirror {mirror} did not answer within "
                                    f"{_CONNECT_TIMEOUT:g} s (offline?)") from None
    print(f"downloading Fashion-MNIST (about 30 MB, once) from {mirror} into the cache "
          "(--no-download to skip)", flush=True)
    try:
        return load_fashion_mnist(download=True)
    except DatasetNotFoundError as exc:
        failed = [line for line in str(exc).splitlines() if line.startswith("Downloading into")]
        raise _with_reason(exc, failed[0] if failed else f"the download from {mirror} failed") \
            from None


def _with_reason(exc, reason):
    """``exc``'s message with ``reason`` added to its first line (the one the demo prints)."""
    first, *rest = str(exc).splitlines() or [""]
    return DatasetNotFoundError("\n".join([f"{first}; {reason}", *rest]))


def _load_data(which, quick, seed, download=True):
    """``(x_train, y_train, x_test, y_test, description)`` as host arrays."""
    if which in ("auto", "fashion-mnist"):
        try:
            (x_tr, y_tr), (x_te, y_te) = _fashion_mnist(download and not quick)
        except (DatasetNotFoundError, ChecksumError) as exc:
            if which == "fashion-mnist":
                raise
            first = str(exc).splitlines()[0]
            print(f"Fashion-MNIST not available ({first}); using the built-in synthetic spirals.")
            if quick and download:
                print("(--quick does not download; `xpnet demo` downloads Fashion-MNIST once)")
            print(FASHION_HINT)
        else:
            if quick:
                x_tr, y_tr, x_te, y_te = x_tr[:5000], y_tr[:5000], x_te[:1000], y_te[:1000]
            return (x_tr, B.host_cast(y_tr, "int64"), x_te, B.host_cast(y_te, "int64"),
                    f"Fashion-MNIST: {len(x_tr):,} training / {len(x_te):,} test images of 28x28")
    x, y = make_spirals(n_per_class=150 if quick else 400, n_classes=3, noise=0.2, seed=seed)
    order = B.host_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    cut = len(x) * 4 // 5
    return (x[:cut], y[:cut], x[cut:], y[cut:],
            f"synthetic spirals: 3 classes, {cut:,} training / {len(x) - cut:,} test points")


def _model(n_features, n_classes, seed):
    if n_features > 2:
        layers = [Dense(128, activation="relu", input_dim=n_features),
                  Dense(n_classes, activation="softmax")]
        optimizer = "adam"
    else:
        layers = [Dense(64, activation="relu", input_dim=n_features), Dense(64, activation="relu"),
                  Dense(n_classes, activation="softmax")]
        optimizer = Adam(lr=0.01)
    model = Sequential(layers, seed=seed, name="demo_mlp")
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _time_inference(model, x, n_single, backend):
    """Rows per second, one row per call and in batches of 1,000 (the whole of ``x``, repeated
    to at least 10,000 rows), and on how many rows the two ways agree."""
    xp = backend.xp
    single = x[:n_single]
    model(single[:1])                                       # warm-up (and build)
    model.predict(x[:1000], batch_size=1000)
    start = time.perf_counter()
    one_by_one = [int(xp.argmax(model(single[i:i + 1])[0, :])) for i in range(n_single)]
    t_single = time.perf_counter() - start
    reps = max(1, 10_000 // len(x))                          # time at least 10,000 rows
    start = time.perf_counter()
    for _ in range(reps):
        probs = model.predict(x, batch_size=1000)            # NumPy out: includes the copy back
    t_batch = (time.perf_counter() - start) / reps
    batched = probs.argmax(axis=1)
    agree = sum(int(a == b) for a, b in zip(one_by_one, batched[:n_single].tolist()))
    return n_single / t_single, len(x) / t_batch, agree, reps * len(x)


def run_demo(args) -> int:
    name, why = resolve_backend(args.backend)
    try:
        backend = B.load(name)
    except (B.BackendUnavailableError, ValueError) as exc:
        return _fail(f"backend {name!r} cannot be used here: {exc}")
    try:
        floatx = B.get_floatx()
    except ValueError as exc:  # an unknown XPNET_FLOATX
        return _fail(str(exc))
    with B.use_backend(backend.name):
        print(f"xpnet {__version__} demo")
        print(f"backend: {backend.name} on {backend.device}, {why}; float type {floatx}")
        try:
            x_tr, y_tr, x_te, y_te, what = _load_data(args.data, args.quick, args.seed,
                                                      not args.no_download)
        except (DatasetNotFoundError, ChecksumError) as exc:
            return _fail(f"{exc}\n{FASHION_HINT}")
        print(f"data: {what}")
        spirals = x_tr.shape[1] == 2
        epochs = args.epochs or ((10 if args.quick else 30) if spirals else (1 if args.quick else 5))
        model = _model(x_tr.shape[1], int(y_tr.max()) + 1, args.seed)
        model.summary()
        print(f"training: {epochs} epoch(s), batches of {args.batch_size}, Adam")
        start = time.perf_counter()
        history = model.fit(x_tr, y_tr, epochs=epochs, batch_size=args.batch_size, verbose=1,
                            seed=args.seed)
        seconds = time.perf_counter() - start
        print(f"trained in {seconds:.1f} s: final training loss {history.history['loss'][-1]:.4f}, "
              f"accuracy {history.history['accuracy'][-1]:.4f}")
        loss, acc = model.evaluate(x_te, y_te, batch_size=1000, verbose=0)
        print(f"test accuracy: {acc:.4f} (test loss {loss:.4f}, {len(x_te):,} rows)")
        n_single = min(len(x_te), 200 if args.quick else 1000)
        single, batched, agree, n_batched = _time_inference(model, x_te, n_single, backend)
        print("inference:")
        print(f"  one row per call:     {single:>12,.0f} rows/s ({n_single:,} rows)")
        print(f"  batches of 1,000:     {batched:>12,.0f} rows/s ({n_batched:,} rows)")
        print(f"  speedup from batching: {batched / single:.1f}x "
              f"(same class for {agree}/{n_single} rows both ways)")
    return 0


def run_info(args) -> int:
    try:
        B.get_backend()  # raises for an unknown XPNET_BACKEND
        name, why = resolve_backend(None)
        floatx = B.get_floatx()
    except ValueError as exc:  # a bad XPNET_BACKEND / XPNET_FLOATX: one message, no traceback
        return _fail(str(exc))
    return _info.report(name, why, floatx)


def main(argv=None) -> int:
    """Run the ``xpnet`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        return run_demo(args)
    return run_info(args)
