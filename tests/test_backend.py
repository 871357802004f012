"""The backend module: choosing, switching and loading backends, and moving data."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import xpnet as xn
from xpnet import backend as B
from _backends import require

ROOT = Path(__file__).resolve().parents[1]
FOREIGN = ["array_api_strict", "torch"]  # libraries whose arrays are never silently moved


def _run_python(code: str, **env_vars) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter from the repo root with only ``env_vars`` set
    among xpnet's variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XPNET_")}
    env.update(env_vars)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def _cupy_runs() -> bool:
    try:
        B.load("cupy")
    except xn.BackendUnavailableError:
        return False
    return True


# -- choosing the backend -----------------------------------------------------------------

def test_default_backend_is_numpy_and_float32():
    res = _run_python("""
        import xpnet as xn
        print(xn.get_backend(), xn.get_floatx(), type(xn.backend.asarray([1.0])).__module__)
    """)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["numpy", "float32", "numpy"]


@pytest.mark.parametrize("name", ["torch", "array_api_strict"])
def test_env_var_is_read_at_import(name):
    require(name)
    res = _run_python("""
        import xpnet as xn
        a = xn.backend.asarray([1.0, 2.0])
        print(xn.get_backend(), type(a).__module__.split(".")[0])
    """, XPNET_BACKEND=name)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [name, name]


def test_unknown_env_var_fails_at_first_use_with_valid_names():
    # import itself succeeds, so a command line can still override the variable ...
    res = _run_python("import xpnet as xn; xn.set_backend('numpy'); print(xn.get_backend())",
                      XPNET_BACKEND="tensorflow")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["numpy"]
    # ... and the first use of the unknown backend says what is wrong and what is valid
    res = _run_python("import xpnet as xn; xn.get_namespace()", XPNET_BACKEND="tensorflow")
    assert res.returncode != 0
    assert "ValueError" in res.stderr and "XPNET_BACKEND" in res.stderr
    for name in xn.BACKENDS:
        assert name in res.stderr


def test_set_backend_switches_and_use_backend_restores():
    require("torch", "array_api_strict")
    before = xn.get_backend()
    try:
        xn.set_backend("torch")
        assert xn.get_backend() == "torch"
        assert B.current().name == "torch"
        with xn.use_backend("array_api_strict") as b:
            assert b.name == "array_api_strict"
            assert xn.get_backend() == "array_api_strict"
            assert xn.get_namespace() is b.xp
        assert xn.get_backend() == "torch"
        with pytest.raises(RuntimeError, match="inside"):
            with xn.use_backend("numpy"):
                assert xn.get_backend() == "numpy"
                raise RuntimeError("inside")
        assert xn.get_backend() == "torch"
    finally:
        xn.set_backend(before)
    assert xn.get_backend() == before


def test_aliases_resolve():
    with xn.use_backend("strict") as b:
        assert b.name == "array_api_strict"
    require("torch")
    with xn.use_backend("PyTorch") as b:
        assert b.name == "torch"


@pytest.mark.parametrize("bad", ["tensorflow", "", "numpyy"])
def test_unknown_backend_lists_valid_ones(bad):
    before = xn.get_backend()
    with pytest.raises(ValueError) as info:
        xn.set_backend(bad)
    for name in xn.BACKENDS:
        assert name in str(info.value)
    assert xn.get_backend() == before
    with pytest.raises(ValueError):
        with xn.use_backend(bad):
            pass  # pragma: no cover
    assert xn.get_backend() == before


def test_backend_name_must_be_a_string():
    with pytest.raises(TypeError, match="string"):
        xn.set_backend(3)


def test_floatx_set_and_validate():
    before = xn.get_floatx()
    try:
        xn.set_floatx("float64")
        assert xn.get_floatx() == "float64"
        assert B.current().float_dtype() == B.current().xp.float64
    finally:
        xn.set_floatx(before)
    with pytest.raises(ValueError, match="float32"):
        xn.set_floatx("float16")
    assert xn.get_floatx() == before


def test_backend_re_exports_its_modules_names():
    from xpnet import _backend_arrays, _backend_load, _backend_random

    for module in (_backend_arrays, _backend_load, _backend_random):
        for name in module.__all__:
            if name != "LOADERS":
                assert name in B.__all__ and getattr(B, name) is getattr(module, name)
    assert all(hasattr(B, name) for name in B.__all__)


def test_loaders_fill_the_native_kernels(backend):
    """torch brings its own sigmoid and a device generator, CuPy and JAX a device
    generator; the others leave both unset (the standard's formula, host random numbers)."""
    assert (backend.sigmoid is not None) == (backend.name == "torch")
    assert (backend.rng is not None) == (backend.name in ("torch", "cupy", "jax"))
    assert B.native_sigmoid(backend.xp) is backend.sigmoid
    assert B.native_sigmoid(object()) is None


# -- cupy on a machine without a GPU ------------------------------------------------------

def test_cupy_env_var_imports_and_fails_clearly_on_use():
    if _cupy_runs():
        pytest.skip("this machine has a working CUDA device; the no-GPU path cannot be seen")
    res = _run_python("""
        import xpnet as xn
        print("imported", xn.get_backend())
        try:
            import cupy
            cupy.cuda.runtime.getDeviceCount()
            cupy.zeros(1)
            raw = "no error from cupy"
        except ImportError:
            raw = "cupy not installed"
        except Exception as exc:
            raw = str(exc)
        print("RAW", raw)
        for call in (lambda: xn.set_backend("cupy"), xn.get_namespace,
                     lambda: xn.backend.asarray([1.0])):
            try:
                call()
            except xn.BackendUnavailableError as exc:
                print("ERR", exc)
            else:
                print("ERR none")
    """, XPNET_BACKEND="cupy")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "imported cupy"
    raw = lines[1].removeprefix("RAW ")
    errors = [line.removeprefix("ERR ") for line in lines[2:]]
    assert len(errors) == 3
    for msg in errors:
        assert msg != "none"
        if raw == "cupy not installed":
            assert "pip install 'xpnet[cuda12]'" in msg
        else:
            assert raw in msg  # the CUDA error's own words
            assert "nvidia-smi" in msg and "XPNET_BACKEND=numpy" in msg


def test_cupy_not_installed_says_how_to_install(monkeypatch):
    monkeypatch.delitem(B._cache, "cupy", raising=False)
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now raises ImportError
    before = xn.get_backend()
    with pytest.raises(xn.BackendUnavailableError) as info:
        xn.set_backend("cupy")
    assert "pip install 'xpnet[cuda12]'" in str(info.value)
    assert "XPNET_BACKEND=numpy" in str(info.value)
    assert isinstance(info.value.__cause__, ImportError)
    assert xn.get_backend() == before


# -- moving data --------------------------------------------------------------------------

def test_to_numpy_from_every_backend(backend, to_xp):
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    a = to_xp(host)
    assert isinstance(a, backend.array_type)
    back = xn.to_numpy(a)
    assert isinstance(back, np.ndarray)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, host)
    np.testing.assert_array_equal(xn.to_numpy([1, 2]), np.array([1, 2]))
    assert xn.to_numpy(2.5) == 2.5


def test_asarray_moves_numpy_and_keeps_own_arrays(backend, xp):
    host = np.array([[1.0, 2.0], [3.0, 4.0]])
    a = B.asarray(host)
    assert isinstance(a, backend.array_type)
    assert a.dtype == xp.float64
    np.testing.assert_array_equal(xn.to_numpy(a), host)
    assert B.asarray(a) is a  # an array of the active backend is used as it is
    assert B.asarray(a, dtype="float64") is a
    a32 = B.asarray(a, dtype="float32")
    assert a32.dtype == xp.float32
    assert B.asarray([1, 2, 3], dtype="float32").dtype == xp.float32
    ro = np.ones(3)
    ro.flags.writeable = False  # read-only host buffers are accepted too
    np.testing.assert_array_equal(xn.to_numpy(B.asarray(ro)), ro)


@pytest.mark.parametrize("active, foreign", [
    (active, foreign) for active in ("numpy", "array_api_strict", "torch")
    for foreign in FOREIGN if active != foreign
])
def test_asarray_refuses_arrays_of_another_library(active, foreign):
    require(active, foreign)
    foreign_array = B.asarray(np.ones(3), backend=B.load(foreign))
    with xn.use_backend(active):
        with pytest.raises(xn.BackendMismatchError) as info:
            B.asarray(foreign_array)
    msg = str(info.value)
    assert foreign in msg and active in msg and "to_numpy" in msg


def test_backend_of_and_is_array(backend, to_xp):
    a = to_xp(np.zeros(2))
    assert B.is_array(a)
    assert B.backend_of(a).name == backend.name
    assert not B.is_array([1.0])
    with pytest.raises(TypeError):
        B.backend_of([1.0])


class _FrameLike:
    """Stands in for a pandas DataFrame: anything with ``to_numpy()``."""

    def __init__(self, data):
        self._data = data

    def to_numpy(self):
        return np.asarray(self._data)


def test_host_asarray_accepts_numeric_data():
    np.testing.assert_array_equal(B.host_asarray([[1, 2], [3, 4]]), np.array([[1, 2], [3, 4]]))
    frame = B.host_asarray(_FrameLike([[1.5, 2.5]]))
    assert isinstance(frame, np.ndarray) and frame.shape == (1, 2)
    assert B.host_asarray([True, False]).dtype == np.bool_
    assert B.host_asarray(3.0).shape == ()


@pytest.mark.parametrize("bad", [
    "123", b"123", None, ["a", "b"], np.array(["1", "2"]),
    np.array([object(), object()], dtype=object), {"a": 1}, [[1, 2], [3]],
])
def test_host_asarray_rejects_non_numeric_data(bad):
    with pytest.raises(TypeError):
        B.host_asarray(bad)
    with pytest.raises(TypeError):
        B.asarray(bad)


def test_host_rng_is_seeded_and_passes_generators_through():
    g = B.host_rng(7)
    assert B.host_rng(g) is g
    np.testing.assert_array_equal(B.host_rng(7).standard_normal(4),
                                  np.random.default_rng(7).standard_normal(4))


def test_device_rng_reset_repeats_the_stream(backend, xp):
    rng = B.DeviceRNG(3, backend)
    first = xn.to_numpy(rng.uniform((50,), xp.float64))
    second = xn.to_numpy(rng.uniform((50,), xp.float64))
    rng.reset()
    again = xn.to_numpy(rng.uniform((50,), xp.float64))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)
    assert first.min() >= 0.0 and first.max() < 1.0
