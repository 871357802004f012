"""Metrics for :class:`xpnet.Sequential`: "accuracy", "mae", "mse", "precision", "recall",
"auc" ...

A metric returns the *sum* over the batch as a 0-d array on the device, so the model
can add batches up without a host sync and divide once per epoch. A metric that is not
a mean over the rows (precision, AUC) returns a 1-D array of additive statistics
instead (confusion counts) and turns their sums into its value in :meth:`Metric.result`.
"""
from __future__ import annotations

import math

from array_api_compat import array_namespace, device

__all__ = ["Metric", "SparseCategoricalAccuracy", "CategoricalAccuracy", "BinaryAccuracy",
           "MeanAbsoluteError", "MeanSquaredError", "TopKCategoricalAccuracy",
           "SparseTopKCategoricalAccuracy", "Precision", "Recall", "AUC", "get_metric",
           "METRICS"]


class Metric:
    """Base class: ``batch_sum(y_pred, t)`` -> the metric summed over the batch.

    The loops add the batches' values up on the device (over the ranks too, in a
    data-parallel fit) and log ``result(total, rows)``: the mean over the rows unless a
    subclass returns a 1-D array of statistics (``stat_shape``) and its own ``result``.
    """

    name = "metric"

    def batch_sum(self, y_pred, t):
        raise NotImplementedError

    def stat_shape(self, output_shape) -> tuple:
        """The shape of ``batch_sum``'s value for a model's ``output_shape``: ``()``, or
        ``(k,)`` for ``k`` additive statistics."""
        return ()

    def result(self, total, n) -> float:
        """The logged value from ``total``, the sum of the batches' values (an array on the
        device), over ``n`` rows: ``total / n`` (one host read)."""
        return float(total) / n

    def __repr__(self):
        return f"{type(self).__name__}()"


def _like(xp, t, y, name):
    """Targets in the predictions' shape and float type, as Keras casts them (``(n,)``
    targets fit a one-unit output); another shape is a ValueError, not a broadcast."""
    if t.shape != y.shape:
        if tuple(t.shape) + (1,) != tuple(y.shape) and tuple(t.shape) != tuple(y.shape) + (1,):
            raise ValueError(
                f"metric {name!r}: targets of shape {tuple(t.shape)} do not fit predictions of "
                f"shape {tuple(y.shape)} (it compares values of the same shape; class labels "
                "go with 'accuracy')"
            )
        t = xp.reshape(t, y.shape)
    return t if t.dtype == y.dtype else xp.astype(t, y.dtype)


def _per_sample_mean(xp, values):
    """Mean over every axis but the batch axis, then summed over the batch."""
    if values.ndim == 1:
        return xp.sum(values)
    return xp.sum(values) / math.prod(values.shape[1:])


class SparseCategoricalAccuracy(Metric):
    """Share of rows whose arg-max equals the integer label."""

    name = "accuracy"

    def batch_sum(self, y_pred, t):
        xp = array_namespace(y_pred)
        if t.ndim == y_pred.ndim and t.shape[-1] == 1:
            t = xp.reshape(t, t.shape[:-1])
        if tuple(t.shape) != tuple(y_pred.shape[:-1]):
            raise ValueError(
                f"SparseCategoricalAccuracy takes integer labels of shape (n,) or (n, 1), got "
                f"{tuple(t.shape)} for predictions {tuple(y_pred.shape)} (one-hot targets go "
                "with CategoricalAccuracy)"
            )
        index = xp.argmax(y_pred, axis=-1)
        hits = index == xp.astype(t, index.dtype)
        return xp.sum(xp.astype(hits, y_pred.dtype))


class CategoricalAccuracy(Metric):
    """Share of rows whose arg-max equals the arg-max of the one-hot target."""

    name = "accuracy"

    def batch_sum(self, y_pred, t):
        xp = array_namespace(y_pred)
        if t.shape != y_pred.shape:
            raise ValueError(
                f"CategoricalAccuracy takes one-hot targets of the predictions' shape "
                f"{tuple(y_pred.shape)}, got {tuple(t.shape)}; for integer class labels use "
                "SparseCategoricalAccuracy (or 'accuracy' with sparse_categorical_crossentropy)"
            )
        hits = xp.argmax(y_pred, axis=-1) == xp.argmax(t, axis=-1)
        return xp.sum(xp.astype(hits, y_pred.dtype))


class BinaryAccuracy(Metric):
    """Share of outputs on the right side of ``threshold`` (0.5), averaged per row.

    ``"accuracy"`` with ``BinaryCrossentropy(from_logits=True)`` gets ``threshold=0``:
    a raw score of 0 is a probability of 0.5.
    """

    name = "accuracy"

    def __init__(self, threshold=0.5):
        self.threshold = threshold

    def batch_sum(self, y_pred, t):
        xp = array_namespace(y_pred)
        t = _like(xp, t, y_pred, self.name)
        hits = (y_pred > self.threshold) == (t > 0.5)
        return _per_sample_mean(xp, xp.astype(hits, y_pred.dtype))


class MeanAbsoluteError(Metric):
    """Mean absolute error ``mean(|y - t|)`` (Keras' "mae")."""

    name = "mae"

    def batch_sum(self, y_pred, t):
        xp = array_namespace(y_pred)
        t = _like(xp, t, y_pred, self.name)
        return _per_sample_mean(xp, xp.abs(y_pred - t))


class MeanSquaredError(Metric):
    """Mean squared error ``mean((y - t)**2)`` (Keras' "mse")."""

    name = "mse"

    def batch_sum(self, y_pred, t):
        xp = array_namespace(y_pred)
        t = _like(xp, t, y_pred, self.name)
        d = y_pred - t
        return _per_sample_mean(xp, d * d)


class SparseTopKCategoricalAccuracy(Metric):
    """Share of rows whose integer label is among the ``k`` highest scores (Keras' default
    ``k=5``). Ties at the boundary count as in: a label is in the top ``k`` when fewer than
    ``k`` scores are strictly greater than its own (TensorFlow's ``in_top_k``)."""

    name = "sparse_top_k_categorical_accuracy"

    def __init__(self, k=5):
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"{type(self).__name__}(k) must be an int >= 1, got {k!r}")
        self.k = k

    def _labels(self, xp, y_pred, t):
        if t.ndim == y_pred.ndim and t.shape[-1] == 1:
            t = xp.reshape(t, t.shape[:-1])
        if tuple(t.shape) != tuple(y_pred.shape[:-1]):
            raise ValueError(f"{type(self).__name__} takes integer labels of shape (n,) or "
                             f"(n, 1), got {tuple(t.shape)} for predictions {tuple(y_pred.shape)}")
        # the labels' own integer type (JAX without 64-bit types has no int64)
        return t if xp.isdtype(t.dtype, "integral") else xp.astype(t, xp.int32)

    def batch_sum(self, y_pred, t):
        xp = array_namespace(y_pred)
        t = self._labels(xp, y_pred, t)
        classes = xp.arange(y_pred.shape[-1], dtype=t.dtype, device=device(y_pred))
        one_hot = xp.astype(classes == xp.expand_dims(t, axis=-1), y_pred.dtype)
        own = xp.sum(one_hot * y_pred, axis=-1, keepdims=True)  # each row's label's score
        above = xp.sum(xp.astype(y_pred > own, xp.int32), axis=-1)
        return xp.sum(xp.astype(above < self.k, y_pred.dtype))


class TopKCategoricalAccuracy(SparseTopKCategoricalAccuracy):
    """:class:`SparseTopKCategoricalAccuracy` for one-hot targets (the label is the arg-max)."""

    name = "top_k_categorical_accuracy"

    def _labels(self, xp, y_pred, t):
        if t.shape != y_pred.shape:
            raise ValueError(f"TopKCategoricalAccuracy takes one-hot targets of the predictions' "
                             f"shape {tuple(y_pred.shape)}, got {tuple(t.shape)}")
        return xp.argmax(t, axis=-1)


METRICS = ("accuracy", "acc", "mae", "mean_absolute_error", "mse", "mean_squared_error",
           "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "precision",
           "recall", "auc")


def get_metric(spec, loss=None, output_units=None) -> Metric:
    """A metric from a name or an instance.

    "accuracy" picks its form from the loss, as Keras does: sparse labels for
    sparse_categorical_crossentropy, one-hot for categorical_crossentropy, a 0.5 threshold
    for binary_crossentropy or a one-unit output (0 for raw scores: ``from_logits=True``).
    "precision" and "recall" take threshold 0 and "auc" a sigmoid first after a loss with
    ``from_logits=True``.
    """
    if isinstance(spec, Metric):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"a metric is a name or a Metric, got {type(spec).__name__}")
    key = spec.lower()
    if key in ("accuracy", "acc"):
        loss_name = getattr(loss, "name", "")
        if getattr(loss, "sparse", False):
            return SparseCategoricalAccuracy()
        if loss_name == "binary_crossentropy" or output_units == 1:
            return BinaryAccuracy(0.0 if getattr(loss, "from_logits", False) else 0.5)
        return CategoricalAccuracy()
    if key in ("mae", "mean_absolute_error"):
        return MeanAbsoluteError()
    if key in ("mse", "mean_squared_error"):
        return MeanSquaredError()
    if key == "top_k_categorical_accuracy":
        return TopKCategoricalAccuracy()
    if key == "sparse_top_k_categorical_accuracy":
        return SparseTopKCategoricalAccuracy()
    logits = bool(getattr(loss, "from_logits", False))
    if key in ("precision", "recall"):
        return (Precision if key == "precision" else Recall)(thresholds=0.0 if logits else None)
    if key == "auc":
        return AUC(from_logits=logits)
    raise ValueError(f"unknown metric {spec!r}; valid names are: {', '.join(METRICS)}")


from .metrics_confusion import AUC, Precision, Recall  # noqa: E402  (they build on Metric)
