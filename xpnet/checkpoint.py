"""Saving and loading a :class:`~xpnet.Sequential`: which arrays go into a weight file,
and the checks made before a file's arrays replace the model's.

The file format itself (atomic ``.npz``, no pickle, a JSON header) is :mod:`xpnet.io`.
"""
from __future__ import annotations

from . import backend as B
from . import io as _io

__all__ = ["save", "load"]


def _weight_arrays(model):
    model._ensure_built()
    arrays, layers = {}, []
    for l in model.layers:
        entry = {"name": l.name, "class": type(l).__name__, "params": {}, "state": {}}
        for kind, store in (("params", l.params), ("state", l.state)):
            for k, v in store.items():
                prefix = "" if kind == "params" else "state/"
                arrays[f"{prefix}{l.name}/{k}"] = v
                entry[kind][k] = list(v.shape)
        layers.append(entry)
    return arrays, {"layers": layers, "input_shape": list(model.input_shape)}


def save(model, path, epoch=None) -> None:
    """Write ``model``'s parameters and state to ``path``; with ``epoch``, a checkpoint that
    also holds the optimizer state."""
    arrays, header = _weight_arrays(model)
    if epoch is not None:
        header["epoch"] = int(epoch)
        if model.opt_state is not None:
            header["optimizer"] = {"class": type(model.optimizer).__name__,
                                   "step": int(model.opt_state["step"])}
            for key, slots in model.opt_state["slots"].items():
                for slot, value in slots.items():
                    arrays[f"optimizer/{key}/{slot}"] = value
    _io.save_arrays(path, arrays, header)


def load(model, path, with_optimizer) -> dict:
    """Read ``path`` once, check everything, then set ``model``'s arrays; return the header.

    A failed load leaves the model as it was (an unbuilt model stays unbuilt).
    """
    arrays, header = _io.load_arrays(path)
    was_built = model.built
    move = lambda a: B.asarray(a, dtype=model.dtype_name, backend=model.backend)  # noqa: E731
    try:
        if not model.built:
            model.build(tuple(header.get("input_shape") or ()) or None)
        mine = [l.name for l in model.layers]
        theirs = [e["name"] for e in header.get("layers", [])]
        if mine != theirs:
            raise _io.WeightFileError(f"{path!r} holds layers {theirs}, the model has {mine}")
        updates = [(store, k, move(_io.checked_array(path, arrays, f"{prefix}{l.name}/{k}",
                                                      v.shape, f"layer {l.name!r} {k}")))
                   for l in model.layers for prefix, store in (("", l.params), ("state/", l.state))
                   for k, v in store.items()]
        opt_state = _file_opt_state(model, path, arrays, header, move) if with_optimizer else None
    except BaseException:
        model.built = was_built
        raise
    for store, k, value in updates:  # all checked before anything changes
        store[k] = value
    if opt_state is not None:
        model.opt_state = opt_state
    return header


def _file_opt_state(model, path, arrays, header, move):
    saved = header.get("optimizer")
    if saved is None or not model.compiled:
        return None
    mine = type(model.optimizer).__name__
    theirs = saved.get("class") if isinstance(saved, dict) else None
    step = saved.get("step") if isinstance(saved, dict) else None
    if theirs != mine or isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise _io.WeightFileError(
            f"{path!r} holds the state of a {theirs} optimizer (step {step!r}), but the model "
            f"is compiled with {mine}: compile with the same optimizer to resume, or use "
            "load_weights for the weights alone")
    state = model.optimizer.init_state(model.get_params())
    for key, slots in state["slots"].items():
        for slot, v in slots.items():
            slots[slot] = move(_io.checked_array(path, arrays, f"optimizer/{key}/{slot}",
                                                 v.shape, f"optimizer state of {key!r} {slot}"))
    state["step"] = step
    return state
