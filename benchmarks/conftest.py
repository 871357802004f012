"""Fixtures shared by the benchmarks: backend, sizes, data, stream sync, machine info.

Two modes:

- **smoke** (the default ``pytest`` run, where pyproject sets ``--benchmark-disable``):
  every benchmark body runs once on small sizes, and its result is still checked.
- **full** (``pytest benchmarks --benchmark-enable``): the sizes of the benchmark plan,
  timed by pytest-benchmark. ``XPNET_BENCH_QUICK=1`` forces the small sizes.

xpnet runs on the backend(s) named by ``XPNET_BENCH_BACKENDS`` (comma-separated), else
``XPNET_BACKEND``, else "numpy". A backend that cannot run here (CuPy without a GPU) is
skipped with the reason the backend module gives. The baselines (hand-written NumPy,
``torch.nn``, scikit-learn) run in the same process with the same threads; on the CuPy
backend the hand-written baseline uses CuPy and the torch one CUDA.
"""
from __future__ import annotations

import os
import platform

import numpy as np
import pytest

import xpnet as xn
from xpnet import backend as B

from .common import (FULL, QUICK, STRICT, backend_names, blas_threads, load_fashion_train,
                     load_mnist_book, make_sync, threadpools)


def pytest_configure(config):
    """torch uses as many threads as NumPy's BLAS (its default: one per core).

    ``XPNET_BENCH_THREADS=n`` sets both to ``n`` (1 gives steadier figures on a machine
    that other jobs share).
    """
    wanted = os.environ.get("XPNET_BENCH_THREADS")
    if wanted:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError as exc:
            raise pytest.UsageError("XPNET_BENCH_THREADS needs threadpoolctl: "
                                    "pip install threadpoolctl") from exc

        config._xpnet_thread_limits = threadpool_limits(int(wanted))  # kept for the session
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(blas_threads())


def pytest_sessionstart(session):
    if hasattr(os, "getloadavg"):
        session.config._xpnet_load_start = os.getloadavg()


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record the BLAS, its threads, the CPU load and the OpenBLAS settings in the JSON."""
    info = {
        "threadpools": threadpools(),
        "numpy_version": np.__version__,
        "xpnet_backends": backend_names(),
        "env": {k: v for k, v in os.environ.items()
                if k.startswith(("OPENBLAS_", "OMP_", "MKL_", "XPNET_", "MALLOC_"))},
        "cpu_count": os.cpu_count(),
        "loadavg_at_start": getattr(config, "_xpnet_load_start", None),
        "platform": platform.platform(),
        "mode": "full" if _is_full(config) else "quick",
    }
    try:
        import torch

        info["torch_version"], info["torch_threads"] = torch.__version__, torch.get_num_threads()
        info["torch_blas"] = "MKL" if torch.backends.mkl.is_available() else "its own"
    except ImportError:  # pragma: no cover
        pass
    try:
        import sklearn

        info["sklearn_version"] = sklearn.__version__
    except ImportError:  # pragma: no cover
        pass
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        info["cpu_model"] = names[0] if names else None
    except OSError:  # pragma: no cover - not Linux
        pass
    machine_info["xpnet_bench"] = info


def pytest_benchmark_update_json(config, benchmarks, output_json):
    if hasattr(os, "getloadavg"):
        output_json["machine_info"].setdefault("xpnet_bench", {})["loadavg_at_end"] = os.getloadavg()


def _is_full(config) -> bool:
    enabled = not (config.getoption("benchmark_disable")
                   and not config.getoption("benchmark_enable"))
    return enabled and os.environ.get("XPNET_BENCH_QUICK", "") in ("", "0")


def pytest_generate_tests(metafunc):
    """The scaling sweeps: the plan's values when timing, two points in smoke mode."""
    plan = FULL if _is_full(metafunc.config) else QUICK
    for name, values in (("width", plan.widths), ("depth", plan.depths),
                         ("scale_batch", plan.scale_batches)):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, values)


@pytest.fixture(scope="session")
def bench_full(request) -> bool:
    """True when pytest-benchmark times (``--benchmark-enable``) and no quick override."""
    return _is_full(request.config)


@pytest.fixture(params=[pytest.param(n, marks=[pytest.mark.gpu] if n == "cupy" else [], id=n)
                        for n in backend_names()])
def xbackend(request):
    """The backend xpnet runs on in this benchmark (active inside the test)."""
    name = request.param
    try:
        B.load(name)
    except (xn.BackendUnavailableError, ValueError) as exc:
        pytest.skip(f"backend {name!r} cannot run here: {exc}")
    with xn.use_backend(name) as backend:
        yield backend


@pytest.fixture
def sizes(bench_full, xbackend):
    """Problem sizes: the plan's when timing, small in smoke mode and on array-api-strict."""
    if xbackend.name == "array_api_strict":
        return STRICT
    return FULL if bench_full else QUICK


@pytest.fixture
def sync(xbackend):
    """Waits for the device (CuPy stream, CUDA); a no-op on the CPU. Called inside every
    timed function."""
    return make_sync(xbackend)


@pytest.fixture
def hand_xp(xbackend):
    """The array module of the hand-written baseline: CuPy on the CuPy backend, else NumPy."""
    if xbackend.name == "cupy":
        import cupy

        return cupy
    return np


@pytest.fixture
def torch_device(xbackend):
    """Where the torch.nn baseline runs: CUDA when xpnet runs on a GPU, else the CPU."""
    if xbackend.name == "cupy" or str(xbackend.device).startswith("cuda"):
        return "cuda"
    return "cpu"



@pytest.fixture(scope="session")
def mnist_book():
    return load_mnist_book()


@pytest.fixture(scope="session")
def fashion_train():
    return load_fashion_train()
