"""Checks for the values a user gives to a constructor, ``compile`` or the start of ``fit``.

Each helper takes the value and its name as the user would write it (``"Adam(beta1)"``)
and returns the value in its plain Python type, or raises :class:`InvalidParameterError`
naming the parameter, what it needs and what it got. NumPy scalars are accepted wherever a
Python number is; ``bool`` is never a number here. Nothing here runs per batch.
"""
from __future__ import annotations

import math
import numbers

from .backend import host_rng

#: the class of xpnet's host generator (``numpy.random.Generator``), via the backend module
_GENERATOR = type(host_rng(0))

__all__ = ["InvalidParameterError", "is_int", "positive_int", "shape_of_positive_ints", "in_range",
           "positive_float", "non_negative_float", "check_seed"]

#: seeds go to NumPy's SeedSequence and to torch's ``Generator.manual_seed`` (64 bits)
SEED_LIMIT = 2**64


class InvalidParameterError(ValueError, TypeError):
    """A hyper-parameter of the wrong type or value (a ``ValueError`` and a ``TypeError``,
    as scikit-learn's exception of the same name, so either ``except`` catches it)."""


def is_int(value) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive_int(value, name: str) -> int:
    """``value`` as an ``int`` > 0 (Python or NumPy integer; not a bool or a float)."""
    if not is_int(value) or value <= 0:
        raise InvalidParameterError(f"{name} needs a positive int, got {value!r}")
    return int(value)


def shape_of_positive_ints(value, name: str) -> tuple:
    """``value`` (a tuple or list of positive ints, one per axis of a sample) as a tuple."""
    if not isinstance(value, (tuple, list)) or not value:
        raise InvalidParameterError(
            f"{name} needs a tuple of positive ints such as (4,) (the per-sample shape, "
            f"no batch axis), got {value!r}")
    dims = []
    for d in value:
        if not is_int(d) or d <= 0:
            raise InvalidParameterError(
                f"{name} needs positive ints (a sample with a 0 or negative size has no "
                f"features), got {value!r}")
        dims.append(int(d))
    return tuple(dims)


def in_range(value, name: str, lo: float, hi: float, *, lo_open=False, hi_open=False) -> float:
    """``value`` as a ``float`` in the interval from ``lo`` to ``hi`` (ends closed unless
    ``lo_open``/``hi_open``); NaN and infinities are refused."""
    left, right = ("(" if lo_open else "["), (")" if hi_open else "]")
    where = f"{left}{lo:g}, {hi:g}{right}"
    if not _is_real(value) or not math.isfinite(value):
        raise InvalidParameterError(f"{name} needs a number in {where}, got {value!r}")
    v = float(value)
    if (v <= lo if lo_open else v < lo) or (v >= hi if hi_open else v > hi):
        raise InvalidParameterError(f"{name} needs a number in {where}, got {value!r}")
    return v


def positive_float(value, name: str) -> float:
    """``value`` as a finite ``float`` > 0."""
    if not _is_real(value) or not math.isfinite(value) or not value > 0:
        raise InvalidParameterError(f"{name} needs a finite positive number, got {value!r}")
    return float(value)


def non_negative_float(value, name: str) -> float:
    """``value`` as a finite ``float`` >= 0."""
    if not _is_real(value) or not math.isfinite(value) or not value >= 0:
        raise InvalidParameterError(f"{name} needs a finite number >= 0, got {value!r}")
    return float(value)


def check_seed(value, name: str, *, generator: bool = False):
    """``value`` if it is a valid seed: ``None`` or an int in [0, 2**64) (NumPy ints too),
    or, where ``generator`` is true, a ``numpy.random.Generator``. Returns it unchanged
    (an int as a Python ``int``)."""
    if value is None:
        return None
    if generator and isinstance(value, _GENERATOR):
        return value
    if is_int(value) and 0 <= value < SEED_LIMIT:
        return int(value)
    if generator:
        accepted = "None, an int in [0, 2**64) or a numpy.random.Generator"
    elif isinstance(value, _GENERATOR):
        accepted = "None or an int in [0, 2**64), not a generator (give an int)"
    else:
        accepted = "None or an int in [0, 2**64)"
    raise InvalidParameterError(f"{name} needs {accepted}, got {value!r}")
