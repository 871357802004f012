"""Whole-model files: ``model.save("m.xpnet")`` and ``xn.load_model("m.xpnet")``.

One file holds the architecture as JSON (each layer, the loss, the optimizer and the
metrics as ``{"class": name, "config": constructor arguments}``), the weights, the
non-trainable state and the optimizer state. It is the weight file format of
:mod:`xpnet.io` (an ``.npz`` written atomically, read header first, no pickle) with the
architecture in its JSON header, so a file loads on every backend.

A constructor argument is saved when the object keeps it under the same name (``units``,
``rate``, ``lr`` ...) or its ``get_config()`` gives it. An initializer given as a function
is not saved (the weights are); any other value JSON cannot hold is refused at saving,
naming it. Classes are found by name: xpnet's own, and those registered with
:func:`register_layer` (a decorator), which a custom layer, loss, optimizer or metric needs
before ``load_model`` can build it.
"""
from __future__ import annotations

import inspect

from . import checkpoint as C
from . import io as _io
from . import layers as _layers
from . import losses as _losses
from . import metrics as _metrics
from . import optimizers as _optimizers
from . import regularizers as _regularizers
from . import schedules as _schedules

__all__ = ["save_model", "load_model", "register_layer", "serialize", "deserialize",
           "MODEL_FORMAT"]

#: the version of the architecture JSON this xpnet writes and the newest it reads
MODEL_FORMAT = 1

_KINDS = {"layer": _layers.Layer, "loss": _losses.Loss, "optimizer": _optimizers.Optimizer,
          "metric": _metrics.Metric, "regularizer": _regularizers.Regularizer,
          "schedule": _schedules.LearningRateSchedule}
_REGISTRY: dict = {kind: {} for kind in _KINDS}


def _kind(cls) -> str:
    for kind, base in _KINDS.items():
        if isinstance(cls, type) and issubclass(cls, base):
            return kind
    raise TypeError(f"{getattr(cls, '__name__', cls)!r} is not an xpnet Layer, Loss, "
                    "Optimizer, Metric or Regularizer class")


def register_layer(cls=None, *, name=None):
    """Register a custom Layer (or Loss, Optimizer, Metric) class under ``name`` (default:
    its class name), so :func:`load_model` can build it; usable as ``@register_layer``."""
    def add(c):
        _REGISTRY[_kind(c)][name or c.__name__] = c
        return c
    return add if cls is None else add(cls)


for _module in (_layers, _losses, _optimizers, _metrics, _regularizers, _schedules):
    for _name in _module.__all__:
        _obj = getattr(_module, _name)
        if isinstance(_obj, type) and any(issubclass(_obj, b) for b in _KINDS.values()):
            register_layer(_obj)


def _jsonable(value, where):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _jsonable(v, where) for k, v in value.items()}
    if any(isinstance(value, base) for base in _KINDS.values()):
        return {"__object__": serialize(value)}
    raise TypeError(f"cannot save {where}: a {type(value).__name__} is not JSON (give it as a "
                    "name or a number, or save the weights alone with save_weights)")


def serialize(obj) -> dict:
    """``{"class": registered name, "config": {constructor argument: JSON value}}``."""
    cls = type(obj)
    if cls is _layers.Affine:
        raise TypeError("cannot save the book's Affine layer (it is made from given arrays, "
                        "not from a configuration): use Dense, or save_weights")
    name = next((n for n, c in _REGISTRY[_kind(cls)].items() if c is cls), None)
    if name is None:
        raise TypeError(f"cannot save a {cls.__name__}: register the class with "
                        "@xn.register_layer so that load_model can build it again")
    params = _constructor_params(cls)
    given = obj.get_config() if callable(getattr(obj, "get_config", None)) else {}
    config = {}
    for p in params:
        if p.name in vars(obj):
            value = vars(obj)[p.name]
        elif p.name in given:
            value = given[p.name]
        else:
            continue
        if p.name.endswith("_initializer") and callable(value):
            continue  # a function: not saved; the weights are
        config[p.name] = _jsonable(value, f"{cls.__name__}({p.name}={value!r:.40})")
    return {"class": name, "config": config}


def _constructor_params(cls):
    """``cls.__init__``'s named parameters, and, where it passes ``**options`` on, its base
    classes' (the optimizers' ``clipnorm`` ...)."""
    params, seen = [], set()
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None:
            continue
        sig = inspect.signature(init).parameters.values()
        params += [p for p in sig if p.name not in seen and p.name != "self"
                   and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        seen.update(p.name for p in sig)
        if not any(p.kind == p.VAR_KEYWORD for p in sig):
            break
    return params


def _from_json(value):
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__object__"}:
            return deserialize(value["__object__"])
        return {k: _from_json(v) for k, v in value.items()}
    return value


def deserialize(entry: dict, kind: str | None = None):
    """The object :func:`serialize` describes (a registered class, built from its config)."""
    name = entry.get("class")
    kinds = [kind] if kind else list(_KINDS)
    cls = next((_REGISTRY[k][name] for k in kinds if name in _REGISTRY[k]), None)
    if cls is None:
        raise ValueError(f"unknown class {name!r} in a saved model: if it is a custom class, "
                         "define it and register it with @xn.register_layer before load_model")
    config = {k: _from_json(v) for k, v in entry.get("config", {}).items()}
    if "input_shape" in config and config["input_shape"] is not None:
        config["input_shape"] = tuple(config["input_shape"])
    return cls(**config)


def _model_config(model) -> dict:
    config = {"format": MODEL_FORMAT, "class": "Sequential", "name": model.name,
              "seed": model.seed, "dtype": model.dtype_name,
              "layers": [dict(serialize(l), trainable=bool(l.trainable)) for l in model.layers]}
    if model.compiled:
        config["compile"] = {
            "optimizer": serialize(model.optimizer), "loss": serialize(model.loss),
            "metrics": [m if isinstance(m, str) else serialize(m) for m in model._metric_specs]}
    return config


def save_model(model, path) -> None:
    """Write ``model`` (architecture, weights, state, optimizer state) to ``path``."""
    path = _io.save_path(path)
    model.build_for()
    config = _model_config(model)  # refused before anything is written
    C.save(model, path, with_optimizer=model.compiled, extra={"model": config})


def load_model(path):
    """A :class:`~xpnet.Sequential` from a :meth:`~xpnet.Sequential.save` file, built on the
    active backend, compiled as it was saved, with its weights and optimizer state."""
    from .sequential import Sequential

    with _io.WeightFile(path) as f:
        config = f.header.get("model")
        path = f.path
    if not isinstance(config, dict):
        raise _io.WeightFileError(f"{path!r} holds weights but no model: it was written by "
                                  "save_weights or save_checkpoint; build the model in code "
                                  "and call load_weights")
    if not isinstance(config.get("format"), int) or config["format"] > MODEL_FORMAT:
        raise _io.WeightFileError(
            f"{path!r} holds a model of format {config.get('format')!r:.20}, newer than this "
            f"xpnet reads (format {MODEL_FORMAT}): upgrade xpnet to load it")
    layers = []
    for entry in config["layers"]:
        layer = deserialize(entry, "layer")
        layer.trainable = bool(entry.get("trainable", True))
        layers.append(layer)
    model = Sequential(layers, seed=config.get("seed"), dtype=config.get("dtype"),
                       name=config.get("name", "sequential"))
    compiled = config.get("compile")
    if compiled:
        metrics = [m if isinstance(m, str) else deserialize(m, "metric")
                   for m in compiled.get("metrics", [])]
        model.compile(optimizer=deserialize(compiled["optimizer"], "optimizer"),
                      loss=deserialize(compiled["loss"], "loss"), metrics=metrics)
    C.load(model, path, with_optimizer=bool(compiled))
    return model
