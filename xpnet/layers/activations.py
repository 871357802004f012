"""Activation layers: Relu, Sigmoid, Tanh, Softmax, Linear (the book, chapter 5).

In training each keeps what its backward needs from the forward pass: its output (Relu
takes its mask ``out > 0`` from it). In inference (``training=False``) nothing is kept, so
a model can predict from several threads at once and pickles without its last batch.
"""
from __future__ import annotations

from .. import functions as F
from .activations_keras import KERAS_ACTIVATIONS
from .base import Layer
from .._registry import resolve

__all__ = ["Relu", "Sigmoid", "Tanh", "Softmax", "Linear", "get_activation", "ACTIVATIONS"]


class Relu(Layer):
    """``max(0, x)``; backward lets the gradient through where ``x > 0``.

    Written with ``maximum`` and a 0/1 multiplier rather than ``where``: NumPy's
    ``where`` branches per element and is several times slower on the random sign
    pattern of a layer's pre-activations. The mask ``x > 0`` is taken in ``backward``
    from the output (``out > 0`` is the same mask), so inference never computes it.
    """

    scratch = ("out",)

    def forward(self, x, training=True):
        out = F.relu(x, xp=self._ns(x))
        if training:
            self.out = out
        return out

    def backward(self, dout):
        grad = self.xp.astype(self.out > 0, dout.dtype)
        grad *= dout  # in place on the mask just made
        return grad


class _KeepsOutput(Layer):
    """An activation ``function(x, xp=..., overwrite_x=...)`` that keeps its output for
    ``backward``; ``forward_owned`` lets the function compute in ``x``'s memory."""

    scratch = ("out",)

    function = None  # staticmethod(F.<name>) in each subclass

    def forward(self, x, training=True):
        out = self.function(x, xp=self._ns(x))
        if training:
            self.out = out
        return out

    def forward_owned(self, x, training=True):
        if type(self).forward is not _KeepsOutput.forward:  # a subclass's own forward wins
            return self.forward(x, training)
        out = self.function(x, xp=self._ns(x), overwrite_x=True)
        if training:
            self.out = out
        return out


class Sigmoid(_KeepsOutput):
    """``1 / (1 + exp(-x))``; backward ``dout * y * (1 - y)``, which ``Sequential`` skips
    before binary cross-entropy, as Softmax's before cross-entropy."""

    function = staticmethod(F.sigmoid)

    def backward(self, dout):
        y = self.out
        return dout * (1.0 - y) * y


class Tanh(Layer):
    """``tanh(x)``; backward ``dout * (1 - y**2)``."""

    scratch = ("out",)

    def forward(self, x, training=True):
        out = self._ns(x).tanh(x)
        if training:
            self.out = out
        return out

    def backward(self, dout):
        y = self.out
        return dout * (1.0 - y * y)


class Softmax(_KeepsOutput):
    """Softmax over the last axis; backward is the Jacobian-vector product
    ``y * (dout - sum(dout * y))``.

    Before a cross-entropy loss, ``Sequential`` skips this backward (and the loss's):
    the loss gives the gradient at softmax's input, ``(y - t) / batch``
    (:meth:`xpnet.losses.Loss.fuses_with`).
    """

    function = staticmethod(F.softmax)

    def backward(self, dout):
        y = self.out
        return y * (dout - self.xp.sum(dout * y, axis=-1, keepdims=True))


class Linear(Layer):
    """The identity activation ("linear" in Keras)."""

    def forward(self, x, training=True):
        return x

    def backward(self, dout):
        return dout


ACTIVATIONS = {
    "relu": Relu,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softmax": Softmax,
    "linear": Linear,
    "identity": Linear,
    **KERAS_ACTIVATIONS,
}


def get_activation(spec) -> Layer:
    """An activation layer from a name ("relu", "sigmoid", "tanh", "softmax", "linear",
    and Keras' "leaky_relu", "elu", "gelu", "softplus", "swish"/"silu"), ``None``
    (linear), a Layer instance or a Layer class."""
    if spec is None:
        return Linear()
    return resolve(spec, ACTIVATIONS, Layer, "activation")
