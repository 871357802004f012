"""The data-parallel side of ``fit`` (:mod:`xpnet.distributed` says what it does).

:func:`plan` gives ``run_fit`` a :class:`DataParallel` (None on one process), which
checks that the ranks agree and broadcasts rank 0's arrays when training starts
(:meth:`~DataParallel.start`), then runs each epoch (:meth:`~DataParallel.train_epoch`):
per batch, :func:`xpnet.training.forward_backward` on this rank's rows, ONE all-reduce of
a flat buffer ``[grads * share, BN statistics * share, loss * share, metric sums]``
(``share`` = this rank's rows / the batch's rows: losses are means over the batch, so the
sum over the ranks is the whole batch's mean; a metric's sum may be a vector of additive
statistics, its ``stat_shape``), then ``optimizer.apply`` on every rank.
"""
from __future__ import annotations

import math

from . import backend as B
from . import data as D
from . import distributed as _dist
from . import epoch_logs as EL
from .layers.regularization import Dropout

__all__ = ["plan", "DataParallel"]


def plan(distributed, model):
    """A :class:`DataParallel` for ``fit(distributed=...)``, or None for one process."""
    comm = _dist.resolve(distributed)
    return None if comm is None else DataParallel(comm, model)


class _Layout:
    """Where each array sits in a flat buffer: ``(owner, key, shape, start, stop)``."""

    def __init__(self, entries):
        self.slots, start = [], 0
        for owner, key, shape in entries:
            stop = start + math.prod(shape)
            self.slots.append((owner, key, tuple(shape), start, stop))
            start = stop
        self.size = start

    def pack(self, xp, arrays):
        return xp.concat([xp.reshape(a, (-1,)) for a in arrays]) if arrays else None

    def unpack(self, xp, buf):
        return [xp.reshape(buf[i:j], shape) for _, _, shape, i, j in self.slots]


class BatchSync:
    """What a ``BatchNormalization(synchronized=True)`` layer needs for one batch: the
    all-reduce, the global batch's rows and this rank's share of them."""

    def __init__(self, comm, rows, share, where):
        self.comm, self.rows, self.share, self.where = comm, rows, share, where

    def sum(self, buf, what):
        return self.comm.allreduce_sum(buf, f"{what} ({self.where})")


class DataParallel:
    """One ``fit``'s data-parallel plan on communicator ``comm``."""

    def __init__(self, comm, model):
        self.comm, self.model = comm, model
        self.rank, self.size = comm.rank, comm.size

    def verbose(self, verbose):
        """Progress bars and epoch lines on rank 0 only."""
        return verbose if self.rank == 0 else 0

    # -- when training starts -----------------------------------------------------------
    def start(self, base_seed, x, y, batch_size, epochs, initial_epoch, shuffle, weighted=False):
        """Check that the ranks agree; broadcast rank 0's seed, parameters, layer state and
        optimizer state; return the seed every rank uses."""
        model = self.model
        mine = {"rows": tuple(x.shape), "targets": tuple(y.shape), "batch_size": batch_size,
                "epochs": epochs, "initial_epoch": initial_epoch, "shuffle": bool(shuffle),
                "sample_weight": bool(weighted),
                "dtype": model.dtype_name, "optimizer": type(model.optimizer).__name__,
                "loss": model.loss.name, "metrics": list(model.metric_names),
                "arrays": [(k, tuple(a.shape)) for k, a in sorted(model.get_params().items())]}
        every = self.comm.allgather_object(mine, "the check that the ranks agree")
        for r, theirs in enumerate(every):
            diff = [k for k in mine if theirs[k] != every[0][k]]
            if diff:
                k = diff[0]
                raise ValueError(
                    f"fit(distributed=...): rank {r} has {k}={theirs[k]!r} but rank 0 has "
                    f"{every[0][k]!r}; every rank must call fit with the same model, data "
                    "(each rank passes the whole data set and takes its share of each "
                    "batch) and arguments")
        seed, step = self.comm.broadcast_object((base_seed, model.opt_state["step"]), 0,
                                                "the broadcast of the seed")
        self.base_seed = seed
        self._broadcast_arrays(step)
        return seed

    def _broadcast_arrays(self, step):
        model, xp = self.model, self.model.backend.xp
        stores = [(l.params, k) for l in model.layers for k in sorted(l.params)]
        stores += [(l.state, k) for l in model.layers for k in sorted(l.state)]
        slots = model.opt_state["slots"]
        stores += [(slots[key], s) for key in sorted(slots) for s in sorted(slots[key])]
        if not stores:
            return
        layout = _Layout([(d, k, d[k].shape) for d, k in stores])
        buf = layout.pack(xp, [d[k] for d, k in stores])
        buf = self.comm.broadcast(buf, 0, "the broadcast of rank 0's parameters")
        for (d, k, *_), a in zip(layout.slots, layout.unpack(xp, buf)):
            d[k] = a
        model.opt_state["step"] = step

    # -- one epoch ----------------------------------------------------------------------
    def _reseed_dropout(self, epoch):
        for index, layer in enumerate(self.model.layers):
            if isinstance(layer, Dropout):
                seed = B.host_rng([self.base_seed, epoch, index, self.rank]).integers(2**31)
                layer.rng = B.DeviceRNG(int(seed), self.model.backend)

    def _share(self, i, j):
        """This rank's rows ``lo..hi-1`` of the batch ``i..j-1``."""
        m = j - i
        return i + m * self.rank // self.size, i + m * (self.rank + 1) // self.size

    def train_epoch(self, model, x, y, y_dtype, slices, order, bar, epoch, w=None, hooks=None):
        """One data-parallel step per global batch (``w``: the rows' weights, or None); the
        epoch's logs, the same on every rank (a host read of the reduced losses, as one
        process does)."""
        self._reseed_dropout(epoch)
        backend, xp, dtype = model.backend, model.backend.xp, model.dtype_name
        refresh = max(1, math.ceil(len(slices) / EL.BAR_UPDATES))
        params, state = model.get_params(trainable_only=True), model.opt_state
        keys = list(params)
        stats = [(l.state, k) for l in model.layers for k in sorted(l.state)]
        layout = _Layout([(None, k, params[k].shape) for k in keys]
                         + [(d, k, d[k].shape) for d, k in stats] + [(None, "loss", ())])
        losses, metric_parts = [], [[] for _ in model.metrics]
        shapes = [tuple(m.stat_shape(model.output_shape)) for m in model.metrics]
        ends = [1 + sum(math.prod(s) for s in shapes[:k + 1]) for k in range(len(shapes))]
        synced = [l for l in model._train_layers if getattr(l, "synchronized", False)]
        if hooks is not None:  # the callbacks' batch hooks (xpnet._batch_hooks)
            hooks.epoch(losses, metric_parts, slices)
        for b, (i, j) in enumerate(slices):
            if hooks is not None:
                hooks.begin(b)
            lo, hi = self._share(i, j)
            index = slice(lo, hi) if order is None else order[lo:hi]
            xb = D.take_rows(x, index, backend, dtype)
            yb = D.take_rows(y, index, backend, y_dtype)
            wb = None if w is None else D.take_rows(w, index, backend, dtype)
            sync = self._batch_sync(synced, i, j, f"epoch {epoch + 1}, batch {b + 1}")
            buf = self._local(model, params, xb, yb, wb, keys, stats, layout, (hi - lo) / (j - i),
                              sync, ends[-1] - 1 if ends else 0)
            buf = self.comm.allreduce_sum(buf, f"the all-reduce of epoch {epoch + 1}, "
                                               f"batch {b + 1}")
            parts = layout.unpack(xp, buf)
            grads = dict(zip(keys, parts))
            for (d, k), a in zip(stats, parts[len(keys):]):
                d[k] = a
            params, state = model.optimizer.apply(params, grads, state)
            # the loss and the metric sums copied out: a view would keep the whole step's
            # buffer (the size of the gradients) alive until the epoch ends
            tail = xp.asarray(buf[layout.size - 1:], copy=True)
            losses.append(xp.reshape(tail[0:1], ()))
            for parts_m, shape, end in zip(metric_parts, shapes, ends):
                parts_m.append(xp.reshape(tail[end - math.prod(shape):end], shape))
            if bar is not None and ((b + 1) % refresh == 0 or b + 1 == len(slices)):
                bar.update(b + 1 - bar.n)
                bar.set_postfix(EL.read_logs(model, losses, metric_parts, slices), refresh=False)
            if hooks is not None:
                hooks.end(b)  # a stop here would leave the ranks apart: at the epoch's end
        return EL.finish_epoch(model, params, state, losses, metric_parts, slices, bar, epoch)

    def _batch_sync(self, layers, i, j, where):
        """``(layers, BatchSync)`` for the synchronized BatchNormalization layers on the
        batch ``i..j-1``; no BatchSync when some rank has no row of it (that rank
        computes nothing, so it could not join their all-reduces)."""
        if not layers or j - i < self.size:
            return None
        lo, hi = self._share(i, j)
        return layers, BatchSync(self.comm, j - i, (hi - lo) / (j - i), where)

    def _local(self, model, params, xb, yb, wb, keys, stats, layout, share, sync=None,
               n_stats=None):
        """This rank's part of the step's buffer: gradients, BN statistics and loss scaled
        by ``share``, then the metric sums, flat (``n_stats`` numbers; zeros where this rank
        has no rows). ``sync``: the synchronized BatchNormalization layers and their
        BatchSync, for this step."""
        from .training import forward_backward

        xp, dt = model.backend.xp, model.backend.float_dtype(model.dtype_name)
        device = model.backend.device
        if share == 0:  # a batch with fewer rows than ranks: this rank adds nothing
            n_stats = len(model.metrics) if n_stats is None else n_stats
            return xp.zeros((layout.size + n_stats,), dtype=dt, device=device)
        layers, batch = sync if sync is not None else ((), None)
        for layer in layers:
            layer.sync = batch
        try:
            loss, y_pred, grads = forward_backward(model, params, xb, yb, wb)
        finally:
            for layer in layers:
                layer.sync = None
        parts = [grads[k] for k in keys] + [d[k] for d, k in stats]
        parts.append(xp.astype(loss, dt) if loss.dtype != dt else loss)
        buf = layout.pack(xp, parts)
        buf = buf * share if share != 1 else buf
        if model.metrics:
            sums = [xp.reshape(xp.astype(m.batch_sum(y_pred, yb), dt), (-1,)) for m in model.metrics]
            buf = xp.concat([buf, *sums])
        return buf
