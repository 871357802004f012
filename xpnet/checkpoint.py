"""A :class:`~xpnet.Sequential`'s arrays in and out: ``get_weights``/``set_weights``,
moving to another backend, keeping them across a rebuild, and saving and loading them
(which arrays go into a weight file, and the checks made before a file's arrays replace
the model's).

The file format itself (atomic ``.npz``, no pickle, a JSON header) is :mod:`xpnet.io`.
"""
from __future__ import annotations

import math

from . import backend as B
from . import io as _io
from .distributed import is_main_process

__all__ = ["Weights", "save", "load", "kept_arrays", "restore_arrays"]


class Weights:
    """The weight methods of :class:`~xpnet.Sequential` (get, set, move, save, load)."""

    def get_params(self, trainable_only=False) -> dict:
        """The parameter arrays as ``{"<layer>/<name>": array}`` (no copies).

        With ``trainable_only``, those of the layers not frozen (``trainable``) when the
        model was built or last started ``fit``.
        """
        bound = self._train_bindings if trainable_only else self._bindings
        return {key: layer.params[name] for key, layer, name in bound}

    def set_params(self, params: dict) -> None:
        """Rebind the parameter arrays named in ``params`` (keys as :meth:`get_params`)."""
        for key, layer, name in self._bindings:
            if key in params:
                layer.params[name] = params[key]

    def get_grads(self) -> dict:
        """The gradients of the last backward pass, keyed as ``get_params(trainable_only=True)``."""
        return {key: layer.grads[name] for key, layer, name in self._train_bindings}

    def get_weights(self) -> list:
        """Every layer's parameters then state, as NumPy arrays, in layer order (W, b ...)."""
        self.build_for()
        return [B.to_numpy(a) for l in self.layers for a in (*l.params.values(), *l.state.values())]

    def set_weights(self, weights) -> None:
        """Set parameters and state from a list in the order :meth:`get_weights` gives.

        Every array is checked (shape, a number type, finite after the cast to the model's
        dtype) before any is set: a refused list leaves the model unchanged.
        """
        self.build_for()
        targets = [(l, d, k) for l in self.layers for d in (l.params, l.state) for k in d]
        weights = list(weights)
        if len(weights) != len(targets):
            raise ValueError(f"set_weights got {len(weights)} arrays, the model has {len(targets)}")
        host = [_io.host_values(w, store[key].shape, self.dtype_name, f"layer {layer.name!r} {key}")
                for (layer, store, key), w in zip(targets, weights)]
        moved = [B.asarray(h, dtype=self.dtype_name, backend=self.backend) for h in host]
        for (_, store, key), a in zip(targets, moved):  # all checked before any is set
            store[key] = a

    def to(self, backend_name: str) -> "Sequential":
        """Move parameters, state and optimizer state to another backend; return self."""
        self.build_for()
        target = B.load(backend_name)
        move = lambda a: B.asarray(B.to_numpy(a), backend=target)  # noqa: E731
        for layer in self.layers:
            for store in (layer.params, layer.state):
                for k in store:
                    store[k] = move(store[k])
            layer.grads = {}
            for sub in (layer, getattr(layer, "activation", None)):
                if sub is not None:
                    sub.xp = target.xp
            if getattr(layer, "rng", None) is not None:
                layer.rng = None
        if self.opt_state is not None:
            self.opt_state = _map_state(self.opt_state, move)
        self.backend = target
        return self

    def save_weights(self, path) -> None:
        """Write the parameters to an ``.npz`` file atomically (the model stays where it is).

        ``path`` is a ``str``, ``bytes`` or ``os.PathLike``, written as given; a name of
        another format (``.h5``, ``.keras``, ``.pt``, ``.pth``, ``.pkl`` ...) is refused.
        """
        save(self, path)

    def save_checkpoint(self, path, epoch: int) -> None:
        """Like :meth:`save_weights`, plus the optimizer state and ``epoch`` (an int >= 0),
        for resuming."""
        save(self, path, epoch=epoch)

    def save(self, path) -> None:
        """Write the whole model -- architecture (JSON), weights, state, optimizer state --
        to one file (``"model.xpnet"``); :func:`xpnet.load_model` reads it back on any
        backend. See :mod:`xpnet.saving`."""
        from .saving import save_model

        save_model(self, path)

    def load_weights(self, path) -> dict:
        """Load a file from :meth:`save_weights` or a checkpoint; return its header.

        Layer names, shapes and dtypes are checked from the file's headers before any
        array is read, and every value (finite) before anything changes: a file of another
        architecture fails with a message naming the layer and both shapes, and leaves the
        model as it was. An unbuilt model is built for the file's input shape, which must
        agree with the first layer's ``input_shape``/``input_dim`` where one is declared.
        """
        return load(self, path, with_optimizer=False)

    def load_checkpoint(self, path) -> int:
        """Load weights and optimizer state from a checkpoint; return its epoch.

        The file is read once, so weights and optimizer state come from the same save.
        Compile with the checkpoint's optimizer first: a checkpoint holding optimizer
        state raises ``RuntimeError`` on a model that is not compiled, and
        :class:`~xpnet.io.WeightFileError` on one compiled with another optimizer.
        """
        return int(load(self, path, with_optimizer=True).get("epoch", 0))


def _map_state(state, fn):
    return {"step": state["step"],
            "slots": {k: {s: fn(v) for s, v in slots.items()} for k, slots in state["slots"].items()}}


def kept_arrays(layer, input_shape):
    """The parameters and state of ``layer`` if it is built for ``input_shape``, else None."""
    if not layer.built or layer.input_shape is None or tuple(layer.input_shape) != input_shape:
        return None
    if not layer.params and not layer.state:
        return None
    return dict(layer.params), dict(layer.state)


def restore_arrays(layer, kept, backend, dtype):
    """Put back what :func:`kept_arrays` kept where ``build`` made arrays of the same
    shapes (moved to the backend and dtype of the build)."""
    if kept is None:
        return
    for store, old in zip((layer.params, layer.state), kept):
        if set(old) != set(store) or any(old[k].shape != store[k].shape for k in store):
            return
    for store, old in zip((layer.params, layer.state), kept):
        for k, fresh in store.items():
            a = old[k]
            if type(a) is not type(fresh) or a.dtype != fresh.dtype:
                a = B.asarray(B.to_numpy(a), dtype=dtype, backend=backend)
            store[k] = a


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


def save(model, path, epoch=None, with_optimizer=None, extra=None) -> None:
    """Write ``model``'s parameters and state to ``path``; with ``epoch``, a checkpoint that
    also holds the optimizer state (``with_optimizer`` says so otherwise); ``extra`` goes
    into the header (a whole model's architecture). In a data-parallel run
    (:mod:`xpnet.distributed`) only rank 0 writes: the other ranks hold the same arrays."""
    path = _io.save_path(path)  # refused before the model is built or anything is written
    if epoch is not None:
        epoch = _io.checked_count(epoch, "epoch")
    if not is_main_process():  # refused alike on every rank, written once
        return
    arrays, header = _weight_arrays(model)
    header.update(extra or {})
    if epoch is not None:
        header["epoch"] = epoch
    if epoch is not None if with_optimizer is None else with_optimizer:
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
