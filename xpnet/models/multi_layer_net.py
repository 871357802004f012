"""The book's fully connected multi-layer network with its chapter-6 extensions.

This is the book's ``MultiLayerNetExtend`` (chapter 6): per hidden layer
Affine -> (BatchNorm) -> activation -> (Dropout), then Affine -> SoftmaxWithLoss, with an
optional L2 weight decay. Without batch normalisation and dropout it is the book's
``MultiLayerNet``.
"""
from __future__ import annotations

from .. import _validate as V
from ..layers import Affine, BatchNormalization, Dropout, get_activation
from ..optimizers import weight_decay_grad, weight_decay_loss
from .two_layer_net import _BookNet

__all__ = ["MultiLayerNet"]

_WEIGHT_INIT_NAMES = ("relu", "he", "sigmoid", "xavier")


class MultiLayerNet(_BookNet):
    """Fully connected network with batch normalisation, dropout and weight decay (chapter 6).

    Parameters
    ----------
    input_size : int
        Input width (784 for MNIST).
    hidden_size_list : list of int
        Widths of the hidden layers, e.g. ``[100, 100, 100]``.
    output_size : int
        Number of classes.
    activation : str
        "relu" or "sigmoid" as in the book ("tanh" also works).
    weight_init_std : float or str
        A float standard deviation, "relu"/"he" (``sqrt(2 / fan_in)``) or
        "sigmoid"/"xavier" (``sqrt(1 / fan_in)``).
    weight_decay_lambda : float
        L2 strength: the loss adds ``0.5 * lambda * sum(W**2)`` for every weight matrix and
        the gradient ``lambda * W``, as an optimizer's ``weight_decay`` does.
    use_dropout : bool
        Add a Dropout layer after each hidden activation.
    dropout_ratio : float
        Probability of dropping a unit. xpnet's Dropout is *inverted* (it scales the kept
        units by ``1 / (1 - ratio)`` in training; the book scales by ``1 - ratio`` at test
        time): the same network in expectation.
    use_batchnorm : bool
        Add BatchNormalization after each hidden Affine, with ``"gamma<i>"`` (ones) and
        ``"beta<i>"`` (zeros) in ``params``, set as the book's layer is: momentum 0.9,
        epsilon ``10e-7`` (1e-6), running mean and variance starting at zeros (the
        Keras-style default starts the variance at ones and uses epsilon 1e-5).
    seed : int or numpy.random.Generator, optional
        Seed of the one host generator all weights are drawn from (then the dropout seeds):
        the same seed gives bit-identical weights on every backend.
    dtype : {"float32", "float64"}, optional
        Default :func:`xpnet.backend.get_floatx`; use float64 for gradient checks.
    """

    def __init__(self, input_size, hidden_size_list, output_size, activation="relu",
                 weight_init_std="relu", weight_decay_lambda=0, use_dropout=False,
                 dropout_ratio=0.5, use_batchnorm=False, seed=None, dtype=None):
        super().__init__(seed=seed, dtype=dtype)
        self.input_size = V.positive_int(input_size, "MultiLayerNet(input_size)")
        self.output_size = V.positive_int(output_size, "MultiLayerNet(output_size)")
        if not isinstance(hidden_size_list, (list, tuple)):
            raise V.InvalidParameterError(
                f"MultiLayerNet(hidden_size_list) needs a list of ints such as [100, 100], "
                f"got {hidden_size_list!r}")
        self.hidden_size_list = [V.positive_int(h, f"MultiLayerNet(hidden_size_list[{i}])")
                                 for i, h in enumerate(hidden_size_list)]
        self.hidden_layer_num = len(self.hidden_size_list)
        self.weight_decay_lambda = V.non_negative_float(
            weight_decay_lambda, "MultiLayerNet(weight_decay_lambda)")
        self.use_dropout = bool(use_dropout)
        if self.use_dropout:
            V.in_range(dropout_ratio, "MultiLayerNet(dropout_ratio)", 0.0, 1.0, hi_open=True)
        self.use_batchnorm = bool(use_batchnorm)
        if isinstance(weight_init_std, str) and weight_init_std.lower() not in _WEIGHT_INIT_NAMES:
            raise ValueError(f"weight_init_std is a float or one of {_WEIGHT_INIT_NAMES}, "
                             f"got {weight_init_std!r}")
        get_activation(activation)  # fail early on an unknown name

        sizes = [self.input_size] + self.hidden_size_list + [self.output_size]
        n_affine = len(sizes) - 1
        for idx in range(1, n_affine + 1):  # the book's __init_weight: W then b per layer
            self._add_param(f"W{idx}", weight_init_std, (sizes[idx - 1], sizes[idx]))
            self._add_param(f"b{idx}", "zeros", (sizes[idx],))
        seeds = [int(self.rng.integers(2**31)) for _ in range(self.hidden_layer_num)]

        for idx in range(1, n_affine + 1):
            W, b = self.params[f"W{idx}"], self.params[f"b{idx}"]
            self._add_layer(f"Affine{idx}", Affine(W, b), W=f"W{idx}", b=f"b{idx}")
            if idx == n_affine:
                break
            if self.use_batchnorm:
                self._add_param(f"gamma{idx}", "ones", (sizes[idx],))
                self._add_param(f"beta{idx}", "zeros", (sizes[idx],))
                bn = BatchNormalization(momentum=0.9, epsilon=10e-7,  # the book's values
                                        moving_variance_initializer="zeros",
                                        name=f"BatchNorm{idx}")
                bn.build((sizes[idx],), xp=self.xp, device=self.backend.device,
                         dtype=self.dtype_name)
                self._add_layer(f"BatchNorm{idx}", bn, gamma=f"gamma{idx}", beta=f"beta{idx}")
            self._add_layer(f"Activation_function{idx}", get_activation(activation))
            if self.use_dropout:
                drop = Dropout(dropout_ratio, seed=seeds[idx - 1])
                self._add_layer(f"Dropout{idx}", drop)
        self.layers["Affine1"].need_input_grad = False

    def predict(self, x, train_flg=False):
        """Class scores for a batch ``x``; ``train_flg`` switches BatchNorm and Dropout to
        training mode (batch statistics, random masks)."""
        return self._forward(x, training=train_flg)

    def loss(self, x, t, train_flg=False):
        """Cross-entropy plus ``0.5 * lambda * sum(W**2)`` over every weight matrix.

        Returns a 0-d array of the backend (no host sync).
        """
        y = self.predict(x, train_flg)
        decay = weight_decay_loss(self.params, self.weight_decay_lambda)
        return self.last_layer.forward(y, self._as_target(t)) + decay

    def _train_loss(self, x, t):
        return self.loss(x, t, train_flg=True)

    def gradient(self, x, t) -> dict:
        """Gradients of the training-mode :meth:`loss` by backpropagation (chapters 5-6),
        keyed like ``params``; weights get ``lambda * W`` from the decay term."""
        self.loss(x, t, train_flg=True)
        grads = self._backward()
        lam = self.weight_decay_lambda
        return {key: weight_decay_grad(grads[key], p, lam) for key, p in self.params.items()}
