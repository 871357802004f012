"""Compiled steps: ``model.compile(..., jit_compile="auto")`` (Keras 3's name).

On a backend with a compiler (its ``compiler`` field: JAX's ``jax.jit``), ``fit`` runs one
compiled function per batch, and ``evaluate``/``predict`` one per batch too, instead of
some twenty-five array calls, each dispatched from Python. The functions are pure: every
value that changes between calls goes in and comes out as an argument --

- the trainable parameters and the optimizer state (their buffers donated to the outputs),
- the layers' state (BatchNormalization's running statistics),
- one ``jax.random`` key per Dropout layer (split per mask as the eager generator does),
- the learning rate and the step count (a schedule's new rate is a new input, not a new
  trace; Adam's bias correction is computed from the step count as an array).

The layers are the same objects as in eager mode: a step is traced by running their
``forward``/``backward`` on tracers, after which every layer gets its own arrays back and
no tracer is left on any of them. A new batch shape (the last, partial batch) is traced
once and kept, so no epoch compiles again; padding that batch instead would let its
padded rows into BatchNormalization's batch statistics. ``jit_compile`` is a no-op on
backends without a compiler (NumPy, array-api-strict, PyTorch). On CuPy, ``fit`` replays
one training step captured as a CUDA graph instead (:func:`train_steps`,
:mod:`xpnet._cuda_graph`); evaluate and predict stay eager there.
"""
from __future__ import annotations

import contextlib
import operator
import threading

from . import _validate as V
from . import backend as B
from . import data as D
from .layers.regularization import Dropout

__all__ = ["check_jit_compile", "steps", "train_steps", "CompiledSteps"]


def check_jit_compile(value):
    """``jit_compile`` as given to ``compile``: True, False or "auto"."""
    if value is True or value is False or value == "auto":
        return value
    raise V.InvalidParameterError(
        f"compile(jit_compile) takes True, False or 'auto', got {value!r}")


def steps(model) -> "CompiledSteps | None":
    """The model's compiled steps, or None where it runs eagerly (``jit_compile`` off, or
    a backend without a compiler). Made once per build, compile and set of trainable layers."""
    if not model.built or getattr(model, "jit_compile", False) is False:
        return None
    compiler = model.backend.compiler
    if compiler is None or getattr(compiler, "captures_graphs", False):
        return None
    cached = getattr(model, "_compiled_steps", None)
    seen = _seen(model)
    if cached is not None and len(cached.seen) == len(seen) and \
            all(map(operator.is_, cached.seen, seen)):
        return cached  # the same objects as at the last call (model(x) per row: the usual case)
    key = steps_key(model)
    if not made_for(cached, key):
        cached = model._compiled_steps = CompiledSteps(model, compiler, key)
    cached.seen = seen
    return cached


def steps_key(model) -> tuple:
    """What a model's compiled (or graph) steps are made for: its layers' bindings,
    optimizer, loss and metrics (compared by identity) and the trainable parameters' keys."""
    objects = (model._bindings, model.optimizer, model.loss, *model.metrics)
    return objects, tuple(k for k, _, _ in model._train_bindings)


def made_for(cached, key) -> bool:
    """True when the steps ``cached`` (or None) were made for ``key`` (:func:`steps_key`)."""
    return cached is not None and cached.key[1] == key[1] and \
        len(cached.key[0]) == len(key[0]) and all(map(operator.is_, cached.key[0], key[0]))


def _seen(model) -> tuple:
    """What :func:`steps` last found its steps for, compared by identity: the objects of
    the steps' key, and the list of trainable bindings (:func:`xpnet.freezing.plan` makes a
    new one each time it runs; an equal list keeps the steps)."""
    return (model._bindings, model._train_bindings, model.optimizer, model.loss, *model.metrics)


def train_steps(model):
    """The steps ``fit`` runs: :func:`steps`, or on a backend that captures CUDA graphs
    (CuPy) the graph steps of :mod:`xpnet._cuda_graph`; None where it trains eagerly."""
    compiler = model.backend.compiler if model.built else None
    if getattr(compiler, "captures_graphs", False):
        from ._cuda_graph import graph_steps

        return graph_steps(model, compiler)
    return steps(model)


def layer_state(model) -> dict:
    """The layers' state arrays as ``{"<layer>/<name>": array}``."""
    return {f"{l.name}/{k}": v for l in model.layers for k, v in l.state.items()}


def _set_layer_state(model, values: dict) -> None:
    for layer in model.layers:
        for k in layer.state:
            layer.state[k] = values[f"{layer.name}/{k}"]


def _nothing():
    return None


def _infer(model, x):
    for layer in model.layers:
        x = layer.forward(x, False)
    return x


class CompiledSteps:
    """The compiled train, evaluate and predict steps of one model."""

    def __init__(self, model, compiler, key):
        self.model, self.compiler, self.key = model, compiler, key
        self.seen = ()  # set by steps()
        self.traces = 0  # how many times a step was traced (a test reads it)
        self._dropouts = [l for l in model.layers if isinstance(l, Dropout)]
        self._train = compiler.jit(self.train_fn, donate=(0, 1, 2))
        self._train_rows = compiler.jit(self.train_rows_fn, donate=(0, 1, 2), static=(10, 11))
        self._eval = compiler.jit(self.eval_fn)
        self._predict = compiler.jit(self.predict_fn)
        self._host_dtype = B.host_dtype(model.dtype_name)
        self._lr = (None, None)
        self._carry = None
        # a trace puts tracers on the layers for a moment: threads that predict with one
        # model (Dask's) trace one at a time and read the layers' arrays between traces
        self._lock = threading.RLock()

    def __reduce__(self):
        """Compiled functions do not pickle or copy: a copy of the model compiles again."""
        return (_nothing, ())

    # -- the pure functions ---------------------------------------------------------------
    def train_fn(self, params, opt_state, state, keys, lr, frozen, x, y, w=None):
        """``(params, opt_state, state, keys, loss, metric sums)`` after one step on ``(x, y)``
        (``frozen``: the parameters of the frozen layers, an input rather than constants;
        ``w``: the rows' weights, or None)."""
        from .training import forward_backward

        model = self.model
        with self._bound(state, keys) as streams:
            model.set_params(frozen)
            loss, y_pred, grads = forward_backward(model, params, x, y, w)
            params, opt_state = model.optimizer.apply(params, grads, opt_state, lr=lr)
            sums = [m.batch_sum(y_pred, y) for m in model.metrics]
            state = layer_state(model)
            keys = [s.key for s in streams]
        return params, opt_state, state, keys, loss, sums

    def train_rows_fn(self, params, opt_state, state, keys, lr, frozen, x, y, order, start,
                      dtypes, size, w=None):
        """:meth:`train_fn` on the rows ``order[start:start + size]`` of the whole data
        ``(x, y)`` (and weights ``w``) on the device: the batch is gathered in the step."""
        xb, yb = (self.compiler.rows(a, order, start, size) for a in (x, y))
        xp = self.model.backend.xp
        xb, yb = (b if b.dtype == d else xp.astype(b, d) for b, d in zip((xb, yb), dtypes))
        if w is not None:
            w = self.compiler.rows(w, order, start, size)
            w = w if w.dtype == dtypes[0] else xp.astype(w, dtypes[0])
        return self.train_fn(params, opt_state, state, keys, lr, frozen, xb, yb, w)

    def eval_fn(self, arrays, x, y, w=None):
        """``(loss, metric sums)`` of one batch in inference mode (``arrays``: :meth:`_arrays`;
        ``w``: row weights)."""
        model = self.model
        params, state = self._named(arrays)
        with self._bound(state):
            model.set_params(params)
            y_pred = _infer(model, x)
            loss = model.loss.value(y_pred, y) if w is None else model.loss.weighted_value(y_pred, y, w)
            loss = loss + model.regularization_loss() if model._penalized else loss
            sums = [m.batch_sum(y_pred, y) for m in model.metrics]
        return loss, sums

    def predict_fn(self, arrays, x):
        """The model's output for ``x`` in inference mode (``arrays``: :meth:`_arrays`)."""
        params, state = self._named(arrays)
        with self._bound(state):
            self.model.set_params(params)
            return _infer(self.model, x)

    @contextlib.contextmanager
    def _bound(self, state, keys=()):
        """Run the layers on traced values, then give every layer its own arrays back and
        clear the tracers the forward and backward passes kept on it."""
        with self._lock:
            with self._traced(state, keys) as streams:
                yield streams

    @contextlib.contextmanager
    def _traced(self, state, keys):
        self.traces += 1
        model = self.model
        saved = [(l, dict(l.params), dict(l.state), getattr(l, "rng", None)) for l in model.layers]
        streams = [self.compiler.stream(k, None) for k in keys]
        try:
            _set_layer_state(model, state)
            for layer, stream in zip(self._dropouts, streams):
                layer.rng = stream
            yield streams
        finally:
            for layer, params, layer_state_, rng in saved:
                layer.params.clear()
                layer.params.update(params)
                layer.state.clear()
                layer.state.update(layer_state_)
                if isinstance(layer, Dropout):
                    layer.rng = rng
            self._scrub([*model.layers, model.loss])

    def _scrub(self, objects):
        traced = self.compiler.is_traced
        for obj in objects:
            for name, value in list(vars(obj).items()):
                if traced(value):
                    setattr(obj, name, None)
                elif isinstance(value, dict) and any(traced(v) for v in value.values()):
                    setattr(obj, name, {k: v for k, v in value.items() if not traced(v)})

    # -- the loops' side --------------------------------------------------------------------
    def begin_epoch(self, params, opt_state):
        """The optimizer state the step takes (the slots of ``params``, the step count as an
        array) and the epoch's carried values: layer state, one key per Dropout layer."""
        xp, model = self.model.backend.xp, self.model
        keys = [self.compiler.key(l.rng.seed) for l in self._dropouts]
        self._carry = [layer_state(model), keys]
        self._frozen = {k: v for k, v in model.get_params().items() if k not in params}
        step = xp.asarray(opt_state["step"], dtype=xp.int32, device=model.backend.device)
        return {"step": step, "slots": {k: opt_state["slots"][k] for k in params}}

    def train_step(self, params, opt_state, x, y, w=None):
        """One compiled step on the batch ``(x, y)`` (row weights ``w``, or None):
        ``(params, opt_state, loss, metric sums)``."""
        state, keys = self._carry
        params, opt_state, state, keys, loss, sums = self._train(
            params, opt_state, state, keys, self._lr_array(), self._frozen, x, y, w)
        self._keep(params, state, keys)
        return params, opt_state, loss, sums

    def train_batch(self, params, opt_state, x, y, order, i, j, y_dtype, w=None):
        """One compiled step on rows ``i:j`` (of ``order``, when given) of ``x`` and ``y``
        (and of the row weights ``w``): for arrays of the backend, taken and cast inside
        the step (no array call outside it), else taken on the host and moved."""
        model, b = self.model, self.model.backend
        if not (isinstance(x, b.array_type) and isinstance(y, b.array_type)):
            index = slice(i, j) if order is None else order[i:j]
            wb = None if w is None else D.take_rows(w, index, b, model.dtype_name)
            return self.train_step(params, opt_state, D.take_rows(x, index, b, model.dtype_name),
                                   D.take_rows(y, index, b, y_dtype), wb)
        dtypes = (b.float_dtype(model.dtype_name), getattr(b.xp, y_dtype))
        state, keys = self._carry
        params, opt_state, state, keys, loss, sums = self._train_rows(
            params, opt_state, state, keys, self._lr_array(), self._frozen, x, y, order, i,
            dtypes, j - i, w)
        self._keep(params, state, keys)
        return params, opt_state, loss, sums

    def _keep(self, params, state, keys):
        """The step's outputs on the model at once (a few dict entries): the inputs were
        donated, so a model left mid-epoch (an exception, Ctrl-C) still holds live arrays."""
        self._carry = [state, keys]
        self.model.set_params(params)
        _set_layer_state(self.model, state)

    def call(self, x):
        """``model(x)`` in inference mode: host data goes to the compiled function as it
        is (the call moves it, cheaper than a separate copy), cast on the host if needed."""
        model = self.model
        if isinstance(x, B.HOST_ARRAY) and x.ndim >= 1:
            if x.dtype != self._host_dtype:
                x = B.host_cast(x, model.dtype_name)
        else:
            x = B.asarray(x, backend=model.backend, dtype=model.dtype_name)
        model.check_input(x)
        return self.predict(x)

    def end_epoch(self, opt_state):
        """Put the layer state back on the layers; the step count back to an int (one read)."""
        _set_layer_state(self.model, self._carry[0])
        self._carry = self._frozen = None
        return {"step": int(opt_state["step"]), "slots": opt_state["slots"]}

    def _arrays(self):
        """The parameters (in the order of the model's bindings) then the layers' state, as
        one flat tuple: read afresh every call (nothing to invalidate when fit, set_params or
        a load rebinds them), and a tuple goes into a compiled call faster than two dicts."""
        model = self.model
        with self._lock:  # never in the middle of another thread's trace
            return (*[layer.params[k] for _, layer, k in model._bindings],
                    *[v for layer in model.layers for v in layer.state.values()])

    def _named(self, arrays):
        """The inverse of :meth:`_arrays` (while tracing): ``(params, state)`` as dicts."""
        model = self.model
        names = [key for key, _, _ in model._bindings]
        names += [f"{layer.name}/{k}" for layer in model.layers for k in layer.state]
        n = len(model._bindings)
        return dict(zip(names[:n], arrays[:n])), dict(zip(names[n:], arrays[n:]))

    def evaluate_batch(self, x, y, w=None):
        return self._eval(self._arrays(), x, y, w)

    def predict(self, x):
        return self._predict(self._arrays(), x)

    def _lr_array(self):
        """The optimizer's rate as a 0-d array of the model's dtype (made again only when
        the rate changes)."""
        lr = self.model.optimizer.lr
        if callable(lr):  # a schedule: apply evaluates it at the traced step count
            return None
        if self._lr[0] != lr:
            b = self.model.backend
            self._lr = (lr, b.xp.asarray(lr, dtype=b.float_dtype(self.model.dtype_name),
                                         device=b.device))
        return self._lr[1]
