"""Metrics for :class:`xpnet.Sequential`: "accuracy", "mae", "mse".

A metric returns the *sum* over the batch as a 0-d array on the device, so the model
can add batches up without a host sync and divide once per epoch.
"""
from __future__ import annotations

import math

from array_api_compat import array_namespace

__all__ = ["Metric", "SparseCategoricalAccuracy", "CategoricalAccuracy", "BinaryAccuracy",
           "MeanAbsoluteError", "MeanSquaredError", "get_metric", "METRICS"]


class Metric:
    """Base class: ``batch_sum(y_pred, t)`` -> the metric summed over the batch."""

    name = "metric"

    def batch_sum(self, y_pred, t):
        raise NotImplementedError

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


METRICS = ("accuracy", "acc", "mae", "mean_absolute_error", "mse", "mean_squared_error")


def get_metric(spec, loss=None, output_units=None) -> Metric:
    """A metric from a name or an instance.

    "accuracy" picks its form from the loss, as Keras does: sparse labels for
    sparse_categorical_crossentropy, one-hot for categorical_crossentropy, a 0.5 threshold
    for binary_crossentropy or a one-unit output (0 for raw scores: ``from_logits=True``).
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
    raise ValueError(f"unknown metric {spec!r}; valid names are: {', '.join(METRICS)}")
