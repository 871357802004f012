"""Affine (fully connected) layers and Flatten.

``Affine`` is the book's layer (chapter 5), built from given ``W`` and ``b``; ``Dense``
is the Keras-style layer that builds its own weights from the first input shape and
applies an activation. Both flatten N-D input to ``(batch, features)`` and give the
input's shape back in ``backward``. :func:`output_activation` tells a loss what a last
layer outputs.
"""
from __future__ import annotations

import math

from array_api_compat import array_namespace, device

from .. import _validate as V
from .. import backend as B
from ..initializers import initialize
from ..regularizers import get_regularizer
from .activations import Linear, Relu, Sigmoid, Softmax, Tanh, get_activation
from .base import Layer

__all__ = ["Affine", "Dense", "Flatten", "output_activation"]


class Affine(Layer):
    """``out = x @ W + b`` with ``x`` flattened to ``(batch, W.shape[0])``.

    Backward: ``dx = dout @ W.T``, ``dW = x.T @ dout``, ``db = sum(dout, axis=0)``.
    ``dx`` is skipped when ``need_input_grad`` is False (the first layer of a network).
    """

    scratch = ("x", "x_shape")

    def __init__(self, W=None, b=None, name=None, input_shape=None, input_dim=None):
        super().__init__(name=name, input_shape=input_shape, input_dim=input_dim)
        if W is not None:
            self.xp = array_namespace(W) if b is None else array_namespace(W, b)
            if W.ndim != 2 or (b is not None and tuple(b.shape) != (W.shape[1],)):
                raise ValueError(
                    f"Affine(W, b) needs a 2-D W of shape (inputs, outputs) and a b of shape "
                    f"(outputs,), got W {tuple(W.shape)} and b "
                    f"{None if b is None else tuple(b.shape)}")
            self.params["W"] = W
            if b is not None:
                self.params["b"] = b
            self.built = True
            if self.input_shape is None:
                self.input_shape = (W.shape[0],)

    def compute_output_shape(self, input_shape):
        return (self.params["W"].shape[1],)

    def preactivation(self, x, training=True):
        """``x @ W + b`` (inputs flattened per row): the first half of ``forward``. In
        training the input is kept for ``backward``; in inference nothing is kept."""
        xp = self._ns(x)
        if training:
            self.x_shape = x.shape
        if x.ndim != 2:
            x = xp.reshape(x, (x.shape[0], -1))
        if training:
            self.x = x
        out = x @ self.params["W"]
        b = self.params.get("b")
        if b is not None:
            out += b  # in place on the product this call just made: one pass less
        return out

    def backward_preactivation(self, dout):
        """Backward from ``dout``, the gradient with respect to ``x @ W + b``; for Affine,
        whose output that is, the same as ``backward``."""
        xp = self.xp
        W = self.params["W"]
        self.grads["W"] = self.x.T @ dout
        if "b" in self.params:
            self.grads["b"] = xp.sum(dout, axis=0)
        if not self.need_input_grad:
            return None
        dx = dout @ W.T
        if len(self.x_shape) != 2:
            dx = xp.reshape(dx, self.x_shape)
        return dx

    def activate(self, z, training):
        return z

    def forward(self, x, training=True):
        return self.activate(self.preactivation(x, training), training)

    def backward(self, dout):
        return self.backward_preactivation(dout)


class Dense(Affine):
    """Keras-style fully connected layer: ``activation(x @ W + b)``.

    Parameters
    ----------
    units : int
        Number of outputs.
    activation : str, Layer or None
        "relu", "sigmoid", "tanh", "softmax", "linear" (``None``), or a layer.
    input_dim, input_shape : optional
        The per-sample input size, for the first layer of a model.
    kernel_initializer, bias_initializer : float, str or callable
        See :mod:`xpnet.initializers`; defaults "glorot_uniform" and "zeros" as in Keras.
    use_bias : bool
        Add a bias ``b``.
    kernel_regularizer, bias_regularizer : Regularizer or str, optional
        A penalty on ``W`` / ``b`` added to the loss (:mod:`xpnet.regularizers`: "l1",
        "l2", ``L2(0.001)`` ...), its gradient added in ``backward``.

    Notes
    -----
    ``backward(dout)`` runs the activation's backward, then Affine's.
    ``backward_preactivation(dz)`` starts from ``dz``, the gradient with respect to the
    pre-activation ``z = x @ W + b``, skipping the activation: a model calls it when
    its loss gives that gradient itself (:meth:`xpnet.losses.Loss.fuses_with`: softmax
    with cross-entropy, where ``dz = (y - t) / batch`` as in the book's SoftmaxWithLoss).
    """

    def __init__(self, units, activation=None, input_dim=None, input_shape=None,
                 kernel_initializer="glorot_uniform", use_bias=True, name=None,
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None):
        units = V.positive_int(units, "Dense(units)")
        super().__init__(name=name, input_shape=input_shape, input_dim=input_dim)
        self.units = units
        self.activation = get_activation(activation)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = get_regularizer(kernel_regularizer)
        self.bias_regularizer = get_regularizer(bias_regularizer)
        self.use_bias = bool(use_bias)

    def build(self, input_shape, *, xp, device=None, dtype=None, rng=None):
        dtype = dtype or B.get_floatx()
        fan_in = math.prod(int(d) for d in input_shape)
        rng = B.host_rng(rng)
        W = initialize(self.kernel_initializer, (fan_in, self.units), rng, dtype)
        self.params["W"] = xp.asarray(W, device=device)
        if self.use_bias:
            b = initialize(self.bias_initializer, (self.units,), rng, dtype)
            self.params["b"] = xp.asarray(b, device=device)
        self.activation.xp = xp
        return super().build(input_shape, xp=xp)

    def compute_output_shape(self, input_shape):
        return (self.units,)

    def forward(self, x, training=True):
        if not self.built:  # used on its own: build from the first input
            xp = self._ns(x)
            dtype = next((n for n in ("float64", "float32") if x.dtype == getattr(xp, n)), None)
            self.build(tuple(x.shape[1:]), xp=xp, device=device(x), dtype=dtype)
        return self.activate(self.preactivation(x, training), training)

    def activate(self, z, training):
        # z = x @ W + b was made by this call and is not kept: the activation may use it
        return self.activation.forward_owned(z, training)

    def backward(self, dout):
        return self.backward_preactivation(self.activation.backward(dout))

    @property
    def regularized(self) -> bool:
        return self.kernel_regularizer is not None or self.bias_regularizer is not None

    def backward_preactivation(self, dout):
        dx = super().backward_preactivation(dout)
        if self.kernel_regularizer is not None or self.bias_regularizer is not None:
            for name, reg in (("W", self.kernel_regularizer), ("b", self.bias_regularizer)):
                if reg is not None and name in self.params:
                    self.grads[name] = self.grads[name] + reg.gradient(self.params[name])
        return dx

    def penalty(self):
        """The regularizers' penalty on this layer's parameters (0-d array, or 0.0)."""
        total = 0.0
        for name, reg in (("W", self.kernel_regularizer), ("b", self.bias_regularizer)):
            if reg is not None and name in self.params:
                total = total + reg.penalty(self.params[name])
        return total

    def get_config(self):
        act = type(self.activation).__name__.lower()
        return {"name": self.name, "units": self.units, "activation": act,
                "use_bias": self.use_bias}


_KNOWN_ACTIVATIONS = (Linear, Relu, Tanh, Sigmoid, Softmax)
_BEHAVIOUR = ("forward", "forward_owned", "backward", "function")


def output_activation(layer):
    """The xpnet activation class (Linear, Relu, Tanh, Sigmoid, Softmax) whose output
    ``layer`` gives, or None where xpnet cannot tell.

    ``layer`` is a Dense (its activation counts), a plain Affine (linear) or an
    activation layer. A subclass counts as its base class only if it changes none of
    ``forward``, ``forward_owned``, ``backward`` or ``function``; a layer of the user's
    own is None, and no loss refuses it.
    """
    if isinstance(layer, Affine):
        kind = type(layer)
        if kind.forward not in (Affine.forward, Dense.forward) or \
                kind.activate not in (Affine.activate, Dense.activate):
            return None
        if not isinstance(layer, Dense):
            return Linear
        layer = layer.activation
    for cls in _KNOWN_ACTIVATIONS:
        if isinstance(layer, cls) and all(getattr(type(layer), m, None) is getattr(cls, m, None)
                                          for m in _BEHAVIOUR):
            return cls
    return None


class Flatten(Layer):
    """Flatten each sample: ``(batch, d1, d2, ...) -> (batch, d1*d2*...)``."""

    scratch = ("x_shape",)

    def compute_output_shape(self, input_shape):
        return (math.prod(int(d) for d in input_shape),)

    def forward(self, x, training=True):
        if training:
            self.x_shape = x.shape
        return self._ns(x).reshape(x, (x.shape[0], -1))

    def backward(self, dout):
        return self.xp.reshape(dout, self.x_shape)
