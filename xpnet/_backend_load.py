"""How each array library is loaded: one loader per backend, run the first time the
backend is used. A loader checks that the library can run here (else
:class:`BackendUnavailableError` says why) and returns the backend's fields: its
namespace, device and array type, and the library's own kernels where it has them
(``sigmoid``: one kernel instead of the standard's formula; ``rng``: a generator on the
device)."""
from __future__ import annotations

import os
import threading

import numpy as np

__all__ = ["BackendUnavailableError", "LOADERS"]


class BackendUnavailableError(RuntimeError):
    """A backend was named that cannot run on this machine (the message says why)."""


def _load_numpy() -> dict:
    import array_api_compat.numpy as xp

    try:  # SciPy is not a dependency; without it functions.erf computes erf itself
        from scipy.special import erf
    except ImportError:
        erf = None
    return dict(xp=xp, device="cpu", array_type=np.ndarray, erf=erf)


def _load_array_api_strict() -> dict:
    try:
        import array_api_strict as xp
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise BackendUnavailableError(
            "the 'array_api_strict' backend needs the array-api-strict package: "
            "pip install array-api-strict"
        ) from exc
    probe = xp.asarray(0.0)
    return dict(xp=xp, device=probe.device, array_type=type(probe))


def _load_torch() -> dict:
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
    return dict(xp=xp, device=device, array_type=torch.Tensor, sigmoid=_torch_sigmoid,
                rng=_torch_rng, erf=torch.special.erf,
                pinned=_torch_pinned if device.type == "cuda" else None)


def _torch_pinned(host, backend):
    """A host NumPy array on the CUDA device through page-locked memory (the prefetch
    thread's copy; torch's pinned allocator keeps the buffer until the copy is done)."""
    import torch

    return torch.from_numpy(host).pin_memory().to(backend.device, non_blocking=True)


def _torch_sigmoid(x, overwrite_x=False):
    """torch's one-kernel sigmoid (the standard's formula is four passes, and torch's CPU
    ``tanh`` is slow)."""
    import torch

    return torch.sigmoid_(x) if overwrite_x else torch.sigmoid(x)


def _torch_rng(seed: int, backend):
    """``draw(shape, dtype)`` from a torch generator on the backend's device (the CPU's
    for "meta", which has none)."""
    import torch

    device = backend.device
    gen = torch.Generator(device=device if device.type != "meta" else "cpu").manual_seed(seed)
    return lambda shape, dtype: torch.rand(shape, generator=gen, dtype=dtype, device=device)


def _load_cupy() -> dict:
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

    try:
        from cupyx.scipy.special import erf
    except ImportError:  # functions.erf then computes it
        erf = None
    return dict(xp=xp, device=cupy.cuda.Device(), array_type=cupy.ndarray, rng=_cupy_rng,
                erf=erf, pinned=_cupy_pinned)


def _cupy_pinned(host, backend):
    """A host NumPy array on the device through a page-locked buffer (CuPy's pinned pool),
    copied on a stream of the calling (prefetch) thread and waited for there: the array
    is complete when handed over, and the buffer goes back to the pool only after the copy."""
    import cupy

    mem = cupy.cuda.alloc_pinned_memory(host.nbytes)
    staged = np.frombuffer(mem, host.dtype, host.size).reshape(host.shape)
    staged[...] = host
    stream = _cupy_copy_stream(cupy)
    out = cupy.empty(host.shape, host.dtype)
    out.set(staged, stream=stream)
    stream.synchronize()
    return out


_COPY_STREAMS = threading.local()


def _cupy_copy_stream(cupy):
    """One non-blocking CuPy stream per thread for the prefetch copies."""
    stream = getattr(_COPY_STREAMS, "stream", None)
    if stream is None:
        stream = _COPY_STREAMS.stream = cupy.cuda.Stream(non_blocking=True)
    return stream


def _cupy_rng(seed: int, backend):
    """``draw(shape, dtype)`` from CuPy's generator on the current device."""
    import cupy

    gen = cupy.random.default_rng(seed)
    return lambda shape, dtype: gen.random(shape, dtype=dtype)


def _load_jax() -> dict:
    try:
        import jax
    except ImportError as exc:
        raise BackendUnavailableError(
            "the 'jax' backend needs JAX: pip install 'xpnet[jax]'"
        ) from exc
    import jax.numpy as xp  # follows the array API standard itself (jax >= 0.4.32)

    wanted = os.environ.get("XPNET_DEVICE")
    try:
        device = jax.devices(wanted)[0] if wanted else jax.devices()[0]
    except RuntimeError as exc:
        raise BackendUnavailableError(
            f"the 'jax' backend cannot use device {wanted!r}: {exc}. "
            "Unset XPNET_DEVICE or set it to 'cpu'."
        ) from exc
    # ArrayImpl, the concrete type (jax.Array also matches tracers, which are no data)
    return dict(xp=xp, device=device, array_type=type(xp.zeros(0, device=device)),
                rng=_jax_rng, enable_dtype=_jax_enable_dtype, erf=jax.lax.erf)


def _jax_rng(seed: int, backend):
    """``draw(shape, dtype)`` from a ``jax.random`` key split at each draw (eager use; a
    compiled step carries its key as a value instead, :mod:`xpnet.compiled`)."""
    import jax

    state = {"key": jax.random.key(seed)}

    def draw(shape, dtype):
        _jax_enable_dtype(str(np.dtype(dtype)))
        state["key"], sub = jax.random.split(state["key"])
        return jax.random.uniform(sub, shape, dtype=dtype)
    return draw


def _jax_enable_dtype(name: str) -> str:
    """The dtype name JAX will make for ``name``: JAX makes 64-bit arrays only with
    ``jax_enable_x64``, switched on here for float64; int64 (class labels) is int32
    while it is off, without JAX's truncation warning."""
    import jax

    if jax.config.read("jax_enable_x64") or name not in ("float64", "int64"):
        return name
    if name == "int64":
        return "int32"
    try:
        jax.config.update("jax_enable_x64", True)
    except Exception as exc:  # pragma: no cover - depends on the JAX version
        raise BackendUnavailableError(
            f"float64 on the 'jax' backend needs jax_enable_x64, which JAX refused to switch "
            f"on now ({exc}); set JAX_ENABLE_X64=1 in the environment before Python starts"
        ) from exc
    return name


LOADERS = {
    "numpy": _load_numpy,
    "array_api_strict": _load_array_api_strict,
    "torch": _load_torch,
    "cupy": _load_cupy,
    "jax": _load_jax,
}
