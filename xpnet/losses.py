"""Loss functions for :class:`xpnet.Sequential`, each giving the loss and its gradient.

Every loss returns the mean over the batch (a 0-d array on the device: no host sync) and
its gradient with respect to the predictions ``y``. Probabilities are clipped to
``[1e-7, 1 - 1e-7]`` before the log, as Keras does.

A cross-entropy loss fuses with its activation (``fused_activation``) as the book's
SoftmaxWithLoss does: after a Dense with that activation (:meth:`Loss.fuses_with`) the
gradient with respect to the pre-activation is ``(y - t) / n``
(:func:`~xpnet.layers.softmax_loss.fused_gradient`). With ``from_logits=True`` (Keras'
parameter, for a linear last layer) the loss goes through ``log_softmax`` / ``log_sigmoid``,
exact for any score, and its gradient is the same ``(softmax(y) - t) / n``; without it,
:meth:`Loss.check_output` refuses an output layer that gives no probabilities.
"""
from __future__ import annotations

from array_api_compat import array_namespace
from array_api_compat import size as _size

from . import functions as F
from ._registry import resolve
from .layers.activations import Linear, Relu, Sigmoid, Softmax, Tanh
from .layers.affine import Dense, output_activation
from .layers.softmax_loss import fused_gradient

__all__ = ["Loss", "MeanSquaredError", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
           "BinaryCrossentropy", "MeanAbsoluteError", "Huber", "Hinge", "KLDivergence", "LogCosh",
           "FunctionLoss", "output_activation", "get_loss", "rows_mean", "rows_sum", "LOSSES"]

EPSILON = F.EPSILON  # the one 1e-7 guard: probabilities are clipped to [EPSILON, 1 - EPSILON]
ROW_SUM_TOL = 1e-3  # how far from 1 a probability row of categorical targets may sum


class Loss:
    """Base class. Subclasses implement ``value_and_grad(y, t)``.

    ``loss(y, t)`` checks the targets' values first (one read on the host) and is meant
    for direct calls; ``value``, ``value_and_grad`` and ``fused_value_and_grad`` check
    only shapes, so a training step never waits for the device (``fit`` and ``evaluate``
    check their data once, up front, with :meth:`check_targets`).
    """

    name = "loss"
    #: the activation class this loss fuses with (see :meth:`fuses_with`), or None
    fused_activation = None
    #: True when targets are integer class labels
    sparse = False
    #: True when the predictions are raw scores (cross-entropy losses only)
    from_logits = False

    def __call__(self, y, t):
        self.prepare_target(t, y)  # a wrong shape is named before the values are read
        self.check_targets(t, y.shape[-1] if y.ndim else 1)
        return self.value(y, t)

    def value(self, y, t):
        """The mean loss alone (no gradient, no check of the values of ``t``)."""
        return self.value_and_grad(y, t)[0]

    def value_and_grad(self, y, t):
        """``(mean loss, d loss / d y)`` for predictions ``y`` and targets ``t``."""
        raise NotImplementedError

    def per_sample(self, y, t):
        """The loss of each row, shape ``(n,)``: their mean is :meth:`value`. Sample
        weights need it (:meth:`weighted_value_and_grad`); a loss of your own that is to
        take ``sample_weight`` implements it."""
        raise NotImplementedError(
            f"loss {self.name!r} gives no per-sample losses (Loss.per_sample), so it cannot "
            "take sample_weight or class_weight: implement per_sample(y, t) -> shape (n,)")

    def weighted_value(self, y, t, w):
        """The loss with per-row weights ``w``: ``sum(w * per_sample) / n`` (Keras'
        ``"sum_over_batch_size"``)."""
        return array_namespace(y).sum(self.per_sample(y, t) * w) / y.shape[0]

    def weighted_value_and_grad(self, y, t, w, fused=False):
        """``(loss, gradient)`` with per-row weights ``w`` (shape ``(n,)``), reduced as
        Keras' ``"sum_over_batch_size"``: ``sum(w * per_sample) / n``. A weight of 0 takes
        a row out of the gradient without renormalising the others. ``fused``: the
        gradient at the pre-activation, as :meth:`fused_value_and_grad`."""
        grad = self.grad_from_output(y, t) if fused else self.value_and_grad(y, t)[1]
        w_rows = array_namespace(y).reshape(w, (-1,) + (1,) * (grad.ndim - 1))
        return self.weighted_value(y, t, w), grad * w_rows

    def check_output(self, layer, units=None):
        """Raise ValueError if the model's last layer ``layer`` (with ``units`` outputs, if
        known) cannot give what this loss reads. The base class accepts every layer."""

    def check_targets(self, t, units, name="t"):
        """Raise ValueError if the values of ``t`` are not targets of this loss for
        ``units`` outputs (a read on the host). The base class accepts every value."""

    def fuses_with(self, layer) -> bool:
        """True if ``layer`` is a Dense whose activation is ``fused_activation`` (by
        ``isinstance``: :func:`output_activation`) and the loss reads probabilities: a model
        then passes ``fused_value_and_grad``'s gradient to ``layer.backward_preactivation``."""
        return (self.fused_activation is not None and not self.from_logits
                and isinstance(layer, Dense) and output_activation(layer) is self.fused_activation)

    def prepare_target(self, t, y):
        """Targets in the form the loss computes with: ``y``'s shape (one-hot for sparse
        labels). ``(n,)`` targets fit ``(n, 1)`` predictions and the other way round, as
        in Keras; any other shape than ``y``'s is a ValueError."""
        if t.shape == y.shape:
            return t
        if tuple(t.shape) + (1,) == tuple(y.shape) or tuple(t.shape) == tuple(y.shape) + (1,):
            return array_namespace(y).reshape(t, y.shape)
        raise ValueError(f"{self.name}: targets of shape {tuple(t.shape)} do not fit predictions "
                         f"of shape {tuple(y.shape)}; the targets need the predictions' shape "
                         "((n,) is accepted for a 1-unit output)")

    # book-style forward/backward, for use as the last node of a hand-built graph
    def forward(self, y, t):
        self._loss, self._grad = self.value_and_grad(y, t)
        return self._loss

    def backward(self, dout=1):
        return self._grad * dout

    def __repr__(self):
        return f"{type(self).__name__}(from_logits=True)" if self.from_logits else f"{type(self).__name__}()"


class MeanSquaredError(Loss):
    """``mean((y - t) ** 2)`` over every element (Keras' "mse").

    Note: :func:`xpnet.functions.mean_squared_error` is the book's
    ``0.5 * sum((y - t) ** 2)`` per sample, a different scale.
    """

    name = "mse"

    def value_and_grad(self, y, t):
        xp = array_namespace(y)
        diff = y - self.prepare_target(t, y)
        size = _size(diff)
        return xp.sum(diff * diff) / size, diff * (2.0 / size)

    def per_sample(self, y, t):
        diff = y - self.prepare_target(t, y)
        return rows_mean(array_namespace(y), diff * diff)


def rows_mean(xp, v):
    """The mean of ``v`` over every axis but the first: one value per row."""
    return xp.mean(xp.reshape(v, (v.shape[0], -1)), axis=1)


def rows_sum(xp, v):
    """The sum of ``v`` over every axis but the first: one value per row."""
    return xp.sum(xp.reshape(v, (v.shape[0], -1)), axis=1)


def _clip(xp, y):
    # minimum/maximum rather than xp.clip: array-api-compat wraps NumPy's clip in Python
    # code that costs more than the whole loss on a batch of 100
    return xp.minimum(xp.maximum(y, EPSILON), 1.0 - EPSILON)


def _numbers(t, name):
    """``t``'s namespace; TypeError unless ``t`` holds numbers."""
    xp = array_namespace(t)
    if not xp.isdtype(t.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"{name} must hold numbers, got dtype {t.dtype}")
    return xp


class _CrossEntropy(Loss):
    """What the cross-entropy losses share: ``from_logits``, the fused gradient, the check of
    the output layer. Each gives its ``fused_activation`` and its ``activation`` function,
    ``_count`` (terms averaged), ``_value``, ``_grad_of_probs`` and ``other_fix``."""

    def __init__(self, from_logits=False):
        if from_logits is not True and from_logits is not False:
            raise TypeError(f"from_logits must be True or False, got {from_logits!r}")
        self.from_logits = from_logits

    def value(self, y, t):
        return self._value(array_namespace(y), y, self.prepare_target(t, y))

    def value_and_grad(self, y, t):
        xp = array_namespace(y)
        t = self.prepare_target(t, y)
        if self.from_logits:  # y are the scores: the fused gradient, through the activation
            grad = fused_gradient(self.activation(y, xp=xp), t, self._count(y))
        else:
            grad = self._grad_of_probs(xp, y, t)
        return self._value(xp, y, t), grad

    def fused_value_and_grad(self, y, t):
        """``(mean loss, d loss / d z)`` for ``y = activation(z)``: ``(y - t) / n``, with the
        target prepared once (what a model that :meth:`fuses_with` its last layer needs)."""
        t = self.prepare_target(t, y)
        return self._value(array_namespace(y), y, t), fused_gradient(y, t, self._count(y))

    def grad_from_output(self, y, t):
        """The gradient part of :meth:`fused_value_and_grad`."""
        return fused_gradient(y, self.prepare_target(t, y), self._count(y))

    def check_output(self, layer, units=None):
        act = output_activation(layer)  # None: a layer of the user's own, accepted
        if self.from_logits:
            fix = "give it activation=None (linear), or use from_logits=False"
            refused = act in (Softmax, Sigmoid)
        elif act in (Softmax, Sigmoid):
            fix, refused = self.other_fix, act is not self.fused_activation
        else:
            fix = f"use from_logits=True or activation='{self.fused_activation.__name__.lower()}'"
            refused = act is not None
        if refused:
            raise ValueError(
                f"{self.name} reads {'raw scores' if self.from_logits else 'probabilities'}, but "
                f"the last layer {layer.name!r} outputs {act.__name__.lower()} values: {fix}")


class CategoricalCrossentropy(_CrossEntropy):
    """``-sum(t * log(y)) / n`` for one-hot (or probability) rows ``t``.

    Parameters
    ----------
    from_logits : bool, default False
        False: ``y`` are probabilities (a softmax output). True: ``y`` are raw scores (a
        linear output); the loss is ``-sum(t * log_softmax(y)) / n``, as in Keras.
    """

    name = "categorical_crossentropy"
    fused_activation = Softmax
    activation = staticmethod(F.softmax)
    other_fix = ("use activation='softmax' (classes that exclude each other), binary_crossentropy "
                 "(independent labels) or from_logits=True with a linear output")

    def _count(self, y):
        return y.shape[0]

    def _value(self, xp, y, t):
        logp = F.log_softmax(y, xp=xp) if self.from_logits else xp.log(_clip(xp, y))
        return -xp.sum(t * logp) / y.shape[0]

    def _grad_of_probs(self, xp, y, t):
        return -t / _clip(xp, y) / y.shape[0]

    def per_sample(self, y, t):
        xp, t = array_namespace(y), self.prepare_target(t, y)
        logp = F.log_softmax(y, xp=xp) if self.from_logits else xp.log(_clip(xp, y))
        return -rows_sum(xp, t * logp)

    def check_output(self, layer, units=None):
        if units is not None and units < 2:
            raise ValueError(f"{self.name} needs one output unit per class, but the last layer "
                             f"{layer.name!r} has {units} (use binary_crossentropy for a 1-unit "
                             "sigmoid)")
        super().check_output(layer, units)

    def check_targets(self, t, units, name="t"):
        xp = _numbers(t, name)
        if 0 in tuple(t.shape) or t.ndim == 0:
            return
        t = t if xp.isdtype(t.dtype, "real floating") else xp.astype(t, xp.float64)
        what = f"{self.name} takes one-hot or probability rows (entries >= 0 that sum to 1)"
        lo = float(xp.min(t))
        if lo < 0:
            raise ValueError(f"{name} holds negative values (the least is {lo:g}); {what}")
        sums = xp.reshape(xp.sum(t, axis=-1, dtype=xp.float64), (-1,))
        bad = xp.abs(sums - 1.0) > ROW_SUM_TOL
        if bool(xp.any(bad)):
            row = int(xp.argmax(xp.astype(bad, xp.int32)))
            raise ValueError(f"{name} row {row} sums to {float(sums[row]):g}; {what}")


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy with integer class labels ``t`` of shape ``(n,)`` or
    ``(n, 1)``; ``from_logits`` as in :class:`CategoricalCrossentropy`."""

    name = "sparse_categorical_crossentropy"
    sparse = True

    def prepare_target(self, t, y):
        xp = array_namespace(y)
        if t.ndim == y.ndim and t.shape[-1] == 1:
            t = xp.reshape(t, t.shape[:-1])
        if tuple(t.shape) != tuple(y.shape[:-1]):
            raise ValueError(f"{self.name} takes integer class labels of shape "
                             f"{tuple(y.shape[:-1])} or {(*y.shape[:-1], 1)}, got shape "
                             f"{tuple(t.shape)} (one-hot targets go with categorical_crossentropy)")
        return F._one_hot(t, y.shape[-1], y.dtype, xp)

    def check_targets(self, t, units, name="t"):
        F._check_labels(t, units, name, f"the output layer has {units} units")


class BinaryCrossentropy(_CrossEntropy):
    """``-mean(t * log(y) + (1 - t) * log(1 - y))`` for targets in [0, 1] (0/1 labels or
    probabilities, as Keras allows).

    Parameters
    ----------
    from_logits : bool, default False
        False: ``y`` are probabilities (a sigmoid output). True: ``y`` are raw scores;
        the loss is ``-mean(t * log_sigmoid(y) + (1 - t) * log_sigmoid(-y))``, written
        ``relu(y) - t * y + log1p(exp(-|y|))`` (exact for any ``y``), as in Keras.
    """

    name = "binary_crossentropy"
    fused_activation = Sigmoid
    activation = staticmethod(F.sigmoid)
    other_fix = ("use activation='sigmoid' (one probability per unit), "
                 "or categorical_crossentropy with softmax")

    def _count(self, y):
        return _size(y)

    def _value(self, xp, y, t):
        if self.from_logits:
            return xp.sum(F.relu(y, xp=xp) - y * t + xp.log1p(xp.exp(-xp.abs(y)))) / _size(y)
        yc = _clip(xp, y)
        return -xp.sum(t * xp.log(yc) + (1.0 - t) * xp.log(1.0 - yc)) / _size(y)

    def _grad_of_probs(self, xp, y, t):
        yc = _clip(xp, y)
        return (yc - t) / (yc * (1.0 - yc)) / _size(y)

    def per_sample(self, y, t):
        xp, t = array_namespace(y), self.prepare_target(t, y)
        if self.from_logits:
            return rows_mean(xp, F.relu(y, xp=xp) - y * t + xp.log1p(xp.exp(-xp.abs(y))))
        yc = _clip(xp, y)
        return -rows_mean(xp, t * xp.log(yc) + (1.0 - t) * xp.log(1.0 - yc))

    def check_targets(self, t, units, name="t"):
        xp = _numbers(t, name)
        if 0 in tuple(t.shape) or xp.isdtype(t.dtype, "bool"):
            return
        lo, hi = float(xp.min(t)), float(xp.max(t))
        if lo < 0 or hi > 1:
            raise ValueError(f"{name} holds values from {lo:g} to {hi:g}, but {self.name} takes "
                             "targets in [0, 1] (0/1 labels, or probabilities)")


LOSSES = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
}


def get_loss(spec) -> Loss:
    """A loss from a name (see ``LOSSES``), a Loss instance or a Loss class. A plain
    function is refused with the fix: :class:`~xpnet.losses_keras.FunctionLoss` with its
    gradient (xpnet has no automatic differentiation)."""
    if callable(spec) and not isinstance(spec, (type, Loss)):
        raise TypeError(
            f"loss {getattr(spec, '__name__', spec)!r} is a plain function; xpnet needs its "
            "gradient too: loss=xn.losses.FunctionLoss(fn, grad=...)")
    return resolve(spec, LOSSES, Loss, "loss")


# Keras' other losses live in losses_keras.py (it imports Loss from here, so this comes last)
from .losses_keras import (KERAS_LOSSES, FunctionLoss, Hinge, Huber,  # noqa: E402
                           KLDivergence, LogCosh, MeanAbsoluteError)

LOSSES.update(KERAS_LOSSES)
