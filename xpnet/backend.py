"""The backend: which array library runs xpnet, and moving data to it.

Every layer, loss and optimizer in xpnet is written against the Python array API
standard through the namespace this module hands out. Only here and in the modules
below it are NumPy (as a backend), CuPy, PyTorch and array-api-strict imported:
``_backend_load`` (one loader per library), ``_backend_arrays`` (which library an array
belongs to, host-side data) and ``_backend_random``. This module re-exports their names.

The backend is read from the environment variable ``XPNET_BACKEND`` when xpnet is
imported ("numpy" when unset) and can be changed in code::

    import xpnet as xn
    xn.set_backend("torch")
    with xn.use_backend("array_api_strict"):
        ...
    xp = xn.get_namespace()

A backend is *loaded* the first time it is used, so a machine without a GPU can
still ``import xpnet`` with ``XPNET_BACKEND=cupy`` and read the error that says why
CuPy cannot run; an unknown name in ``XPNET_BACKEND`` (or ``XPNET_FLOATX``) is likewise
reported (a ``ValueError`` naming the variable and listing the valid names) at first use,
including by :func:`get_backend`, not at import.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

import array_api_compat
import numpy as np

from ._backend_arrays import (HOST_ARRAY, host_asarray, host_cast, host_dtype, host_full,
                              is_array, library_of, quiet_invalid, to_numpy)
from ._backend_load import LOADERS as _LOADERS
from ._backend_load import BackendUnavailableError
from ._backend_jit import COMPILERS as _COMPILERS
from ._backend_random import DeviceRNG, host_rng

__all__ = [
    "BACKENDS", "ENV_VAR", "FLOATX_VAR", "BackendUnavailableError", "BackendMismatchError",
    "Backend", "load", "get_backend", "set_backend", "use_backend", "current", "get_namespace",
    "get_floatx", "set_floatx", "native_sigmoid", "native_erf", "asarray", "backend_of", "name_of",
    # from the modules below: arrays, host data, random numbers
    "library_of", "is_array", "to_numpy", "host_asarray", "host_cast", "host_full",
    "host_dtype", "HOST_ARRAY", "quiet_invalid",
    "host_rng", "DeviceRNG",
]

BACKENDS = ("numpy", "array_api_strict", "torch", "cupy", "jax")
ENV_VAR = "XPNET_BACKEND"
FLOATX_VAR = "XPNET_FLOATX"
_FLOAT_NAMES = ("float32", "float64")


class BackendMismatchError(TypeError):
    """Arrays from another array library, or another device, than the active backend."""


@dataclass(frozen=True)
class Backend:
    """A loaded backend: its name, its array-API namespace, its default device and array
    type, and the library's own kernels where it has them (filled by its loader)."""

    name: str
    xp: Any
    device: Any
    array_type: type
    sigmoid: Callable | None = None  # sigmoid(x, overwrite_x) in one kernel
    erf: Callable | None = None  # the library's own erf(x), where it has one
    rng: Callable | None = None      # rng(seed, backend) -> draw(shape, dtype) on the device
    enable_dtype: Callable | None = None  # enable_dtype(name) -> the name made (JAX's x64)
    compiler: Any = None  # compiles whole steps for jit_compile (xpnet.compiled), or None
    pinned: Callable | None = None  # pinned(host_array, backend): moved via page-locked memory

    @property
    def on_host(self) -> bool:
        """True where arrays live in host memory (NumPy, array-api-strict, torch on the
        CPU): reading a value from them costs no device synchronisation."""
        return (self.name in ("numpy", "array_api_strict") or str(self.device) == "cpu"
                or getattr(self.device, "platform", None) == "cpu")

    def dtype_name(self, name: str) -> str:
        """The dtype the backend makes for ``name``: "int32" for "int64" on JAX without
        64-bit arrays (switched on for "float64", :func:`set_floatx`); else ``name``."""
        return self.enable_dtype(name) if self.enable_dtype is not None else name

    def float_dtype(self, name: str | None = None):
        """The namespace's float dtype called ``name`` (default: :func:`get_floatx`);
        JAX switches 64-bit arrays on here when float64 is asked for."""
        return getattr(self.xp, self.dtype_name(name or get_floatx()))


# -- the registry and the active backend --------------------------------------------------

_ALIASES = {"np": "numpy", "strict": "array_api_strict", "pytorch": "torch", "cuda": "cupy"}
_cache: dict[str, Backend] = {}
_sigmoids: dict[Any, Callable | None] = {}  # namespace -> its backend's sigmoid field
_erfs: dict[Any, Callable | None] = {}  # namespace -> its backend's erf field


def _check_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a backend name is a string, got {type(name).__name__}")
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in _LOADERS:
        raise ValueError(
            f"unknown backend {name!r}; valid backends are: {', '.join(BACKENDS)}"
        )
    return key


def _check_floatx(name: str) -> str:
    if name not in _FLOAT_NAMES:
        raise ValueError(f"unknown float type {name!r}; valid ones are: {', '.join(_FLOAT_NAMES)}")
    return name


def _env_error(exc: ValueError, var: str) -> ValueError:
    return ValueError(f"{exc} (from the environment variable {var}={os.environ.get(var)!r}; "
                      f"set it to a valid name or unset it)")


def _name_from_env() -> str:
    """The backend named by XPNET_BACKEND, or "numpy". An unknown name is kept as it is and
    reported when the backend is first used, so ``import xpnet`` itself never fails and a
    command-line ``--backend`` can still override it."""
    raw = os.environ.get(ENV_VAR) or "numpy"
    try:
        return _check_name(raw)
    except ValueError:
        return raw


_state: dict[str, Any] = {
    "name": _name_from_env(),
    "floatx": os.environ.get(FLOATX_VAR) or "float32",  # checked by get_floatx, at first use
}


def load(name: str) -> Backend:
    """Load (once) and return the backend ``name``; raise if it cannot run here."""
    try:
        key = _check_name(name)
    except ValueError as exc:
        if name == _state["name"] and os.environ.get(ENV_VAR) == name:
            raise _env_error(exc, ENV_VAR) from None
        raise
    backend = _cache.get(key)
    if backend is None:
        fields = _LOADERS[key]()
        if key in _COMPILERS:  # the backend compiles whole steps (jit_compile)
            fields["compiler"] = _COMPILERS[key]()
        backend = _cache[key] = Backend(key, **fields)
        _sigmoids[backend.xp] = backend.sigmoid
        _erfs[backend.xp] = backend.erf
        if backend.enable_dtype is not None and _state["floatx"] == "float64":
            backend.enable_dtype("float64")
    return backend


def get_backend() -> str:
    """The name of the active backend ("numpy", "array_api_strict", "torch", "cupy" or "jax").

    An unknown name from ``XPNET_BACKEND`` is a ValueError here too (never returned).
    """
    name = _state["name"]
    if name not in _LOADERS:
        load(name)  # raises the ValueError that names the variable
    return name


def set_backend(name: str) -> None:
    """Make ``name`` the active backend; raise :class:`BackendUnavailableError` if it cannot run."""
    backend = load(name)
    _state["name"] = backend.name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[Backend]:
    """Context manager: use backend ``name`` inside the ``with`` block, then restore."""
    previous = _state["name"]
    backend = load(name)
    _state["name"] = backend.name
    try:
        yield backend
    finally:
        _state["name"] = previous


def current() -> Backend:
    """The active :class:`Backend` (loaded on first use)."""
    return load(_state["name"])


def get_namespace():
    """The active array namespace (array-api-compat wrapped where needed)."""
    return current().xp


def get_floatx() -> str:
    """The default float type for new parameters: "float32" (default) or "float64".

    An unknown name from ``XPNET_FLOATX`` is a ValueError at this first use (not at import).
    """
    name = _state["floatx"]
    if name not in _FLOAT_NAMES:
        try:
            _check_floatx(name)
        except ValueError as exc:
            raise _env_error(exc, FLOATX_VAR) from None
    return name


def set_floatx(name: str) -> None:
    """Set the default float type for new parameters ("float32" or "float64").

    On JAX, float64 switches ``jax_enable_x64`` on (it stays on: arrays already made in
    float32 keep their type)."""
    _state["floatx"] = _check_floatx(name)
    for backend in _cache.values():
        if backend.enable_dtype is not None:
            backend.enable_dtype(name)


def native_erf(xp):
    """The library's own ``erf(x)`` for namespace ``xp`` (its backend's ``erf`` field:
    torch, JAX, CuPy, and SciPy's for NumPy where SciPy is installed), else None: the
    standard has no erf (:func:`xpnet.functions.erf` then computes it)."""
    return _erfs.get(xp)


def native_sigmoid(xp):
    """The library's own one-kernel ``sigmoid(x, overwrite_x)`` for namespace ``xp`` (its
    backend's ``sigmoid`` field), else None: the standard has no sigmoid."""
    return _sigmoids.get(xp)


# -- moving data to a backend -------------------------------------------------------------

def asarray(x, dtype: str | None = None, backend: Backend | None = None):
    """``x`` as an array of ``backend`` (default: the active one), on its device.

    NumPy arrays and Python data are moved; an array of the backend is used as it is
    (cast when ``dtype`` differs); an array of another library, or on another device,
    raises :class:`BackendMismatchError` instead of being silently copied.
    ``dtype`` is a name such as "float32" or "int64"; ``None`` keeps the input's type.
    """
    b = backend or current()
    xp = b.xp
    if b.enable_dtype is not None and not isinstance(x, b.array_type):
        dtype = b.enable_dtype(dtype or str(getattr(x, "dtype", ""))) or None
    if isinstance(x, b.array_type):
        if b.name == "numpy":
            x = host_asarray(x)  # the same array; rejects string/object arrays as elsewhere
        if b.name != "numpy" and array_api_compat.device(x) != b.device:
            _raise_device(x, b)
        if b.name == "torch" and x.requires_grad:
            x = x.detach()  # data, not a graph: else each step would extend the user's graph
        if dtype is not None and x.dtype != getattr(xp, dtype):
            x = xp.astype(x, getattr(xp, dtype))
        return x
    lib = library_of(x)
    if lib is not None and lib != "numpy":
        raise BackendMismatchError(
            f"got a {lib} array, but the active backend is {b.name!r}: convert it with "
            f"xn.to_numpy(x), or switch with xn.set_backend({lib!r})"
        )
    arr = host_asarray(x)
    if dtype is not None and arr.dtype != np.dtype(dtype):
        arr = arr.astype(dtype)
    if b.name == "numpy":
        return arr
    if b.name == "torch" and not arr.flags.writeable:
        arr = arr.copy()  # torch warns on read-only buffers
    return xp.asarray(arr, device=b.device)


def _raise_device(x, b: Backend):
    where = array_api_compat.device(x)
    if b.name == "torch":
        fix = f"move it with tensor.to({str(b.device)!r})"
    else:
        fix = f"move it with xp.asarray(x, device={b.device!r}) or xn.to_numpy(x)"
    raise BackendMismatchError(
        f"got a {b.name} array on device {where}, but the {b.name} backend runs on "
        f"{b.device}; {fix}"
    )


def backend_of(x) -> Backend:
    """The :class:`Backend` that ``x`` belongs to, on ``x``'s own device."""
    lib = library_of(x)
    if lib not in _LOADERS:
        raise TypeError(f"not an array of a backend xpnet supports: {type(x).__name__}")
    b = load(lib)
    device = array_api_compat.device(x)
    if device is None:  # a JAX tracer: on the backend's device
        return b
    return b if device == b.device else replace(b, device=device)


def name_of(xp) -> str | None:
    """The name of the loaded backend whose namespace is ``xp``, or None."""
    return next((name for name, b in _cache.items() if b.xp is xp), None)
