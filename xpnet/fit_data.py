"""The arrays ``fit`` and ``evaluate`` take, checked against the model once per call
(:func:`prepare`), and ``fit``'s validation rows (:func:`split_validation`)."""
from __future__ import annotations

from . import backend as B
from . import data as D
from . import sample_weights as SW

__all__ = ["prepare", "split_validation"]


def prepare(model, x, y, name=""):
    """Check ``x``/``y`` against the model (built from ``x`` if needed), once per call;
    return them with the dtype name targets are moved with."""
    backend = model.backend if model.built else B.current()
    x = D.as_data(x, backend, name + "x")
    y = D.as_data(y, backend, name + "y")
    D.check_xy(x, y)
    model.check_input(x)
    D.check_finite(x, name + "x", model.dtype_name)  # as the model sees it, after the cast
    D.check_finite(y, name + "y", None if model.loss.sparse else model.dtype_name)
    y_dtype = D.check_targets(y, model.loss, model.output_shape, name + "y") or model.dtype_name
    return x, y, model.backend.dtype_name(y_dtype)  # int64 labels: int32 on JAX without x64


def split_validation(model, x, y, w, validation_data, validation_split):
    """``(x, y, w, val)``: the training rows (and their weights) and the prepared
    validation data ``(x, y, y_dtype, w)``, or None."""
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise TypeError("validation_data must be a tuple (x_val, y_val) or "
                            "(x_val, y_val, sample_weight_val)")
        val = prepare(model, *validation_data[:2], name="val_")
        vw = validation_data[2] if len(validation_data) == 3 else None
        vw = SW.prepare_weights(vw, None, val[0], val[1], model.backend, model.dtype_name)
        return x, y, w, (*val, vw)
    if validation_split == 0:
        return x, y, w, None
    n = D.num_rows(x)
    n_val = int(n * validation_split)
    if n_val == 0 or n_val == n:
        raise ValueError(f"validation_split={validation_split} leaves no rows on one side of {n}")
    val = prepare(model, x[n - n_val:, ...], y[n - n_val:, ...], name="val_")
    if w is None:
        return x[:n - n_val, ...], y[:n - n_val, ...], None, (*val, None)
    return x[:n - n_val, ...], y[:n - n_val, ...], w[:n - n_val], (*val, w[n - n_val:])
