"""Input pipelines: one epoch of the 784-100-10 ReLU MLP (SGD, lr 0.1, batch 100) on
Fashion-MNIST fed three ways in the same run -- host arrays (``fit(x, y)``), a Python
generator of shuffled host batches (``fit(gen, steps_per_epoch=...)``: each batch checked
and moved as it comes) and ``xn.data.Dataset(...).prefetch(2)`` (slicing, cast and move in
a background thread). The same weights and row order for all three, so the mean epoch
loss agrees (the generator's to float32 rounding, the Dataset's exactly); the report
compares their times.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import xpnet as xn

from .common import make_weights, mlp, set_info

IMPLS = ("arrays", "generator", "dataset_prefetch")
BATCH = 100
SEED = 0


def _shuffled_batches(x, y, epoch=0):
    """The rows in the order fit(seed=SEED) takes them in epoch ``epoch``."""
    order = xn.backend.host_rng([SEED, epoch]).permutation(len(x))
    for i in range(0, len(x), BATCH):
        index = order[i:i + BATCH]
        yield x[index], y[index]


@pytest.mark.parametrize("impl", IMPLS)
def test_pipeline_epoch(benchmark, impl, fashion_train, xbackend, sizes, sync):
    n = sizes.train_rows
    x, y = fashion_train.x[:n], fashion_train.y[:n]
    weights = make_weights((784, 100, 10), seed=SEED)
    steps = math.ceil(n / BATCH)

    def setup():
        model = mlp((784, 100, 10), seed=SEED)
        model.set_weights([a for pair in weights for a in pair])
        return (model,), {}

    def run(model):
        if impl == "arrays":
            history = model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0, seed=SEED)
        elif impl == "generator":
            history = model.fit(_shuffled_batches(x, y), steps_per_epoch=steps, epochs=1,
                                verbose=0, seed=SEED)
        else:
            ds = xn.data.Dataset(x, y, batch_size=BATCH, seed=SEED).prefetch(2)
            history = model.fit(ds, epochs=1, verbose=0, seed=SEED)
        sync()
        return history.history["loss"][-1]

    benchmark.group = "input pipelines: one epoch, 784-100-10 ReLU, batch 100"
    set_info(benchmark, workload="pipeline", impl=impl, backend=xbackend.name, rows=n,
             batch=BATCH, optimizer="sgd", real_data=fashion_train.real)
    loss = benchmark.pedantic(run, setup=setup, rounds=sizes.train_rounds,
                              warmup_rounds=1 if sizes.full else 0)
    benchmark.extra_info["loss"] = float(loss)
    assert math.isfinite(loss)
    # every way sees the same rows in the same order from the same weights
    reference = setup()[0][0].fit(x, y, epochs=1, batch_size=BATCH, verbose=0, seed=SEED)
    assert np.isclose(loss, reference.history["loss"][-1], rtol=1e-5)
