"""Random numbers: drawn on the host from one seeded generator (weights), or on the
device where the backend has a generator there (dropout masks, drawn every step)."""
from __future__ import annotations

import numpy as np

__all__ = ["host_rng", "DeviceRNG"]


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

    A backend with a device generator (its ``rng`` field: torch, CuPy) draws there, with
    no host-to-device copy per batch; the others draw from a host ``numpy.random.Generator``
    and move the numbers. ``reset()`` restarts the stream from the seed (gradient checks
    use it to draw the same dropout mask twice).
    """

    def __init__(self, seed: int, backend):
        self.seed = int(seed)
        self.backend = backend
        self.reset()

    def reset(self) -> None:
        self._draw = (self.backend.rng or _host_stream)(self.seed, self.backend)

    def uniform(self, shape, dtype):
        """``shape`` numbers in [0, 1) of the backend's ``dtype``, on its device."""
        return self._draw(tuple(shape), dtype)


def _host_stream(seed: int, backend):
    gen, xp, device = np.random.default_rng(seed), backend.xp, backend.device
    return lambda shape, dtype: xp.astype(xp.asarray(gen.random(shape), device=device), dtype)
