"""A small run of ``python -m benchmarks.dask_predict``: the three ways give the same
kind of table, and the workers stay under their memory limit."""
import pytest

pytest.importorskip("dask.distributed", reason="dask.distributed is not installed (xpnet[dask])")

from benchmarks import dask_predict  # noqa: E402


def test_dask_predict_small_run():
    r = dask_predict.run(rows=40_000, chunk=10_000, repeat=1)
    assert all(r[k] > 0 for k in ("memory_s", "threads_s", "cluster_s", "cluster_draw_s"))
    assert r["worker_peak_mib"] < r["limit_mib"]
    text = dask_predict.table(r)
    assert "| in memory, one process | " in text and "dask.distributed" in text
