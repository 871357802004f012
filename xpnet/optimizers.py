"""Optimizers, simple to complex (the book, chapter 6).

Each optimizer is a pure update rule: ``init_state(params)`` makes its state (velocities,
squared-gradient sums ...) and ``apply(params, grads, state)`` returns new parameters and
new state without writing into any array, so a training step is a function of
(parameters, optimizer state, batch) and backends with immutable arrays work. State is
keyed by the parameter's stable name (``"dense_1/W"``), never by ``id()``.

``update(params, grads)`` is the book's interface: it rebinds the entries of the dict
``params`` and keeps the state on the optimizer.

``weight_decay`` is the book's L2 penalty ``0.5 * lambda * sum(W**2)`` on the weights
(:func:`weight_decay_grad`). The base class, with Keras' ``learning_rate`` and gradient
clipping, is in :mod:`xpnet.optimizer_base`; each optimizer here writes its update rule,
``update_one``, as the book writes ``update``.
"""
from __future__ import annotations

import numbers

from array_api_compat import array_namespace

from .functions import EPSILON
from ._registry import resolve
from .optimizer_base import Optimizer, weight_decay_grad, weight_decay_loss

__all__ = ["Optimizer", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam", "AdamW",
           "get_optimizer", "OPTIMIZERS", "weight_decay_grad", "weight_decay_loss", "adam_moments"]


def _scaled_step(p, u, h, lr):
    """``p - lr * u / (sqrt(h) + EPSILON)``, the step of AdaGrad, RMSprop and Adam, written
    in place on the arrays it makes (two instead of five: faster, see benchmarks/README.md)."""
    d = h ** 0.5
    d += EPSILON
    step = u / d
    step *= -lr
    step += p
    return step


class SGD(Optimizer):
    """Stochastic gradient descent: ``W -= lr * g``."""

    def __init__(self, lr=0.01, weight_decay=0.0, **options):
        super().__init__(lr, weight_decay, **options)

    def update_one(self, p, g, slots, step, lr):
        return p - lr * g, slots


class Momentum(Optimizer):
    """``v = momentum * v - lr * g; W += v`` (Polyak 1964)."""

    slots = ("v",)

    def __init__(self, lr=0.01, momentum=0.9, weight_decay=0.0, **options):
        super().__init__(lr, weight_decay, **options)
        self.momentum = self._fraction(momentum, "momentum")

    def update_one(self, p, g, slots, step, lr):
        v = self.momentum * slots["v"] - lr * g
        return p + v, {"v": v}


class Nesterov(Optimizer):
    """Nesterov's accelerated gradient in the book's form: the weights move with the
    *previous* velocity, then the velocity is updated,
    ``W += m*m*v - (1 + m)*lr*g; v = m*v - lr*g``.

    This is PyTorch's ``SGD(momentum=m, nesterov=True)`` step for step, with
    ``v = -lr * momentum_buffer``. Sutskever et al. 2013,
    https://proceedings.mlr.press/v28/sutskever13.html; Bengio et al. 2012,
    https://arxiv.org/abs/1212.0901 (the look-ahead reparametrisation)."""

    slots = ("v",)

    def __init__(self, lr=0.01, momentum=0.9, weight_decay=0.0, **options):
        super().__init__(lr, weight_decay, **options)
        self.momentum = self._fraction(momentum, "momentum")

    def update_one(self, p, g, slots, step, lr):
        m, v = self.momentum, slots["v"]
        new_p = p + m * m * v - (1 + m) * lr * g
        return new_p, {"v": m * v - lr * g}


class AdaGrad(Optimizer):
    """``h += g*g; W -= lr * g / (sqrt(h) + 1e-7)``. Duchi et al. 2011,
    https://jmlr.org/papers/v12/duchi11a.html."""

    slots = ("h",)

    def __init__(self, lr=0.01, weight_decay=0.0, **options):
        super().__init__(lr, weight_decay, **options)

    def update_one(self, p, g, slots, step, lr):
        h = slots["h"] + g * g
        return _scaled_step(p, g, h, lr), {"h": h}


class RMSprop(Optimizer):
    """``h = d*h + (1 - d)*g*g; W -= lr * g / (sqrt(h) + 1e-7)``. Tieleman & Hinton 2012,
    Coursera lecture 6.5."""

    slots = ("h",)

    def __init__(self, lr=0.01, decay_rate=0.99, weight_decay=0.0, **options):
        super().__init__(lr, weight_decay, **options)
        self.decay_rate = self._fraction(decay_rate, "decay_rate")

    def update_one(self, p, g, slots, step, lr):
        d = self.decay_rate
        h = d * slots["h"] + (1 - d) * g * g
        return _scaled_step(p, g, h, lr), {"h": h}


class Adam(Optimizer):
    """Adam with bias correction folded into the step size, as in the book:
    ``lr_t = lr * sqrt(1 - b2**t) / (1 - b1**t)``, ``t`` the step count of the state.
    Kingma & Ba 2015, https://arxiv.org/abs/1412.6980."""

    slots = ("m", "v")

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, weight_decay=0.0, **options):
        super().__init__(lr, weight_decay, **options)
        self.beta1 = self._fraction(beta1, "beta1")
        self.beta2 = self._fraction(beta2, "beta2")

    def update_one(self, p, g, slots, step, lr):
        b1, b2 = self.beta1, self.beta2
        if not isinstance(step, numbers.Integral):  # a traced step count: the correction in p's dtype
            step = array_namespace(p).astype(step, p.dtype)
        lr_t = lr * (1 - b2 ** step) ** 0.5 / (1 - b1 ** step)
        m, v = adam_moments(g, slots, b1, b2)
        return _scaled_step(p, m, v, lr_t), {"m": m, "v": v}


def adam_moments(g, slots, b1, b2):
    """Adam's new ``(m, v)``: the book's ``m += (1 - b1) * (g - m)``,
    ``v += (1 - b2) * (g*g - v)``, in place on arrays made here (4 in all, not 12: faster,
    see benchmarks/README.md)."""
    m_old, v_old = slots["m"], slots["v"]
    m = g - m_old
    m *= 1 - b1
    m += m_old
    v = g * g
    v -= v_old
    v *= 1 - b2
    v += v_old
    return m, v


class AdamW(Adam):
    """Adam with decoupled weight decay: each update first shrinks every parameter,
    ``p -= lr * weight_decay * p``, then takes Adam's step, instead of adding the decay's
    gradient to ``g`` (which Adam would rescale). Loshchilov & Hutter 2019,
    https://arxiv.org/abs/1711.05101. As Keras' ``AdamW``: ``weight_decay=0.004`` by default,
    applied to every parameter (biases included)."""

    decoupled = True

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, weight_decay=0.004, **options):
        super().__init__(lr, beta1, beta2, weight_decay, **options)

    def update_one(self, p, g, slots, step, lr):
        return super().update_one(p - (lr * self.weight_decay) * p, g, slots, step, lr)


OPTIMIZERS = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
}


def get_optimizer(spec) -> Optimizer:
    """An optimizer from a name (default hyper-parameters), an instance or a class."""
    return resolve(spec, OPTIMIZERS, Optimizer, "optimizer")
