"""CUDA graphs for ``fit`` on the cupy backend: ``compile(jit_compile=True)``.

An eager CuPy step is some twenty-five kernels, each launched from Python. Here one
training step (:func:`xpnet.training.forward_backward`, the optimizer's ``apply``, the
metric sums) is captured once into a CUDA graph and replayed per batch: one launch.

A graph replays fixed addresses, so everything the step reads or writes lives in
*static buffers* made once and reused: the batch (``x``, ``y``, the row weights), the
trainable and frozen parameters, the optimizer's slots, the step count and the learning
rate (0-d device arrays, as the jax path passes them: a schedule is evaluated on the
step count inside the graph, Adam's bias correction too), the layers' state
(BatchNormalization's running statistics), and the loss and metric sums. The step
rebinds its arrays rather than writing into them, so the captured region ends by
copying each new value into its buffer: replaying it N times is N eager steps. This is
the one module of the library that writes into arrays (``buf[...] = value``), and only
into its own buffers.

Capture: the first full batch is copied into the input buffers, the step runs once
eagerly on a side stream (the warm-up: CuPy compiles its kernels and the stream's memory
pool allocates what the step needs), then once more under ``begin_capture`` /
``end_capture``; the buffers are then put back as they were before the warm-up and the
graph is launched for that batch. A batch of another shape (the last, partial one) runs
the same step eagerly on the same buffers. Dropout draws from CuPy's generator, whose
state a graph would replay unchanged: a model with Dropout trains eagerly (a
RuntimeWarning says so under ``jit_compile=True``; under "auto" the reason is kept in
``failed``, as "auto" means a graph where one can be made). "auto", the default, turns
the graph on only where the backend's graph maker says so (its ``auto``): CuPy's does not
until this path has run on a GPU. Any exception
from the warm-up or the capture also falls back to the eager step, with one
RuntimeWarning saying why, never a crash. ``evaluate`` and ``predict`` stay eager.

The stream is injected (``capture``, the backend's :class:`~xpnet._backend_jit.CupyGraphs`
by default), so the logic runs on the CPU with a stand-in stream and graph (the tests).
"""
from __future__ import annotations

import warnings

from . import data as D
from .compiled import _nothing, _set_layer_state, layer_state, made_for, steps_key
from .layers.regularization import Dropout

__all__ = ["graph_steps", "GraphSteps"]


def graph_steps(model, compiler) -> "GraphSteps | None":
    """The model's graph steps, made once per build, compile and set of trainable layers;
    None where it trains eagerly (``jit_compile=False``, Dropout, a failed capture)."""
    jit = getattr(model, "jit_compile", False)
    if not model.built or jit is False or (jit == "auto" and not getattr(compiler, "auto", True)):
        return None
    key = steps_key(model)
    cached = getattr(model, "_graph_steps", None)
    if not made_for(cached, key):
        cached = model._graph_steps = GraphSteps(model, compiler.capture, key)
    return None if cached.failed else cached


def _copy(xp, a):
    return xp.asarray(a, copy=True)


def _quietly(fn):
    try:
        fn()
    except Exception:
        pass


class GraphSteps:
    """One model's training step as a CUDA graph, with the interface of
    :class:`xpnet.compiled.CompiledSteps` that ``fit`` uses (``begin_epoch``,
    ``train_batch``, ``end_epoch``).

    Parameters
    ----------
    model : xpnet.Sequential
        A built, compiled model.
    capture : callable
        ``capture(fn)`` -> a stream to warm up and capture the step ``fn`` on: a context
        manager with ``synchronize()``, ``begin_capture()`` and ``end_capture()`` (which
        returns a graph with ``launch()``).
    key : tuple
        What the steps were made for (:func:`graph_steps` compares it).
    """

    def __init__(self, model, capture, key=None):
        self.model, self.capture, self.key = model, capture, key
        self.xp = model.backend.xp
        self.failed = None  # why the model trains eagerly, once known
        self.graph = self._stream = self._shapes = None
        self.replays = self.captures = 0  # the tests read them
        self._params = self._frozen = self._slots = self._state = None
        self._inputs = self._outputs = None
        self._lr = (None, None)
        if any(isinstance(l, Dropout) for l in model.layers):  # said only when asked for
            self._give_up("the model has Dropout, whose masks come from CuPy's generator: a "
                          "graph would replay one mask, so the model trains eagerly",
                          warn=model.jit_compile is True)

    def __reduce__(self):
        """A graph does not pickle or copy: a copy of the model captures again."""
        return (_nothing, ())

    def _give_up(self, why, warn=True):
        self.failed = why
        self.graph = self._stream = None
        if warn:
            warnings.warn(f"xpnet: jit_compile on cupy: no CUDA graph for model "
                          f"{self.model.name!r}: {why}", RuntimeWarning, stacklevel=4)

    # -- the epoch's buffers ----------------------------------------------------------------
    def begin_epoch(self, params, opt_state):
        """Copy the parameters, frozen parameters, slots, step count and layer state into
        the static buffers (made at the first epoch, the same arrays after); return the
        optimizer state the loop carries (the buffers)."""
        xp, model = self.xp, self.model
        frozen = {k: v for k, v in model.get_params().items() if k not in params}
        slots = {k: opt_state["slots"][k] for k in params}
        fresh = {"params": params, "frozen": frozen, "state": layer_state(model)}
        if self._params is None or set(self._params) != set(params):
            self._params, self._frozen, self._state = (
                {k: _copy(xp, v) for k, v in fresh[n].items()} for n in ("params", "frozen", "state"))
            self._slots = {k: {n: _copy(xp, a) for n, a in s.items()} for k, s in slots.items()}
            self._step = xp.zeros((), dtype=xp.int32, device=model.backend.device)
            self.graph = None
        else:
            for name, bufs in (("params", self._params), ("frozen", self._frozen),
                               ("state", self._state)):
                for k, buf in bufs.items():
                    buf[...] = fresh[name][k]
            for k, s in self._slots.items():
                for n, buf in s.items():
                    buf[...] = slots[k][n]
        self._step[...] = opt_state["step"]
        self._view = dict(self._params)  # the loop's params: copies replace them at the end
        return {"step": self._step, "slots": self._slots}

    def end_epoch(self, opt_state):
        """Copies of the buffers back to the loop and the layers (the buffers stay private
        to the graph, which writes into them); the step count as an int (one read)."""
        xp = self.xp
        for k, buf in self._params.items():
            self._view[k] = _copy(xp, buf)
        _set_layer_state(self.model, {k: _copy(xp, v) for k, v in self._state.items()})
        self.model.set_params({**{k: _copy(xp, v) for k, v in self._frozen.items()}, **self._view})
        slots = {k: {n: _copy(xp, a) for n, a in s.items()} for k, s in self._slots.items()}
        return {"step": int(self._step), "slots": slots}

    # -- the step -------------------------------------------------------------------------
    def step(self, x, y, w=None):
        """One training step on the static buffers, ending with every new value copied into
        its buffer (what is captured, with the input buffers as ``x``, ``y``, ``w``);
        returns ``(loss, metric sums)``, also copied into the output buffers once made."""
        from .training import forward_backward

        model = self.model
        _set_layer_state(model, self._state)
        model.set_params(self._frozen)
        loss, y_pred, grads = forward_backward(model, self._params, x, y, w)
        opt_state = {"step": self._step, "slots": self._slots}
        params, opt_state = model.optimizer.apply(self._params, grads, opt_state,
                                                  lr=self._lr_buffer())
        sums = [m.batch_sum(y_pred, y) for m in model.metrics]
        for k, buf in self._params.items():
            buf[...] = params[k]
        for k, s in self._slots.items():
            for n, buf in s.items():
                buf[...] = opt_state["slots"][k][n]
        self._step[...] = opt_state["step"]
        state = layer_state(model)
        for k, buf in self._state.items():
            buf[...] = state[k]
        _set_layer_state(model, self._state)
        model.set_params(self._params)
        if self._outputs is not None:
            for buf, value in zip(self._outputs, (loss, *sums)):
                buf[...] = value
        return loss, sums

    def _captured(self):
        return self.step(*self._inputs)

    def _lr_buffer(self):
        """The rate as a 0-d array in a static buffer; for a schedule, the schedule that
        ``apply`` evaluates at the step-count buffer, its rate cast to the model's dtype (as
        eagerly, where a Python float meets the parameters)."""
        lr, xp = self.model.optimizer.lr, self.xp
        if not callable(lr):
            return self._lr[1]
        dtype = self.model.backend.float_dtype(self.model.dtype_name)
        return lambda step: xp.astype(xp.asarray(lr(step)), dtype)

    def _set_lr(self):
        """Write a changed float rate into its buffer before a replay. A schedule is part
        of the graph: another schedule, or a float for a schedule, is captured again."""
        lr, (seen, buf) = self.model.optimizer.lr, self._lr
        if (callable(lr) or callable(seen)) and lr is not seen:
            self.graph = None
        if not callable(lr):
            if buf is None:
                b = self.model.backend
                buf = b.xp.zeros((), dtype=b.float_dtype(self.model.dtype_name), device=b.device)
            if lr != seen:
                buf[...] = lr
        self._lr = (lr, buf)

    def train_batch(self, params, opt_state, x, y, order, i, j, y_dtype, w=None):
        """One step on rows ``i:j`` (of ``order``, when given) of ``x``, ``y`` (and of the
        row weights ``w``): a graph replay for a batch of the captured shape, else the
        same step eagerly. Returns ``(params, opt_state, loss, metric sums)``, the loss
        and sums copies the loop may keep."""
        model, b = self.model, self.model.backend
        index = slice(i, j) if order is None else order[i:j]
        xb = D.take_rows(x, index, b, model.dtype_name)
        yb = D.take_rows(y, index, b, y_dtype)
        wb = None if w is None else D.take_rows(w, index, b, model.dtype_name)
        self._set_lr()
        shapes = (xb.shape, yb.shape, yb.dtype, None if wb is None else wb.shape)
        if self.failed is None and i == 0 and (self.graph is None or shapes != self._shapes):
            self._capture(xb, yb, wb, shapes)  # the epoch's first batch is a full one
        if self.failed is None and self.graph is not None and shapes == self._shapes:
            for buf, value in zip(self._inputs, (xb, yb, wb)):
                if buf is not None:
                    buf[...] = value
            self.graph.launch()
            self.replays += 1
            loss, *sums = (_copy(self.xp, buf) for buf in self._outputs)
        else:
            loss, sums = self.step(xb, yb, wb)
        return self._view, opt_state, loss, sums

    def _capture(self, xb, yb, wb, shapes):
        """Input buffers for this batch's shape, a warm-up and a capture on a side stream,
        the buffers put back as they were: on any exception, the eager step from here on
        (one warning)."""
        xp = self.xp
        self._inputs = tuple(None if a is None else _copy(xp, a) for a in (xb, yb, wb))
        self._shapes, self._outputs = shapes, None
        saved = self._snapshot()
        self.graph = self._stream = None
        try:
            stream = self.capture(self._captured)
            with stream:
                loss, sums = self._captured()  # the warm-up
                self._outputs = [_copy(xp, v) for v in (loss, *sums)]
                stream.synchronize()
                stream.begin_capture()
                try:
                    self._captured()
                except BaseException:
                    _quietly(stream.end_capture)  # an invalidated capture ends with an error
                    raise
                graph = stream.end_capture()
        except Exception as exc:  # a capture that fails trains eagerly, never crashes
            self._restore(saved)
            self._outputs = None
            self._give_up(f"the capture failed ({type(exc).__name__}: {exc}), so the "
                          "model trains eagerly")
            return
        self._restore(saved)
        self.graph, self._stream = graph, stream  # the stream holds the graph's memory
        self.captures += 1

    def _snapshot(self):
        xp = self.xp
        bufs = [*self._params.values(), *self._state.values(), self._step,
                *(a for s in self._slots.values() for a in s.values())]
        return [(buf, _copy(xp, buf)) for buf in bufs]

    def _restore(self, saved):
        """The buffers as before the warm-up: the warm-up was not a training step (and a
        stand-in stream runs the captured step instead of recording it)."""
        for buf, value in saved:
            buf[...] = value
        _set_layer_state(self.model, self._state)
        self.model.set_params(self._params)
