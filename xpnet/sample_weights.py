"""``sample_weight`` and ``class_weight`` for ``fit`` and ``evaluate``, as Keras 3 has them.

A sample weight scales one row's loss and gradient; the loss of a batch stays the sum
of the weighted per-row losses divided by the batch's rows (Keras' default reduction
``"sum_over_batch_size"``), so a weight of 0 takes a row out without renormalising
the others. ``class_weight={class: weight}`` is a sample weight looked up from each
row's label (classes it does not name weigh 1.0), used in ``fit`` only, as Keras does.
The ``metrics`` of ``compile`` are not weighted; its ``weighted_metrics`` are.
"""
from __future__ import annotations

import numbers

from array_api_compat import array_namespace, device

from . import backend as B
from . import data as D

__all__ = ["prepare_weights", "class_weights"]


def prepare_weights(sample_weight, class_weight, x, y, backend, dtype_name):
    """The per-row weights of ``(x, y)`` as a 1-d array (host NumPy for host data, the
    backend's for device data; batches of it are cast to ``dtype_name``, the model's
    float type), or None when neither argument is given."""
    if sample_weight is not None and class_weight is not None:
        raise ValueError("fit takes sample_weight or class_weight, not both (as Keras): "
                         "multiply the class weights into sample_weight yourself")
    if class_weight is not None:
        return class_weights(y, class_weight, dtype_name)
    if sample_weight is None:
        return None
    w = D.as_data(sample_weight, backend, "sample_weight")
    if B.library_of(w) == "numpy" and B.library_of(x) != "numpy":
        w = B.asarray(w, backend=backend)  # with device data, on the device at once
    return _check(w, D.num_rows(x))


def _check(w, n):
    xp = array_namespace(w)
    if w.ndim == 2 and w.shape[1] == 1:
        w = xp.reshape(w, (-1,))
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight must have one weight per row, shape ({n},), "
                         f"got shape {tuple(w.shape)}")
    if not xp.isdtype(w.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"sample_weight must hold numbers, got dtype {w.dtype}")
    if xp.isdtype(w.dtype, "real floating") and not bool(xp.all(xp.isfinite(w))):
        raise ValueError("sample_weight holds NaN or inf")
    if bool(xp.any(w < 0)):
        raise ValueError(f"sample_weight holds negative weights (the least is {float(xp.min(w)):g}); "
                         "a negative weight would push that row's loss up")
    return w


def class_weights(y, class_weight, dtype_name="float32"):
    """Per-row weights ``class_weight[label]`` (1.0 for a class not in the dict), the label
    being an integer label, the arg-max of a one-hot row, or a 0/1 target rounded -- as
    Keras 3 maps ``class_weight`` onto the rows. Computed where ``y`` is."""
    if not isinstance(class_weight, dict) or not class_weight:
        raise TypeError(f"class_weight must be a non-empty dict {{class index: weight}}, "
                        f"got {class_weight!r}")
    for k, v in class_weight.items():
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 0:
            raise ValueError(f"class_weight keys are class indices (ints >= 0), got {k!r}")
        if not isinstance(v, numbers.Real) or not v >= 0 or v == float("inf"):
            raise ValueError(f"class_weight[{k}] must be a finite number >= 0, got {v!r}")
    xp = array_namespace(y)
    if y.ndim > 2:
        raise ValueError(f"class_weight takes targets of shape (n,), (n, 1) or (n, classes), "
                         f"got {tuple(y.shape)}")
    if y.ndim == 2 and y.shape[1] > 1:
        labels = xp.argmax(y, axis=1)
    else:
        labels = xp.reshape(y, (-1,))
        if xp.isdtype(labels.dtype, "real floating"):
            labels = xp.round(labels)
        labels = xp.astype(labels, xp.int64)
    size = max(int(k) for k in class_weight) + 1
    table = xp.asarray([float(class_weight.get(c, 1.0)) for c in range(size)],
                       dtype=getattr(xp, dtype_name), device=device(y))
    inside = (labels >= 0) & (labels < size)
    picked = xp.take(table, xp.where(inside, labels, xp.zeros_like(labels)), axis=0)
    return xp.where(inside, picked, xp.ones_like(picked))
