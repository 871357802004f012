"""What :mod:`xpnet.sklearn`'s two estimators share: ``fit``'s core, the forward pass,
the namespace rule of array API dispatch, ``coefs_``/``intercepts_``, tags and pickling.

Data is validated by scikit-learn's own helpers (``validate_data``: shapes, NaN/inf,
``n_features_in_``, ``feature_names_in_``). NumPy data trains on the backend
``XPNET_BACKEND`` names; with ``array_api_dispatch=True`` an array of another library
(torch, CuPy, array-api-strict) trains on that library and device, without a copy to the
host (the targets, a column, go through the host once to be encoded), and every method
returns arrays of that library.
"""
from __future__ import annotations

import math

import array_api_compat
from sklearn import get_config
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import (_check_sample_weight, check_is_fitted, column_or_1d,
                                      validate_data)

from .. import backend as B
from ..training import claim
from . import _fitting as F
from ._params import check_params, make_optimizer

__all__ = ["BaseMLP"]

_PREDICT_BATCH = 4096  # rows per forward pass in predict (memory is bounded by it)


def _as_float(X):
    """``X`` as float32 or float64 (other types become float64, as in scikit-learn's MLP)."""
    xp = array_api_compat.array_namespace(X)
    return X if X.dtype in (xp.float32, xp.float64) else xp.astype(X, xp.float64)


def _place(X) -> tuple:
    """(library, device) of validated data: where the model computes with it."""
    lib = B.library_of(X)
    return (lib, None) if lib == "numpy" else (lib, str(array_api_compat.device(X)))


class BaseMLP(BaseEstimator):
    """What both estimators share: fit, partial_fit's core, the forward pass, pickling."""

    _is_classifier = False

    # -- fitting --------------------------------------------------------------------------
    def _fit(self, X, y, incremental, sample_weight=None):
        hidden = check_params(self)
        first = not hasattr(self, "_model") or (not self.warm_start and not incremental)
        X, y = validate_data(self, X, y, multi_output=True, reset=first,
                             y_numeric=not self._is_classifier)
        X = _as_float(X)
        if sample_weight is not None:  # where X is, in X's float type
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        y = B.to_numpy(y)  # targets, a column, are encoded on the host
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y_host = self._encode(y, incremental)
        rs = check_random_state(self.random_state)
        if first:
            self._initialize(hidden, X, Y_host, rs)
        else:
            self._check_continuation(X, Y_host, "partial_fit" if incremental else "fit")
        model = self._model
        Y_host = Y_host.astype(model.dtype_name)
        Y = Y_host if B.library_of(X) == "numpy" else B.asarray(Y_host, backend=model.backend)
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer, model.opt_state = make_optimizer(self), None
        lock = claim(model, f"{type(self).__name__}.fit")  # one training thread per model
        try:
            F.run_epochs(self, X, Y, Y_host, rs, incremental, sample_weight)
        finally:
            lock.release()
        return self

    def _initialize(self, hidden, X, Y_host, rs):
        self.n_iter_ = self.t_ = 0
        self.n_outputs_ = int(Y_host.shape[1])
        self.n_layers_ = len(hidden) + 2
        self.out_activation_ = self._out_activation()
        backend = B.current() if B.library_of(X) == "numpy" else B.backend_of(X)
        xp = array_api_compat.array_namespace(X)
        dtype = "float64" if X.dtype == xp.float64 else "float32"
        units = [*hidden, self.n_outputs_]
        weights = F.initial_weights(self.activation, X.shape[1], units, rs)
        self._model = F.build_model(self.activation, self.out_activation_, X.shape[1], units,
                                    dtype, backend, weights)
        self._fitted_on = _place(X)
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self._best_params = None
        if self.early_stopping:
            self.validation_scores_, self.best_validation_score_ = [], -math.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = math.inf
            self.validation_scores_ = self.best_validation_score_ = None

    def _check_continuation(self, X, Y_host, method):
        if Y_host.shape[1] != self.n_outputs_:
            raise ValueError(f"{method}: y has {Y_host.shape[1]} outputs, the model was fitted "
                             f"with {self.n_outputs_}")
        self._check_place(X, method, always=True)

    def _check_place(self, X, method, always=False):
        """scikit-learn's rule: with array API dispatch, a method takes arrays of the
        namespace and device ``fit`` had."""
        if (always or get_config()["array_api_dispatch"]) and _place(X) != self._fitted_on:
            raise ValueError(
                f"Inputs passed to {type(self).__name__}.{method}() must use the same namespace "
                f"and the same device as those passed to fit(): fit had {self._fitted_on}, "
                f"{method} got {_place(X)}")

    # -- computing ------------------------------------------------------------------------
    def _forward(self, X, method):
        """The network's output for ``X`` (probabilities, or the regression values)."""
        check_is_fitted(self)
        X = _as_float(validate_data(self, X, reset=False))
        self._check_place(X, method)
        return self._output(X)

    def _output(self, X):
        # validate_data has checked X for NaN/inf
        return self._model.predict(X, batch_size=_PREDICT_BATCH, check_finite=False)

    @property
    def coefs_(self) -> list:
        """The weight matrices, layer by layer, as NumPy arrays."""
        check_is_fitted(self)
        return [B.to_numpy(layer.params["W"]) for layer in self._model.layers]

    @property
    def intercepts_(self) -> list:
        """The bias vectors, layer by layer, as NumPy arrays."""
        check_is_fitted(self)
        return [B.to_numpy(layer.params["b"]) for layer in self._model.layers]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False  # xpnet's layers take dense arrays
        tags.array_api_support = True
        return tags

    # -- pickling: the model pickles itself (weights and optimizer state as NumPy, the
    # backend by its name, rebuilt on that backend's default device) -----------------------
    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_best_params", None)  # set only while fit runs
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._best_params = None
        model = self.__dict__.get("_model")
        if model is not None and self._fitted_on[0] != "numpy":
            self._fitted_on = (self._fitted_on[0], str(model.backend.device))
