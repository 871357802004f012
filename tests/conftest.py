"""One fixture, ``backend``, parametrised over every backend xpnet supports.

A backend that cannot run here (no torch installed, no CUDA device for CuPy) is skipped
with the reason the backend module gives.
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")  # tests never open windows
# scikit-learn's array API dispatch (tests/test_sklearn.py) needs SciPy's, which SciPy reads
# once, when it is first imported: set here, before any test module imports it
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import pytest

import xpnet as xn
from xpnet import backend as B

ALL_BACKENDS = ["numpy", "array_api_strict", "torch", "cupy", "jax"]
SHARED = Path(os.environ.get("XPNET_SHARED", Path(__file__).resolve().parents[2] / "shared"))


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The tests' matrices are tiny: one torch thread is faster than two, and steady on a
    busy machine (two threads fighting over two cores made a 1024x4 product take 30 ms)."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="session")
def _default_float32():
    """The suite runs with xpnet's default float32 even when XPNET_FLOATX is set in the
    environment: several expectations (dtypes, where a too-large learning rate diverges)
    are float32's, and float64 is asked for explicitly where a test needs it."""
    before = xn.get_floatx()
    xn.set_floatx("float32")
    yield
    xn.set_floatx(before)


def _params():
    params = []
    for name in ALL_BACKENDS:
        marks = [pytest.mark.gpu] if name == "cupy" else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.fixture(params=_params())
def backend(request):
    """The active :class:`xpnet.backend.Backend`, switched for the test and restored."""
    try:
        B.load(request.param)
    except xn.BackendUnavailableError as exc:
        pytest.skip(f"backend {request.param!r} cannot run here: {exc}")
    with xn.use_backend(request.param) as b:
        yield b


@pytest.fixture
def xp(backend):
    """The active array namespace."""
    return backend.xp


@pytest.fixture
def to_xp(backend):
    """Move host data (NumPy arrays, lists) to the active backend, optionally cast."""
    def move(x, dtype=None):
        return B.asarray(x, dtype=dtype, backend=backend)
    return move


@pytest.fixture
def shared_data():
    """The shared data folder (MNIST test set, the book's weights); skip if absent."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set XPNET_SHARED to the shared folder)")
    return path
