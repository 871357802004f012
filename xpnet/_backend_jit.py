"""The compilers behind ``jit_compile`` (:mod:`xpnet.compiled`): what a backend that
compiles a whole step gives it. JAX: ``jax.jit`` with donated buffers, dropout keys
carried as values, tracers told apart from data. CuPy: a side stream to capture one
training step into a CUDA graph (:mod:`xpnet._cuda_graph` holds the capture logic)."""
from __future__ import annotations

__all__ = ["JaxCompiler", "CupyGraphs", "COMPILERS"]


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


class _CaptureStream:
    """A non-blocking CuPy stream for a warm-up and a capture, with its own memory pool.

    ``with`` it: the current stream is synchronised first (the batch was copied there),
    then this stream is current and allocations come from the private pool, so the
    addresses a graph bakes in are never handed to other arrays (a graph's temporaries
    return to this pool only, which nothing else allocates from, and which lives as long
    as the graph). Leaving it waits for the stream. ``begin_capture``, ``end_capture``
    and ``synchronize`` are CuPy's; CuPy captures in relaxed mode, where the pool may
    still grow during the capture (the warm-up has allocated what the step needs)."""

    def __init__(self):
        import cupy

        self.pool = cupy.cuda.MemoryPool()
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self._scopes = []

    def __enter__(self):
        import cupy

        cupy.cuda.get_current_stream().synchronize()
        allocator = cupy.cuda.using_allocator(self.pool.malloc)
        allocator.__enter__()
        self.stream.__enter__()
        self._scopes = [allocator, self.stream]
        return self

    def __exit__(self, *exc):
        while self._scopes:
            self._scopes.pop().__exit__(*exc)
        try:  # what was queued on the stream is done before its buffers are touched again
            self.stream.synchronize()
        except Exception:
            if exc[0] is None:
                raise
        return False

    def synchronize(self):
        self.stream.synchronize()

    def begin_capture(self):
        self.stream.begin_capture()

    def end_capture(self):
        return self.stream.end_capture()

    def is_capturing(self) -> bool:
        return bool(self.stream.is_capturing())


class CupyGraphs:
    """CUDA graphs for xpnet's training step on the cupy backend: not a compiler (the
    steps stay CuPy calls), a stream to record one step on; ``cupy.cuda.Graph.launch()``
    replays it on the current stream."""

    name = "CUDA graph"
    captures_graphs = True  # xpnet.compiled: fit replays a graph; evaluate/predict eager
    #: whether jit_compile="auto" (the default) turns the graph on. Not until the path has
    #: run on a GPU and given the eager numbers there: until then only True asks for it.
    auto = False

    def capture(self, fn=None):
        """A new capture stream (``fn``, the step, is for stand-ins that replay it in
        Python; a CUDA stream records its kernels instead)."""
        return _CaptureStream()


#: backend name -> its compiler's class (the backend's ``compiler`` field)
COMPILERS = {"jax": JaxCompiler, "cupy": CupyGraphs}
