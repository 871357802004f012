"""scikit-learn estimators on xpnet: :class:`MLPClassifier` and :class:`MLPRegressor`.

Drop-in for ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor`` (the same
constructor parameters, solvers "sgd" and "adam"), trained by an :class:`xpnet.Sequential`
on any xpnet backend::

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from xpnet.sklearn import MLPClassifier

    clf = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(100,)))
    clf.fit(X_train, y_train).score(X_test, y_test)

NumPy data runs on the backend ``XPNET_BACKEND`` names (NumPy results). With
``sklearn.set_config(array_api_dispatch=True)``, torch tensors, CuPy arrays or
array-api-strict arrays are trained on in their own library and device, and
``predict`` returns that library's arrays.

This module needs scikit-learn (``pip install 'xpnet[sklearn]'``); ``import xpnet`` does
not import it.
"""
try:
    import sklearn  # noqa: F401  (the estimators' base classes come from it)
except ImportError as exc:  # pragma: no cover - depends on the machine
    raise ImportError(
        "xpnet.sklearn needs scikit-learn, which is not installed: "
        "pip install 'xpnet[sklearn]'"
    ) from exc

from ._estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
