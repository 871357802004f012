"""The base class of the optimizers: the pure update interface, Keras' learning_rate and
gradient clipping, and the book's weight decay.

``apply(params, grads, state)`` returns new parameters and state without writing into any
array (a training step is a function of parameters, optimizer state and batch); each
optimizer of :mod:`xpnet.optimizers` writes only its ``update_one``.

``weight_decay`` is the book's L2 penalty ``0.5 * lambda * sum(W**2)`` over every parameter
with two or more dimensions (weights, not biases): :func:`weight_decay_grad` adds its
gradient ``lambda * W``, for the optimizers and for :class:`~xpnet.models.MultiLayerNet`.
"""
from __future__ import annotations

import functools
import inspect

from array_api_compat import array_namespace, device

from . import _validate as V
from .schedules import LearningRateSchedule

__all__ = ["Optimizer", "weight_decay_grad", "weight_decay_loss"]


def weight_decay_grad(g, p, lam):
    """``g + lam * p`` for a weight ``p`` (two or more dimensions), else ``g``."""
    return g + lam * p if lam and p.ndim >= 2 else g


def weight_decay_loss(params, lam):
    """``0.5 * lam * sum(p**2)`` over the weights of ``params`` (a 0-d array, or 0.0)."""
    if not lam:
        return 0.0
    total = 0.0
    for p in params.values():
        if p.ndim >= 2:
            total = total + array_namespace(p).sum(p * p)
    return 0.5 * lam * total


class Optimizer:
    """Base class: subclasses set ``slots`` and write ``update_one``.

    Every optimizer also takes, as Keras' do: ``learning_rate`` (the same as ``lr``, the
    book's name), a float or a schedule (:mod:`xpnet.schedules`) evaluated at the state's
    step count; and one of ``clipnorm`` (each gradient scaled to an L2 norm of at most
    that), ``global_clipnorm`` (all gradients scaled together, by their joint norm) or
    ``clipvalue`` (each element clipped to ``[-v, v]``). Clipping acts on the gradients
    the optimizer is given, before the book's ``weight_decay`` term is added.
    """

    #: names of the per-parameter state arrays, each initialised to zeros
    slots: tuple = ()
    #: True where ``weight_decay`` shrinks the weights in the update (AdamW), not the gradient
    decoupled = False

    def __init__(self, lr=0.01, weight_decay=0.0, *, learning_rate=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None):
        lr = lr if learning_rate is None else learning_rate
        self.lr = lr if isinstance(lr, LearningRateSchedule) else V.positive_float(lr, self._arg("lr"))
        self.weight_decay = V.non_negative_float(weight_decay, self._arg("weight_decay"))
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        given = [k for k, v in clips.items() if v is not None]
        if len(given) > 1:
            raise V.InvalidParameterError(
                f"{type(self).__name__}: only one of clipnorm, clipvalue and global_clipnorm can "
                f"be set (as in Keras), got {', '.join(given)}")
        for k, v in clips.items():
            setattr(self, k, None if v is None else V.positive_float(v, self._arg(k)))
        self.state = None

    @property
    def learning_rate(self):
        """Keras' name for ``lr``."""
        return self.lr

    @learning_rate.setter
    def learning_rate(self, value):
        self.lr = value

    def clip_gradients(self, grads: dict) -> dict:
        """``grads`` clipped by ``clipnorm``, ``global_clipnorm`` or ``clipvalue`` (Keras'
        rules: ``g * c / max(||g||, c)``; the joint norm for ``global_clipnorm``)."""
        if self.clipvalue is not None:
            c = self.clipvalue
            return {k: _array_api_clip(g, c) for k, g in grads.items()}
        if self.clipnorm is not None:
            return {k: g * _shrink(_norm2(g), self.clipnorm, g) for k, g in grads.items()}
        if self.global_clipnorm is not None and grads:
            total = sum(_norm2(g) for g in grads.values())
            factor = _shrink(total, self.global_clipnorm, next(iter(grads.values())))
            return {k: g * factor for k, g in grads.items()}
        return grads

    def _arg(self, name):
        return f"{type(self).__name__}({name})"

    def _fraction(self, value, name):
        """A decay factor (momentum, beta, decay rate) in [0, 1): at 1 or above the state
        never forgets and grows without bound; NaN poisons every weight."""
        return V.in_range(value, self._arg(name), 0.0, 1.0, hi_open=True)

    # -- the pure interface -------------------------------------------------------------
    def init_state(self, params: dict) -> dict:
        """Fresh state for ``params`` (a dict name -> array): zeros for each slot, step 0."""
        slots = {}
        for key, p in params.items():
            xp = array_namespace(p)
            slots[key] = {name: xp.zeros_like(p) for name in self.slots}
        return {"step": 0, "slots": slots}

    def apply(self, params: dict, grads: dict, state: dict, lr=None):
        """One update: return ``(new_params, new_state)``; the inputs are not modified.

        ``lr`` (default ``self.lr``) and the state's step count may be 0-d arrays: a
        compiled step takes both as inputs, so a schedule's new rate needs no new trace.
        """
        lr = self.lr if lr is None else lr
        if callable(lr):  # a schedule: the rate of the update after state["step"] updates
            lr = lr(state["step"])
        rate = (lr,) if _takes_lr(type(self)) else ()  # an older update_one reads self.lr
        if self.clipnorm is not None or self.clipvalue is not None or self.global_clipnorm is not None:
            grads = self.clip_gradients(grads)
        lam = 0.0 if self.decoupled else self.weight_decay
        step = state["step"] + 1
        new_params, new_slots = {}, {}
        for key, p in params.items():
            g = weight_decay_grad(grads[key], p, lam)
            new_params[key], new_slots[key] = self.update_one(p, g, state["slots"][key], step,
                                                              *rate)
        return new_params, {"step": step, "slots": new_slots}

    def update_one(self, p, g, slots: dict, step, lr):
        """New ``(param, slots)`` for one parameter ``p`` with gradient ``g``, at step
        ``step`` (an int, or a 0-d integer array in a compiled step) and rate ``lr``."""
        raise NotImplementedError

    # -- the book's interface ----------------------------------------------------------
    def update(self, params: dict, grads: dict) -> None:
        """Rebind ``params[key]`` to the updated arrays (the book's ``optimizer.update``)."""
        if self.state is None:
            self.state = self.init_state(params)
        new_params, self.state = self.apply(params, grads, self.state)
        params.update(new_params)

    def get_config(self) -> dict:
        return {k: v for k, v in vars(self).items()
                if k != "state" and not (v is None and k in _CLIPS)}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@functools.lru_cache(maxsize=None)
def _takes_lr(cls) -> bool:
    """Whether ``cls.update_one`` takes the rate as an argument; a subclass written for the
    four-argument form ``update_one(p, g, slots, step)`` reads ``self.lr`` instead (a
    compiled step then keeps the rate it was traced with)."""
    return "lr" in inspect.signature(cls.update_one).parameters


_CLIPS = ("clipnorm", "clipvalue", "global_clipnorm")


def _norm2(g):
    """``sum(g**2)`` (a 0-d array)."""
    return array_namespace(g).sum(g * g)


def _shrink(norm2, c, like):
    """``c / max(sqrt(norm2), c)``: 1 inside the ball of radius ``c``, else the factor onto it."""
    xp = array_namespace(like)
    return c / xp.maximum(xp.sqrt(norm2), xp.asarray(c, dtype=norm2.dtype, device=device(like)))


def _array_api_clip(g, c):
    xp = array_namespace(g)
    return xp.minimum(xp.maximum(g, -c), c)
