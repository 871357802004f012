"""Dropout and BatchNormalization (the book, chapter 6)."""
from __future__ import annotations

import warnings

from array_api_compat import device as _device

from .. import _validate as V
from .. import backend as B
from .base import Layer

__all__ = ["Dropout", "BatchNormalization"]


class Dropout(Layer):
    """Inverted dropout: in training, zero each input with probability ``rate`` and scale
    the rest by ``1 / (1 - rate)``; in inference, the identity.

    Srivastava et al. 2014, https://jmlr.org/papers/v15/srivastava14a.html.
    Masks come from a :class:`xpnet.backend.DeviceRNG` seeded from ``seed`` (an int in
    [0, 2**64), or None: drawn from the model's generator when the layer is built in a model).
    """

    scratch = ("mask",)

    def __init__(self, rate=0.5, seed=None, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        self.rate = V.in_range(rate, "Dropout(rate)", 0.0, 1.0, hi_open=True)
        self.seed = V.check_seed(seed, "Dropout(seed)")
        self.rng = None
        self.mask = None

    def build(self, input_shape, *, xp, device=None, dtype="float32", rng=None):
        if self.seed is None:
            self.seed = int(B.host_rng(rng).integers(2**31))
        self.rng = None
        return super().build(input_shape, xp=xp)

    def _device_rng(self, x):
        if self.rng is None:
            if self.seed is None:
                self.seed = int(B.host_rng(None).integers(2**31))
            self.rng = B.DeviceRNG(self.seed, B.backend_of(x))
        return self.rng

    def forward(self, x, training=True):
        if not training:
            return x  # nothing kept: backward is for training passes
        if self.rate == 0.0:
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

    Training uses the batch's mean and (biased) variance and updates running averages
    (``running = momentum * running + (1 - momentum) * batch``); inference uses the
    running averages. N-D input is normalised per flattened feature, as in the book.
    Ioffe & Szegedy 2015, https://arxiv.org/abs/1502.03167.

    Parameters
    ----------
    momentum : float in [0, 1]
        Weight of the old running statistics; 0.9 as in the book (Keras: 0.99).
    epsilon : float > 0
        Added to the variance before the square root. The default 1e-5 (PyTorch's) is
        unlike the book (``10e-7``, i.e. 1e-6) and Keras (1e-3).
    moving_variance_initializer : {"ones", "zeros"}
        Where the running variance starts: "ones" as in Keras and PyTorch, unlike the
        book, which starts it at zeros (:class:`~xpnet.models.MultiLayerNet` passes
        "zeros" and ``epsilon=1e-6`` to follow the book). The running mean starts at zeros.
    synchronized : bool, default False
        Keras' name: in data-parallel training (``fit(distributed=...)``) normalise with
        the statistics of the whole global batch, all-reduced across the ranks (two
        all-reduces in ``forward``, one in ``backward``), so that N ranks train as one
        process would; False (Keras' default) uses each rank's own rows. On one process it
        changes nothing; a batch with fewer rows than ranks uses local statistics.

    Training on a batch of one row normalises every feature to 0 (the variance of one
    row is 0): the layer warns once (PyTorch refuses such a batch).
    """

    _warned_one_row = False  # set on the instance by the first warning
    scratch = ("xc", "xn", "std", "x_shape", "batch_sync")
    #: set by data-parallel fit on a synchronized layer, per batch (see _distributed_fit)
    sync = None

    def __init__(self, momentum=0.9, epsilon=1e-5, moving_variance_initializer="ones",
                 name=None, input_shape=None, synchronized=False):
        super().__init__(name=name, input_shape=input_shape)
        self.momentum = V.in_range(momentum, "BatchNormalization(momentum)", 0.0, 1.0)
        self.epsilon = V.positive_float(epsilon, "BatchNormalization(epsilon)")
        if moving_variance_initializer not in ("ones", "zeros"):
            raise V.InvalidParameterError(
                "BatchNormalization(moving_variance_initializer) needs 'ones' (Keras) or "
                f"'zeros' (the book), got {moving_variance_initializer!r}")
        self.moving_variance_initializer = moving_variance_initializer
        if synchronized is not True and synchronized is not False:
            raise V.InvalidParameterError(
                f"BatchNormalization(synchronized) must be True or False, got {synchronized!r}")
        self.synchronized = synchronized

    def build(self, input_shape, *, xp, device=None, dtype="float32", rng=None):
        n = 1
        for d in input_shape:
            n *= int(d)
        dt = getattr(xp, dtype)
        self.params["gamma"] = xp.ones((n,), dtype=dt, device=device)
        self.params["beta"] = xp.zeros((n,), dtype=dt, device=device)
        self.state["running_mean"] = xp.zeros((n,), dtype=dt, device=device)
        start = xp.ones if self.moving_variance_initializer == "ones" else xp.zeros
        self.state["running_var"] = start((n,), dtype=dt, device=device)
        return super().build(input_shape, xp=xp)

    def _ensure_params(self, x, xp):
        if "gamma" not in self.params:  # used on its own, without a model
            shape = tuple(x.shape[1:])
            self.build(shape, xp=xp, device=_device(x),
                       dtype="float64" if x.dtype == xp.float64 else "float32")

    def forward(self, x, training=True):
        xp = self._ns(x)
        self._ensure_params(x, xp)
        x_shape = x.shape
        if x.ndim != 2:
            x = xp.reshape(x, (x.shape[0], -1))
        gamma, beta = self.params["gamma"], self.params["beta"]
        if training:
            if x.shape[0] == 1 and not self._warned_one_row:
                self._warn_one_row()
            sync = self.sync if self.synchronized else None
            if sync is None:
                mu = xp.mean(x, axis=0)
                xc = x - mu
                var = xp.mean(xc * xc, axis=0)
            else:  # the global batch's mean and variance, over every rank's rows
                mu = sync.sum(xp.sum(x, axis=0), f"{self.name}: the batch mean") / sync.rows
                xc = x - mu
                var = sync.sum(xp.sum(xc * xc, axis=0), f"{self.name}: the batch variance") \
                    / sync.rows
            std = xp.sqrt(var + self.epsilon)
            xn = xc / std
            self.xc, self.xn, self.std, self.x_shape = xc, xn, std, x_shape
            self.batch_sync = sync
            m = self.momentum
            self.state["running_mean"] = m * self.state["running_mean"] + (1 - m) * mu
            self.state["running_var"] = m * self.state["running_var"] + (1 - m) * var
        else:
            xn = (x - self.state["running_mean"]) / xp.sqrt(self.state["running_var"] + self.epsilon)
        out = gamma * xn + beta
        return out if len(x_shape) == 2 else xp.reshape(out, x_shape)

    def _warn_one_row(self):
        self._warned_one_row = True
        who = f"layer {self.name!r}" if self.name else "a layer"
        warnings.warn(
            f"BatchNormalization {who} is training on a batch of 1 row: the batch "
            "variance of one row is 0, so every feature normalises to 0 and the running "
            "variance is pulled toward 0; use a batch_size of 2 or more (and one that does "
            "not leave a last batch of 1 row)", RuntimeWarning, stacklevel=3)

    def backward(self, dout):
        xp = self.xp
        if dout.ndim != 2:
            dout = xp.reshape(dout, (dout.shape[0], -1))
        xn, std = self.xn, self.std
        self.grads["beta"] = xp.sum(dout, axis=0)
        self.grads["gamma"] = xp.sum(xn * dout, axis=0)
        dxn = self.params["gamma"] * dout
        sync = getattr(self, "batch_sync", None)
        if sync is None:
            m1, m2 = xp.mean(dxn, axis=0), xp.mean(dxn * xn, axis=0)
        else:  # the means over the global batch of the true upstream gradient (each rank's
            # dout is that of its own mean loss: times its share of the batch), per local row
            k = dxn.shape[1]
            both = xp.concat([xp.sum(dxn, axis=0), xp.sum(dxn * xn, axis=0)]) * sync.share
            both = sync.sum(both, f"{self.name}: the backward sums") / dxn.shape[0]
            m1, m2 = both[:k], both[k:]
        # d/dx of (x - mean) / std, written in the compact closed form
        dx = (dxn - m1 - xn * m2) / std
        return dx if len(self.x_shape) == 2 else xp.reshape(dx, self.x_shape)

    def get_config(self):
        return {"name": self.name, "momentum": self.momentum, "epsilon": self.epsilon,
                "moving_variance_initializer": self.moving_variance_initializer,
                "synchronized": self.synchronized}
