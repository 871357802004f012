"""``predict`` and ``evaluate`` over Dask arrays: lazy, block by block, in bounded memory.

The cluster test starts two worker processes on loopback with a memory limit and predicts
an array, generated lazily on the workers, that is larger than the whole cluster's memory.
"""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

import xpnet as xn

da = pytest.importorskip("dask.array", reason="Dask is not installed (pip install 'xpnet[dask]')")
dask = pytest.importorskip("dask")


def _model(input_dim=20, seed=0):
    model = xn.Sequential([xn.layers.Dense(32, activation="relu", input_dim=input_dim),
                           xn.layers.Dense(4, activation="softmax")], seed=seed)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _data(n=1_000, d=20, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype("float32"), rng.integers(0, 4, n)


@pytest.fixture
def threads():
    with dask.config.set(scheduler="threads", num_workers=4):
        yield


def test_predict_is_lazy_and_equals_in_memory(backend, threads):
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)
    dx = da.from_array(x, chunks=(170, 7))  # uneven rows; features split, joined by predict
    out = model.predict(dx, batch_size=64)
    assert isinstance(out, da.Array)
    assert out.shape == (1_000, 4) and out.chunks[0] == dx.chunks[0]
    np.testing.assert_allclose(out.compute(), xn.to_numpy(model.predict(x, batch_size=64)),
                               rtol=0, atol=1e-6)


def test_predict_of_images_through_flatten(threads):
    x = np.random.default_rng(0).random((300, 6, 5), dtype="float32")
    model = xn.Sequential([xn.layers.Flatten(input_shape=(6, 5)), xn.layers.Dense(3)], seed=0)
    out = model.predict(da.from_array(x, chunks=(100, 6, 5)))
    assert out.shape == (300, 3)
    np.testing.assert_allclose(out.compute(), model.predict(x), rtol=0, atol=1e-6)


def test_evaluate_equals_in_memory(backend, threads):
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=2, verbose=0)
    expected = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    for dy in (da.from_array(y, chunks=333), y):  # targets chunked otherwise, or in memory
        got = model.evaluate(da.from_array(x, chunks=(170, 20)), dy, batch_size=64,
                             return_dict=True)
        assert got.keys() == expected.keys()
        for k in expected:
            assert got[k] == pytest.approx(expected[k], rel=1e-6, abs=1e-7)


def test_dask_refusals(threads):
    x, y = _data()
    model = _model()
    with pytest.raises(TypeError, match="Dask array: predict and evaluate take"):
        model.fit(da.from_array(x), y, verbose=0)
    with pytest.raises(ValueError, match="does not fit layer"):
        model.predict(da.from_array(x[:, :5]))
    with pytest.raises(ValueError, match="different numbers of rows"):
        model.evaluate(da.from_array(x), y[:10])


def test_a_model_in_the_graph_is_small():
    x, y = _data(n=20_000)
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)
    model.predict(x, batch_size=10_000)  # a large batch through the layers
    out = model.predict(da.from_array(x, chunks=5_000))
    (task,) = [v for k, v in dict(out.__dask_graph__()).items() if str(k).startswith("xpnet-model")]
    weights = sum(w.nbytes for w in model.get_weights())
    assert len(pickle.dumps(task)) < 2 * weights + 20_000


def _peak_mib():
    """This process's peak resident memory (VmHWM, of its own address space: unlike
    ``ru_maxrss``, which Linux carries over from the parent across fork and exec)."""
    with open("/proc/self/status") as f:
        line = next(l for l in f if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024  # kB


def test_a_cluster_predicts_more_than_its_memory():
    distributed = pytest.importorskip("dask.distributed", reason="dask.distributed is not installed")
    if not os.path.exists("/proc/self/status"):
        pytest.skip("the workers' peak memory is read from /proc (Linux)")
    limit_mib = 400
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", memory_limit=f"{limit_mib}MiB",
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        model = _model(input_dim=784)
        chunk = 20_000
        x = da.random.default_rng(0).random((30 * chunk, 784), chunks=(chunk, 784),
                                            dtype="float32")
        assert x.nbytes > 2 * limit_mib * 2**20  # 1.75 GiB against 800 MiB of workers
        out = model.predict(x, batch_size=5_000)
        total = out.sum(axis=0).compute()
        peaks = client.run(_peak_mib)
        assert max(peaks.values()) < limit_mib, peaks
        # the same rows in memory, block 0 and block 29, give the same outputs
        for k in (0, 29):
            rows = slice(k * chunk, (k + 1) * chunk)
            np.testing.assert_allclose(out[rows].compute(),
                                       model.predict(x[rows].compute(), batch_size=5_000),
                                       rtol=0, atol=1e-6)
        assert total.shape == (4,) and np.isclose(total.sum(), 30 * chunk, rtol=1e-4)
