"""Loss functions for :class:`xpnet.Sequential`, each giving the loss and its gradient.

The base class is in :mod:`xpnet.loss_base`, the cross-entropies in
:mod:`xpnet.losses_crossentropy`, Keras' other losses in :mod:`xpnet.losses_keras`; this
module gathers them with the registry of names (:func:`get_loss`).

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

from ._registry import resolve
from .layers.affine import output_activation
from .loss_base import EPSILON, Loss, rows_mean, rows_sum
from .losses_crossentropy import (BinaryCrossentropy, CategoricalCrossentropy,
                                  SparseCategoricalCrossentropy)
from .losses_keras import (KERAS_LOSSES, FunctionLoss, Hinge, Huber, KLDivergence, LogCosh,
                           MeanAbsoluteError)

__all__ = ["Loss", "MeanSquaredError", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
           "BinaryCrossentropy", "MeanAbsoluteError", "Huber", "Hinge", "KLDivergence", "LogCosh",
           "FunctionLoss", "output_activation", "get_loss", "rows_mean", "rows_sum", "EPSILON",
           "LOSSES"]


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


LOSSES.update(KERAS_LOSSES)
