"""Weight initializers, drawn on the host and moved to the backend.

Every initializer draws from a ``numpy.random.Generator`` (see
:func:`xpnet.backend.host_rng`) in float64 and casts on the host, so the same seed
gives bit-identical initial weights on every backend.

- a float ``s``: ``normal(0, s)`` (the book's ``weight_init_std=0.01``)
- ``"he"`` / ``"relu"``: ``normal(0, sqrt(2 / fan_in))`` -- He et al. 2015,
  https://arxiv.org/abs/1502.01852
- ``"xavier"`` / ``"sigmoid"``: ``normal(0, sqrt(1 / fan_in))`` (the book's "Xavier") --
  Glorot & Bengio 2010, https://proceedings.mlr.press/v9/glorot10a.html
- ``"glorot_uniform"``: ``uniform(-l, l)``, ``l = sqrt(6 / (fan_in + fan_out))`` (Keras'
  default for Dense)
- Keras 3's variance-scaling family, ``n`` being fan_in (``he_*``, ``lecun_*``) or
  ``(fan_in + fan_out) / 2`` (``glorot_*``), ``scale`` 2 (``he_*``) or 1:
  ``"he_uniform"``, ``"lecun_uniform"``, ``"glorot_uniform"``: ``uniform(-l, l)``,
  ``l = sqrt(3 * scale / n)``; ``"he_normal"``, ``"lecun_normal"``, ``"glorot_normal"``: a
  normal truncated at two standard deviations whose standard deviation *after*
  truncation is ``sqrt(scale / n)``, as Keras' ``VarianceScaling`` documents
- ``"zeros"``, ``"ones"``
- a callable ``f(shape, dtype)`` returning an array of that shape (Keras' initializer
  signature), taken as host data
"""
from __future__ import annotations

import math

from . import _validate as V
from .backend import host_cast, host_full, host_rng, to_numpy

__all__ = ["initialize", "INITIALIZERS"]

INITIALIZERS = ("he", "relu", "xavier", "sigmoid", "glorot_uniform", "glorot_normal",
                "he_uniform", "he_normal", "lecun_uniform", "lecun_normal", "zeros", "ones")
_SCALING = {"he": (2.0, "fan_in"), "lecun": (1.0, "fan_in"), "glorot": (1.0, "fan_avg")}
_TRUNCATED_STD = 0.87962566103423978  # std of a standard normal truncated to [-2, 2]


def _fans(shape):
    fan_in = shape[0] if len(shape) >= 1 else 1
    fan_out = shape[-1] if len(shape) >= 2 else shape[0]
    return fan_in, fan_out


def initialize(spec, shape, rng, dtype="float32"):
    """A host array of ``shape`` drawn as ``spec`` says (see the module docstring).

    ``rng`` is a ``numpy.random.Generator`` or a seed for one (an int in [0, 2**64)).
    """
    rng = host_rng(V.check_seed(rng, "initialize(rng)", generator=True))
    shape = tuple(int(d) for d in shape)
    fan_in, fan_out = _fans(shape)
    if isinstance(spec, bool) or spec is None:
        raise TypeError(f"an initializer is a float std or a name, got {spec!r}")
    if callable(spec) and not isinstance(spec, type):
        return _from_callable(spec, shape, dtype)
    if isinstance(spec, (int, float)):
        values = rng.standard_normal(shape) * float(spec)
    elif isinstance(spec, str):
        key = spec.lower()
        if key in ("he", "relu"):
            values = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
        elif key in ("xavier", "sigmoid"):
            values = rng.standard_normal(shape) * math.sqrt(1.0 / fan_in)
        elif key.rpartition("_")[0] in _SCALING and key.rpartition("_")[2] in ("uniform", "normal"):
            values = _variance_scaling(key, shape, fan_in, fan_out, rng)
        elif key in ("zeros", "ones"):
            return host_full(shape, 0.0 if key == "zeros" else 1.0, dtype)
        else:
            raise ValueError(
                f"unknown initializer {spec!r}; use a float std or one of: {', '.join(INITIALIZERS)}"
            )
    else:
        raise TypeError(f"an initializer is a float std or a name, got {type(spec).__name__}")
    return host_cast(values, dtype)


def _variance_scaling(key, shape, fan_in, fan_out, rng):
    family, _, distribution = key.rpartition("_")
    scale, mode = _SCALING[family]
    n = fan_in if mode == "fan_in" else (fan_in + fan_out) / 2.0
    if distribution == "uniform":
        limit = math.sqrt(3.0 * scale / n)
        return rng.uniform(-limit, limit, size=shape)
    z = rng.standard_normal(shape)
    outside = abs(z) > 2.0
    while outside.any():  # redraw beyond two standard deviations: a truncated normal
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = abs(z) > 2.0
    return z * (math.sqrt(scale / n) / _TRUNCATED_STD)


def _from_callable(fn, shape, dtype):
    values = host_cast(to_numpy(fn(shape, dtype)), dtype)
    if tuple(values.shape) != shape:
        raise ValueError(f"initializer {getattr(fn, '__name__', fn)!r} returned shape "
                         f"{tuple(values.shape)} for a parameter of shape {shape}")
    return values
