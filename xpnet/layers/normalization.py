"""LayerNormalization: each sample normalised over its last axis (Keras 3's defaults)."""
from __future__ import annotations

from array_api_compat import device

from .. import _validate as V
from .base import Layer

__all__ = ["LayerNormalization"]


class LayerNormalization(Layer):
    """``gamma * (x - mean) / sqrt(var + epsilon) + beta``, mean and (biased) variance over
    the last axis of each sample; the same in training and inference (no running
    statistics). ``gamma``/``beta`` have the last axis' size.

    Ba et al. 2016, https://arxiv.org/abs/1607.06450. Defaults as Keras 3's
    ``LayerNormalization(axis=-1, epsilon=1e-3, center=True, scale=True)``; PyTorch's
    ``LayerNorm`` uses ``eps=1e-5``. Only the last axis is normalised.
    """

    scratch = ("xn", "std")

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, name=None,
                 input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        if axis != -1:
            raise V.InvalidParameterError(
                f"LayerNormalization(axis) normalises the last axis only (axis=-1), got {axis!r}")
        self.axis = -1
        self.epsilon = V.positive_float(epsilon, "LayerNormalization(epsilon)")
        self.center, self.scale = bool(center), bool(scale)

    def build(self, input_shape, *, xp, device=None, dtype="float32", rng=None):
        n, dt = int(input_shape[-1]), getattr(xp, dtype or "float32")
        if self.scale:
            self.params["gamma"] = xp.ones((n,), dtype=dt, device=device)
        if self.center:
            self.params["beta"] = xp.zeros((n,), dtype=dt, device=device)
        return super().build(input_shape, xp=xp)

    def forward(self, x, training=True):
        xp = self._ns(x)
        if not self.built:  # used on its own: build from the first input
            self.build(tuple(x.shape[1:]), xp=xp, device=device(x),
                       dtype="float64" if x.dtype == xp.float64 else "float32")
        mu = xp.mean(x, axis=-1, keepdims=True)
        xc = x - mu
        std = xp.sqrt(xp.mean(xc * xc, axis=-1, keepdims=True) + self.epsilon)
        xn = xc / std
        if training:
            self.xn, self.std = xn, std
        out = xn * self.params["gamma"] if self.scale else xn
        return out + self.params["beta"] if self.center else out

    def backward(self, dout):
        xp, xn = self.xp, self.xn
        rows = tuple(range(dout.ndim - 1))  # every axis but the normalised one
        if self.center:
            self.grads["beta"] = xp.sum(dout, axis=rows)
        if self.scale:
            self.grads["gamma"] = xp.sum(xn * dout, axis=rows)
            dout = dout * self.params["gamma"]
        # d/dx of (x - mean) / std over the last axis, the closed form BatchNormalization uses
        return (dout - xp.mean(dout, axis=-1, keepdims=True)
                - xn * xp.mean(dout * xn, axis=-1, keepdims=True)) / self.std

    def get_config(self):
        return {"name": self.name, "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale}
