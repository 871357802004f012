"""Keras' other activations as layers: LeakyReLU, ELU, GELU, Softplus, Swish (SiLU), and
``Activation(name)``.

Each is written once against the array API and keeps, in training, what its backward
needs (nothing in inference). Names and defaults are Keras 3's: the layer
``LeakyReLU()`` has ``negative_slope=0.3``, the function ``"leaky_relu"`` 0.2.
"""
from __future__ import annotations

import math
from functools import partial

from array_api_compat import device

from .. import _validate as V
from .. import functions as F
from .base import Layer

__all__ = ["LeakyReLU", "ELU", "GELU", "Softplus", "Swish", "SiLU", "Activation"]


class LeakyReLU(Layer):
    """``x`` where ``x > 0``, else ``negative_slope * x``; backward lets ``dout`` through
    where the output is positive and scales it by the slope elsewhere (at 0, the slope)."""

    scratch = ("out",)

    def __init__(self, negative_slope=0.3, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        self.negative_slope = V.non_negative_float(negative_slope, "LeakyReLU(negative_slope)")

    def forward(self, x, training=True):
        xp = self._ns(x)
        out = xp.where(x > 0, x, self.negative_slope * x)
        if training:
            self.out = out
        return out

    def backward(self, dout):
        return self.xp.where(self.out > 0, dout, self.negative_slope * dout)

    def get_config(self):
        return {"name": self.name, "negative_slope": self.negative_slope}


class ELU(Layer):
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)``; backward ``1`` or ``out + alpha``.

    Clevert et al. 2015, https://arxiv.org/abs/1511.07289.
    """

    scratch = ("out",)

    def __init__(self, alpha=1.0, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        self.alpha = V.positive_float(alpha, "ELU(alpha)")

    def forward(self, x, training=True):
        xp = self._ns(x)
        negative = self.alpha * xp.expm1(xp.minimum(x, xp.zeros((), dtype=x.dtype, device=device(x))))
        out = xp.where(x > 0, x, negative)  # expm1 of min(x, 0): no overflow where x > 0
        if training:
            self.out = out
        return out

    def backward(self, dout):
        out = self.out
        return self.xp.where(out > 0, dout, dout * (out + self.alpha))

    def get_config(self):
        return {"name": self.name, "alpha": self.alpha}


_GELU_C = math.sqrt(2.0 / math.pi)
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class GELU(Layer):
    """Gaussian error linear unit ``x * Phi(x)`` (Hendrycks & Gimpel 2016,
    https://arxiv.org/abs/1606.08415), as Keras' ``gelu`` and PyTorch's.

    ``approximate=False`` (Keras' default): the exact form
    ``0.5 * x * (1 + erf(x / sqrt(2)))`` with :func:`xpnet.functions.erf`.
    ``approximate=True``: the tanh form
    ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))`` (PyTorch's
    ``approximate="tanh"``), within 4.7e-4 of the exact one and cheaper where the library
    has no erf of its own.
    """

    scratch = ("x", "t")

    def __init__(self, approximate=False, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        if approximate is not True and approximate is not False:
            raise V.InvalidParameterError(
                f"GELU(approximate) takes True (the tanh form) or False (erf), got {approximate!r}")
        self.approximate = approximate

    def forward(self, x, training=True):
        xp = self._ns(x)
        if self.approximate:
            t = xp.tanh(_GELU_C * (x + 0.044715 * x * x * x))
        else:  # t = erf(x / sqrt(2)), so that Phi(x) = 0.5 * (1 + t)
            t = F.erf(x * _SQRT_HALF, xp=xp)
        out = 0.5 * x * (1.0 + t)
        if training:
            self.x, self.t = x, t
        return out

    def backward(self, dout):
        x, t = self.x, self.t
        if self.approximate:
            du = _GELU_C * (1.0 + 3 * 0.044715 * x * x)
            return dout * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du)
        # d/dx x * Phi(x) = Phi(x) + x * phi(x), phi the standard normal density
        return dout * (0.5 * (1.0 + t) + x * self.xp.exp(-0.5 * x * x) * _INV_SQRT_2PI)

    def get_config(self):
        return {"name": self.name, "approximate": self.approximate}


class Softplus(Layer):
    """``log(1 + exp(x))`` (as ``logaddexp(0, x)``: no overflow); backward
    ``sigmoid(x) = 1 - exp(-out)``."""

    scratch = ("out",)

    def forward(self, x, training=True):
        xp = self._ns(x)
        out = xp.logaddexp(xp.zeros((), dtype=x.dtype, device=device(x)), x)
        if training:
            self.out = out
        return out

    def backward(self, dout):
        return dout * -self.xp.expm1(-self.out)


class Swish(Layer):
    """``x * sigmoid(x)`` (SiLU); backward ``s * (1 + x * (1 - s))``, ``s = sigmoid(x)``.

    Ramachandran et al. 2017, https://arxiv.org/abs/1710.05941.
    """

    scratch = ("x", "s")

    def forward(self, x, training=True):
        s = F.sigmoid(x, xp=self._ns(x))
        if training:
            self.x, self.s = x, s
        return x * s

    def backward(self, dout):
        s = self.s
        return dout * s * (1.0 + self.x * (1.0 - s))


SiLU = Swish


class Activation(Layer):
    """An activation by name, as ``keras.layers.Activation("relu")``: any name
    :func:`xpnet.layers.get_activation` knows, or an activation layer."""

    def __init__(self, activation, name=None, input_shape=None):
        from .activations import get_activation  # activations imports this module

        super().__init__(name=name, input_shape=input_shape)
        self.activation = get_activation(activation)

    def forward(self, x, training=True):
        return self.activation.forward(x, training)

    def backward(self, dout):
        return self.activation.backward(dout)

    def get_config(self):
        return {"name": self.name, "activation": type(self.activation).__name__.lower()}


# the names "leaky_relu" ... give Keras 3's activation functions' defaults
KERAS_ACTIVATIONS = {
    "leaky_relu": partial(LeakyReLU, negative_slope=0.2),
    "elu": ELU,
    "gelu": GELU,
    "softplus": Softplus,
    "swish": Swish,
    "silu": Swish,
}
