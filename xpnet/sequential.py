"""A Keras-style ``Sequential`` model on top of xpnet's layers.

    model = xn.Sequential([xn.layers.Flatten(input_shape=(28, 28)),
                           xn.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=10, validation_data=(x_test, y_test))
    model.evaluate(x_test, y_test)
    model.predict(x_test[:1])
"""
from __future__ import annotations

import re

from . import backend as B
from . import data as D
from . import checkpoint as _ckpt
from ._validate import check_seed
from .fit_loop import run_evaluate, run_fit
from .layers.affine import Affine, Dense
from .layers.base import Layer
from .layers.regularization import BatchNormalization
from .losses import get_loss
from .metrics import get_metric
from .optimizers import get_optimizer

__all__ = ["Sequential"]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Sequential:
    """A linear stack of layers with ``compile``/``fit``/``evaluate``/``predict``.

    Parameters
    ----------
    layers : list of Layer, optional
        Added in order, as with :meth:`add`.
    seed : int, optional
        Seeds the initial weights (drawn on the host: the same seed gives the same
        weights on every backend), dropout masks and, unless ``fit`` gets its own seed,
        the shuffling.
    dtype : {"float32", "float64"}, optional
        Parameter type; default :func:`xpnet.get_floatx` at build time.
    """

    def __init__(self, layers=None, seed=None, dtype=None, name="sequential"):
        self.layers: list[Layer] = []
        self.name = name
        self.seed = check_seed(seed, "Sequential(seed)")
        self.dtype = dtype
        self.backend = None
        self.built = False
        self.optimizer = self.loss = None
        self.metrics = []
        self.compiled = False
        self.opt_state = None
        self.stop_training = False
        self.stop_reason = None
        for layer in layers or []:
            self.add(layer)

    # -- structure ----------------------------------------------------------------------
    def add(self, layer: Layer) -> None:
        """Append ``layer``; the model is (re)built on the next call.

        Rebuilding keeps the parameters of the layers already built for the same input
        shape (trained layers stay trained); only new layers, and layers whose input
        shape changed, get fresh weights. A layer instance has one place in a model; the
        same instance in two models shares its parameters between them (as in Keras).
        """
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add takes an xpnet layer, got {type(layer).__name__}")
        for i, other in enumerate(self.layers):
            if other is layer:
                raise ValueError(
                    f"layer {layer.name!r} is already in this model (layer {i}): a layer "
                    "instance has one place in a model; add a new layer for another one"
                )
        taken = {l.name for l in self.layers}
        if layer.name is None or layer.name in taken:
            base = layer.name or _snake(type(layer).__name__)
            name, i = base, 0
            while name in taken:
                i += 1
                name = f"{base}_{i}"
            layer.name = name
        self.layers.append(layer)
        self.built = False

    def build(self, input_shape=None) -> None:
        """Create every layer's parameters for per-sample ``input_shape`` (no batch axis).

        Called by ``fit``/``predict``/``summary`` from the first layer's ``input_shape``
        or ``input_dim``, or from the first batch.
        """
        self._require_layers("build")
        if input_shape is None:
            input_shape = self.layers[0].input_shape
        if input_shape is None:
            raise ValueError(
                "the model does not know its input shape yet: give the first layer "
                "input_shape=... or input_dim=..., or call fit/predict first"
            )
        self.backend = backend = B.current()
        dtype = self.dtype or B.get_floatx()
        rng = B.host_rng(self.seed)
        shape = tuple(int(d) for d in input_shape)
        self.input_shape = shape
        self.output_shapes = []
        for layer in self.layers:
            kept = _built_arrays(layer, shape)
            shape = tuple(layer.build(shape, xp=backend.xp, device=backend.device, dtype=dtype,
                                      rng=rng))
            _restore_arrays(layer, kept, backend, dtype)
            self.output_shapes.append(shape)
        self.output_shape = shape
        self._slots = [(f"{l.name}/{k}", l, k) for l in self.layers for k in l.params]
        self._plan_training()
        self._probe_at = _first_affine(self.layers)
        self.dtype_name = dtype
        self.built = True
        self.opt_state = None
        self._update_fusion()

    def _require_layers(self, what):
        if not self.layers:
            raise ValueError(f"the model has no layers, so it cannot {what}: add some with "
                             "model.add(...) or Sequential([...])")

    def _ensure_built(self, x=None):
        if not self.built:
            self._require_layers("run")
            self.build(None if x is None or self.layers[0].input_shape else tuple(x.shape[1:]))

    def _plan_training(self):
        """Read each layer's ``trainable`` flag (once per ``fit``, not per batch).

        Sets the slots the optimizer updates, the layers a training forward pass runs
        (a frozen BatchNormalization runs in inference mode) and where the backward pass
        stops: the layers before the first trainable one with parameters need none.
        Returns the number of trainable arrays.
        """
        frozen = {id(l) for l in self.layers if not getattr(l, "trainable", True)}
        self._train_slots = [s for s in self._slots if id(s[1]) not in frozen]
        self._train_layers = [
            _FrozenNormalization(l) if id(l) in frozen and isinstance(l, BatchNormalization) else l
            for l in self.layers]
        first = next((i for i, l in enumerate(self.layers) if l.params and id(l) not in frozen),
                     len(self.layers))
        for i, layer in enumerate(self.layers):
            layer.need_input_grad = i > first
        self._backward_layers = self._train_layers[first:][::-1]
        return len(self._train_slots)

    # -- compiling ----------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None) -> None:
        """Choose the optimizer, the loss and the metrics, by name or as objects.

        The loss checks the last layer (:meth:`xpnet.losses.Loss.check_output`) here,
        and again when the model is built: a cross-entropy loss refuses an output
        that gives no probabilities unless it was made with ``from_logits=True``.
        """
        self._require_layers("compile")
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='mse' or 'sparse_categorical_crossentropy'")
        optimizer, loss = get_optimizer(optimizer), get_loss(loss)
        metrics = [metrics] if isinstance(metrics, str) else list(metrics or [])
        for spec in metrics:  # unknown names fail now, not at the first fit
            get_metric(spec, loss)
        if self.layers:
            last = self.layers[-1]
            units = self.output_shape[-1] if self.built else getattr(last, "units", None)
            loss.check_output(last, units)
        self.optimizer, self.loss = optimizer, loss
        self._metric_specs = metrics
        self.compiled = True
        self.opt_state = None
        if self.built:
            self._update_fusion()

    def _update_fusion(self):
        if not self.compiled:
            return
        last = self.layers[-1]
        units = self.output_shape[-1] if self.output_shape else None
        try:
            self.loss.check_output(last, units)
        except ValueError:
            self.built = False  # the next fit checks (and refuses) again
            raise
        self.metrics = [get_metric(m, self.loss, units) for m in self._metric_specs]
        self._fused = self.loss.fuses_with(last)

    def _require_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"call model.compile(optimizer=..., loss=...) before {what}")

    # -- computing ----------------------------------------------------------------------
    def forward(self, x, training=False):
        """The output for a batch ``x`` that is already an array of the model's backend."""
        for layer in (self._train_layers if training else self.layers):
            x = layer.forward(x, training)
        return x

    def backward_from_loss(self, y_pred, y):
        """Backpropagate the loss of ``y_pred`` against ``y``; return the loss (0-d array).

        Softmax + cross-entropy and sigmoid + binary cross-entropy use the fused
        gradient ``(y - t) / n`` at the pre-activation, as the book's SoftmaxWithLoss
        (a loss with ``from_logits=True`` gives that gradient itself).
        """
        layers = self._backward_layers
        if self._fused:
            loss, grad = self.loss.fused_value_and_grad(y_pred, y)
            dout = layers[0]._affine_backward(grad)
            layers = layers[1:]
        else:
            loss, dout = self.loss.value_and_grad(y_pred, y)
        for layer in layers:
            dout = layer.backward(dout)
        return loss

    def __call__(self, x, training=False):
        """A direct forward pass on one batch (NumPy data is moved to the backend).

        An unbuilt model without a declared input shape is built from ``x``.
        """
        self._require_layers("run")
        backend = self.backend if self.built else B.current()
        if not isinstance(x, backend.array_type) or backend.name in ("torch", "cupy"):
            x = B.asarray(x, backend=backend)
        self._ensure_built(x)
        if tuple(x.shape[1:]) != self.input_shape:
            self._raise_shape(x.shape)
        if x.dtype != backend.float_dtype(self.dtype_name):
            x = backend.xp.astype(x, backend.float_dtype(self.dtype_name))
        return self.forward(x, training)

    def _raise_shape(self, shape):
        first = self.layers[0]
        raise ValueError(
            f"input of shape {tuple(shape)} does not fit layer {first.name!r}: it expects "
            f"(batch, {', '.join(map(str, self.input_shape))}) and got per-sample shape "
            f"{tuple(shape[1:])}"
        )

    def predict(self, x, batch_size=32, verbose=0):
        """Outputs for ``x``, computed ``batch_size`` rows at a time.

        Memory is bounded by the batch, not by the input. NumPy input gives a NumPy
        result; an array of the active backend gives one of the same backend.
        ``verbose`` is accepted for code written for Keras; predict shows no progress.
        An unbuilt model without a declared input shape is built from ``x``.
        """
        batch_size = D.check_batch_size(batch_size)
        self._require_layers("predict")
        x = D.as_data(x, self.backend if self.built else B.current())
        D.check_xy(x, None)
        self._ensure_built(x)
        if tuple(x.shape[1:]) != self.input_shape:
            self._raise_shape(x.shape)
        slices = D.batch_slices(D.num_rows(x), batch_size)
        outs = self._predict_batches(x, slices, batch_size)
        if B.library_of(x) == "numpy":  # into one host array: output + a batch, not twice
            return D.gather_on_host(outs, slices, self.backend)
        outs = list(outs)
        return outs[0] if len(outs) == 1 else self.backend.xp.concat(outs, axis=0)

    def _predict_batches(self, x, slices, batch_size):
        """The outputs of each batch, checking ``x`` for NaN/inf on the way.

        On a host backend, when the network starts with an Affine/Dense (after reshapes
        only), the check reads that layer's pre-activations instead of ``x`` itself
        (:func:`xpnet.data.preactivation_probe`: exact, and 15x fewer numbers for the
        book's network). Otherwise ``x`` is checked as :func:`xpnet.data.finite_checker`
        does; device data is checked once, before the loop, so the loop never waits for
        the device.
        """
        backend, dtype, layers, at = self.backend, self.dtype_name, self.layers, self._probe_at
        probe = D.preactivation_probe(x, backend, dtype=dtype) if at is not None and backend.on_host else None
        check = D.finite_checker(x, batch_size, dtype=dtype) if probe is None else D.no_check
        for i, j in slices:
            check(i, j)
            h = D.take_rows(x, slice(i, j), backend, dtype)
            if probe is None:
                yield self.forward(h, False)
                continue
            for layer in layers[:at]:
                h = layer.forward(h, False)
            with B.ignore_invalid(backend):  # inf in x: the ValueError says it, not a warning
                h = layers[at].forward_probed(h, lambda z: probe(z, i, j), False)
            for layer in layers[at + 1:]:
                h = layer.forward(h, False)
            yield h

    def fit(self, x, y, epochs=1, batch_size=32, validation_data=None, validation_split=0.0,
            shuffle=True, callbacks=None, verbose=1, seed=None, initial_epoch=0):
        """Train for ``epochs`` passes over ``(x, y)``; return a :class:`History`.

        See :func:`xpnet.fit_loop.run_fit` for the details of each argument.
        """
        self._require_compiled("fit")
        return run_fit(self, x, y, epochs=epochs, batch_size=batch_size,
                       validation_data=validation_data, validation_split=validation_split,
                       shuffle=shuffle, callbacks=callbacks, verbose=verbose, seed=seed,
                       initial_epoch=initial_epoch)

    def evaluate(self, x, y, batch_size=32, verbose=1, return_dict=False):
        """Loss then metrics over ``(x, y)``, in the order given to ``compile`` (as Keras)."""
        self._require_compiled("evaluate")
        logs = run_evaluate(self, x, y, batch_size=batch_size, verbose=verbose)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    # -- parameters ---------------------------------------------------------------------
    def get_params(self, trainable_only=False) -> dict:
        """The parameter arrays as ``{"<layer>/<name>": array}`` (no copies).

        With ``trainable_only``, those of the layers not frozen (``trainable``) when the
        model was built or last started ``fit``.
        """
        slots = self._train_slots if trainable_only else self._slots
        return {key: layer.params[name] for key, layer, name in slots}

    def set_params(self, params: dict) -> None:
        """Rebind the parameter arrays named in ``params`` (keys as :meth:`get_params`)."""
        for key, layer, name in self._slots:
            if key in params:
                layer.params[name] = params[key]

    def get_grads(self) -> dict:
        """The gradients of the last backward pass, keyed as ``get_params(trainable_only=True)``."""
        return {key: layer.grads[name] for key, layer, name in self._train_slots}

    def get_weights(self) -> list:
        """Every layer's parameters then state, as NumPy arrays, in layer order (W, b ...)."""
        self._ensure_built()
        return [B.to_numpy(a) for l in self.layers for a in (*l.params.values(), *l.state.values())]

    def set_weights(self, weights) -> None:
        """Set parameters and state from a list in the order :meth:`get_weights` gives.

        Every array is checked (shape, a number type, finite after the cast to the model's
        dtype) before any is set: a refused list leaves the model unchanged.
        """
        self._ensure_built()
        for store, key, value in _ckpt.checked_weights(self, weights):
            store[key] = value

    def count_params(self) -> int:
        """The number of scalars in every layer's parameters and state (Keras' total)."""
        self._ensure_built()
        return sum(_size(l.params) + _size(l.state) for l in self.layers)

    def summary(self, print_fn=print) -> str:
        """Print (and return) a table of layers, output shapes and parameter counts.

        As Keras: "Trainable params" are the parameters of the layers whose ``trainable``
        is True; "Non-trainable params" are the state (BatchNormalization's running
        statistics) and the parameters of frozen layers.
        """
        self._require_layers("summarise itself")
        self._ensure_built()
        rows = [(f"{l.name} ({type(l).__name__})", str((None, *s)),
                 f"{_size(l.params) + _size(l.state):,}")
                for l, s in zip(self.layers, self.output_shapes)]
        trainable = sum(_size(l.params) for l in self.layers if getattr(l, "trainable", True))
        widths = [max(len(h), *(len(r[i]) for r in rows)) + 2
                  for i, h in enumerate(("Layer (type)", "Output Shape", "Param #"))]
        line = "".join(h.ljust(w) for h, w in zip(("Layer (type)", "Output Shape", "Param #"), widths))
        rule = "=" * len(line)
        text = [f'Model: "{self.name}"  (backend: {self.backend.name}, {self.dtype_name})', rule, line, rule]
        text += ["".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        total = self.count_params()
        text += [rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                 f"Non-trainable params: {total - trainable:,}", rule]
        out = "\n".join(text)
        if print_fn is not None:
            print_fn(out)
        return out

    # -- moving and saving --------------------------------------------------------------
    def to(self, backend_name: str) -> "Sequential":
        """Move parameters, state and optimizer state to another backend; return self."""
        self._ensure_built()
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
        _ckpt.save(self, path)

    def save_checkpoint(self, path, epoch: int) -> None:
        """Like :meth:`save_weights`, plus the optimizer state and ``epoch`` (an int >= 0),
        for resuming."""
        _ckpt.save(self, path, epoch=epoch)

    def load_weights(self, path) -> dict:
        """Load a file from :meth:`save_weights` or a checkpoint; return its header.

        Layer names, shapes and dtypes are checked from the file's headers before any
        array is read, and every value (finite) before anything changes: a file of another
        architecture fails with a message naming the layer and both shapes, and leaves the
        model as it was. An unbuilt model is built for the file's input shape, which must
        agree with the first layer's ``input_shape``/``input_dim`` where one is declared.
        """
        return _ckpt.load(self, path, with_optimizer=False)

    def load_checkpoint(self, path) -> int:
        """Load weights and optimizer state from a checkpoint; return its epoch.

        The file is read once, so weights and optimizer state come from the same save.
        Compile with the checkpoint's optimizer first: a checkpoint holding optimizer
        state raises ``RuntimeError`` on a model that is not compiled, and
        :class:`~xpnet.io.WeightFileError` on one compiled with another optimizer.
        """
        return int(_ckpt.load(self, path, with_optimizer=True).get("epoch", 0))


def _map_state(state, fn):
    return {"step": state["step"],
            "slots": {k: {s: fn(v) for s, v in slots.items()} for k, slots in state["slots"].items()}}


def _size(arrays: dict) -> int:
    total = 0
    for a in arrays.values():
        n = 1
        for d in a.shape:
            n *= int(d)
        total += n
    return total


def _built_arrays(layer, input_shape):
    """The parameters and state of ``layer`` if it is built for ``input_shape``, else None."""
    if not layer.built or layer.input_shape is None or tuple(layer.input_shape) != input_shape:
        return None
    if not layer.params and not layer.state:
        return None
    return dict(layer.params), dict(layer.state)


def _restore_arrays(layer, kept, backend, dtype):
    """Put back what :func:`_built_arrays` kept where ``build`` made arrays of the same
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


class _FrozenNormalization:
    """A frozen BatchNormalization in a training pass: the inference-mode formula (running
    statistics, as Keras), and its backward pass, ``dx = gamma * dout / sqrt(var + eps)``.
    Nothing of the layer changes."""

    def __init__(self, layer):
        self.layer = layer

    def forward(self, x, training=True):
        l = self.layer
        xp = l.xp
        self.x_shape = x.shape
        if x.ndim != 2:
            x = xp.reshape(x, (x.shape[0], -1))
        self.std = xp.sqrt(l.state["running_var"] + l.epsilon)
        out = l.params["gamma"] * ((x - l.state["running_mean"]) / self.std) + l.params["beta"]
        return out if len(self.x_shape) == 2 else xp.reshape(out, self.x_shape)

    def backward(self, dout):
        xp = self.layer.xp
        if dout.ndim != 2:
            dout = xp.reshape(dout, (dout.shape[0], -1))
        dx = self.layer.params["gamma"] * dout / self.std
        return dx if len(self.x_shape) == 2 else xp.reshape(dx, self.x_shape)


def _first_affine(layers):
    """Index of the first Affine/Dense if only reshaping layers come before it, else None.

    ``forward_probed`` runs Affine's own steps, so a subclass that overrides ``forward``
    is not probed (its forward is what predict must run).
    """
    for i, layer in enumerate(layers):
        if isinstance(layer, Affine):
            return i if type(layer).forward in (Affine.forward, Dense.forward) else None
        if not layer.reshapes_only:
            return None
    return None
