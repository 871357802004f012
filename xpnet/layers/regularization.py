"""Dropout and BatchNormalization (the book, chapter 6)."""
from __future__ import annotations

from .. import backend as _backend
from .base import Layer

__all__ = ["Dropout", "BatchNormalization"]


class Dropout(Layer):
    """Inverted dropout: in training, zero each input with probability ``rate`` and scale
    the rest by ``1 / (1 - rate)``; in inference, the identity.

    Srivastava et al. 2014, https://jmlr.org/papers/v15/srivastava14a.html.
    Masks come from a :class:`xpnet.backend.DeviceRNG` seeded from ``seed`` (or from the
    model's generator when the layer is built in a model).
    """

    def __init__(self, rate=0.5, seed=None, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(f"Dropout(rate) needs 0 <= rate < 1, got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.rng = None
        self.mask = None

    def build(self, input_shape, *, xp, device=None, dtype="float32", rng=None):
        if self.seed is None:
            self.seed = int(_backend.host_rng(rng).integers(2**31))
        self.rng = None
        return super().build(input_shape, xp=xp)

    def _device_rng(self, x):
        if self.rng is None:
            if self.seed is None:
                self.seed = int(_backend.host_rng(None).integers(2**31))
            self.rng = _backend.DeviceRNG(self.seed, _backend.backend_of(x))
        return self.rng

    def forward(self, x, training=True):
        if not training or self.rate == 0.0:
            self.mask = None
            return x
        xp = self._ns(x)
        keep = self._device_rng(x).uniform(x.shape, x.dtype) >= self.rate
        self.mask = xp.astype(keep, x.dtype) * (1.0 / (1.0 - self.rate))
        return x * self.mask

    def backward(self, dout):
        return dout if self.mask is None else dout * self.mask

    def get_config(self):
        return {"name": self.name, "rate": self.rate}


class BatchNormalization(Layer):
    """Normalise each feature over the batch, then scale by ``gamma`` and shift by ``beta``.

    Training uses the batch's mean and variance and updates running averages
    (``running = momentum * running + (1 - momentum) * batch``); inference uses the
    running averages. N-D input is normalised per flattened feature, as in the book.
    Ioffe & Szegedy 2015, https://arxiv.org/abs/1502.03167.
    """

    def __init__(self, momentum=0.9, epsilon=1e-5, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape, *, xp, device=None, dtype="float32", rng=None):
        n = 1
        for d in input_shape:
            n *= int(d)
        dt = getattr(xp, dtype)
        self.params["gamma"] = xp.ones((n,), dtype=dt, device=device)
        self.params["beta"] = xp.zeros((n,), dtype=dt, device=device)
        self.state["running_mean"] = xp.zeros((n,), dtype=dt, device=device)
        self.state["running_var"] = xp.ones((n,), dtype=dt, device=device)
        return super().build(input_shape, xp=xp)

    def _ensure_params(self, x, xp):
        if "gamma" not in self.params:  # used on its own, without a model
            shape = tuple(x.shape[1:])
            self.build(shape, xp=xp, device=x.device,
                       dtype="float64" if x.dtype == xp.float64 else "float32")

    def forward(self, x, training=True):
        xp = self._ns(x)
        self._ensure_params(x, xp)
        self.x_shape = x.shape
        if x.ndim != 2:
            x = xp.reshape(x, (x.shape[0], -1))
        gamma, beta = self.params["gamma"], self.params["beta"]
        if training:
            mu = xp.mean(x, axis=0)
            xc = x - mu
            var = xp.mean(xc * xc, axis=0)
            std = xp.sqrt(var + self.epsilon)
            xn = xc / std
            self.xc, self.xn, self.std = xc, xn, std
            m = self.momentum
            self.state["running_mean"] = m * self.state["running_mean"] + (1 - m) * mu
            self.state["running_var"] = m * self.state["running_var"] + (1 - m) * var
        else:
            xn = (x - self.state["running_mean"]) / xp.sqrt(self.state["running_var"] + self.epsilon)
        out = gamma * xn + beta
        return out if len(self.x_shape) == 2 else xp.reshape(out, self.x_shape)

    def backward(self, dout):
        xp = self.xp
        if dout.ndim != 2:
            dout = xp.reshape(dout, (dout.shape[0], -1))
        n = dout.shape[0]
        xn, xc, std = self.xn, self.xc, self.std
        self.grads["beta"] = xp.sum(dout, axis=0)
        self.grads["gamma"] = xp.sum(xn * dout, axis=0)
        dxn = self.params["gamma"] * dout
        # d/dx of (x - mean) / std, written in the compact closed form
        dx = (dxn - xp.mean(dxn, axis=0) - xn * xp.mean(dxn * xn, axis=0)) / std
        return dx if len(self.x_shape) == 2 else xp.reshape(dx, self.x_shape)

    def get_config(self):
        return {"name": self.name, "momentum": self.momentum, "epsilon": self.epsilon}
