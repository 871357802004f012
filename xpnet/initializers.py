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
- ``"zeros"``, ``"ones"``
"""
from __future__ import annotations

import math

from . import _validate as V
from .backend import host_cast, host_full, host_rng

__all__ = ["initialize", "INITIALIZERS"]

INITIALIZERS = ("he", "relu", "xavier", "sigmoid", "glorot_uniform", "zeros", "ones")


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
    if isinstance(spec, (int, float)):
        values = rng.standard_normal(shape) * float(spec)
    elif isinstance(spec, str):
        key = spec.lower()
        if key in ("he", "relu"):
            values = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
        elif key in ("xavier", "sigmoid"):
            values = rng.standard_normal(shape) * math.sqrt(1.0 / fan_in)
        elif key == "glorot_uniform":
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            values = rng.uniform(-limit, limit, size=shape)
        elif key in ("zeros", "ones"):
            return host_full(shape, 0.0 if key == "zeros" else 1.0, dtype)
        else:
            raise ValueError(
                f"unknown initializer {spec!r}; use a float std or one of: {', '.join(INITIALIZERS)}"
            )
    else:
        raise TypeError(f"an initializer is a float std or a name, got {type(spec).__name__}")
    return host_cast(values, dtype)
