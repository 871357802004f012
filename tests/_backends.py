"""Which backends can run here, for tests that name a backend rather than use the
``backend`` fixture (a second backend to move to, a foreign array to refuse).

A backend that cannot run (PyTorch not installed, no CUDA device) makes such a test skip
with the reason :mod:`xpnet.backend` gives, as the ``backend`` fixture does.
"""
from __future__ import annotations

import pytest

import xpnet as xn
from xpnet import backend as B


def unavailable(name: str) -> str | None:
    """Why backend ``name`` cannot run here, or None when it can."""
    try:
        B.load(name)
    except xn.BackendUnavailableError as exc:
        return str(exc)
    return None


def require(*names: str) -> None:
    """Skip the calling test unless every backend in ``names`` can run here."""
    for name in names:
        reason = unavailable(name)
        if reason is not None:
            pytest.skip(f"backend {name!r} cannot run here: {reason}")


def param(name: str):
    """``pytest.param(name)``, skipped with the reason where ``name`` cannot run."""
    reason = unavailable(name)
    marks = [pytest.mark.skip(reason=f"backend {name!r} cannot run here: {reason}")] if reason else []
    return pytest.param(name, marks=marks, id=name)
