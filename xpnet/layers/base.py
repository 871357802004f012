"""The layer contract every xpnet layer follows.

A layer is a node of the computational graph (the book, chapter 5): ``forward(x)``
computes the output and keeps what ``backward`` needs; ``backward(dout)`` takes the
gradient of the loss with respect to the output and returns the gradient with respect
to the input, leaving the gradients of the layer's parameters in ``grads``.

- ``params``: trainable arrays by name (``"W"``, ``"b"``, ``"gamma"`` ...), rebound, never
  written in place, so backends with immutable arrays work.
- ``grads``: the gradients of ``params`` from the last ``backward``, same names.
- ``state``: non-trainable arrays (BatchNormalization's running statistics).
- ``trainable``: set it to False to freeze the layer (as in Keras): ``fit`` leaves its
  ``params`` as they are, and a frozen BatchNormalization runs in inference mode (its
  running statistics stay too). Read at the start of each ``fit``.
- ``xp``: the array namespace, bound when the layer is built (or from the first input
  when a layer is used on its own).
- ``scratch``: the names of what a training ``forward`` keeps for ``backward``; a forward
  with ``training=False`` keeps nothing. Plain :mod:`pickle` leaves scratch and gradients
  out and carries the arrays as NumPy (:mod:`xpnet._pickling`).
"""
from __future__ import annotations

import math

from array_api_compat import array_namespace

from .. import _pickling
from .. import _validate as V

__all__ = ["Layer"]


class Layer:
    """Base class: override ``forward``, ``backward`` and, for layers with parameters,
    ``build`` and ``compute_output_shape``."""

    scratch: tuple = ()  # attributes a training forward keeps for backward

    def __init__(self, name: str | None = None, input_shape=None, input_dim: int | None = None):
        who = type(self).__name__
        if input_dim is not None:
            input_shape = (V.positive_int(input_dim, f"{who}(input_dim)"),)
        elif input_shape is not None:
            input_shape = V.shape_of_positive_ints(input_shape, f"{who}(input_shape)")
        self.name = name
        self.input_shape = input_shape
        self.params: dict = {}
        self.grads: dict = {}
        self.state: dict = {}
        self.xp = None
        self.built = False
        self.need_input_grad = True
        self.trainable = True

    # -- building ---------------------------------------------------------------------
    def build(self, input_shape, *, xp, device=None, dtype=None, rng=None):
        """Create the parameters for per-sample ``input_shape``; return the output shape."""
        self.xp = xp
        self.input_shape = tuple(input_shape)
        self.built = True
        return self.compute_output_shape(self.input_shape)

    def compute_output_shape(self, input_shape):
        """The per-sample output shape for a per-sample ``input_shape``."""
        return tuple(input_shape)

    def _ns(self, x):
        xp = self.xp
        if xp is None:
            xp = self.xp = array_namespace(x)
        return xp

    # -- computing --------------------------------------------------------------------
    def forward(self, x, training=True):
        raise NotImplementedError

    def forward_owned(self, x, training=True):
        """``forward`` for an ``x`` the caller has just made and will not read again, so
        the layer may compute in ``x``'s memory (Dense hands its activation ``x @ W + b``
        this way). The default is plain ``forward``."""
        return self.forward(x, training)

    def backward(self, dout):
        raise NotImplementedError

    def __call__(self, x, training=False):
        return self.forward(x, training=training)

    # -- bookkeeping ------------------------------------------------------------------
    def count_params(self) -> int:
        """Number of trainable scalars."""
        return sum(math.prod(p.shape) for p in self.params.values())

    def __getstate__(self):
        return _pickling.layer_state(self)

    def __setstate__(self, state):
        _pickling.restore_layer(self, state)

    def get_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"
