"""Scaling: training time against batch size, hidden width and depth, and the machine's
matrix-multiply rate measured in the same run.

- batch: 784-100-10, SGD, batch 10 ... 10,000.
- width: 784-w-10 at batch 1000, w = 100 ... 4096. ``numpy_gemm`` times the very matrix
  products one training step makes (forward, dW, dx; float32 NumPy ``@``), so the report
  can give xpnet's training FLOP rate as a fraction of what the BLAS does on those shapes.
- depth: 784-(256 x d)-10 at batch 100, d = 1 ... 8.
- gemm_peak: a 2048^3 float32 product, the machine's best case.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from .baselines import training_flops, training_gemms
from .common import epoch_runner, set_info

WIDTH_BATCH = 1000
DEPTH_WIDTH, DEPTH_BATCH = 256, 100


def _data(fashion_train, rows):
    return fashion_train.x[:rows], fashion_train.y[:rows]


def _bench_epoch(benchmark, impl, layer_sizes, batch, x, y, xbackend, sync, hand_xp, sizes, **info):
    setup, run = epoch_runner(impl, "sgd", batch, x, y, xbackend, hand_xp, "cpu",
                              layer_sizes=layer_sizes)

    def timed(model):
        loss = run(model)
        sync()
        return loss

    rows = x.shape[0]
    set_info(benchmark, impl=impl, backend=xbackend.name, rows=rows, batch=batch,
             layers=list(layer_sizes), flops=training_flops(layer_sizes, rows), **info)
    loss = benchmark.pedantic(timed, setup=setup, rounds=sizes.train_rounds,
                              warmup_rounds=1 if sizes.full else 0)
    assert math.isfinite(loss)
    assert loss < 2 * math.log(10)  # trained, not diverged (wide nets at lr 0.1 start rough)
    return loss


# the swept values (scale_batch, width, depth) come from conftest.pytest_generate_tests

@pytest.mark.parametrize("impl", ["xpnet", "numpy_hand"])
def test_scale_batch(benchmark, impl, scale_batch, fashion_train, xbackend, sizes, sync,
                     hand_xp):
    x, y = _data(fashion_train, sizes.scale_rows)
    benchmark.group = "scaling: batch size (784-100-10)"
    _bench_epoch(benchmark, impl, (784, 100, 10), scale_batch, x, y, xbackend, sync, hand_xp,
                 sizes, workload="scale_batch")


@pytest.mark.parametrize("impl", ["xpnet", "numpy_hand", "numpy_gemm"])
def test_scale_width(benchmark, impl, width, fashion_train, xbackend, sizes, sync, hand_xp):
    layer_sizes = (784, width, 10)
    benchmark.group = f"scaling: hidden width (784-w-10, batch {WIDTH_BATCH})"
    if impl == "numpy_gemm":
        _bench_gemms(benchmark, training_gemms(layer_sizes, WIDTH_BATCH), xbackend, sync,
                     hand_xp, sizes, workload="scale_width", width=width, batch=WIDTH_BATCH,
                     rows=WIDTH_BATCH, layers=list(layer_sizes))
        return
    x, y = _data(fashion_train, sizes.scale_rows)
    _bench_epoch(benchmark, impl, layer_sizes, WIDTH_BATCH, x, y, xbackend, sync, hand_xp,
                 sizes, workload="scale_width", width=width)


def _bench_gemms(benchmark, shapes, xbackend, sync, hand_xp, sizes, **info):
    """Time the products ``(m, k, n)`` in ``shapes`` (float32, the hand baseline's xp)."""
    rng = np.random.default_rng(0)
    pairs = [(hand_xp.asarray(rng.standard_normal((m, k), dtype=np.float32)),
              hand_xp.asarray(rng.standard_normal((k, n), dtype=np.float32)))
             for m, k, n in shapes]

    def step():
        for a, b in pairs:
            a @ b
        sync()

    set_info(benchmark, impl="numpy_gemm", backend=xbackend.name,
             flops=sum(2 * m * k * n for m, k, n in shapes),
             gemms=[list(s) for s in shapes], **info)
    benchmark.pedantic(step, rounds=max(5, sizes.rounds * 4), warmup_rounds=1,
                       iterations=1)
    # the products themselves are right (one checked against float64)
    a, b = pairs[0]
    a64 = np.asarray(a.get() if hasattr(a, "get") else a, dtype=np.float64)
    b64 = np.asarray(b.get() if hasattr(b, "get") else b, dtype=np.float64)
    got = a @ b
    got = got.get() if hasattr(got, "get") else got
    np.testing.assert_allclose(got, a64 @ b64, rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize("impl", ["xpnet", "numpy_hand"])
def test_scale_depth(benchmark, impl, depth, fashion_train, xbackend, sizes, sync, hand_xp):
    layer_sizes = (784, *([DEPTH_WIDTH] * depth), 10)
    x, y = _data(fashion_train, sizes.scale_rows)
    benchmark.group = f"scaling: depth (784-{DEPTH_WIDTH}xd-10, batch {DEPTH_BATCH})"
    _bench_epoch(benchmark, impl, layer_sizes, DEPTH_BATCH, x, y, xbackend, sync, hand_xp,
                 sizes, workload="scale_depth", depth=depth)


def test_gemm_peak(benchmark, xbackend, sizes, sync, hand_xp):
    """The machine's float32 GEMM rate on a large square product (2048^3)."""
    n = 2048 if sizes.full else 512
    benchmark.group = "GEMM peak"
    _bench_gemms(benchmark, [(n, n, n)], xbackend, sync, hand_xp, sizes, workload="gemm_peak",
                 rows=n)
