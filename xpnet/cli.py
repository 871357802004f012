"""The ``xpnet`` command: ``xpnet demo`` trains and times a small network, ``xpnet info``
says what this machine can run, ``xpnet bench`` runs the benchmark suite.

    python -m xpnet demo [--backend NAME] [--epochs N] [--quick] [--data WHICH]
    python -m xpnet info
    python -m xpnet bench [--backends LIST] [--quick] [--out DIR]   (in a source checkout)

Every failure the user can fix (a backend that cannot run here, missing data asked for
by name) is one message on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib.metadata as metadata
import os
import platform
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

from . import __version__
from . import backend as B
from .datasets import (ChecksumError, DatasetNotFoundError, find_dataset_files, load_fashion_mnist,
                       make_spirals)
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
               "machine can run, xpnet bench runs the benchmark suite (in a source checkout).")
PACKAGES = ("numpy", "array-api-compat", "array-api-strict", "torch", "cupy-cuda12x",
            "cupy-cuda13x", "cupy", "tqdm", "matplotlib")


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
    bench = sub.add_parser("bench", help="the benchmark suite (pytest-benchmark) and its report; "
                                         "needs a source checkout")
    bench.add_argument("--backends", default=None,
                       help="comma-separated backends xpnet is timed on (default: "
                            "$XPNET_BENCH_BACKENDS, else $XPNET_BACKEND, else numpy)")
    bench.add_argument("--quick", action="store_true", help="the small smoke sizes, timed once")
    bench.add_argument("--out", default=None,
                       help="folder for bench.json, results.md, throughput.png (default: "
                            "benchmarks/results in the checkout; benchmarks/results/quick "
                            "with --quick, which never writes over the full run)")
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


# -- info ---------------------------------------------------------------------------------

def _versions():
    found = []
    for dist in PACKAGES:
        try:
            found.append((dist, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            if not dist.startswith("cupy"):
                found.append((dist, "not installed"))
    return found


def _blas_lines():
    lines = []
    numpy = sys.modules.get("numpy")   # imported by xpnet.backend; read, not imported here
    try:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        lines.append(f"numpy built with {blas.get('name')} {blas.get('version', '')}".rstrip())
    except Exception as exc:  # the layout of show_config differs between numpy versions
        lines.append(f"numpy build configuration not readable ({type(exc).__name__})")
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        lines.append("threadpoolctl not installed: no runtime thread information")
    else:
        for lib in threadpool_info():
            name = " ".join(str(v) for v in (lib.get("internal_api"), lib.get("version")) if v)
            extra = [f"{lib.get('num_threads')} threads"]
            if lib.get("threading_layer"):
                extra.append(f"{lib['threading_layer']} threading")
            extra.append(os.path.basename(lib.get("filepath", "")))
            lines.append(f"loaded {lib.get('user_api')} library: {name} ({', '.join(extra)})")
    torch = sys.modules.get("torch")
    if torch is not None:
        lines.append(f"torch: {torch.get_num_threads()} threads, "
                     f"MKL {'yes' if torch.backends.mkl.is_available() else 'no'}")
    return lines


def _data_lines():
    lines = []
    for title, name in (("Fashion-MNIST", "fashion-mnist"), ("MNIST", "mnist")):
        files, searched = find_dataset_files(name)
        found = {n: p for n, p in files.items() if p is not None}
        missing = [n for n in files if n not in found]
        if found:
            folders = ", ".join(sorted({str(p.parent) for p in found.values()}))
            what = "found" if not missing else f"{len(found)} of {len(files)} files found"
            lines.append(f"{title}: {what} in {folders} (checksummed when loaded)")
        if missing:
            lines.append(f"{title}: {'not found' if not found else 'missing ' + ', '.join(missing)}"
                         f" (searched {', '.join(map(str, searched))})")
    return lines


def run_info(args) -> int:
    print(f"xpnet {__version__} on Python {platform.python_version()} ({platform.platform()}), "
          f"{os.cpu_count()} CPU(s)")
    print("packages:")
    for dist, version in _versions():
        print(f"  {dist:<18} {version}")
    try:
        B.get_backend()  # raises for an unknown XPNET_BACKEND
        name, why = resolve_backend(None)
        floatx = B.get_floatx()
    except ValueError as exc:  # a bad XPNET_BACKEND / XPNET_FLOATX: one message, no traceback
        return _fail(str(exc))
    print(f"active backend: {name} ({why}); float type {floatx}")
    print("backends:")
    for backend_name in B.BACKENDS:
        try:
            b = B.load(backend_name)
        except B.BackendUnavailableError as exc:
            print(f"  {backend_name:<18} unavailable: {exc}")
        else:
            print(f"  {backend_name:<18} available (device {b.device})")
    print("BLAS and threads:")
    for line in _blas_lines():
        print(f"  {line}")
    print("data (never downloaded by this command):")
    for line in _data_lines():
        print(f"  {line}")
    env = {k: v for k, v in os.environ.items() if k.startswith("XPNET_")}
    print("environment: " + (", ".join(f"{k}={v}" for k, v in sorted(env.items())) or "no XPNET_* variables set"))
    return 0


# -- bench --------------------------------------------------------------------------------

def source_root() -> Path | None:
    """The source checkout this xpnet was imported from, if it has ``benchmarks/``."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "benchmarks" / "baselines.py").is_file() else None


_BENCH_RUNNING = "_XPNET_BENCH_RUNNING"  # set for the pytest it starts: no recursion


def run_bench(args) -> int:
    """``nox -s bench`` without nox: pytest-benchmark over ``benchmarks/``, then the report.

    Returns pytest's exit status (the report's PASS/FAIL lines are information).
    """
    root = source_root()
    if root is None:
        return _fail("the benchmarks live in xpnet's source repository, not in the installed "
                     "package: clone the repository, `pip install -e '.[test]'` there, and run "
                     "`python -m xpnet bench` (or `nox -s bench`) in it")
    if find_spec("pytest_benchmark") is None:
        return _fail("the benchmarks need pytest-benchmark: pip install -e '.[test]'")
    if os.environ.get(_BENCH_RUNNING):
        return _fail("a benchmark run is already in progress in this process tree "
                     f"({_BENCH_RUNNING} is set); not starting another")
    results = root / "benchmarks" / "results"
    default = results / "quick" if args.quick else results
    out = Path(args.out).resolve() if args.out else default
    if args.quick and out == results.resolve():
        return _fail(f"quick runs never replace the full run committed in {results}: "
                     "leave out --out (they go to benchmarks/results/quick) or name another folder")
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, **{_BENCH_RUNNING: "1"})
    if args.backends:
        env["XPNET_BENCH_BACKENDS"] = args.backends
    if args.quick:
        env["XPNET_BENCH_QUICK"] = "1"
    json_path = out / "bench.json"
    cmd = [sys.executable, "-m", "pytest", "benchmarks", "--benchmark-enable",
           f"--benchmark-json={json_path}", "-p", "no:randomly", "-p", "no:cacheprovider", "-q"]
    print("$ " + " ".join(cmd), flush=True)
    status = subprocess.call(cmd, cwd=root, env=env)
    if json_path.is_file():
        report = [sys.executable, "-m", "benchmarks.report", str(json_path), "--out", str(out)]
        status = status or subprocess.call(report, cwd=root, env=env)
    return status


def main(argv=None) -> int:
    """Run the ``xpnet`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        return run_demo(args)
    if args.command == "bench":
        return run_bench(args)
    return run_info(args)
