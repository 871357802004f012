"""The cross-entropy losses: categorical (one-hot or sparse labels) and binary.

Each fuses with its activation (softmax, sigmoid) as the book's SoftmaxWithLoss: the
gradient at the pre-activation is ``(y - t) / n``. ``from_logits=True`` (Keras') reads raw
scores through ``log_softmax`` / ``log_sigmoid``. Probabilities are clipped to
``[1e-7, 1 - 1e-7]`` before the log, as Keras does.
"""
from __future__ import annotations

from array_api_compat import array_namespace
from array_api_compat import size as _size

from . import functions as F
from .layers.activations import Sigmoid, Softmax
from .layers.affine import output_activation
from .layers.softmax_loss import fused_gradient
from .loss_base import ROW_SUM_TOL, Loss, clip_probs, numbers_namespace, rows_mean, rows_sum

__all__ = ["CategoricalCrossentropy", "SparseCategoricalCrossentropy", "BinaryCrossentropy"]


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
        logp = F.log_softmax(y, xp=xp) if self.from_logits else xp.log(clip_probs(xp, y))
        return -xp.sum(t * logp) / y.shape[0]

    def _grad_of_probs(self, xp, y, t):
        return -t / clip_probs(xp, y) / y.shape[0]

    def per_sample(self, y, t):
        xp, t = array_namespace(y), self.prepare_target(t, y)
        logp = F.log_softmax(y, xp=xp) if self.from_logits else xp.log(clip_probs(xp, y))
        return -rows_sum(xp, t * logp)

    def check_output(self, layer, units=None):
        if units is not None and units < 2:
            raise ValueError(f"{self.name} needs one output unit per class, but the last layer "
                             f"{layer.name!r} has {units} (use binary_crossentropy for a 1-unit "
                             "sigmoid)")
        super().check_output(layer, units)

    def check_targets(self, t, units, name="t"):
        xp = numbers_namespace(t, name)
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
        yc = clip_probs(xp, y)
        return -xp.sum(t * xp.log(yc) + (1.0 - t) * xp.log(1.0 - yc)) / _size(y)

    def _grad_of_probs(self, xp, y, t):
        yc = clip_probs(xp, y)
        return (yc - t) / (yc * (1.0 - yc)) / _size(y)

    def per_sample(self, y, t):
        xp, t = array_namespace(y), self.prepare_target(t, y)
        if self.from_logits:
            return rows_mean(xp, F.relu(y, xp=xp) - y * t + xp.log1p(xp.exp(-xp.abs(y))))
        yc = clip_probs(xp, y)
        return -rows_mean(xp, t * xp.log(yc) + (1.0 - t) * xp.log(1.0 - yc))

    def check_targets(self, t, units, name="t"):
        xp = numbers_namespace(t, name)
        if 0 in tuple(t.shape) or xp.isdtype(t.dtype, "bool"):
            return
        lo, hi = float(xp.min(t)), float(xp.max(t))
        if lo < 0 or hi > 1:
            raise ValueError(f"{name} holds values from {lo:g} to {hi:g}, but {self.name} takes "
                             "targets in [0, 1] (0/1 labels, or probabilities)")
