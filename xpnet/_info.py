"""``xpnet info``: versions, which backends run here (and why not), BLAS and threads,
and where the data sets are. Never downloads anything."""
from __future__ import annotations

import importlib.metadata as metadata
import os
import platform
import sys

from . import __version__
from . import backend as B
from .datasets import find_dataset_files

__all__ = ["report"]

PACKAGES = ("numpy", "array-api-compat", "array-api-strict", "torch", "cupy-cuda12x",
            "cupy-cuda13x", "cupy", "tqdm", "matplotlib")


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


def report(name, why, floatx) -> int:
    """Print the report for active backend ``name`` (chosen ``why``) and float type ``floatx``."""
    print(f"xpnet {__version__} on Python {platform.python_version()} ({platform.platform()}), "
          f"{os.cpu_count()} CPU(s)")
    print("packages:")
    for dist, version in _versions():
        print(f"  {dist:<18} {version}")
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
