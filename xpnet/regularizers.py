"""Weight penalties per layer, as Keras' ``kernel_regularizer=`` / ``bias_regularizer=``.

``L2(l2)`` adds ``l2 * sum(W**2)`` to the loss (Keras' scale: no ``0.5``), ``L1(l1)`` adds
``l1 * sum(|W|)``, ``L1L2`` both; the strings ``"l1"``, ``"l2"``, ``"l1_l2"`` give Keras'
default factor 0.01. The penalty is part of the loss ``fit`` and ``evaluate`` report, and
its gradient (``2 * l2 * W``, ``l1 * sign(W)``) is added to the layer's in ``backward``.

The optimizers' ``weight_decay`` (the book's ``0.5 * lambda * sum(W**2)``, applied in the
update) is not part of the reported loss: that is the book's convention, kept for its
numbers. Loshchilov & Hutter 2019 (https://arxiv.org/abs/1711.05101) explain why a decay
applied in the update and an L2 term in the loss differ for adaptive optimizers.
"""
from __future__ import annotations

from array_api_compat import array_namespace

from . import _validate as V
from ._registry import resolve

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get_regularizer"]


class Regularizer:
    """``penalty(w)`` (a 0-d array) and ``gradient(w)`` (``w``'s shape)."""

    def penalty(self, w):
        raise NotImplementedError

    def gradient(self, w):
        raise NotImplementedError

    def get_config(self) -> dict:
        return dict(vars(self))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w**2)`` (Keras' ``L1L2(l1=0.0, l2=0.0)``)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = V.non_negative_float(l1, f"{type(self).__name__}(l1)")
        self.l2 = V.non_negative_float(l2, f"{type(self).__name__}(l2)")

    def penalty(self, w):
        xp = array_namespace(w)
        total = 0.0
        if self.l1:
            total = total + self.l1 * xp.sum(xp.abs(w))
        if self.l2:
            total = total + self.l2 * xp.sum(w * w)
        return total

    def gradient(self, w):
        xp = array_namespace(w)
        grad = 0.0
        if self.l1:
            grad = grad + self.l1 * xp.sign(w)
        if self.l2:
            grad = grad + (2.0 * self.l2) * w
        return grad


class L1(L1L2):
    """``l1 * sum(|w|)``; gradient ``l1 * sign(w)`` (0 at 0). Keras' default ``l1=0.01``."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(w**2)``; gradient ``2 * l2 * w``. Keras' default ``l2=0.01``."""

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


l1, l2, l1_l2 = L1, L2, L1L2  # Keras' lower-case aliases

_NAMES = {"l1": L1, "l2": L2, "l1_l2": lambda: L1L2(l1=0.01, l2=0.01)}


def get_regularizer(spec):
    """None, a :class:`Regularizer`, a class, or a name ("l1", "l2", "l1_l2": factor 0.01)."""
    if spec is None:
        return None
    return resolve(spec, _NAMES, Regularizer, "regularizer")
