"""Saving and loading a :class:`~xpnet.Sequential`: which arrays go into a weight file,
and the checks made before a file's arrays replace the model's.

The file format itself (atomic ``.npz``, no pickle, a JSON header) is :mod:`xpnet.io`.
"""
from __future__ import annotations

import math

from . import backend as B
from . import io as _io

__all__ = ["save", "load", "checked_weights"]


def _weight_arrays(model):
    model.build_for()
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
    path = _io.save_path(path)  # refused before the model is built or anything is written
    if epoch is not None:
        epoch = _io.checked_count(epoch, "epoch")
    arrays, header = _weight_arrays(model)
    if epoch is not None:
        header["epoch"] = epoch
        if model.opt_state is not None:
            header["optimizer"] = {"class": type(model.optimizer).__name__,
                                   "step": int(model.opt_state["step"])}
            for key, slots in model.opt_state["slots"].items():
                for slot, value in slots.items():
                    arrays[f"optimizer/{key}/{slot}"] = value
    _io.save_arrays(path, arrays, header)


def load(model, path, with_optimizer) -> dict:
    """Check ``path`` against ``model`` from its headers, then read it and set ``model``'s
    arrays; return the header.

    Names, shapes and dtypes are compared before any array is read, and every value is
    checked (finite) before any is set: a failed load leaves the model as it was (an
    unbuilt model stays unbuilt).
    """
    with _io.WeightFile(path) as f:
        header, path = f.header, f.path
        saved = header.get("optimizer") if with_optimizer else None
        if saved is not None and not model.compiled:
            raise RuntimeError(
                f"{path!r} holds the state of a {saved['class']} optimizer, but the model is "
                f"not compiled: call model.compile(optimizer=..., loss=...) with a "
                f"{saved['class']} optimizer first, then load_checkpoint (or use load_weights "
                "for the weights alone)")
        mine = [l.name for l in model.layers]
        theirs = [e["name"] for e in header.get("layers", [])]
        if mine != theirs:
            raise _io.WeightFileError(f"{path!r} holds layers {theirs}, the model has {mine}")
        was_built = model.built
        try:
            if not model.built:
                model.build(_input_shape(model, f))
            updates, opt_state = _read_checked(model, f, saved, with_optimizer)
        except BaseException:
            model.built = was_built
            raise
    for store, k, value in updates:  # all checked before anything changes (the optimizer
        store[k] = value             # slots go into the fresh state, not yet the model's)
    if with_optimizer:
        model.opt_state = opt_state  # a checkpoint without optimizer state: a fresh start
    return header


def _input_shape(model, f):
    """The shape to build an unbuilt model with: the first layer's declared one, which the
    file must agree with, or the file's once it is plausible for the file's size."""
    saved = tuple(f.header["input_shape"]) if f.header.get("input_shape") else None
    first = model.layers[0] if model.layers else None  # none: build says so
    if first is None or first.input_shape is not None:
        if first is not None and saved is not None and tuple(first.input_shape) != saved:
            raise _io.WeightFileError(
                f"{f.path!r} was saved for input shape {saved}, but layer {first.name!r} "
                f"declares {tuple(first.input_shape)} (input_shape=/input_dim=): make them "
                "agree, or load the file into a model built for its shape")
        return None
    # Dense and BatchNormalization store at least one number per input feature, so a
    # model built from ``saved`` cannot match a file that holds fewer bytes than that
    numbers, budget = math.prod(saved or ()), f.data_bytes()
    if saved is not None and numbers > budget:
        raise _io.WeightFileError(
            f"{f.path!r} declares input_shape {saved}: {numbers:,} numbers per sample, more "
            f"than the {budget:,} bytes of arrays the file holds, so no model built from it "
            "matches the file (crafted or corrupt?); give the first layer input_shape=... "
            "to build the model yourself")
    return saved


def _read_checked(model, f, saved, with_optimizer):
    """``(updates, optimizer state)``: every array the model takes from ``f``, its name,
    shape and dtype checked from the headers before it is read, then checked finite."""
    dtype = model.dtype_name
    move = lambda a, what: B.asarray(  # noqa: E731
        _io.host_values(a, a.shape, dtype, what, _io.WeightFileError),
        dtype=dtype, backend=model.backend)
    wanted = [(store, k, f"{prefix}{l.name}/{k}", tuple(v.shape), f"layer {l.name!r} {k}")
              for l in model.layers for prefix, store in (("", l.params), ("state/", l.state))
              for k, v in store.items()]
    state = None
    if saved is not None:
        if saved["class"] != type(model.optimizer).__name__:
            raise _io.WeightFileError(
                f"{f.path!r} holds the state of a {saved['class']} optimizer (step "
                f"{saved.get('step')!r}), but the model is compiled with "
                f"{type(model.optimizer).__name__}: compile with the same optimizer to "
                "resume, or use load_weights for the weights alone")
        state = model.optimizer.init_state(model.get_params())
        state["step"] = saved.get("step", 0)
        wanted += [(slots, slot, f"optimizer/{key}/{slot}", tuple(v.shape),
                    f"optimizer state of {key!r} {slot}")
                   for key, slots in state["slots"].items() for slot, v in slots.items()]
    for _, _, key, _, what in wanted:
        if key not in f:
            raise _io.WeightFileError(f"{f.path!r} has no {key!r} for {what}")
    # a checkpoint's optimizer state is no surprise to load_weights: skipped, unread
    skipped = "optimizer/" if not with_optimizer and "optimizer" in f.header else None
    known = {w[2] for w in wanted} | {_io.HEADER_KEY}
    extra = sorted(n for n in f.names
                   if n not in known and not (skipped and n.startswith(skipped)))
    if extra:
        shown = ", ".join(map(repr, extra[:5])) + (f" and {len(extra) - 5} more"
                                                   if len(extra) > 5 else "")
        raise _io.WeightFileError(
            f"{f.path!r} holds {shown}, which are not part of this model (refused unread: "
            "a weight file holds exactly the model's arrays)")
    for _, _, key, shape, what in wanted:  # every header before any data
        theirs, _ = f.spec(key)
        if theirs != shape:
            raise _io.WeightFileError(f"{what}: the model has shape {shape}, {f.path!r} "
                                      f"has {theirs}")
    values = [move(f.read(key), what) for _, _, key, _, what in wanted]
    return [(store, k, v) for (store, k, *_), v in zip(wanted, values)], state


def checked_weights(model, weights) -> list:
    """``weights`` (in :meth:`~xpnet.Sequential.get_weights` order) as arrays of the model's
    backend and dtype, each checked (shape, numbers, finite) before any is used."""
    targets = [(l, d, k) for l in model.layers for d in (l.params, l.state) for k in d]
    weights = list(weights)
    if len(weights) != len(targets):
        raise ValueError(f"set_weights got {len(weights)} arrays, the model has {len(targets)}")
    host = [_io.host_values(w, store[key].shape, model.dtype_name, f"layer {layer.name!r} {key}")
            for (layer, store, key), w in zip(targets, weights)]
    return [(store, key, B.asarray(h, dtype=model.dtype_name, backend=model.backend))
            for (_, store, key), h in zip(targets, host)]
