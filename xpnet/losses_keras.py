"""Keras' other losses: MeanAbsoluteError, Huber, Hinge, KLDivergence, LogCosh, and a loss
from a plain function.

Keras 3's semantics and default reduction (``"sum_over_batch_size"``): the per-sample loss
is the mean over the last axis (KL divergence: the sum), and the loss is the mean of the
per-sample losses over the batch. Each gives its gradient with respect to the predictions
by its own formula (xpnet has no autodiff).
"""
from __future__ import annotations

import math

from array_api_compat import array_namespace, device
from array_api_compat import size as _size

from . import _validate as V
from .loss_base import EPSILON, Loss, rows_mean, rows_sum

__all__ = ["MeanAbsoluteError", "Huber", "Hinge", "KLDivergence", "LogCosh", "FunctionLoss",
           "KERAS_LOSSES"]


def _zero(x):
    return array_namespace(x).zeros((), dtype=x.dtype, device=device(x))


class _Elementwise(Loss):
    """``mean(f(y - t))`` over every element (the mean over the last axis, then over the
    batch, is the same number); subclasses give ``f`` and ``f'`` of the difference."""

    def value_and_grad(self, y, t):
        d = y - self.prepare_target(t, y)
        size = _size(d)
        f, df = self._f(array_namespace(y), d)
        return array_namespace(y).sum(f) / size, df / size

    def per_sample(self, y, t):
        xp = array_namespace(y)
        return rows_mean(xp, self._f(xp, y - self.prepare_target(t, y))[0])


class MeanAbsoluteError(_Elementwise):
    """``mean(|y - t|)`` (Keras' "mae"); gradient ``sign(y - t) / size`` (0 where equal)."""

    name = "mae"

    def _f(self, xp, d):
        return xp.abs(d), xp.sign(d)


class Huber(_Elementwise):
    """``0.5 * d**2`` where ``|d| <= delta``, else ``delta * (|d| - 0.5 * delta)``, for
    ``d = y - t``, averaged (Keras' ``Huber(delta=1.0)``); gradient ``clip(d, -delta, delta)``."""

    name = "huber"

    def __init__(self, delta=1.0):
        self.delta = V.positive_float(delta, "Huber(delta)")

    def _f(self, xp, d):
        a = xp.abs(d)
        quadratic = a <= self.delta
        f = xp.where(quadratic, 0.5 * d * d, self.delta * (a - 0.5 * self.delta))
        return f, xp.where(quadratic, d, self.delta * xp.sign(d))

    def __repr__(self):
        return f"Huber(delta={self.delta})"


class LogCosh(_Elementwise):
    """``mean(log(cosh(y - t)))`` (Keras' "log_cosh"), computed as
    ``|d| + log1p(exp(-2|d|)) - log(2)`` (no overflow of cosh); gradient ``tanh(d)``."""

    name = "log_cosh"

    def _f(self, xp, d):
        a = xp.abs(d)
        return a + xp.log1p(xp.exp(-2.0 * a)) - math.log(2.0), xp.tanh(d)


class Hinge(Loss):
    """``mean(max(1 - t * y, 0))`` for targets in {-1, 1}; 0/1 targets are taken as
    ``2 * t - 1``, as Keras' ``Hinge`` does. Gradient ``-t / size`` where ``t * y < 1``."""

    name = "hinge"

    def _margin(self, xp, y, t):
        """``(t as -1/1, 1 - t * y)``; 0/1 labels -> -1/1, decided on the device."""
        t = self.prepare_target(t, y)
        t = xp.astype(t, y.dtype) if t.dtype != y.dtype else t
        t = xp.where(xp.all((t == 0.0) | (t == 1.0)), 2.0 * t - 1.0, t)
        return t, 1.0 - t * y

    def value_and_grad(self, y, t):
        xp = array_namespace(y)
        t, margin = self._margin(xp, y, t)
        size = _size(y)
        active = xp.astype(margin > 0, y.dtype)
        return xp.sum(xp.maximum(margin, _zero(margin))) / size, -t * active / size

    def per_sample(self, y, t):
        xp = array_namespace(y)
        margin = self._margin(xp, y, t)[1]
        return rows_mean(xp, xp.maximum(margin, _zero(margin)))


class KLDivergence(Loss):
    """``sum(t * log(t / y))`` over the last axis, averaged over the batch, with ``t`` and
    ``y`` clipped to ``[1e-7, 1]`` first (Keras' "kl_divergence"); gradient ``-t / y / n``
    where ``y`` is inside the clip, 0 elsewhere."""

    name = "kl_divergence"

    def _clipped(self, xp, y, t):
        t = self.prepare_target(t, y)
        t = xp.astype(t, y.dtype) if t.dtype != y.dtype else t
        return xp.minimum(xp.maximum(t, EPSILON), 1.0), xp.minimum(xp.maximum(y, EPSILON), 1.0)

    def value_and_grad(self, y, t):
        xp = array_namespace(y)
        tc, yc = self._clipped(xp, y, t)
        n = y.shape[0] if y.ndim > 1 else 1
        inside = xp.astype((y >= EPSILON) & (y <= 1.0), y.dtype)
        return xp.sum(tc * xp.log(tc / yc)) / n, -tc / yc * inside / n

    def per_sample(self, y, t):
        xp = array_namespace(y)
        tc, yc = self._clipped(xp, y, t)
        return rows_sum(xp, tc * xp.log(tc / yc))


class FunctionLoss(Loss):
    """A loss from plain functions ``fn(y_true, y_pred)`` -> per-sample losses ``(n,)`` and
    ``grad(y_true, y_pred)`` -> ``d fn / d y_pred`` (the shape of ``y_pred``), both written
    with the array API; the loss is the mean over the batch, as Keras reduces a function
    loss. The gradient is the user's: xpnet has no autodiff, so ``grad`` is required.
    """

    def __init__(self, fn, grad=None, name=None):
        if not callable(fn):
            raise TypeError(f"FunctionLoss(fn) takes a function, got {type(fn).__name__}")
        if grad is None or not callable(grad):
            raise TypeError(
                f"the loss function {getattr(fn, '__name__', fn)!r} needs its gradient: xpnet "
                "has no automatic differentiation, so pass xn.losses.FunctionLoss(fn, "
                "grad=lambda y_true, y_pred: ...) with d fn / d y_pred written with the array API")
        self.fn, self.grad = fn, grad
        self.name = name or getattr(fn, "__name__", "loss")

    def value_and_grad(self, y, t):
        xp = array_namespace(y)
        t = self.prepare_target(t, y)
        per_sample = self.fn(t, y)
        n = y.shape[0]
        if tuple(per_sample.shape) != (n,):
            raise ValueError(f"loss function {self.name!r} returned shape "
                             f"{tuple(per_sample.shape)}; it must give one loss per sample, ({n},)")
        return xp.sum(per_sample) / n, self.grad(t, y) / n

    def per_sample(self, y, t):
        return self.fn(self.prepare_target(t, y), y)

    def __repr__(self):
        return f"FunctionLoss({self.name})"


KERAS_LOSSES = {
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber,
    "hinge": Hinge,
    "kl_divergence": KLDivergence,
    "kld": KLDivergence,
    "log_cosh": LogCosh,
    "logcosh": LogCosh,
}
