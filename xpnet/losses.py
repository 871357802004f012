"""Loss functions for :class:`xpnet.Sequential`, each giving the loss and its gradient.

Every loss returns the mean over the batch (a 0-d array on the backend's device: no host
sync) and the gradient of that mean with respect to the predictions ``y``. Where the
output activation is the loss's natural partner (softmax for cross-entropy, sigmoid for
binary cross-entropy) the model skips both backward passes and uses
``grad_from_output`` : ``(y - t) / n``, the form of the book's ``SoftmaxWithLoss``.
Probabilities are clipped to ``[1e-7, 1 - 1e-7]`` before the log, as Keras does.
"""
from __future__ import annotations

from array_api_compat import array_namespace
from array_api_compat import size as _size

from .functions import one_hot
from ._registry import resolve

__all__ = [
    "Loss",
    "MeanSquaredError",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "BinaryCrossentropy",
    "get_loss",
    "LOSSES",
]

EPSILON = 1e-7


class Loss:
    """Base class. Subclasses implement ``value_and_grad(y, t)``."""

    name = "loss"
    #: the output activation whose backward this loss can fuse with (or None)
    fused_activation: str | None = None
    #: True when targets are integer class labels
    sparse = False

    def __call__(self, y, t):
        return self.value_and_grad(y, t)[0]

    def value_and_grad(self, y, t):
        """``(mean loss, d loss / d y)`` for predictions ``y`` and targets ``t``."""
        raise NotImplementedError

    def grad_from_output(self, y, t):
        """Gradient with respect to the *pre-activation* when the output activation is
        ``fused_activation`` and ``y`` is its output."""
        return self._output_grad(y, self.prepare_target(t, y))

    def fused_value_and_grad(self, y, t):
        """``(mean loss, grad_from_output(y, t))`` with the target prepared once: what a
        model whose output activation is ``fused_activation`` needs per batch."""
        t = self.prepare_target(t, y)
        return self._value(array_namespace(y), y, t), self._output_grad(y, t)

    def prepare_target(self, t, y):
        """Targets in the form the loss computes with: ``y``'s shape (one-hot for sparse
        labels)."""
        return t if t.shape == y.shape else array_namespace(y).reshape(t, y.shape)

    def _value(self, xp, y, t):
        """The mean loss for a prepared target (fusable losses)."""
        raise NotImplementedError

    def _output_grad(self, y, t):
        """``(y - t) / n`` for a prepared target (fusable losses)."""
        raise NotImplementedError

    # book-style forward/backward, for use as the last node of a hand-built graph
    def forward(self, y, t):
        self._loss, self._grad = self.value_and_grad(y, t)
        return self._loss

    def backward(self, dout=1):
        return self._grad * dout

    def __repr__(self):
        return f"{type(self).__name__}()"


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


def _clip(xp, y):
    # minimum/maximum rather than xp.clip: array-api-compat wraps NumPy's clip in Python
    # code that costs ~9 us a call, more than the whole loss on a batch of 100
    return xp.minimum(xp.maximum(y, EPSILON), 1.0 - EPSILON)


class CategoricalCrossentropy(Loss):
    """``-sum(t * log(y)) / n`` for one-hot targets ``t`` and probabilities ``y``."""

    name = "categorical_crossentropy"
    fused_activation = "softmax"

    def value_and_grad(self, y, t):
        xp = array_namespace(y)
        t = self.prepare_target(t, y)
        return self._value(xp, y, t), -t / _clip(xp, y) / y.shape[0]

    def _value(self, xp, y, t):
        return -xp.sum(t * xp.log(_clip(xp, y))) / y.shape[0]

    def _output_grad(self, y, t):
        return (y - t) / y.shape[0]


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy with integer class labels ``t`` of shape ``(n,)`` or ``(n, 1)``."""

    name = "sparse_categorical_crossentropy"
    sparse = True

    def prepare_target(self, t, y):
        xp = array_namespace(y)
        if t.ndim == y.ndim:
            t = xp.reshape(t, (t.shape[0],))
        return one_hot(t, y.shape[-1], dtype=y.dtype, xp=xp)


class BinaryCrossentropy(Loss):
    """``-mean(t * log(y) + (1 - t) * log(1 - y))`` for 0/1 targets and probabilities ``y``."""

    name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def value_and_grad(self, y, t):
        xp = array_namespace(y)
        t = self.prepare_target(t, y)
        yc = _clip(xp, y)
        return self._value(xp, y, t), (yc - t) / (yc * (1.0 - yc)) / _size(y)

    def _value(self, xp, y, t):
        yc = _clip(xp, y)
        return -xp.sum(t * xp.log(yc) + (1.0 - t) * xp.log(1.0 - yc)) / _size(y)

    def _output_grad(self, y, t):
        return (y - t) / _size(y)


LOSSES = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
}


def get_loss(spec) -> Loss:
    """A loss from a name (see ``LOSSES``), a Loss instance or a Loss class."""
    return resolve(spec, LOSSES, Loss, "loss")
