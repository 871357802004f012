"""``xn.data.Dataset``: arrays cut into batches, with a background prefetch.

    ds = xn.data.Dataset(x, y, batch_size=100, seed=0).prefetch(2)
    model.fit(ds, epochs=5)

A small cousin of ``tf.data``: it shuffles (each epoch's order depends only on the seed
and the epoch, as ``fit(x, y, seed=...)``'s), drops a short last batch on request, and
with :meth:`Dataset.prefetch` prepares the next batches (host slicing, the cast, the move
to the device) in a thread while the current one trains. The thread stops when the epoch
ends, early or not, or raises.
"""
from __future__ import annotations

import queue
import threading

from . import _validate as V
from . import backend as B
from . import data as D

__all__ = ["Dataset", "Prefetch"]


class Dataset:
    """Batches of ``(x, y)`` or ``(x, y, sample_weight)`` for :meth:`Sequential.fit`.

    Parameters
    ----------
    x, y : arrays
        NumPy arrays (moved a batch at a time) or arrays of the active backend; checked
        once by ``fit`` as ``fit(x, y)`` checks them.
    sample_weight : array of shape (n,), optional
        The rows' weights.
    batch_size : int
        Rows per batch.
    shuffle : bool
        Shuffle every epoch (as ``fit``'s default).
    seed : int, optional
        The shuffling's seed; default: the seed ``fit`` uses (its ``seed``, else the
        model's), so ``fit(Dataset(x, y, batch_size=b))`` runs as ``fit(x, y, batch_size=b)``.
    drop_remainder : bool
        Leave out a last batch shorter than ``batch_size``.
    """

    def __init__(self, x, y, sample_weight=None, *, batch_size=32, shuffle=True, seed=None,
                 drop_remainder=False):
        self.batch_size = D.check_batch_size(batch_size)
        self.seed = V.check_seed(seed, "Dataset(seed)")
        self.shuffle, self.drop_remainder = bool(shuffle), bool(drop_remainder)
        if not hasattr(x, "shape") or not hasattr(y, "shape"):
            x, y = B.host_asarray(x), B.host_asarray(y)
        D.check_xy(x, y)
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.buffer = 0
        self._epoch = 0
        if not self.slices(0):
            raise ValueError(f"Dataset: drop_remainder leaves no batch of {self.batch_size} "
                             f"rows in {D.num_rows(x)}")

    def prefetch(self, buffer_size=2):
        """A copy of this Dataset that prepares ``buffer_size`` batches ahead in a thread."""
        copy = object.__new__(Dataset)
        copy.__dict__.update(self.__dict__)
        copy.buffer = V.positive_int(buffer_size, "prefetch(buffer_size)")
        return copy

    def __len__(self):
        return len(self.slices(0))

    def __repr__(self):
        return (f"Dataset(rows={D.num_rows(self.x)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, prefetch={self.buffer})")

    def slices(self, epoch, seed=None):
        """``(start, stop)`` of each batch (the short last one left out with
        ``drop_remainder``)."""
        n = D.num_rows(self.x)
        slices = D.batch_slices(n, self.batch_size)
        if self.drop_remainder and slices[-1][1] - slices[-1][0] < self.batch_size:
            slices = slices[:-1]
        return slices

    def order(self, epoch, seed):
        """The epoch's row order as a host array (None: in order)."""
        if not self.shuffle:
            return None
        seed = self.seed if self.seed is not None else seed
        return B.host_rng([seed, epoch]).permutation(D.num_rows(self.x))

    def __iter__(self):
        """The batches as they are stored (host or device rows, not cast), one epoch a
        call (the order of epoch 0, 1, ...), for a loop of one's own."""
        epoch, self._epoch = self._epoch, self._epoch + 1
        order = self.order(epoch, self.seed if self.seed is not None else 0)
        arrays = [a for a in (self.x, self.y, self.sample_weight) if a is not None]
        for i, j in self.slices(epoch):
            index = slice(i, j) if order is None else order[i:j]
            yield tuple(_rows(a, index) for a in arrays)


def _rows(a, index):
    if isinstance(index, slice) or B.library_of(a) == "numpy":
        return a[index, ...] if isinstance(index, slice) else a[index]
    b = B.backend_of(a)
    return b.xp.take(a, b.xp.asarray(index, device=b.device), axis=0)


def batches(x, y, w, dtypes, order, slices, backend, pinned=False):
    """The batches of rows ``order[i:j]`` (or ``i:j``) as arrays of ``backend``, cast to
    ``dtypes`` (x's and w's, y's); ``pinned``: host rows go through page-locked memory
    where the backend offers it (its ``pinned`` field: CuPy, torch on CUDA)."""
    move = backend.pinned if pinned and backend.pinned is not None and not backend.on_host \
        else None
    for i, j in slices:
        index = slice(i, j) if order is None else order[i:j]
        out = []
        for a, dtype in ((x, dtypes[0]), (y, dtypes[1]), (w, dtypes[0])):
            if a is None:
                out.append(None)
            elif move is not None and B.library_of(a) == "numpy":
                out.append(move(B.host_cast(a[index], dtype), backend))
            else:
                out.append(D.take_rows(a, index, backend, dtype))
        yield tuple(out)


class Prefetch:
    """Iterate ``items`` (an iterator) in a background thread, ``size`` items ahead.

    :meth:`close` stops the thread and waits for it; the thread also ends by itself when
    ``items`` is exhausted or raises (the error is raised here, in the consumer).
    """

    def __init__(self, items, size):
        self._queue = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        self._done = False
        self.thread = threading.Thread(target=self._work, args=(items,), daemon=True,
                                       name="xpnet-prefetch")
        self.thread.start()

    def _work(self, items):
        try:
            for item in items:
                if not self._put((True, item)):
                    return
            self._put((False, None))
        except BaseException as exc:  # handed to the consumer
            self._put((False, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def _put(self, entry):
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        ok, item = self._queue.get()
        if ok:
            return item
        self.close()
        if item is None:
            raise StopIteration
        raise item

    def close(self):
        """Stop the thread (it finishes the batch it is preparing) and wait for it."""
        self._done = True
        self._stop.set()
        self.thread.join()
