"""``MLPClassifier`` and ``MLPRegressor``: scikit-learn's MLP estimators on xpnet
(the shared machinery is :class:`._base.BaseMLP`). ``classes_`` is NumPy, as
scikit-learn's; predictions of numeric classes are arrays of the input's library.
"""
from __future__ import annotations

import array_api_compat
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import type_of_target, unique_labels

from .. import backend as B
from ._base import BaseMLP

__all__ = ["MLPClassifier", "MLPRegressor"]


_DOC_PARAMS = """
    Parameters are scikit-learn's (see ``sklearn.neural_network.{name}``), with the
    solvers "adam" (default) and "sgd" ("lbfgs" is not available). ``momentum`` must be
    below 1. Training follows scikit-learn step for step (initial weights, shuffles,
    early-stopping split, losses, L2 term, optimizer, schedules, stopping rule), on the
    xpnet backend: the one ``XPNET_BACKEND`` names for NumPy data, or, with
    ``sklearn.set_config(array_api_dispatch=True)``, the input's own library and device.

    Attributes
    ----------
    loss_, loss_curve_, best_loss_, validation_scores_, best_validation_score_, n_iter_,
    t_, n_layers_, n_outputs_, out_activation_, n_features_in_, feature_names_in_ :
        As in scikit-learn.
    coefs_, intercepts_ : list of NumPy arrays
        Read from the model's parameters (on any backend).
"""


class MLPClassifier(ClassifierMixin, BaseMLP):
    __doc__ = ("Multi-layer perceptron classifier (log loss; softmax for several classes, "
               "logistic for two or for multilabel targets).\n" + _DOC_PARAMS.format(name="MLPClassifier")
               + "    classes_ : NumPy array\n        The class labels.\n")

    _is_classifier = True

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change

    def fit(self, X, y, sample_weight=None):
        """Train on ``(X, y)`` (class labels, or a multilabel indicator matrix); return self.
        ``sample_weight`` weighs the rows as scikit-learn's MLP does (each batch's loss is
        the weighted mean of its rows' losses)."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)``; ``classes`` (every label) is needed on the first call."""
        if self._first_partial_fit(classes):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if type_of_target(y).startswith("multilabel") else classes)
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def _first_partial_fit(self, classes) -> bool:
        if getattr(self, "classes_", None) is None and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is not None:
            classes = unique_labels(classes)
            if getattr(self, "classes_", None) is not None:
                if list(self.classes_) != list(classes):
                    raise ValueError(f"`classes={classes}` is not the same as on the last call "
                                     f"to partial_fit, was: {self.classes_}")
                return False
            self.classes_ = classes
            return True
        return False

    def _encode(self, y, incremental):
        """Targets as scikit-learn's LabelBinarizer encodes them (its classes checks too)."""
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start and set(classes) != set(self.classes_):
                raise ValueError("warm_start can only be used where `y` has the same classes as "
                                 f"in the previous call to fit. Previously got {self.classes_}, "
                                 f"`y` has {classes}")
            if not set(classes) <= set(self.classes_):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        return self._label_binarizer.transform(y)

    def _out_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``."""
        return self._proba(X, "predict_proba")

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        p = self._proba(X, "predict_log_proba")
        return array_api_compat.array_namespace(p).log(p)

    def _proba(self, X, method):
        p = self._forward(X, method)
        if self.n_outputs_ == 1:
            return array_api_compat.array_namespace(p).concat([1.0 - p, p], axis=1)
        return p

    def predict(self, X):
        """Class labels (or the multilabel indicator matrix) for ``X``."""
        p = self._forward(X, "predict")
        return self._labels(p)

    def _labels(self, p):
        xp, where = array_api_compat.array_namespace(p), array_api_compat.device(p)
        kind = self._label_binarizer.y_type_
        if kind.startswith("multilabel"):
            return xp.astype(p > 0.5, xp.int64)
        if kind == "multiclass":
            index = xp.argmax(p, axis=1)
        elif len(self.classes_) == 1:
            index = xp.zeros((p.shape[0],), dtype=xp.int64, device=where)
        else:
            index = xp.astype(p[:, 0] > 0.5, xp.int64)
        if B.library_of(p) == "numpy" or self.classes_.dtype.kind not in "biuf":
            return self.classes_[B.to_numpy(index)]  # strings stay NumPy, as in scikit-learn
        return xp.take(xp.asarray(self.classes_, device=where), index, axis=0)

    def _validation_score(self, X, Y, w=None):
        """Accuracy on the early-stopping rows (``Y`` encoded; weighted by ``w`` as
        ``accuracy_score``), on the backend: one read."""
        p = self._output(X)
        xp = array_api_compat.array_namespace(p)
        if self._label_binarizer.y_type_ == "multiclass":
            hits = xp.argmax(p, axis=1) == xp.argmax(Y, axis=1)
        elif len(self.classes_) == 1:
            return 1.0
        else:  # binary, multilabel: every label right (scikit-learn's subset accuracy)
            hits = xp.all((p > 0.5) == (Y > 0.5), axis=1)
        hits = xp.astype(hits, p.dtype)
        return float(xp.mean(hits) if w is None else xp.sum(w * hits) / xp.sum(w))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    __doc__ = ("Multi-layer perceptron regressor (half squared error, identity output; "
               "one or several outputs).\n" + _DOC_PARAMS.format(name="MLPRegressor")
               + "    loss : {'squared_error'}\n        ('poisson' is not available.)\n")

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change

    def fit(self, X, y, sample_weight=None):
        """Train on ``(X, y)`` (one or several outputs); return self. ``sample_weight``
        weighs the rows as scikit-learn's MLP does."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)``; return self."""
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def _encode(self, y, incremental):
        return y[:, None] if y.ndim == 1 else y

    def _out_activation(self):
        return "identity"

    def predict(self, X):
        """Predicted values: shape ``(n,)`` for one output, ``(n, n_outputs)`` otherwise."""
        p = self._forward(X, "predict")
        return array_api_compat.array_namespace(p).reshape(p, (-1,)) if p.shape[1] == 1 else p

    def _validation_score(self, X, Y, w=None):
        """R^2 (averaged over the outputs, as ``r2_score``; weighted by ``w`` as it weighs)
        on the early-stopping rows."""
        p = self._output(X)
        xp = array_api_compat.array_namespace(p)
        w = xp.ones((Y.shape[0],), dtype=p.dtype, device=array_api_compat.device(p)) \
            if w is None else w
        w = xp.reshape(w, (-1, 1))
        num = xp.sum(w * (Y - p) ** 2, axis=0)
        den = xp.sum(w * (Y - xp.sum(w * Y, axis=0) / xp.sum(w)) ** 2, axis=0)
        safe = xp.where(den == 0, xp.ones_like(den), den)
        r2 = xp.where(den == 0, xp.astype(num == 0, p.dtype), 1.0 - num / safe)
        return float(xp.mean(r2))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
