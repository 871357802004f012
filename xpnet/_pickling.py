"""Pickling layers and models with plain :mod:`pickle`.

A pickle holds no modules, no device objects and none of a batch: parameters, state and
optimizer state travel as NumPy arrays, the backend as its name, and what a layer kept for
``backward`` (its ``scratch``) and its last gradients are left out. On load the backend is
loaded by name (:func:`xpnet.backend.load`, on its default device) and the arrays moved to
it, so a model trained on PyTorch unpickles on PyTorch, and a Dask worker or a
scikit-learn ``clone`` gets a model of a few hundred kilobytes however large its last
batch was. A Dropout layer's generator is not pickled: it restarts from its seed.
"""
from __future__ import annotations

import threading

from . import backend as B

__all__ = ["layer_state", "restore_layer", "model_state", "restore_model"]


def _scratch(obj) -> set:
    return {name for cls in type(obj).__mro__ for name in getattr(cls, "scratch", ())}


def _host(store: dict) -> dict:
    return {k: B.to_numpy(v) if B.is_array(v) else v for k, v in store.items()}


def _moved(store: dict, backend) -> dict:
    return {k: B.asarray(v, backend=backend) if B.is_array(v) else v for k, v in store.items()}


def _backend_name(xp) -> str | None:
    if xp is None:
        return None
    name = B.name_of(xp)
    if name is None:
        raise TypeError(f"cannot pickle a layer whose namespace {getattr(xp, '__name__', xp)!r} "
                        "is not one of xpnet's backends")
    return name


def layer_state(layer) -> dict:
    """``layer.__dict__`` for pickling: arrays as NumPy, the namespace as a backend name,
    no scratch, no gradients."""
    state = {k: v for k, v in layer.__dict__.items() if k not in _scratch(layer)}
    state["params"], state["state"], state["grads"] = _host(layer.params), _host(layer.state), {}
    state["xp"] = _backend_name(layer.xp)
    if "rng" in state:
        state["rng"] = None
    return state


def restore_layer(layer, state: dict) -> None:
    """The inverse of :func:`layer_state`: load the backend by name, move the arrays."""
    name = state.get("xp")
    if name is not None:
        backend = B.load(name)
        state = dict(state, xp=backend.xp, params=_moved(state["params"], backend),
                     state=_moved(state["state"], backend))
    layer.__dict__.update(state)


def model_state(model) -> dict:
    """``model.__dict__`` for pickling: the backend as its name, the optimizer state as
    NumPy (the layers pickle themselves), no lock."""
    state = dict(model.__dict__)
    state.pop("_lock", None)
    if model.backend is not None:
        state["backend"] = model.backend.name
    if model.opt_state is not None:
        opt = model.opt_state
        state["opt_state"] = {**_host({"step": opt["step"]}),
                              "slots": {k: _host(s) for k, s in opt["slots"].items()}}
    return state


def restore_model(model, state: dict) -> None:
    """The inverse of :func:`model_state`."""
    state = dict(state)
    if state.get("backend") is not None:
        backend = state["backend"] = B.load(state["backend"])
        if state.get("opt_state") is not None:
            opt = state["opt_state"]
            state["opt_state"] = {**_moved({"step": opt["step"]}, backend),
                                  "slots": {k: _moved(s, backend) for k, s in opt["slots"].items()}}
    model.__dict__.update(state)
    model._lock = threading.RLock()
