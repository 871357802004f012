"""Input pipelines for ``fit``: ``fit(x=batches, y=None, steps_per_epoch=...)`` as Keras.

``x`` is an :class:`xpnet.data.Dataset`, or any iterable of ``(x, y)`` or
``(x, y, sample_weight)`` batches: a list, a ``torch.utils.data.DataLoader`` (each epoch
iterates it again; ``steps_per_epoch`` cuts it), or a generator/iterator (consumed across
epochs; an epoch is ``steps_per_epoch`` batches, or the rest of it without). Data that runs
out stops training with a warning, as Keras. Each batch is checked as ``fit`` checks
arrays (finite values, shapes, labels) and moved to the model's backend; torch tensors
from a DataLoader are read as NumPy without a copy (or kept, on the torch backend).
A Dataset's arrays are checked once. ``validation_data`` may be such an iterable too.
"""
from __future__ import annotations

import itertools
import warnings

import array_api_compat

from . import backend as B
from . import compiled as _compiled
from . import data as D
from . import epoch_logs as EL
from . import sample_weights as SW
from .dataset import Dataset, Prefetch, batches as _dataset_batches
from .evaluation import eval_batch
from .fit_data import prepare

__all__ = ["is_pipeline", "refuse_steps", "FitSource", "Validation"]


def _is_batches(x) -> bool:
    """An iterable of batches rather than array data."""
    if isinstance(x, Dataset):
        return True
    if x is None or B.is_array(x) or hasattr(x, "to_numpy") or isinstance(x, (str, bytes)):
        return False
    return hasattr(x, "__iter__") or hasattr(x, "__next__")


def is_pipeline(x, y) -> bool:
    """True when ``fit`` gets batches (``y`` None), not arrays; a TypeError for both."""
    if not _is_batches(x):
        if y is None and x is not None:
            raise TypeError("fit got x but no y: give the targets (fit(x, y)), or x as an "
                            "input pipeline of (x, y) batches (a Dataset, a generator, a "
                            "DataLoader)")
        return False
    if isinstance(x, (tuple, list)) and y is not None:
        return False  # nested lists of numbers: array data
    if y is not None:
        raise TypeError(f"x is a {type(x).__name__} of batches, which hold the targets: "
                        "leave y=None (as Keras)")
    return True


def refuse_steps(steps_per_epoch):
    if steps_per_epoch is not None:
        raise ValueError("steps_per_epoch is for input pipelines (a Dataset, a generator, "
                         "a DataLoader); with arrays, batch_size sets the steps")


def _array_tuple(data) -> bool:
    """``(x, y)`` or ``(x, y, w)`` arrays, not a list of ``(x, y)`` batches."""
    return isinstance(data, (tuple, list)) and len(data) in (2, 3) and \
        not isinstance(data[0], tuple)


def validation_pipeline(model, data, steps, batch_size):
    """A :class:`Validation` when ``validation_data`` is a pipeline, else None (arrays,
    checked by ``fit`` as before; ``validation_steps`` is then refused)."""
    if data is None or _array_tuple(data) or not _is_batches(data):
        if steps is not None:
            raise ValueError("validation_steps is for validation_data given as an input "
                             "pipeline (a Dataset, a generator, a DataLoader)")
        return None
    return Validation(model, data, steps, batch_size)


def _steps(value, name):
    if value is None:
        return None
    from ._validate import positive_int

    return positive_int(value, name)


def _is_iterator(x) -> bool:
    return hasattr(x, "__next__") and iter(x) is x


def _as_input(a, backend):
    """A batch's array for the checks: torch tensors on the CPU as NumPy (no copy: checked
    on the host, then moved as NumPy data is), device tensors read back unless the backend
    is torch; an array of the backend on another device moved to the model's."""
    lib = B.library_of(a)
    if lib == "torch" and (backend.name != "torch" or str(array_api_compat.device(a)) == "cpu"):
        return B.to_numpy(a)
    if lib == backend.name and lib != "numpy" and array_api_compat.device(a) != backend.device:
        return array_api_compat.to_device(a, backend.device)
    return a


class _Batches:
    """Checked, moved batches of one pipeline: ``epoch(e, seed, steps)`` iterates them."""

    def __init__(self, model, data, what, class_weight=None):
        self.model, self.data, self.what, self.class_weight = model, data, what, class_weight
        self.val = what != "x"
        self.pending = None
        if isinstance(data, Dataset):  # its arrays checked once, as fit(x, y) checks them
            x, y, y_dtype = prepare(model, data.x, data.y, name="val_" if self.val else "")
            self.w = SW.prepare_weights(data.sample_weight, class_weight, x, y, model.backend,
                                        model.dtype_name)
            self.x, self.y, self.y_dtype = x, y, y_dtype
        elif _is_iterator(data):  # the first batch builds the model; it is kept
            self.pending = self._first()
        elif not model.built:
            self._first()

    def _first(self):
        try:
            batch = next(iter(self.data))
        except StopIteration:
            raise ValueError(f"{self.what} yields no batch") from None
        self.check(batch, 0)
        return batch

    def __len__(self):
        return len(self.data)

    def check(self, batch, k):
        """``(x, y, w)`` of batch ``k`` as the backend's arrays, checked."""
        model = self.model
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            raise TypeError(f"{self.what}: batch {k} is a {type(batch).__name__}; each batch "
                            "must be a tuple (x, y) or (x, y, sample_weight)")
        backend = model.backend if model.built else B.current()
        x, y = (_as_input(a, backend) for a in batch[:2])
        x, y, y_dtype = prepare(model, x, y, name=f"batch {k} of {self.what}: ")
        w = batch[2] if len(batch) == 3 else None
        w = _as_input(w, backend) if w is not None else None
        w = SW.prepare_weights(w, self.class_weight, x, y, model.backend, model.dtype_name)
        move = D.take_rows
        b, dtype = model.backend, model.dtype_name
        return (move(x, slice(None), b, dtype), move(y, slice(None), b, y_dtype),
                None if w is None else move(w, slice(None), b, dtype))

    def epoch(self, epoch, seed, steps):
        """An iterator of the epoch's batches (close it when done)."""
        if isinstance(self.data, Dataset):
            return self._dataset(epoch, seed, steps)
        source = self.data if _is_iterator(self.data) else iter(self.data)
        if self.pending is not None:
            source, self.pending = itertools.chain([self.pending], source), None
        return (self.check(batch, k) for k, batch in enumerate(itertools.islice(source, steps)))

    def _dataset(self, epoch, seed, steps):
        ds, b = self.data, self.model.backend
        order, slices = ds.order(epoch, seed), ds.slices(epoch)[:steps]
        if order is not None and isinstance(self.x, b.array_type) and b.name != "numpy":
            order = b.xp.asarray(order, device=b.device)  # rows taken on the device
        dtypes = (self.model.dtype_name, self.y_dtype)
        items = _dataset_batches(self.x, self.y, self.w, dtypes, order, slices, b,
                                 pinned=ds.buffer > 0)
        return Prefetch(items, ds.buffer) if ds.buffer else items


class Validation:
    """``validation_data`` given as a pipeline (or as arrays next to one)."""

    def __init__(self, model, data, steps, batch_size):
        if _array_tuple(data):
            data = Dataset(*data, batch_size=batch_size, shuffle=False)
        self.steps = _steps(steps, "validation_steps")
        if _is_iterator(data) and self.steps is None:
            raise ValueError("validation_data is a one-shot iterator (a generator): give "
                             "validation_steps, the batches to evaluate each epoch")
        self.data, self.model, self.batches = data, model, None

    def validate(self):
        """The loss and metrics over the validation batches (one host read)."""
        model = self.model
        if self.batches is None:
            self.batches = _Batches(model, self.data, "validation_data")
        jit = _compiled.steps(model)
        losses, parts, slices = [], [[] for _ in model.metrics], []
        it = self.batches.epoch(0, 0, self.steps)
        try:
            for xb, yb, wb in it:
                loss, sums = eval_batch(model, jit, xb, yb, wb)
                _append(losses, parts, slices, loss, sums, xb)
        finally:
            _close(it)
        if not losses:
            raise ValueError("validation_data yielded no batch (a generator that ran out?)")
        return EL.read_logs(model, losses, parts, slices)


def _append(losses, parts, slices, loss, sums, xb):
    start = slices[-1][1] if slices else 0
    slices.append((start, start + int(xb.shape[0])))
    losses.append(loss)
    for p, value in zip(parts, sums):
        p.append(value)


def _close(it):
    close = getattr(it, "close", None)
    if close is not None:
        close()


class FitSource:
    """One ``fit``'s input pipeline: its checks and refusals, then an epoch at a time."""

    def __init__(self, model, x, y, batch_size, shuffle, steps_per_epoch, validation_data,
                 validation_split, validation_steps, distributed, sample_weight, class_weight):
        from . import _distributed_fit as _dp

        if validation_split:
            raise ValueError("validation_split needs arrays (as Keras, not a generator or "
                             "Dataset): give validation_data")
        if sample_weight is not None:
            raise ValueError("with an input pipeline, the weights come in the batches: "
                             "(x, y, sample_weight), or Dataset(x, y, sample_weight)")
        if _dp.plan(distributed, model) is not None:
            raise NotImplementedError("fit(distributed=...) takes arrays, not an input "
                                      "pipeline: each rank takes its rows of the arrays")
        self.model, self.steps_per_epoch = model, _steps(steps_per_epoch, "steps_per_epoch")
        self.batches = _Batches(model, x, "x", class_weight)
        self.validator = None if validation_data is None else \
            Validation(model, validation_data, validation_steps, batch_size)
        n = len(self.batches) if hasattr(x, "__len__") and not _is_iterator(x) else None
        self.steps = n if self.steps_per_epoch is None else (
            self.steps_per_epoch if n is None else min(n, self.steps_per_epoch))
        self.params = {"batch_size": x.batch_size if isinstance(x, Dataset) else None,
                       "steps": self.steps_per_epoch or n}

    def train_epoch(self, epoch, base_seed, bar, hooks):
        """The epoch's logs, or None when the data ran out before its first batch (then
        training stops with a warning, as Keras)."""
        it = self.batches.epoch(epoch, base_seed, self.steps_per_epoch)
        try:
            logs, count = run_batches(self.model, it, bar, epoch, hooks)
        finally:
            _close(it)
        wanted = self.steps_per_epoch
        if count == 0 or (wanted is not None and count < wanted and not self.model.stop_training):
            model = self.model
            model.stop_training = True
            model.stop_reason = (f"the input ran out of data in epoch {epoch + 1} after "
                                 f"{count} batches")
            warnings.warn("xpnet: your input ran out of data; interrupting training. Make sure "
                          "that it can generate at least steps_per_epoch * epochs batches "
                          f"({model.stop_reason}).", UserWarning, stacklevel=4)
            if bar is not None and count == 0:
                bar.close()
        return logs


def run_batches(model, batches, bar, epoch, hooks=None):
    """One training step per batch of ``batches`` (``(x, y, w)`` arrays of the backend,
    through the compiled step where ``jit_compile`` made one): ``(logs, batches run)``,
    the logs None when there was no batch."""
    from .training import train_step

    params, state = model.get_params(trainable_only=True), model.opt_state
    jit = _compiled.steps(model)
    if jit is not None:
        state = jit.begin_epoch(params, state)
    total = bar.total if bar is not None else None
    refresh = max(1, -(-total // EL.BAR_UPDATES)) if total else None
    losses, parts, slices = [], [[] for _ in model.metrics], []
    if hooks is not None:
        hooks.epoch(losses, parts, slices)
    for b, (xb, yb, wb) in enumerate(batches):
        if hooks is not None:
            hooks.begin(b)
        if jit is not None:  # the compiled step on the given batch
            params, state, loss, sums = jit.train_step(params, state, xb, yb, wb)
        else:
            params, state, loss, y_pred = train_step(model, model.optimizer, params, state,
                                                     xb, yb, wb)
            sums = [metric.batch_sum(y_pred, yb) for metric in model.metrics]
        _append(losses, parts, slices, loss, sums, xb)
        # unknown length: the bar refreshes at batches 1, 2, 4, 8 ... (a host read each)
        if bar is not None and ((b + 1) % refresh == 0 or b + 1 == total if refresh
                                else not b & (b + 1)):
            bar.update(b + 1 - bar.n)
            bar.set_postfix(EL.read_logs(model, losses, parts, slices), refresh=False)
        if hooks is not None:
            hooks.end(b)
            if model.stop_training:
                break
    if jit is not None:
        state = jit.end_epoch(state)
    if not losses:
        return None, 0
    if bar is not None:
        bar.update(len(losses) - bar.n)
    return EL.finish_epoch(model, params, state, losses, parts, slices, bar, epoch), len(losses)
