"""Per-batch callback hooks (Keras' ``on_train_batch_begin``/``on_train_batch_end``).

``fit`` calls them only when a callback overrides one (as Keras'
``_implements_train_batch_hooks``), so a fit without such a callback runs the batch loop
it always ran. The logs given to ``on_train_batch_end`` are a :class:`BatchLogs`: its keys
are known up front, its values (the epoch's running means, as Keras 3 logs them) are read
from the device only when a callback reads one, so a hook that counts batches costs no
host sync.
"""
from __future__ import annotations

from collections.abc import Mapping

import array_api_compat

__all__ = ["BatchHooks", "BatchLogs", "implements"]

_HOOKS = ("on_train_batch_begin", "on_train_batch_end")


def implements(callback, name) -> bool:
    """True when ``callback`` overrides hook ``name`` of the base class (in its class, or
    as an attribute of the instance, as LambdaCallback sets them)."""
    from .callbacks import Callback

    if name in vars(callback):
        return True
    return getattr(type(callback), name, None) is not getattr(Callback, name)


class _Running:
    """The epoch's running sums, added up on the device incrementally: a read at batch
    ``k`` adds only the batches since the previous read. A metric's sum may be a vector of
    statistics (precision's counts), turned into its value by ``metric.result``."""

    def __init__(self, model, losses, metric_parts, slices):
        self.model, self.losses, self.parts, self.slices = model, losses, metric_parts, slices
        self.upto, self.totals = 0, None

    def means(self, k):
        if k < self.upto:  # an older batch's logs read late: start again
            self.upto, self.totals = 0, None
        if k > self.upto:
            a, losses = self.upto, self.losses
            xp = array_api_compat.array_namespace(losses[a])
            rows = xp.asarray([j - i for i, j in self.slices[a:k]], dtype=losses[a].dtype,
                              device=array_api_compat.device(losses[a]))
            new = [xp.sum(xp.stack(losses[a:k]) * rows)]
            new += [xp.sum(xp.stack(p[a:k]), axis=0) for p in self.parts]
            self.totals = new if self.totals is None else \
                [t + v for t, v in zip(self.totals, new)]
            self.upto = k
        n = self.slices[k - 1][1]
        loss, *sums = self.totals
        return [float(loss) / n, *(m.result(t, n) for m, t in zip(self.model.metrics, sums))]


class BatchLogs(Mapping):
    """``{"loss": ..., <metric>: ...}`` after a batch: the means over the epoch's rows so
    far, read from the device the first time a value is read."""

    def __init__(self, keys, running, k):
        self._keys, self._running, self._k, self._values = keys, running, k, None

    def __getitem__(self, key):
        if key not in self._keys:
            raise KeyError(key)
        if self._values is None:
            self._values = dict(zip(self._keys, self._running.means(self._k)))
        return self._values[key]

    def __iter__(self):
        return iter(self._keys)

    def __len__(self):
        return len(self._keys)

    def __repr__(self):
        return f"BatchLogs({dict(self)!r})"


class BatchHooks:
    """The callbacks that override a batch hook, called from an epoch's loop."""

    def __init__(self, begin, end, model):
        self._begin, self._end, self.model = begin, end, model
        self._keys = ["loss", *model.metric_names]

    @classmethod
    def of(cls, callbacks, model):
        """A :class:`BatchHooks`, or None when no callback overrides a batch hook."""
        begin = [cb for cb in callbacks if implements(cb, _HOOKS[0])]
        end = [cb for cb in callbacks if implements(cb, _HOOKS[1])]
        return cls(begin, end, model) if begin or end else None

    def epoch(self, losses, metric_parts, slices):
        """Start an epoch whose loop appends to these lists."""
        self._running = _Running(self.model, losses, metric_parts, slices)

    def begin(self, batch):
        for cb in self._begin:
            cb.on_train_batch_begin(batch, None)

    def end(self, batch):
        if self._end:
            logs = BatchLogs(self._keys, self._running, batch + 1)
            for cb in self._end:
                cb.on_train_batch_end(batch, logs)
