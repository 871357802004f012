"""xpnet.sklearn in use: array API dispatch (torch CPU, array-api-strict), pickling and
clone, Pipeline / GridSearchCV(n_jobs=2) / cross_val_score, and the optional import.

The reference is scikit-learn's own MLP fitted on the same data as NumPy (same
random_state: the same numbers, see tests/test_sklearn.py).
"""
from __future__ import annotations

import io
import pickle
import subprocess
import sys

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed: pip install 'xpnet[sklearn]'")

from sklearn import neural_network as sk_nn  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import xpnet as xn  # noqa: E402
from xpnet import backend as B  # noqa: E402
from xpnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

from _backends import param  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

KW = dict(hidden_layer_sizes=(8,), max_iter=8, random_state=0, alpha=0.01)


def _data():
    X, y = make_classification(160, 6, n_informative=4, n_classes=3, random_state=0)
    return X, y


def _dispatch():
    try:
        return sklearn.config_context(array_api_dispatch=True)
    except RuntimeError as exc:  # SciPy imported before SCIPY_ARRAY_API=1 was set
        pytest.skip(f"scikit-learn's array API dispatch cannot be enabled here: {exc}")


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed")


def _strict(device_name=None):
    xs = pytest.importorskip("array_api_strict", reason="array-api-strict is not installed")
    return xs, (None if device_name is None else xs.Device(device_name))


def _no_host_copy(monkeypatch, torch, n_rows):
    """Make any conversion of a torch tensor of ``n_rows`` rows to NumPy fail the test."""
    for name in ("numpy", "__array__"):
        original = getattr(torch.Tensor, name)

        def refuse(self, *args, _original=original, **kwargs):
            if self.ndim == 2 and self.shape[0] == n_rows:
                raise AssertionError("the data was copied to the host")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, refuse)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dispatch_trains_on_torch_tensors_and_returns_them(monkeypatch, dtype):
    torch = _torch()
    X, y = _data()
    X = X.astype(dtype)
    ref = sk_nn.MLPClassifier(**KW).fit(X, y)
    Xt, yt = torch.asarray(X), torch.asarray(y)
    _no_host_copy(monkeypatch, torch, X.shape[0])
    with _dispatch():
        est = MLPClassifier(**KW).fit(Xt, yt)
        proba, labels = est.predict_proba(Xt), est.predict(Xt)
        score = est.score(Xt, yt)
    monkeypatch.undo()
    assert est._model.backend.name == "torch"
    assert isinstance(proba, torch.Tensor) and proba.dtype == getattr(torch, dtype)
    assert isinstance(labels, torch.Tensor) and labels.device == Xt.device
    rtol = 1e-9 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=rtol)
    np.testing.assert_allclose(proba.numpy(), ref.predict_proba(X), rtol=rtol, atol=rtol / 10)
    np.testing.assert_array_equal(labels.numpy(), ref.predict(X))
    assert score == pytest.approx(ref.score(X, y), abs=1e-6)


@pytest.mark.parametrize("device_name", [None, "device1"])
def test_dispatch_trains_on_array_api_strict_arrays(device_name):
    xs, device = _strict(device_name)
    X, y = make_classification(120, 5, random_state=1)
    ref = sk_nn.MLPRegressor(**KW).fit(X, y * 1.0)
    Xs, ys = xs.asarray(X, device=device), xs.asarray(y * 1.0, device=device)
    with _dispatch():
        est = MLPRegressor(**KW).fit(Xs, ys)
        pred = est.predict(Xs)
    assert type(pred) is type(Xs) and pred.device == Xs.device and pred.shape == (120,)
    assert est._model.backend.device == Xs.device
    np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(B.to_numpy(pred), ref.predict(X), rtol=1e-9, atol=1e-12)


def test_without_dispatch_numpy_in_numpy_out():
    torch = _torch()
    X, y = _data()
    est = MLPClassifier(**KW).fit(torch.asarray(X), y)  # scikit-learn converts it to NumPy
    assert est._model.backend.name == xn.get_backend()
    assert type(est.predict(torch.asarray(X))) is np.ndarray
    with _dispatch():  # NumPy in, NumPy out under dispatch too
        assert type(MLPClassifier(**KW).fit(X, y).predict_proba(X)) is np.ndarray


def test_dispatch_refuses_another_namespace_than_fit():
    torch = _torch()
    X, y = _data()
    with _dispatch():
        est = MLPClassifier(**KW).fit(torch.asarray(X), torch.asarray(y))
        with pytest.raises(ValueError, match=r"MLPClassifier.predict\(\) must use the same namespace"):
            est.predict(X)
        with pytest.raises(ValueError, match=r"partial_fit\(\) must use the same namespace"):
            est.partial_fit(X, y)


class _NoBackendObjects(pickle.Unpickler):
    """Refuses to load any object of an array library other than NumPy."""

    def find_class(self, module, name):
        if module.split(".")[0] in ("torch", "cupy", "array_api_strict", "array_api_compat"):
            raise AssertionError(f"the pickle holds {module}.{name}")
        return super().find_class(module, name)


@pytest.mark.parametrize("backend_name", [param(n) for n in ("numpy", "array_api_strict", "torch")])
def test_pickle_holds_numpy_arrays_and_continues(backend_name):
    X, y = _data()
    with xn.use_backend(backend_name):
        est = MLPClassifier(solver="sgd", **KW).partial_fit(X, y, classes=np.unique(y))
        copy = _NoBackendObjects(io.BytesIO(pickle.dumps(est))).load()
        assert copy._model.backend.name == backend_name
        np.testing.assert_array_equal(copy.predict_proba(X), est.predict_proba(X))
        # the optimizer state (momentum) travelled too: both continue the same way
        est.partial_fit(X, y)
        copy.partial_fit(X, y)
        np.testing.assert_array_equal(copy.coefs_[0], est.coefs_[0])
        np.testing.assert_array_equal(copy.loss_curve_, est.loss_curve_)
    fresh = clone(est)
    assert fresh.get_params() == est.get_params() and not hasattr(fresh, "n_iter_")


def test_momentum_state_matters_to_the_pickle_test():
    """The test above would pass without the optimizer state if momentum changed nothing."""
    X, y = _data()
    est = MLPClassifier(solver="sgd", **KW).partial_fit(X, y, classes=np.unique(y))
    copy = pickle.loads(pickle.dumps(est))
    copy._model.opt_state = None  # what a pickle without the optimizer state would give
    est.partial_fit(X, y)
    copy.partial_fit(X, y)
    assert not np.array_equal(copy.coefs_[0], est.coefs_[0])


def test_pipeline_gridsearch_and_cross_val_score():
    X, y = _data()
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=30, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.6
    search = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(4,), (16,)],
                                 "mlpclassifier__alpha": [1e-4, 1.0]}, cv=2, n_jobs=2)
    search.fit(X, y)
    assert search.best_params_["mlpclassifier__hidden_layer_sizes"] in [(4,), (16,)]
    ref = GridSearchCV(make_pipeline(StandardScaler(), sk_nn.MLPClassifier(max_iter=30, random_state=0)),
                       search.param_grid, cv=2).fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               ref.cv_results_["mean_test_score"])


def test_feature_names_and_fitted_attributes():
    pd = pytest.importorskip("pandas", reason="pandas is not installed")
    X, y = _data()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    est = MLPClassifier(**KW).fit(frame, y)
    assert list(est.feature_names_in_) == list(frame.columns) and est.n_features_in_ == 6
    assert [c.shape for c in est.coefs_] == [(6, 8), (8, 3)]
    assert [b.shape for b in est.intercepts_] == [(8,), (3,)]
    assert est.out_activation_ == "softmax" and len(est.loss_curve_) == est.n_iter_ == 8


def test_import_xpnet_does_not_import_sklearn():
    code = "import sys, xpnet; assert 'sklearn' not in sys.modules; import xpnet.sklearn"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
