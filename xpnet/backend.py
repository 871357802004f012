"""The one module that touches concrete array libraries.

Every layer, loss and optimizer in xpnet is written against the Python array API
standard through the namespace this module hands out. Only here are NumPy (as a
backend), CuPy, PyTorch and array-api-strict imported.

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
from dataclasses import dataclass
from typing import Any, Iterator

import array_api_compat
import numpy as np

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "BackendUnavailableError",
    "BackendMismatchError",
    "Backend",
    "get_backend",
    "set_backend",
    "use_backend",
    "get_namespace",
    "current",
    "to_numpy",
    "asarray",
    "host_rng",
    "backend_of",
    "load",
    "host_asarray",
    "host_full",
    "host_cast",
    "DeviceRNG",
    "is_array",
    "library_of",
    "get_floatx",
    "set_floatx",
]

BACKENDS = ("numpy", "array_api_strict", "torch", "cupy")
ENV_VAR = "XPNET_BACKEND"
FLOATX_VAR = "XPNET_FLOATX"
_FLOAT_NAMES = ("float32", "float64")


class BackendUnavailableError(RuntimeError):
    """A backend was named that cannot run on this machine (the message says why)."""


class BackendMismatchError(TypeError):
    """Arrays from another array library, or another device, than the active backend."""


@dataclass(frozen=True)
class Backend:
    """A loaded backend: its name, its array-API namespace and its default device."""

    name: str
    xp: Any
    device: Any
    array_type: type

    @property
    def on_host(self) -> bool:
        """True where arrays live in host memory (NumPy, array-api-strict, torch on the
        CPU): reading a value from them costs no device synchronisation."""
        return self.name in ("numpy", "array_api_strict") or str(self.device) == "cpu"

    def float_dtype(self, name: str | None = None):
        """The namespace's float dtype called ``name`` (default: :func:`get_floatx`)."""
        return getattr(self.xp, name or get_floatx())


def _load_numpy() -> Backend:
    import array_api_compat.numpy as xp

    return Backend("numpy", xp, "cpu", np.ndarray)


def _load_array_api_strict() -> Backend:
    try:
        import array_api_strict as xp
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise BackendUnavailableError(
            "the 'array_api_strict' backend needs the array-api-strict package: "
            "pip install array-api-strict"
        ) from exc
    probe = xp.asarray(0.0)
    return Backend("array_api_strict", xp, probe.device, type(probe))


def _load_torch() -> Backend:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise BackendUnavailableError(
            "the 'torch' backend needs PyTorch: pip install 'xpnet[torch]'"
        ) from exc
    import array_api_compat.torch as xp

    wanted = os.environ.get("XPNET_DEVICE")
    if wanted is None:
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(wanted)
        torch.zeros(1, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise BackendUnavailableError(
            f"the 'torch' backend cannot use device {wanted!r}: {exc}. "
            "Unset XPNET_DEVICE or set it to 'cpu'."
        ) from exc
    return Backend("torch", xp, device, torch.Tensor)


def _torch_sigmoid(x, overwrite_x=False):
    import torch

    return torch.sigmoid_(x) if overwrite_x else torch.sigmoid(x)


_NATIVE_SIGMOID: dict = {}


def native_sigmoid(xp):
    """The array library's own one-kernel sigmoid for namespace ``xp``, else None.

    The array API standard has no sigmoid, so :func:`xpnet.functions.sigmoid` is four
    elementwise passes. PyTorch has a fused ``torch.sigmoid``; on its CPU build the four
    passes are ~10x slower (torch's CPU ``tanh`` is slow: 110 us against 13 us for
    ``torch.sigmoid`` on 1000x100 float32, measured), which made xpnet's predict on the
    torch backend ~20% slower. Returns ``f(x, overwrite_x=False)``; looked up once per
    namespace.
    """
    try:
        return _NATIVE_SIGMOID[xp]
    except (KeyError, TypeError):
        pass
    fn = _torch_sigmoid if getattr(xp, "__name__", "") == "array_api_compat.torch" else None
    try:
        _NATIVE_SIGMOID[xp] = fn
    except TypeError:  # pragma: no cover - an unhashable namespace object
        pass
    return fn


def _load_cupy() -> Backend:
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailableError(
            "the 'cupy' backend needs CuPy, which is not installed. Install the build that "
            "matches your CUDA driver: pip install 'xpnet[cuda12]' (or 'xpnet[cuda13]'), "
            "or choose another backend: XPNET_BACKEND=numpy."
        ) from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count < 1:
            raise RuntimeError("no CUDA device found")
        cupy.zeros(1)  # a real allocation: fails early with the driver's own words
    except Exception as exc:  # CUDARuntimeError, CUDADriverError, RuntimeError ...
        raise BackendUnavailableError(
            f"CuPy is installed but cannot use a CUDA device ({type(exc).__name__}: {exc}). "
            "Check that this machine has an NVIDIA GPU and driver (`nvidia-smi`) and that the "
            "CuPy build matches the driver's CUDA version (cupy-cuda12x for CUDA 12, "
            "cupy-cuda13x for CUDA 13); or choose another backend: XPNET_BACKEND=numpy."
        ) from exc
    import array_api_compat.cupy as xp

    return Backend("cupy", xp, cupy.cuda.Device(), cupy.ndarray)


_LOADERS = {
    "numpy": _load_numpy,
    "array_api_strict": _load_array_api_strict,
    "torch": _load_torch,
    "cupy": _load_cupy,
}
_ALIASES = {"np": "numpy", "strict": "array_api_strict", "pytorch": "torch", "cuda": "cupy"}
_cache: dict[str, Backend] = {}


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
        backend = _cache[key] = _LOADERS[key]()
    return backend


def get_backend() -> str:
    """The name of the active backend ("numpy", "array_api_strict", "torch" or "cupy").

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
    """Set the default float type for new parameters ("float32" or "float64")."""
    _state["floatx"] = _check_floatx(name)


def library_of(x) -> str | None:
    """The name of the array library ``x`` belongs to ("numpy", "torch", "cupy",
    "array_api_strict", "jax", "dask"), or None when ``x`` is not an array."""
    if array_api_compat.is_numpy_array(x):
        return "numpy"
    if array_api_compat.is_torch_array(x):
        return "torch"
    if array_api_compat.is_cupy_array(x):
        return "cupy"
    if type(x).__module__.startswith("array_api_strict"):
        return "array_api_strict"
    if array_api_compat.is_jax_array(x):
        return "jax"
    if array_api_compat.is_dask_array(x):
        return "dask"
    return None


def is_array(x) -> bool:
    """True for an array of any library xpnet knows (NumPy, CuPy, torch, array-api-strict...)."""
    return library_of(x) is not None


def to_numpy(x) -> np.ndarray:
    """Any backend's array (or a Python number or list) as a ``numpy.ndarray`` on the host."""
    if type(x) is np.ndarray:  # the common case first: no library lookup
        return x
    lib = library_of(x)
    if lib == "numpy":
        return np.asarray(x)
    if lib == "torch":
        return x.detach().cpu().numpy()
    if lib == "cupy":
        return x.get()
    if lib == "array_api_strict":
        return np.from_dlpack(x)
    return np.asarray(x)


def host_asarray(x) -> np.ndarray:
    """User data (NumPy, lists, pandas-like objects) as a numeric NumPy array on the host.

    Raises ``TypeError`` for what cannot be numeric data (strings, objects, None).
    """
    if hasattr(x, "to_numpy") and not is_array(x):  # pandas DataFrame/Series, polars...
        x = _frame_to_numpy(x)
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(
            f"expected numeric array data (a NumPy array, an array of the active backend, "
            f"a list of numbers or a pandas-like object), got {type(x).__name__}"
        )
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"cannot read this {type(x).__name__} as a numeric array: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"expected numeric data (bool, int or float), got an array of dtype {arr.dtype} "
            "(strings and objects are not accepted: convert them to numbers first)"
        )
    return arr


def _frame_to_numpy(frame) -> np.ndarray:
    """A pandas-like object as NumPy. pandas' nullable columns (``Float32``, ``Int64``...)
    become their NumPy dtype (pandas gives ``object`` for a frame of them, or NaN for a
    missing integer); a missing value (``pd.NA``) is a ValueError, not a silent NaN."""
    dtypes = getattr(frame, "dtypes", getattr(frame, "dtype", None))
    dtypes = dtypes.tolist() if hasattr(dtypes, "tolist") else (
        list(dtypes) if isinstance(dtypes, (list, tuple)) else [dtypes])
    nullable = [d for d in dtypes if hasattr(d, "numpy_dtype") and hasattr(d, "na_value")]
    if not nullable or not hasattr(frame, "isna"):
        return frame.to_numpy()
    missing = np.asarray(frame.isna())
    if missing.any():
        rows = missing.reshape(missing.shape[0], -1).any(axis=1)
        raise ValueError(
            f"holds {int(missing.sum())} missing value(s) (pd.NA, first in row "
            f"{int(np.argmax(rows))}) in nullable columns ({nullable[0]}); fill or drop them "
            "first, e.g. df.fillna(0) or df.dropna()"
        )
    try:
        dtype = np.result_type(*(getattr(d, "numpy_dtype", d) for d in dtypes))
    except TypeError:
        return frame.to_numpy()
    return frame.to_numpy(dtype=dtype)


def asarray(x, dtype: str | None = None, backend: Backend | None = None):
    """``x`` as an array of ``backend`` (default: the active one), on its device.

    NumPy arrays and Python data are moved; an array of the backend is used as it is
    (cast when ``dtype`` differs); an array of another library, or on another device,
    raises :class:`BackendMismatchError` instead of being silently copied.
    ``dtype`` is a name such as "float32" or "int64"; ``None`` keeps the input's type.
    """
    b = backend or current()
    xp = b.xp
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


def host_cast(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` cast to ``dtype`` on the host (IEEE round-to-nearest, the same everywhere)."""
    return np.asarray(values).astype(dtype)


def host_full(shape, value, dtype="float32") -> np.ndarray:
    """A host NumPy array of ``shape`` filled with ``value``."""
    return np.full(shape, value, dtype=dtype)


def ignore_invalid(backend: Backend):
    """A context in which NumPy does not warn about invalid operations (``inf - inf``,
    ``inf * 0``) in ``backend``'s computations; a no-op for libraries that never warn.

    ``predict`` runs its first layer in it: an infinity in the input makes the product
    invalid, and the ValueError that follows says so better than a RuntimeWarning.
    Overflow warnings stay on. ``np.errstate`` is thread- and context-local.
    """
    if backend.name in ("numpy", "array_api_strict"):  # array-api-strict computes with NumPy
        return np.errstate(invalid="ignore")
    return contextlib.nullcontext()


def host_rng(seed=None) -> np.random.Generator:
    """A seeded ``numpy.random.Generator``: xpnet draws random numbers on the host.

    Drawing on the host and moving the result makes the same seed give bit-identical
    initial weights on every backend.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


class DeviceRNG:
    """Uniform random numbers made where the arrays live, for masks drawn every step.

    On torch and CuPy the numbers come from a generator on the device (no host-to-device
    copy per batch); on NumPy and array-api-strict from a host ``numpy.random.Generator``.
    ``reset()`` restarts the stream from the seed (gradient checks use it to draw the
    same dropout mask twice).
    """

    def __init__(self, seed: int, backend: Backend):
        self.seed = int(seed)
        self.backend = backend
        self.reset()

    def reset(self) -> None:
        b = self.backend
        if b.name == "torch":
            import torch

            gen_device = b.device if b.device.type != "meta" else "cpu"
            self._gen = torch.Generator(device=gen_device).manual_seed(self.seed)
        elif b.name == "cupy":
            import cupy

            self._gen = cupy.random.default_rng(self.seed)
        else:
            self._gen = np.random.default_rng(self.seed)

    def uniform(self, shape, dtype):
        """``shape`` numbers in [0, 1) of the backend's ``dtype``, on its device."""
        b = self.backend
        if b.name == "torch":
            import torch

            return torch.rand(tuple(shape), generator=self._gen, dtype=dtype,
                              device=b.device)
        if b.name == "cupy":
            return self._gen.random(tuple(shape), dtype=dtype)
        values = self._gen.random(tuple(shape), dtype=np.float64)
        if b.name == "numpy":
            return values.astype(dtype)
        return b.xp.astype(b.xp.asarray(values, device=b.device), dtype)


def backend_of(x) -> Backend:
    """The :class:`Backend` that ``x`` belongs to, on ``x``'s own device."""
    lib = library_of(x)
    if lib not in _LOADERS:
        raise TypeError(f"not an array of a backend xpnet supports: {type(x).__name__}")
    b = load(lib)
    device = getattr(x, "device", b.device)
    return b if device == b.device else Backend(b.name, b.xp, device, b.array_type)
