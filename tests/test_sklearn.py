"""xpnet.sklearn against scikit-learn itself: its estimator checks, and its own MLP as the
reference (same random_state -> the same initial weights, shuffles and steps, so on float64
data the loss curve, the weights and the predictions agree to rounding).

Skipped, with the reason, where scikit-learn is not installed (``pip install 'xpnet[sklearn]'``).
"""
from __future__ import annotations

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed: pip install 'xpnet[sklearn]'")

from sklearn import neural_network as sk_nn  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import xpnet as xn  # noqa: E402
from xpnet import backend as B  # noqa: E402
from xpnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

from _backends import param  # noqa: E402

# max_iter is small on purpose here: scikit-learn's MLP warns as ours does
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

BACKENDS = [param(name) for name in ("numpy", "array_api_strict", "torch")]


# -- scikit-learn's estimator checks -----------------------------------------------------

def _expected_failed_checks(estimator):
    """Checks that cannot pass, with the reason (scikit-learn reports them as xfail)."""
    return {}  # every check passes: keep the hook, so an exception is declared, not hidden


def _cupy_unavailable(check) -> str | None:
    """Why a check of CuPy arrays cannot run here (CuPy installed but no CUDA device), or
    None. scikit-learn's own check only asks whether CuPy imports."""
    spec = getattr(check, "keywords", {})
    names = [spec.get("array_namespace")] + [getattr(spec.get(k), "xp", None)
                                            for k in ("X_ns_and_device", "other_ns_and_device")]
    if "cupy" not in names:
        return None
    try:
        B.load("cupy")
    except xn.BackendUnavailableError as exc:
        return str(exc)
    return None


@parametrize_with_checks([MLPClassifier(max_iter=100, random_state=0),
                          MLPRegressor(max_iter=100, random_state=0)],
                         expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    reason = _cupy_unavailable(check)
    if reason is not None:
        pytest.skip(f"CuPy arrays cannot be made here: {reason}")
    check(estimator)


# -- scikit-learn's MLP as the reference --------------------------------------------------

CONFIGS = {
    "adam": {},
    "sgd-nesterov": dict(solver="sgd", learning_rate_init=0.01),
    "sgd-momentum-l2": dict(solver="sgd", nesterovs_momentum=False, alpha=0.1),
    "sgd-invscaling": dict(solver="sgd", momentum=0.0, learning_rate="invscaling",
                           learning_rate_init=0.1),
    "sgd-adaptive": dict(solver="sgd", learning_rate="adaptive", tol=0.5, n_iter_no_change=1),
    "early-stopping": dict(early_stopping=True, validation_fraction=0.2, n_iter_no_change=3),
    "tanh-batch32-in-order": dict(activation="tanh", batch_size=32, shuffle=False, alpha=0.0),
    "logistic": dict(activation="logistic", epsilon=1e-4),
    "identity-2-layers": dict(activation="identity", hidden_layer_sizes=(8, 6)),
}


def _classification(kind, dtype="float64"):
    X, y = make_classification(150, 6, n_informative=4, n_classes=3, random_state=0)
    X = X.astype(dtype)
    if kind == "binary":
        return X, np.where(y == 1, "yes", "no")  # string labels
    if kind == "multilabel":
        return X, np.stack([y == 0, y == 1, X[:, 0] > 0], axis=1).astype(int)
    return X, y + 10


def _same_fit(ours, ref, rtol=1e-9, atol=1e-10):
    assert ours.n_iter_ == ref.n_iter_ and ours.t_ == ref.t_
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=rtol)
    assert ours.out_activation_ == ref.out_activation_ and ours.n_layers_ == ref.n_layers_
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    if ref.validation_scores_ is not None:
        np.testing.assert_allclose(ours.validation_scores_, ref.validation_scores_, rtol=rtol)
        assert ours.best_validation_score_ == pytest.approx(ref.best_validation_score_, rel=rtol)
        assert ours.best_loss_ is None
    else:
        assert ours.best_loss_ == pytest.approx(ref.best_loss_, rel=rtol)


@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel"])
@pytest.mark.parametrize("config", CONFIGS, ids=list(CONFIGS))
def test_classifier_trains_as_sklearn(config, kind):
    X, y = _classification(kind)
    kw = {"hidden_layer_sizes": (7,), "max_iter": 12, "random_state": 3, **CONFIGS[config]}
    if config == "early-stopping" and kind == "multilabel":
        kw["max_iter"] = 30
    ours, ref = MLPClassifier(**kw).fit(X, y), sk_nn.MLPClassifier(**kw).fit(X, y)
    _same_fit(ours, ref)
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    assert ours.score(X, y) == ref.score(X, y)


@pytest.mark.parametrize("outputs", [1, 3])
@pytest.mark.parametrize("config", ["adam", "sgd-momentum-l2", "early-stopping",
                                    "tanh-batch32-in-order"])
def test_regressor_trains_as_sklearn(config, outputs):
    X, y = make_regression(120, 5, n_targets=outputs, noise=0.1, random_state=1)
    y = y / np.std(y)
    kw = {"hidden_layer_sizes": (9,), "max_iter": 15, "random_state": 2, **CONFIGS[config]}
    if config.startswith("sgd"):
        kw["learning_rate_init"] = 0.001
    ours, ref = MLPRegressor(**kw).fit(X, y), sk_nn.MLPRegressor(**kw).fit(X, y)
    _same_fit(ours, ref)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-9, atol=1e-10)
    assert ours.predict(X).shape == ref.predict(X).shape


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_every_backend_trains_as_sklearn(backend_name):
    """NumPy data on the backend XPNET_BACKEND names: NumPy results, scikit-learn's numbers."""
    X, y = _classification("multiclass")
    kw = dict(hidden_layer_sizes=(7,), max_iter=10, random_state=0, alpha=0.01)
    ref = sk_nn.MLPClassifier(**kw).fit(X, y)
    with xn.use_backend(backend_name):
        ours = MLPClassifier(**kw).fit(X, y)
        proba = ours.predict_proba(X)
    assert ours._model.backend.name == backend_name
    assert type(proba) is np.ndarray and type(ours.predict(X)) is np.ndarray
    _same_fit(ours, ref)
    np.testing.assert_allclose(proba, ref.predict_proba(X), rtol=1e-9, atol=1e-12)


def test_float32_data_trains_in_float32():
    X, y = _classification("multiclass", "float32")
    kw = dict(hidden_layer_sizes=(7,), max_iter=10, random_state=0)
    ours, ref = MLPClassifier(**kw).fit(X, y), sk_nn.MLPClassifier(**kw).fit(X, y)
    assert ours.coefs_[0].dtype == np.float32 and ours.predict_proba(X).dtype == np.float32
    _same_fit(ours, ref, rtol=1e-4, atol=1e-5)


def test_partial_fit_and_warm_start_continue_as_sklearn():
    X, y = _classification("multiclass")
    kw = dict(hidden_layer_sizes=(5,), random_state=0, solver="sgd", learning_rate_init=0.05)
    ours, ref = MLPClassifier(**kw), sk_nn.MLPClassifier(**kw)
    for k in range(3):  # a class missing from the first batch is fine with classes=
        rows = slice(50 * k, 50 * (k + 1))
        ours.partial_fit(X[rows], y[rows], classes=np.unique(y))
        ref.partial_fit(X[rows], y[rows], classes=np.unique(y))
    _same_fit(ours, ref)
    kw = dict(hidden_layer_sizes=(5,), random_state=0, warm_start=True, max_iter=4)
    ours, ref = MLPRegressor(**kw), sk_nn.MLPRegressor(**kw)
    for _ in range(2):
        ours.fit(X, X[:, 0])
        ref.fit(X, X[:, 0])
    _same_fit(ours, ref)
    with pytest.raises(ValueError, match="classes must be passed"):
        MLPClassifier().partial_fit(X, y)
    with pytest.raises(ValueError, match="early_stopping"):
        MLPRegressor(early_stopping=True).partial_fit(X, X[:, 0])


def test_max_iter_warns_and_verbose_prints(capsys):
    X, y = _classification("binary")
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(3\\)"):
        MLPClassifier(max_iter=3, verbose=True, random_state=0).fit(X, y)
    out = capsys.readouterr().out
    assert out.count("Iteration") == 3 and "loss = " in out


@pytest.mark.parametrize("name, value, match", [
    ("solver", "lbfgs", "lbfgs"), ("solver", "newton", "solver"),
    ("activation", "softmax", "activation"), ("hidden_layer_sizes", (10, 0), "hidden_layer_sizes"),
    ("batch_size", 0, "batch_size"), ("learning_rate_init", 0.0, "learning_rate_init"),
    ("momentum", 1.0, "momentum"), ("beta_2", 1.0, "beta_2"), ("epsilon", 0, "epsilon"),
    ("n_iter_no_change", 0, "n_iter_no_change"), ("validation_fraction", 1.0, "validation_fraction"),
    ("shuffle", "yes", "shuffle"), ("alpha", -1.0, "alpha"), ("max_iter", 0, "max_iter"),
])
def test_bad_hyperparameters_name_themselves_at_fit(name, value, match):
    X, y = _classification("binary")
    est = MLPClassifier(**{name: value})  # scikit-learn's rule: __init__ never raises
    with pytest.raises(xn.InvalidParameterError, match=match):
        est.fit(X, y)
    with pytest.raises(ValueError, match="poisson"):
        MLPRegressor(loss="poisson").fit(X, X[:, 0])


# -- sample_weight, against scikit-learn's MLP with the same weights ----------------------

def _weights(n, seed=5):
    w = np.random.default_rng(seed).random(n) * 3
    w[::5] = 0.0
    return w


@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel"])
@pytest.mark.parametrize("config", ["adam", "sgd-momentum-l2", "early-stopping",
                                    "tanh-batch32-in-order"])
def test_classifier_with_sample_weight_trains_as_sklearn(config, kind):
    X, y = _classification(kind)
    w = _weights(len(X))
    kw = {"hidden_layer_sizes": (7,), "max_iter": 12, "random_state": 3, **CONFIGS[config]}
    ours = MLPClassifier(**kw).fit(X, y, sample_weight=w)
    ref = sk_nn.MLPClassifier(**kw).fit(X, y, sample_weight=w)
    _same_fit(ours, ref)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=1e-9, atol=1e-12)
    assert ours.score(X, y, sample_weight=w) == pytest.approx(ref.score(X, y, sample_weight=w))


@pytest.mark.parametrize("outputs", [1, 3])
@pytest.mark.parametrize("config", ["adam", "sgd-momentum-l2", "early-stopping"])
def test_regressor_with_sample_weight_trains_as_sklearn(config, outputs):
    X, y = make_regression(120, 5, n_targets=outputs, noise=0.1, random_state=1)
    y = y / np.std(y)
    w = _weights(len(X), seed=6)
    kw = {"hidden_layer_sizes": (9,), "max_iter": 15, "random_state": 2, **CONFIGS[config]}
    if config.startswith("sgd"):
        kw["learning_rate_init"] = 0.001
    ours = MLPRegressor(**kw).fit(X, y, sample_weight=w)
    ref = sk_nn.MLPRegressor(**kw).fit(X, y, sample_weight=w)
    _same_fit(ours, ref)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_sample_weight_on_every_backend_and_in_partial_fit(backend_name):
    X, y = _classification("multiclass")
    w = _weights(len(X))
    kw = dict(hidden_layer_sizes=(5,), random_state=0, solver="sgd", learning_rate_init=0.05)
    ref = sk_nn.MLPClassifier(**kw)
    with xn.use_backend(backend_name):
        ours = MLPClassifier(**kw)
        for _ in range(3):
            ours.partial_fit(X, y, sample_weight=w, classes=np.unique(y))
            ref.partial_fit(X, y, sample_weight=w, classes=np.unique(y))
    _same_fit(ours, ref)
