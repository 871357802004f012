"""The compilers behind ``jit_compile`` (:mod:`xpnet.compiled`): what a backend that
compiles a whole step gives it. JAX: ``jax.jit`` with donated buffers, dropout keys
carried as values, tracers told apart from data."""
from __future__ import annotations

__all__ = ["JaxCompiler", "COMPILERS"]


class _KeyStream:
    """A Dropout layer's generator inside a traced step: ``uniform`` splits the key it
    holds, as the eager generator does (:func:`xpnet._backend_load._jax_rng`), so a
    compiled step draws the same masks; ``key`` is read back as an output of the step."""

    def __init__(self, key, seed):
        self.key, self.seed = key, seed

    def uniform(self, shape, dtype):
        import jax

        self.key, sub = jax.random.split(self.key)
        return jax.random.uniform(sub, tuple(shape), dtype=dtype)


class JaxCompiler:
    """``jax.jit`` for xpnet's steps."""

    name = "jax.jit"

    def jit(self, fn, donate=(), static=()):
        """``fn`` compiled once per input shape (and value of the ``static`` arguments); the
        arguments in ``donate`` give their buffers to the outputs (parameters and optimizer
        state are updated in place)."""
        import jax

        return jax.jit(fn, donate_argnums=tuple(donate), static_argnums=tuple(static))

    def rows(self, data, order, start, size):
        """Rows ``order[start:start + size]`` of ``data`` (rows ``start:start + size`` when
        ``order`` is None) with a traced ``start``: one trace serves every batch."""
        from jax import lax
        import jax.numpy as jnp

        if order is None:
            return lax.dynamic_slice_in_dim(data, start, size, axis=0)
        return jnp.take(data, lax.dynamic_slice_in_dim(order, start, size, axis=0), axis=0)

    def key(self, seed: int):
        """A ``jax.random`` key for ``seed``, as the eager generator starts from."""
        import jax

        return jax.random.key(int(seed))

    stream = staticmethod(_KeyStream)

    def is_traced(self, value) -> bool:
        """True for a tracer (a value of a function being traced), not data."""
        import jax

        return isinstance(value, jax.core.Tracer)

    def trace(self, fn, *args):
        """The jaxpr of ``fn(*args)`` (to read what a step computes)."""
        import jax

        return jax.make_jaxpr(fn)(*args)


#: backend name -> its compiler's class (the backend's ``compiler`` field)
COMPILERS = {"jax": JaxCompiler}
