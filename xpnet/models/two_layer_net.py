"""The book's two-layer network (chapters 4-5), and the plumbing the book's networks share.

The network owns its parameters in the dict ``params`` (``"W1"``, ``"b1"`` ...). Its layers
(:mod:`xpnet.layers`) hold the same arrays, but an optimizer *rebinds* the entries of
``params`` (``params.update(new)``: arrays are never written in place, so every backend
works), so before each forward pass the network re-binds every layer's parameters to the
current arrays in ``params`` (:meth:`_BookNet._bind`, one dict assignment per parameter).
"""
from __future__ import annotations

from .. import backend as B
from .. import functions as F
from .._validate import check_seed, positive_int
from ..initializers import initialize
from ..layers import Affine, Dropout, Relu, SoftmaxWithLoss

__all__ = ["TwoLayerNet"]

_FLOATS = ("float32", "float64")


def _check_size(name, value):
    return positive_int(value, name)


class _BookNet:
    """Shared by :class:`TwoLayerNet` and :class:`~xpnet.models.MultiLayerNet`.

    Holds the backend the network was made on, the host generator its weights were drawn
    from, ``params``, the ordered ``layers``, the ``last_layer`` (SoftmaxWithLoss) and which
    layer parameter each entry of ``params`` feeds.
    """

    def __init__(self, seed=None, dtype=None):
        dtype = B.get_floatx() if dtype is None else dtype
        if dtype not in _FLOATS:
            raise ValueError(f"dtype needs to be one of {_FLOATS}, got {dtype!r}")
        self.backend = B.current()
        self.backend.float_dtype(dtype)  # JAX switches 64-bit arrays on here for float64
        self.xp = self.backend.xp
        self.dtype_name = dtype
        self.dtype = getattr(self.xp, dtype)
        self.rng = B.host_rng(check_seed(seed, f"{type(self).__name__}(seed)",
                                                generator=True))
        self.params: dict = {}
        self.layers: dict = {}  # insertion-ordered, the book's OrderedDict
        self.last_layer = SoftmaxWithLoss()
        self._bindings: dict = {}  # params key -> (layer, layer's parameter name)

    # -- building ---------------------------------------------------------------------
    def _add_param(self, key, spec, shape):
        """Draw ``params[key]`` on the host as ``spec`` says, then move it to the backend."""
        host = initialize(spec, shape, self.rng, self.dtype_name)
        self.params[key] = B.asarray(host, backend=self.backend)

    def _add_layer(self, name, layer, **bindings):
        """Append ``layer``; ``bindings`` maps its parameter names to keys of ``params``."""
        self.layers[name] = layer
        for pname, key in bindings.items():
            layer.params[pname] = self.params[key]
            self._bindings[key] = (layer, pname)

    def _bind(self):
        """Point every layer at the current arrays of ``params`` (rebound by optimizers)."""
        for key, (layer, pname) in self._bindings.items():
            layer.params[pname] = self.params[key]

    # -- inputs -----------------------------------------------------------------------
    def _as_input(self, x):
        """``x`` (NumPy or an array of the network's backend) on the backend, in its dtype."""
        x = B.asarray(x, backend=self.backend)
        return x if x.dtype == self.dtype else self.xp.astype(x, self.dtype)

    def _as_target(self, t):
        """Labels stay integers; one-hot targets are cast to the network's dtype.

        Integer labels are checked against the number of classes where that costs no
        wait for a device: labels given as NumPy arrays, or any labels on a CPU backend
        (a label out of range would otherwise give a row of zeros and a loss of 0).
        """
        readable = self.backend.on_host or B.library_of(t) == "numpy"
        t = B.asarray(t, backend=self.backend)
        xp = self.xp
        if xp.isdtype(t.dtype, "real floating"):
            if t.dtype != self.dtype:
                t = xp.astype(t, self.dtype)
        elif readable and t.ndim <= 1:
            k = self._num_classes()
            F._check_labels(t, k, "t", f"the network has {k} classes", xp)
        return t

    def _num_classes(self):
        """The width of the last Affine layer: the number of classes."""
        last = [layer for layer in self.layers.values() if isinstance(layer, Affine)][-1]
        return last.params["W"].shape[1]

    # -- computing --------------------------------------------------------------------
    def _forward(self, x, training):
        self._bind()
        x = self._as_input(x)
        for layer in self.layers.values():
            x = layer.forward(x, training=training)
        return x

    def _train_loss(self, x, t):
        """The loss the gradient is of (training mode)."""
        raise NotImplementedError

    def _backward(self):
        """Backpropagate from the last loss; return the layers' gradients keyed like ``params``."""
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        return {key: layer.grads[pname] for key, (layer, pname) in self._bindings.items()}

    def accuracy(self, x, t) -> float:
        """Fraction of rows whose arg-max score is the target class (``t``: one-hot or labels).

        Returns a Python float: one host sync, by design (an evaluation, not a training step).
        """
        xp = self.xp
        y = xp.argmax(self.predict(x), axis=1)
        t = B.asarray(t, backend=self.backend)
        if t.ndim != 1:
            t = xp.argmax(t, axis=1)
        hits = xp.count_nonzero(y == xp.astype(t, y.dtype))
        return int(hits) / y.shape[0]

    def numerical_gradient(self, x, t) -> dict:
        """Gradients of the training loss by central differences (chapter 4), param by param.

        Each probe rebinds ``params[key]`` (no array is written into, so immutable arrays
        work) and the layers pick it up in the next forward pass. Slow (two forward passes
        per scalar parameter): for gradient checks, in float64. Dropout masks restart from
        their seeds before every evaluation (see :meth:`reset_dropout`), and running
        statistics of batch normalisation are restored afterwards, so the network is left
        as it was.
        """
        x, t = self._as_input(x), self._as_target(t)
        saved_state = [(layer, dict(layer.state)) for layer in self.layers.values()]
        grads = {}
        for key in list(self.params):
            original = self.params[key]

            def loss_at(w, key=key):
                self.params[key] = w
                self.reset_dropout()
                return self._train_loss(x, t)

            try:
                grads[key] = F.numerical_gradient(loss_at, original)
            finally:
                self.params[key] = original
        for layer, state in saved_state:
            layer.state.update(state)
        return grads

    def reset_dropout(self) -> None:
        """Restart every Dropout layer's mask stream from its seed (for gradient checks)."""
        for layer in self.layers.values():
            if isinstance(layer, Dropout) and layer.rng is not None:
                layer.rng.reset()


class TwoLayerNet(_BookNet):
    """Affine -> Relu -> Affine -> SoftmaxWithLoss: the book's two-layer net (chapters 4-5).

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        Layer widths (784, 50, 10 for MNIST in the book).
    weight_init_std : float or str
        Standard deviation of the normal weights (the book's 0.01), or an initializer name
        of :mod:`xpnet.initializers` ("he", "xavier" ...). Biases start at zero.
    seed : int or numpy.random.Generator, optional
        Seed of the one host generator all weights are drawn from, in the order W1, b1,
        W2, b2; the same seed gives bit-identical weights on every backend.
    dtype : {"float32", "float64"}, optional
        Default :func:`xpnet.backend.get_floatx`; use float64 for gradient checks.

    Attributes
    ----------
    params : dict
        ``"W1"``, ``"b1"``, ``"W2"``, ``"b2"`` as arrays of the backend active at creation.
    layers : dict
        ``"Affine1"``, ``"Relu1"``, ``"Affine2"``, in order; ``last_layer`` is the loss.
    """

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01,
                 seed=None, dtype=None):
        super().__init__(seed=seed, dtype=dtype)
        sizes = [_check_size("input_size", input_size), _check_size("hidden_size", hidden_size),
                 _check_size("output_size", output_size)]
        self._add_param("W1", weight_init_std, (sizes[0], sizes[1]))
        self._add_param("b1", "zeros", (sizes[1],))
        self._add_param("W2", weight_init_std, (sizes[1], sizes[2]))
        self._add_param("b2", "zeros", (sizes[2],))
        self._add_layer("Affine1", Affine(self.params["W1"], self.params["b1"]), W="W1", b="b1")
        self._add_layer("Relu1", Relu())
        self._add_layer("Affine2", Affine(self.params["W2"], self.params["b2"]), W="W2", b="b2")
        self.layers["Affine1"].need_input_grad = False  # nobody needs d(loss)/dx

    def predict(self, x):
        """Class scores (before the softmax) for a batch ``x`` of shape (N, input_size)."""
        return self._forward(x, training=False)

    def loss(self, x, t):
        """Mean cross-entropy of ``softmax(predict(x))`` against ``t`` (one-hot or labels).

        Returns a 0-d array of the backend (no host sync). The forward pass runs in
        training mode: the layers keep what :meth:`gradient`'s backward needs.
        """
        scores = self._forward(x, training=True)
        return self.last_layer.forward(scores, self._as_target(t))

    def _train_loss(self, x, t):
        return self.loss(x, t)

    def gradient(self, x, t) -> dict:
        """Gradients of :meth:`loss` by backpropagation (chapter 5), keyed like ``params``."""
        self.loss(x, t)
        return self._backward()
