"""The base class of xpnet's losses, and the helpers the losses share.

A loss gives the mean over the batch and its gradient with respect to the predictions
(:meth:`Loss.value_and_grad`), its per-row values for sample weights
(:meth:`Loss.per_sample`), and may fuse with the last layer's activation
(:meth:`Loss.fuses_with`). The losses themselves are in :mod:`xpnet.losses`.
"""
from __future__ import annotations

from array_api_compat import array_namespace

from . import functions as F
from .layers.affine import Dense, output_activation

__all__ = ["Loss", "EPSILON", "ROW_SUM_TOL", "rows_mean", "rows_sum", "clip_probs",
           "numbers_namespace"]

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


def rows_mean(xp, v):
    """The mean of ``v`` over every axis but the first: one value per row."""
    return xp.mean(xp.reshape(v, (v.shape[0], -1)), axis=1)


def rows_sum(xp, v):
    """The sum of ``v`` over every axis but the first: one value per row."""
    return xp.sum(xp.reshape(v, (v.shape[0], -1)), axis=1)


def clip_probs(xp, y):
    # minimum/maximum rather than xp.clip: array-api-compat wraps NumPy's clip in Python
    # code that costs more than the whole loss on a batch of 100
    return xp.minimum(xp.maximum(y, EPSILON), 1.0 - EPSILON)


def numbers_namespace(t, name):
    """``t``'s namespace; TypeError unless ``t`` holds numbers."""
    xp = array_namespace(t)
    if not xp.isdtype(t.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"{name} must hold numbers, got dtype {t.dtype}")
    return xp
