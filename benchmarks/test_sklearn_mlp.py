"""Smoke test of benchmarks/sklearn_mlp.py: a small run writes its table, and xpnet's
estimator reaches scikit-learn's accuracy (it takes the same steps). Skipped with the
reason where scikit-learn or Fashion-MNIST is absent."""
from __future__ import annotations

import pytest

pytest.importorskip("sklearn", reason="scikit-learn is not installed: pip install 'xpnet[sklearn]'")
pytest.importorskip("threadpoolctl", reason="threadpoolctl is not installed")

from . import sklearn_mlp  # noqa: E402


def test_quick_run_writes_the_table(tmp_path):
    results, why = sklearn_mlp.run(["adam"], epochs=1, rounds=1, threads=1, quick=True, gpu=False)
    if results is None:
        pytest.skip(f"Fashion-MNIST is not available: {why}")
    by = {r["impl"]: r for r in results}
    assert by["xpnet"]["epochs_run"] == by["sklearn"]["epochs_run"] == 1
    assert abs(by["xpnet"]["accuracy"] - by["sklearn"]["accuracy"]) < 0.01
    assert by["xpnet"]["loss"] == pytest.approx(by["sklearn"]["loss"], rel=1e-3)
    path = sklearn_mlp.write(results, sklearn_mlp.machine(1), tmp_path, 1)
    assert "| adam | xpnet |" in path.read_text()
