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
import threading

from . import backend as B
from . import checkpoint as C
from . import compiled as _compiled
from . import freezing as _freezing
from . import _pickling
from ._validate import check_seed
from .inference import Inference
from .training import claim, run_fit
from .layers.base import Layer
from .losses import get_loss
from .metrics import get_metric
from .optimizers import get_optimizer
from .summary import Summary

__all__ = ["Sequential"]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Sequential(C.Weights, Summary, Inference):
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
        self._metric_specs = []
        self.compiled = False
        self.jit_compile = False
        self.opt_state = None
        self.stop_training = False
        self.stop_reason = None
        self._lock = threading.RLock()  # held by the thread that trains (training.guard)
        for layer in layers or []:
            self.add(layer)

    def __getstate__(self):
        return _pickling.model_state(self)

    def __setstate__(self, state):
        _pickling.restore_model(self, state)

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
        backend.float_dtype(dtype)  # JAX switches 64-bit arrays on here for float64
        rng = B.host_rng(self.seed)
        shape = tuple(int(d) for d in input_shape)
        self.input_shape = shape
        self.output_shapes = []
        for layer in self.layers:
            kept = C.kept_arrays(layer, shape)
            shape = tuple(layer.build(shape, xp=backend.xp, device=backend.device, dtype=dtype,
                                      rng=rng))
            C.restore_arrays(layer, kept, backend, dtype)
            self.output_shapes.append(shape)
        self.output_shape = shape
        self._bindings = [(f"{l.name}/{k}", l, k) for l in self.layers for k in l.params]
        self.plan_training()
        self.dtype_name = dtype
        self.built = True
        self.opt_state = None
        self._update_fusion()

    def _require_layers(self, what):
        if not self.layers:
            raise ValueError(f"the model has no layers, so it cannot {what}: add some with "
                             "model.add(...) or Sequential([...])")

    def build_for(self, x=None) -> None:
        """Build the model if it is not built: for ``x``'s per-sample shape, unless the
        first layer declares its ``input_shape``."""
        if not self.built:
            with self._lock:  # threads predicting with a new model build it once
                if not self.built:
                    self._require_layers("run")
                    self.build(None if x is None or self.layers[0].input_shape
                               else tuple(x.shape[1:]))

    def plan_training(self) -> int:
        """Read each layer's ``trainable`` flag (once per ``fit``, not per batch); return
        the number of trainable arrays (:func:`xpnet.freezing.plan`)."""
        return _freezing.plan(self)

    # -- compiling ----------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, jit_compile="auto") -> None:
        """Choose the optimizer, the loss and the metrics, by name or as objects.

        ``jit_compile`` (True, False or "auto", as Keras 3): on a backend that compiles
        whole steps (JAX), fit, evaluate and predict run one compiled function per batch
        (:mod:`xpnet.compiled`); on CuPy, fit replays one step captured as a CUDA graph
        (:mod:`xpnet._cuda_graph`); elsewhere it changes nothing.

        The loss checks the last layer (:meth:`xpnet.losses.Loss.check_output`) here,
        and again when the model is built: a cross-entropy loss refuses an output
        that gives no probabilities unless it was made with ``from_logits=True``.
        """
        self._require_layers("compile")
        jit_compile = _compiled.check_jit_compile(jit_compile)
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
        self.jit_compile = jit_compile
        self.compiled = True
        self.opt_state = None
        if self.built:
            self._update_fusion()

    def _update_fusion(self):
        """Check the last layer against the loss (:meth:`Loss.check_output
        <xpnet.losses.Loss.check_output>`) and choose :meth:`backward_from_loss`'s path."""
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

    @property
    def metric_names(self) -> list:
        """The compiled metrics' names, as the logs of ``fit`` and ``evaluate`` key them."""
        return [spec if isinstance(spec, str) else m.name
                for spec, m in zip(self._metric_specs, self.metrics)]

    def _require_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"call model.compile(optimizer=..., loss=...) before {what}")

    # -- computing ----------------------------------------------------------------------
    def forward(self, x, training=False):
        """The output for a batch ``x`` that is already an array of the model's backend
        (in inference, through the compiled step where ``jit_compile`` made one)."""
        if not training and (jit := _compiled.steps(self)) is not None:
            return jit.predict(x)
        for layer in (self._train_layers if training else self.layers):
            x = layer.forward(x, training)
        return x

    def backward_from_loss(self, y_pred, y, sample_weight=None):
        """Backpropagate the loss of ``y_pred`` against ``y``; return the loss (0-d array).

        Where the loss fuses with the last layer's activation (:meth:`Loss.fuses_with
        <xpnet.losses.Loss.fuses_with>`: softmax and cross-entropy, sigmoid and binary
        cross-entropy) both their backward passes are skipped: the loss gives the gradient
        at the pre-activation, ``(y - t) / n`` as the book's SoftmaxWithLoss, and the last
        Dense takes it in ``backward_preactivation``. ``sample_weight`` (per-row weights,
        shape ``(n,)``) weighs each row's loss and gradient
        (:meth:`~xpnet.losses.Loss.weighted_value_and_grad`).
        """
        layers = self._backward_layers
        if sample_weight is not None:
            loss, dout = self.loss.weighted_value_and_grad(y_pred, y, sample_weight, self._fused)
            if self._fused:
                dout = layers[0].backward_preactivation(dout)
                layers = layers[1:]
        elif self._fused:
            loss, dz = self.loss.fused_value_and_grad(y_pred, y)
            dout = layers[0].backward_preactivation(dz)
            layers = layers[1:]
        else:
            loss, dout = self.loss.value_and_grad(y_pred, y)
        for layer in layers:
            dout = layer.backward(dout)
        return loss + self.regularization_loss() if self._penalized else loss

    def regularization_loss(self):
        """The sum of the trainable layers' regularizer penalties (``kernel_regularizer``
        ...), part of the loss ``fit`` and ``evaluate`` report; 0.0 without any."""
        total = 0.0
        for layer in self._penalized:
            total = total + layer.penalty()
        return total

    def check_input(self, x) -> None:
        """Build the model for ``x`` if needed (:meth:`build_for`); refuse an ``x`` whose
        per-sample shape does not fit the first layer, naming the layer and both shapes."""
        self.build_for(x)
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"input of shape {tuple(x.shape)} does not fit layer {self.layers[0].name!r}: "
                f"it expects (batch, {', '.join(map(str, self.input_shape))}) and got "
                f"per-sample shape {tuple(x.shape[1:])}"
            )

    # -- training (model(x), predict, evaluate: inference.py) ----------------------------
    def fit(self, x, y=None, epochs=1, batch_size=32, validation_data=None, validation_split=0.0,
            shuffle=True, callbacks=None, verbose=1, seed=None, initial_epoch=0,
            distributed=None, class_weight=None, sample_weight=None, steps_per_epoch=None,
            validation_steps=None):
        """Train for ``epochs`` passes over ``(x, y)``; return a :class:`History`.

        ``x`` may be an input pipeline with ``y=None`` (:mod:`xpnet.pipelines`): an
        :class:`xpnet.data.Dataset` or an iterable/generator of ``(x, y[, w])`` batches.

        See :func:`xpnet.training.run_fit` for the details of each argument;
        ``distributed=xn.distributed.auto()`` trains data-parallel (:mod:`xpnet.distributed`);
        ``sample_weight``/``class_weight`` weigh the rows as Keras (:mod:`xpnet.sample_weights`).
        """
        self._require_compiled("fit")
        self._require_layers("fit")
        lock = claim(self, "fit")  # one training thread per model
        try:
            return run_fit(self, x, y, epochs=epochs, batch_size=batch_size,
                           validation_data=validation_data, validation_split=validation_split,
                           shuffle=shuffle, callbacks=callbacks, verbose=verbose, seed=seed,
                           initial_epoch=initial_epoch, distributed=distributed,
                           sample_weight=sample_weight, class_weight=class_weight,
                           steps_per_epoch=steps_per_epoch, validation_steps=validation_steps)
        finally:
            lock.release()
