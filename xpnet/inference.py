"""The inference methods of :class:`~xpnet.Sequential`: ``model(x)``, ``predict`` and
``evaluate``. They keep nothing in the layers, so any number of threads may run them on
one model (training is one thread's: :func:`xpnet.training.claim`)."""
from __future__ import annotations

from . import backend as B
from . import compiled as _compiled
from . import data as D
from . import _dask
from .evaluation import run_evaluate

__all__ = ["Inference"]


class Inference:
    """``model(x)``, ``predict`` and ``evaluate`` of :class:`~xpnet.Sequential`."""

    def __call__(self, x, training=False):
        """A direct forward pass on one batch (NumPy data is moved to the backend).

        An unbuilt model without a declared input shape is built from ``x``.
        """
        self._require_layers("run")
        if not training and (jit := _compiled.steps(self)) is not None:
            return jit.call(x)
        backend = self.backend if self.built else B.current()
        if not isinstance(x, backend.array_type) or backend.name in ("torch", "cupy"):
            x = B.asarray(x, backend=backend)
        self.check_input(x)
        if x.dtype != backend.float_dtype(self.dtype_name):
            x = backend.xp.astype(x, backend.float_dtype(self.dtype_name))
        return self.forward(x, training)

    def predict(self, x, batch_size=32, verbose=0, check_finite=True):
        """Outputs for ``x``, computed ``batch_size`` rows at a time.

        Memory is bounded by the batch, not by the input. NumPy input gives a NumPy
        result; an array of the active backend gives one of the same backend.
        ``x`` is checked for NaN/inf as the model computes with it (on a CPU backend through
        the first Dense's product, :func:`xpnet.data.first_product_check`; device data once,
        before the loop). ``check_finite=False`` skips that, for data known to be clean.
        ``verbose`` is accepted for code written for Keras; predict shows no progress.
        An unbuilt model without a declared input shape is built from ``x``.
        A Dask array gives a lazy Dask array: one in-memory predict per block of rows, on
        whatever scheduler Dask uses (threads, or a ``dask.distributed`` cluster).
        """
        batch_size = D.check_batch_size(batch_size)
        self._require_layers("predict")
        if _dask.is_dask_array(x):
            return _dask.predict(self, x, batch_size, check_finite)
        x = D.as_data(x, self.backend if self.built else B.current())
        D.check_xy(x, None)
        self.check_input(x)
        slices = D.batch_slices(D.num_rows(x), batch_size)
        fast = (check_finite and _compiled.steps(self) is None  # compiled: one call a batch
                and D.first_product_check(self.layers, x, self.backend, self.dtype_name))
        check = (D.finite_checker(x, batch_size, dtype=self.dtype_name)
                 if check_finite and not fast else None)
        outs = self._predict_batches(x, slices, check, fast)
        if B.library_of(x) == "numpy":  # into one host array: output + a batch, not twice
            return D.gather_on_host(outs, slices, self.backend)
        outs = list(outs)
        return outs[0] if len(outs) == 1 else self.backend.xp.concat(outs, axis=0)

    def _predict_batches(self, x, slices, check, fast):
        for i, j in slices:
            if check is not None:  # before the cast: float64 data may overflow float32
                check(i, j)
            h = D.take_rows(x, slice(i, j), self.backend, self.dtype_name)
            yield fast(h, i, j) if fast else self.forward(h, False)

    def evaluate(self, x, y, batch_size=32, verbose=1, return_dict=False, sample_weight=None):
        """Loss then metrics over ``(x, y)``, in the order given to ``compile`` (as Keras).

        ``sample_weight`` weighs the rows' losses as in ``fit``. Dask arrays are evaluated
        block by block where Dask runs them, and the sums added up there: only the
        numbers come back.
        """
        self._require_compiled("evaluate")
        self._require_layers("evaluate")
        if _dask.is_dask_array(x):
            if sample_weight is not None:
                raise NotImplementedError(
                    "evaluate on Dask arrays does not take sample_weight yet: evaluate "
                    "in-memory blocks (x.compute()) with their weights")
            logs = _dask.evaluate(self, x, y, D.check_batch_size(batch_size))
        else:
            logs = run_evaluate(self, x, y, batch_size=batch_size, verbose=verbose,
                                sample_weight=sample_weight)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values
