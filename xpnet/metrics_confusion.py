"""Precision, Recall and AUC with Keras 3's semantics, as streaming metrics.

Each batch gives additive confusion counts (a 1-D array on the device); the loops sum
them over the batches (and over the ranks of a data-parallel fit) and
:meth:`~xpnet.metrics.Metric.result` turns the sums into the logged value, once.
A label is positive when it is non-zero, a prediction when it is strictly above the
threshold; several outputs per row (multi-label) count as that many binary decisions.
"""
from __future__ import annotations

import numbers

from array_api_compat import array_namespace, device

from .functions import sigmoid
from .metrics import Metric, _like

__all__ = ["Precision", "Recall", "AUC"]

EPSILON = 1e-7  # Keras' backend.epsilon(): the AUC thresholds' end points
NEG_INF = -1e10  # Keras' threshold for predictions out of the top k
CURVES = ("ROC", "PR")
SUMMATION_METHODS = ("interpolation", "minoring", "majoring")


def divide_no_nan(xp, a, b):
    """``a / b``, 0 where ``b == 0`` (Keras' ``ops.divide_no_nan``)."""
    nonzero = b != 0
    return xp.where(nonzero, a / xp.where(nonzero, b, xp.ones_like(b)), xp.zeros_like(a))


def _check_int(value, what, low, optional=True):
    if value is None and optional:
        return None
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{what} must be an int >= {low}, got {value!r}")
    return int(value)


def _check_dtype(dtype, cls):
    if dtype is not None:
        raise ValueError(f"{cls}(dtype=...) is not supported: the counts are kept in the "
                         "model's float type and the logged value is a Python float")


def _rows_weights(xp, sample_weight, y):
    """Per-row (or per-entry) weights broadcast to ``y``'s shape, or None."""
    if sample_weight is None:
        return None
    w = sample_weight if sample_weight.dtype == y.dtype else xp.astype(sample_weight, y.dtype)
    if w.ndim == 1 and y.ndim > 1:
        w = xp.reshape(w, (w.shape[0],) + (1,) * (y.ndim - 1))
    return xp.broadcast_to(w, y.shape)


def _top_k(xp, y, k):
    """``y`` with all but each row's ``k`` largest values (last axis; ties to the lower
    index, as ``top_k``) set to ``NEG_INF``."""
    c = y.shape[-1]
    index = xp.arange(c, device=device(y))
    earlier = xp.reshape(index, (1, c)) < xp.reshape(index, (c, 1))  # [i, j]: j before i
    mine, other = xp.expand_dims(y, axis=-1), xp.expand_dims(y, axis=-2)
    ahead = (other > mine) | ((other == mine) & earlier)
    rank = xp.sum(xp.astype(ahead, xp.int32), axis=-1)
    return xp.where(rank < k, y, xp.full_like(y, NEG_INF))


class _PrecisionRecall(Metric):
    """Shared by :class:`Precision` and :class:`Recall`: the counts ``[tp, other]``, the
    other being false positives (``_other = 1``) or false negatives (``_other = 2``)."""

    _other = 1

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        cls = type(self).__name__
        _check_dtype(dtype, cls)
        self.top_k = _check_int(top_k, f"{cls}(top_k)", 1)
        self.class_id = _check_int(class_id, f"{cls}(class_id)", 0)
        given = thresholds
        if isinstance(given, (list, tuple)):
            if len(given) != 1:
                raise ValueError(
                    f"{cls}(thresholds={given!r}): one threshold per metric (its logged value "
                    f"is one number); make one {cls}(thresholds=t, name=...) per threshold")
            given = given[0]
        if given is not None and (not isinstance(given, numbers.Real) or
                                  isinstance(given, bool) or not 0 <= given <= 1):
            raise ValueError(f"Threshold values must be in [0, 1]. Received: {thresholds!r}")
        self.thresholds = thresholds
        self.threshold = float(given) if given is not None else \
            (0.5 if self.top_k is None else NEG_INF)
        self.name = name or self.name

    def __repr__(self):
        return (f"{type(self).__name__}(thresholds={self.thresholds!r}, top_k={self.top_k!r}, "
                f"class_id={self.class_id!r})")

    def stat_shape(self, output_shape):
        return (2,)

    def _counts(self, y_pred, t, sample_weight):
        """``(tp, fp, fn)`` of the batch, weighted, as 0-d arrays."""
        xp = array_namespace(y_pred)
        t = _like(xp, t, y_pred, self.name)
        w = _rows_weights(xp, sample_weight, y_pred)
        y = y_pred if self.top_k is None else _top_k(xp, y_pred, self.top_k)
        if self.class_id is not None:
            if y.ndim < 2 or self.class_id >= y.shape[-1]:
                raise ValueError(
                    f"{type(self).__name__}(class_id={self.class_id}) needs predictions of shape "
                    f"(n, classes) with more than {self.class_id} classes, got {tuple(y.shape)}")
            y, t = y[..., self.class_id], t[..., self.class_id]
            w = None if w is None else w[..., self.class_id]
        predicted = xp.astype(y > self.threshold, y.dtype)
        actual = xp.astype(t != 0, y.dtype)
        if w is not None:
            predicted, actual_w = predicted * w, actual * w
        else:
            actual_w = actual
        tp = xp.sum(predicted * actual)
        return tp, xp.sum(predicted) - tp, xp.sum(actual_w) - tp

    def batch_sum(self, y_pred, t, sample_weight=None):
        """``[tp, fp]`` (Precision) or ``[tp, fn]`` (Recall) of the batch, weighted by
        ``sample_weight`` (per row or per entry)."""
        counts = self._counts(y_pred, t, sample_weight)
        return array_namespace(y_pred).stack([counts[0], counts[self._other]])

    def result(self, total, n):
        return float(divide_no_nan(array_namespace(total), total[0], total[0] + total[1]))


class Precision(_PrecisionRecall):
    """Precision ``tp / (tp + fp)`` over every batch (Keras' ``Precision``).

    Parameters
    ----------
    thresholds : float in [0, 1], optional
        A prediction above it is positive (0.5; set 0 for raw scores). One threshold:
        a list of several is refused (the logged value is one number).
    top_k : int, optional
        Only each row's ``k`` highest predictions can be positive (threshold then -1e10).
    class_id : int, optional
        Count column ``class_id`` only.
    name : str, optional
        The logged name (default ``"precision"``).
    """

    name = "precision"


class Recall(_PrecisionRecall):
    """Recall ``tp / (tp + fn)`` over every batch (Keras' ``Recall``); the parameters are
    :class:`Precision`'s (default name ``"recall"``)."""

    name = "recall"
    _other = 2


class AUC(Metric):
    """Area under the ROC or precision-recall curve (Keras' ``AUC``), from confusion counts
    at ``num_thresholds`` thresholds.

    Parameters
    ----------
    num_thresholds : int
        Thresholds ``[-1e-7, 1/(T-1), ..., (T-2)/(T-1), 1 + 1e-7]`` (200).
    curve : {"ROC", "PR"}
    summation_method : {"interpolation", "minoring", "majoring"}
        Trapezoids for ROC, Davis & Goadrich's interpolation for PR (``"interpolation"``);
        the lower or upper Riemann sum.
    name : str, optional
        The logged name (default ``"auc"``).
    thresholds : list of float, optional
        Instead of ``num_thresholds`` (the end points are added); compared as given
        (``y > t``) unless evenly spaced.
    multi_label : bool
        One AUC per output column, averaged; else every output counts as one decision.
    from_logits : bool
        Predictions are raw scores (a sigmoid is applied first).
    """

    name = "auc"

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, dtype=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        _check_dtype(dtype, "AUC")
        if label_weights is not None:
            raise ValueError("AUC(label_weights=...) is not supported")
        if curve not in ("ROC", "PR", "roc", "pr"):
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected one of {CURVES}')
        if summation_method not in SUMMATION_METHODS + ("Interpolation", "Minoring", "Majoring"):
            raise ValueError(f'Invalid AUC summation method value: "{summation_method}". '
                             f"Expected one of {SUMMATION_METHODS}")
        if num_labels is not None and not multi_label:
            raise ValueError("`num_labels` is needed only when `multi_label` is True.")
        self.curve, self.summation_method = curve.upper(), summation_method.lower()
        self.multi_label, self.from_logits = bool(multi_label), bool(from_logits)
        self.num_labels = _check_int(num_labels, "AUC(num_labels)", 1)
        if thresholds is not None:
            inner = sorted(float(v) for v in thresholds)
            self.thresholds, self.num_thresholds = inner, len(inner) + 2
            ends = [0.0, *inner, 1.0]  # evenly spaced: Keras' bucket form, as the default
            even = all(abs(v - i / (len(ends) - 1)) <= EPSILON for i, v in enumerate(ends))
            self._inner = None if even else inner
        else:
            if not isinstance(num_thresholds, numbers.Integral) or num_thresholds <= 1:
                raise ValueError("Argument `num_thresholds` must be an integer > 1. "
                                 f"Received: num_thresholds={num_thresholds!r}")
            self.thresholds, self._inner = None, None
            self.num_thresholds = int(num_thresholds)
        self.name = name or self.name

    def __repr__(self):
        return (f"AUC(num_thresholds={self.num_thresholds}, curve={self.curve!r}, "
                f"summation_method={self.summation_method!r}, multi_label={self.multi_label})")

    def stat_shape(self, output_shape):
        labels = output_shape[-1] if self.multi_label else 1
        return (4 * self.num_thresholds * labels,)

    def _positive(self, xp, y):
        """``(labels, T, rows)``: prediction above each threshold, for ``y`` of shape
        ``(labels, rows)``."""
        count, dt = self.num_thresholds, y.dtype
        y = xp.expand_dims(y, axis=1)
        if self._inner is not None:  # given thresholds: compared as they are
            limits = xp.asarray([-EPSILON, *self._inner, 1 + EPSILON], dtype=dt, device=device(y))
            return y > xp.reshape(limits, (1, count, 1))
        # evenly spaced: Keras' buckets, p above threshold i (0 < i < T-1) when i < p (T-1)
        index = xp.reshape(xp.arange(count, dtype=dt, device=device(y)), (1, count, 1))
        return (index < xp.clip(y, 0.0, 1.0) * (count - 1)) | (index == 0)

    def batch_sum(self, y_pred, t, sample_weight=None):
        """``[tp, fp, tn, fn]`` at each threshold (and label), flattened."""
        xp = array_namespace(y_pred)
        t = _like(xp, t, y_pred, self.name)
        w = _rows_weights(xp, sample_weight, y_pred)
        y = sigmoid(y_pred, xp) if self.from_logits else y_pred
        if self.multi_label:
            if y.ndim != 2 or (self.num_labels is not None and y.shape[1] != self.num_labels):
                raise ValueError(f"AUC(multi_label=True) takes predictions of shape (n, "
                                 f"{self.num_labels or 'labels'}), got {tuple(y.shape)}")
            y, t = xp.permute_dims(y, (1, 0)), xp.permute_dims(t, (1, 0))  # (labels, rows)
            w = None if w is None else xp.permute_dims(w, (1, 0))
        else:
            y, t = xp.reshape(y, (1, -1)), xp.reshape(t, (1, -1))
            w = None if w is None else xp.reshape(w, (1, -1))
        actual = xp.astype(t != 0, y.dtype)
        predicted = xp.astype(self._positive(xp, y), y.dtype)  # (labels, T, rows)
        if w is None:  # counts of 0/1 products: a matrix product, exact in float32 to 2**24
            counts = xp.matmul(predicted, xp.stack([actual, xp.ones_like(actual)], axis=-1))
            tp, fp = counts[..., 0], counts[..., 1] - counts[..., 0]
            positives, negatives = xp.sum(actual, axis=-1), xp.sum(1 - actual, axis=-1)
        else:  # weighted: element-wise (a matrix product may round the weights, TF32)
            predicted = predicted * xp.expand_dims(w, axis=1)
            tp = xp.sum(predicted * xp.expand_dims(actual, axis=1), axis=-1)
            fp = xp.sum(predicted, axis=-1) - tp
            positives, negatives = xp.sum(actual * w, axis=-1), xp.sum(w - actual * w, axis=-1)
        fn = xp.expand_dims(positives, axis=-1) - tp
        tn = xp.expand_dims(negatives, axis=-1) - fp
        counts = xp.permute_dims(xp.stack([tp, fp, tn, fn]), (0, 2, 1))  # (4, T, labels)
        return xp.reshape(counts, (-1,))

    def result(self, total, n):
        xp = array_namespace(total)
        tp, fp, tn, fn = (xp.reshape(total, (4, self.num_thresholds, -1))[k, ...]
                          for k in range(4))
        if self.curve == "PR" and self.summation_method == "interpolation":
            by_label = _interpolate_pr(xp, tp, fp, fn)
        else:
            recall = divide_no_nan(xp, tp, tp + fn)
            if self.curve == "ROC":
                x, y = divide_no_nan(xp, fp, fp + tn), recall
            else:
                x, y = recall, divide_no_nan(xp, tp, tp + fp)
            if self.summation_method == "interpolation":
                heights = (y[:-1, ...] + y[1:, ...]) / 2
            elif self.summation_method == "minoring":
                heights = xp.minimum(y[:-1, ...], y[1:, ...])
            else:
                heights = xp.maximum(y[:-1, ...], y[1:, ...])
            by_label = xp.sum((x[:-1, ...] - x[1:, ...]) * heights, axis=0)
        return float(xp.mean(by_label))


def _interpolate_pr(xp, tp, fp, fn):
    """PR AUC per label by Davis & Goadrich's interpolation, in Keras' closed form:
    TP and P = TP + FP linear between thresholds, precision TP / P integrated exactly."""
    zero = xp.zeros_like(tp[1:, ...])
    p = tp + fp
    dtp = tp[:-1, ...] - tp[1:, ...]
    slope = divide_no_nan(xp, dtp, xp.maximum(p[:-1, ...] - p[1:, ...], zero))
    intercept = tp[1:, ...] - slope * p[1:, ...]
    both = (p[:-1, ...] > 0) & (p[1:, ...] > 0)
    ratio = xp.where(both, divide_no_nan(xp, p[:-1, ...], xp.maximum(p[1:, ...], zero)),
                     xp.ones_like(zero))
    increment = divide_no_nan(xp, slope * (dtp + intercept * xp.log(ratio)),
                              xp.maximum(tp[1:, ...] + fn[1:, ...], zero))
    return xp.sum(increment, axis=0)
