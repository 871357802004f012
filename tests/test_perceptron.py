"""The book's perceptron logic gates (chapter 2): full truth tables."""
from __future__ import annotations

import numpy as np
import pytest

from xpnet import perceptron as P

INPUTS = [(0, 0), (1, 0), (0, 1), (1, 1)]
TABLES = {
    "AND": (P.AND, [0, 0, 0, 1]),
    "NAND": (P.NAND, [1, 1, 1, 0]),
    "OR": (P.OR, [0, 1, 1, 1]),
    "XOR": (P.XOR, [0, 1, 1, 0]),
}


@pytest.mark.parametrize("gate", list(TABLES))
def test_truth_table(gate):
    f, expected = TABLES[gate]
    assert [f(x1, x2) for x1, x2 in INPUTS] == expected


@pytest.mark.parametrize("gate", list(TABLES))
def test_truth_table_on_backend_scalars(gate, to_xp):
    # the gates also take 0-d float arrays of any backend and still return Python ints
    # (integer arrays times the float weights is not allowed by array-api-strict)
    f, expected = TABLES[gate]
    got = [f(to_xp(np.array(float(x1))), to_xp(np.array(float(x2)))) for x1, x2 in INPUTS]
    assert got == expected
    assert all(type(v) is int for v in got)


def test_xor_is_and_of_nand_and_or():
    for x1, x2 in INPUTS:
        assert P.XOR(x1, x2) == P.AND(P.NAND(x1, x2), P.OR(x1, x2))


def test_perceptron_threshold_is_strict():
    assert P.perceptron(1, 1, 0.5, 0.5, -1.0) == 0  # exactly 0 is not > 0
    assert P.perceptron(1, 1, 0.5, 0.5, -0.99) == 1
