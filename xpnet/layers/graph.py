"""The computational-graph layers of the book's shopping example (chapter 5).

``MulLayer`` and ``AddLayer`` take two inputs and work on Python numbers as well as on
arrays: they use only ``*`` and ``+``.
"""
from __future__ import annotations

__all__ = ["MulLayer", "AddLayer"]


class MulLayer:
    """``out = x * y``; backward swaps the inputs: ``dx = dout * y``, ``dy = dout * x``."""

    def __init__(self):
        self.x = None
        self.y = None

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, dout):
        return dout * self.y, dout * self.x


class AddLayer:
    """``out = x + y``; backward passes ``dout`` on to both inputs unchanged."""

    def forward(self, x, y):
        return x + y

    def backward(self, dout):
        return dout * 1, dout * 1
