"""The hyper-parameters of :mod:`xpnet.sklearn`'s estimators, checked at ``fit`` (as
scikit-learn does, not in ``__init__``), and what they become in xpnet: the optimizer
and the losses, as scikit-learn defines them."""
from __future__ import annotations

import math
import numbers

import array_api_compat

from .. import _validate as V
from ..losses import BinaryCrossentropy, CategoricalCrossentropy, Loss, rows_mean
from ..optimizers import SGD, Adam, Momentum, Nesterov, adam_moments

__all__ = ["HIDDEN", "OUTPUT", "LOSSES", "check_params", "make_optimizer", "SklearnAdam",
           "HalfSquaredError", "RowSummedBinaryCrossentropy"]

#: scikit-learn's activation names -> xpnet's
HIDDEN = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
OUTPUT = {"identity": None, "logistic": "sigmoid", "softmax": "softmax"}


# -- hyper-parameters ------------------------------------------------------------------

def _choice(value, name, options):
    if not isinstance(value, str) or value not in options:
        raise V.InvalidParameterError(
            f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return value


def _flag(value, name):
    if type(value).__name__ not in ("bool", "bool_"):  # Python or NumPy bool
        raise V.InvalidParameterError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_params(est) -> tuple:
    """Check the estimator's hyper-parameters (at ``fit``, as scikit-learn does, not in
    ``__init__``); return ``hidden_layer_sizes`` as a tuple of ints."""
    sizes = est.hidden_layer_sizes
    sizes = [sizes] if V.is_int(sizes) else sizes
    try:
        sizes = list(sizes)
    except TypeError:
        raise V.InvalidParameterError(
            f"hidden_layer_sizes must be an int or a sequence of ints, got {sizes!r}") from None
    hidden = tuple(V.positive_int(s, "hidden_layer_sizes") for s in sizes)
    _choice(est.activation, "activation", tuple(HIDDEN))
    if est.solver == "lbfgs":
        raise V.InvalidParameterError(
            "solver='lbfgs' is not available in xpnet.sklearn (full-batch L-BFGS runs on "
            "SciPy, on the host): use 'adam' or 'sgd', or sklearn.neural_network")
    _choice(est.solver, "solver", ("sgd", "adam"))
    V.non_negative_float(est.alpha, "alpha")
    if est.batch_size != "auto":
        V.positive_int(est.batch_size, "batch_size ('auto' or an int)")
    _choice(est.learning_rate, "learning_rate", ("constant", "invscaling", "adaptive"))
    V.positive_float(est.learning_rate_init, "learning_rate_init")
    V.non_negative_float(est.power_t, "power_t")
    V.positive_int(est.max_iter, "max_iter")
    for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
        _flag(getattr(est, name), name)
    V.non_negative_float(est.tol, "tol")
    if not isinstance(est.verbose, numbers.Integral):
        raise V.InvalidParameterError(f"verbose must be a bool or an int, got {est.verbose!r}")
    # momentum 1 is refused (scikit-learn accepts it): the velocity then never forgets
    V.in_range(est.momentum, "momentum", 0.0, 1.0, hi_open=True)
    V.in_range(est.validation_fraction, "validation_fraction", 0.0, 1.0, lo_open=True, hi_open=True)
    V.in_range(est.beta_1, "beta_1", 0.0, 1.0, hi_open=True)
    V.in_range(est.beta_2, "beta_2", 0.0, 1.0, hi_open=True)
    V.positive_float(est.epsilon, "epsilon")
    n = est.n_iter_no_change
    if not (V.is_int(n) and n >= 1) and n != math.inf:
        raise V.InvalidParameterError(f"n_iter_no_change must be an int >= 1 or inf, got {n!r}")
    if hasattr(est, "loss") and est.loss != "squared_error":
        raise V.InvalidParameterError(
            f"loss must be 'squared_error' (the 'poisson' loss is not available in "
            f"xpnet.sklearn), got {est.loss!r}")
    return hidden


# -- optimizers and losses as scikit-learn has them -------------------------------------

class SklearnAdam(Adam):
    """Adam with scikit-learn's ``epsilon`` (default 1e-8; xpnet's :class:`Adam` adds 1e-7):
    ``m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
    W -= lr * sqrt(1-b2**t) / (1-b1**t) * m / (sqrt(v) + epsilon)``.
    Kingma & Ba 2015, https://arxiv.org/abs/1412.6980."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
        super().__init__(lr, beta1, beta2)
        self.epsilon = V.positive_float(epsilon, "SklearnAdam(epsilon)")

    def update_one(self, p, g, slots, step):
        xp = array_api_compat.array_namespace(p)
        b1, b2 = self.beta1, self.beta2
        lr_t = self.lr * (1 - b2 ** step) ** 0.5 / (1 - b1 ** step)
        m, v = adam_moments(g, slots, b1, b2)
        d = xp.sqrt(v)
        d += self.epsilon
        d *= -1.0 / lr_t  # W + m / d is W - lr_t * m / (sqrt(v) + epsilon)
        new = m / d
        new += p
        return new, {"m": m, "v": v}


def make_optimizer(est):
    """The xpnet optimizer for the estimator's solver: scikit-learn's SGD with (Nesterov)
    momentum is xpnet's :class:`Momentum` / :class:`Nesterov` (the same steps)."""
    lr = float(est.learning_rate_init)
    if est.solver == "adam":
        return SklearnAdam(lr, est.beta_1, est.beta_2, est.epsilon)
    if est.momentum == 0:
        return SGD(lr)
    return (Nesterov if est.nesterovs_momentum else Momentum)(lr, est.momentum)


class HalfSquaredError(Loss):
    """scikit-learn's "squared_error": ``0.5 * mean((y - t)**2)`` over every element, and
    the gradient scikit-learn steps with, ``(y - t) / n_rows`` (for several outputs that is
    ``n_outputs`` times the derivative of the value: scikit-learn's choice, kept)."""

    name = "squared_error"

    def value_and_grad(self, y, t):
        xp = array_api_compat.array_namespace(y)
        diff = y - self.prepare_target(t, y)
        return 0.5 * xp.sum(diff * diff) / array_api_compat.size(diff), diff / y.shape[0]

    def per_sample(self, y, t):
        diff = y - self.prepare_target(t, y)
        return 0.5 * rows_mean(array_api_compat.array_namespace(y), diff * diff)


class RowSummedBinaryCrossentropy(BinaryCrossentropy):
    """scikit-learn's binary log loss: summed over the outputs, averaged over the rows
    (:class:`BinaryCrossentropy` averages over both; the same for one output)."""

    def _count(self, y):
        return y.shape[0]

    def _value(self, xp, y, t):
        return super()._value(xp, y, t) * y.shape[-1]

    def per_sample(self, y, t):
        return super().per_sample(y, t) * y.shape[-1]


LOSSES = {"identity": HalfSquaredError, "logistic": RowSummedBinaryCrossentropy,
           "softmax": CategoricalCrossentropy}


