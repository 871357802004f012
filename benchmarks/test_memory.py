"""Memory: ``predict`` and ``fit`` hold a few batches, never a copy of the data.

Measured with ``tracemalloc``, which sees every NumPy allocation (NumPy registers its
buffers with it), so these run on the NumPy-backed backends only; the input arrays are
made before tracing starts.

- ``predict`` over 1,000,000 rows: a 20-64-10 network (784 features would be a 3 GB
  input). The traced peak may exceed the output by a few batches of activations only.
- ``fit`` over the Fashion-MNIST training set (60,000 x 784 float32, 188 MB): the traced
  peak must stay far below the size of the data set.
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import xpnet as xn
from xpnet.layers import Dense

from .common import mlp, set_info

BATCH = 1000
PREDICT_SIZES = (20, 64, 10)
FIT_PEAK_SHARE = 0.1  # fit's traced peak must stay under a tenth of the data set


def _traced(fn):
    """Run ``fn``; return ``(result, peak traced bytes)``."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.fixture
def numpy_family(xbackend):
    if xbackend.name not in ("numpy", "array_api_strict"):
        pytest.skip(f"tracemalloc does not see the allocations of the {xbackend.name!r} backend "
                    "(it traces NumPy buffers only)")
    return xbackend


def test_predict_memory(benchmark, numpy_family, sizes):
    n = sizes.memory_rows
    x = np.random.default_rng(0).random((n, PREDICT_SIZES[0]), dtype=np.float32)
    model = xn.Sequential([Dense(PREDICT_SIZES[1], "relu", input_dim=PREDICT_SIZES[0]),
                           Dense(PREDICT_SIZES[2], "softmax")], seed=0, dtype="float32")
    model.build()
    peaks = []

    def run():
        out, peak = _traced(lambda: model.predict(x, batch_size=BATCH))
        peaks.append(peak)
        return out

    benchmark.group = "memory: predict over 1M rows (tracemalloc on)"
    out = benchmark.pedantic(run, rounds=1)
    out_bytes = out.nbytes
    batch_bytes = BATCH * sum(PREDICT_SIZES) * 4
    allowance = 8 * batch_bytes  # "a few batches" of inputs and activations
    set_info(benchmark, workload="memory_predict", impl="xpnet", backend=numpy_family.name,
             rows=n, batch=BATCH, input_bytes=x.nbytes, output_bytes=out_bytes,
             peak_bytes=max(peaks), allowance_bytes=out_bytes + allowance)
    assert out.shape == (n, PREDICT_SIZES[-1])
    np.testing.assert_allclose(out[-3:].sum(axis=1), 1.0, rtol=1e-5)
    assert max(peaks) <= out_bytes + allowance, (
        f"predict's traced peak {max(peaks) / 2**20:.1f} MiB exceeds the output "
        f"({out_bytes / 2**20:.1f} MiB) by more than {allowance / 2**20:.1f} MiB (8 batches)")


def test_fit_memory(benchmark, numpy_family, sizes, fashion_train):
    n = sizes.fit_memory_rows
    x, y = fashion_train.x[:n], fashion_train.y[:n]
    model = mlp((784, 100, 10), seed=0)
    model.build()
    peaks, losses = [], []

    def run():
        history, peak = _traced(lambda: model.fit(x, y, epochs=1, batch_size=100, verbose=0))
        peaks.append(peak)
        losses.append(history.history["loss"][-1])

    benchmark.group = "memory: fit one epoch (tracemalloc on)"
    benchmark.pedantic(run, rounds=1)
    data_bytes = x.nbytes + y.nbytes
    set_info(benchmark, workload="memory_fit", impl="xpnet", backend=numpy_family.name, rows=n,
             batch=100, input_bytes=data_bytes, peak_bytes=max(peaks),
             allowance_bytes=int(FIT_PEAK_SHARE * data_bytes))
    assert np.isfinite(losses[-1])
    assert max(peaks) < FIT_PEAK_SHARE * data_bytes, (
        f"fit's traced peak {max(peaks) / 2**20:.1f} MiB is not far below the data set "
        f"({data_bytes / 2**20:.1f} MiB): something holds a copy of the data")
