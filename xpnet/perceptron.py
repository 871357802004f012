"""Perceptron logic gates (the book, chapter 2).

Each gate is one perceptron: a weighted sum of the 0/1 inputs plus a bias, passed
through the step function. XOR cannot be drawn with one straight line, so it is a
two-layer perceptron: ``XOR(x1, x2) = AND(NAND(x1, x2), OR(x1, x2))``.
"""
from __future__ import annotations

__all__ = ["perceptron", "AND", "NAND", "OR", "XOR"]


def perceptron(x1, x2, w1, w2, b):
    """``1`` if ``w1*x1 + w2*x2 + b > 0`` else ``0``."""
    return 1 if w1 * x1 + w2 * x2 + b > 0 else 0


def AND(x1, x2):
    """1 only when both inputs are 1 (weights 0.5, 0.5, bias -0.7)."""
    return perceptron(x1, x2, 0.5, 0.5, -0.7)


def NAND(x1, x2):
    """NOT AND: the AND perceptron with every sign flipped (weights -0.5, -0.5, bias 0.7)."""
    return perceptron(x1, x2, -0.5, -0.5, 0.7)


def OR(x1, x2):
    """1 when either input is 1 (weights 0.5, 0.5, bias -0.2)."""
    return perceptron(x1, x2, 0.5, 0.5, -0.2)


def XOR(x1, x2):
    """1 when exactly one input is 1: a two-layer perceptron, AND(NAND, OR)."""
    return AND(NAND(x1, x2), OR(x1, x2))
