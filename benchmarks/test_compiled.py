"""Compiled steps (``compile(jit_compile=...)``): eager against compiled, and both against
the hand-written NumPy loop, in the same run.

Training: one epoch of a 784-100-10 ReLU MLP (SGD, lr 0.1) over ``compiled_rows`` rows of
Fashion-MNIST (random rows where it is not installed) at batch 10, 100 and 1000. The same
model is trained again in every round, so a compiled step is timed after its compilation
(the warm-up round), as a training run of many epochs sees it.
Inference: the book's 784-50-100-10 network called on one row at a time, ``model(x_i)``,
each row a host NumPy array (the result is read back once, at the end).

xpnet runs on "jax" (eager and ``jax.jit``), "torch" and "numpy" (eager: ``jit_compile``
is a no-op there) whatever the benchmark backend; a backend that cannot run here is skipped.
On a GPU, :func:`test_cuda_graph_train_epoch` times the same epoch on eager CuPy, CuPy
replaying a CUDA graph of the step (``jit_compile=True``) and eager torch on CUDA.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import xpnet as xn
from xpnet import backend as B

from .baselines import HandMLP, make_weights
from .common import book_layers, book_model, make_sync, set_info

TRAIN = [("numpy_hand", None, False), ("xpnet", "jax", False), ("xpnet", "jax", True),
         ("xpnet", "torch", False), ("xpnet", "numpy", False)]
BATCHES = [10, 100, 1000]
ROWS = {10: 2_000, 100: 10_000, 1000: 20_000}  # per epoch, timed (smoke: 1/10)
PER_SAMPLE_ROWS = 1_000


def _use(name):
    if name is None:
        return xn.use_backend("numpy")
    try:
        B.load(name)
    except xn.BackendUnavailableError as exc:
        pytest.skip(f"backend {name!r} cannot run here: {exc}")
    return xn.use_backend(name)


def _xpnet_mlp(weights, jit):
    from xpnet.layers import Dense

    model = xn.Sequential([Dense(100, "relu", input_dim=784), Dense(10, "softmax")],
                          dtype="float32")
    model.set_weights([a for pair in weights for a in pair])
    model.compile(optimizer=xn.optimizers.SGD(lr=0.1), loss="sparse_categorical_crossentropy",
                  jit_compile=jit)
    return model


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("impl,backend,jit", TRAIN,
                         ids=[i if b is None else f"{i}-{b}-{'jit' if j else 'eager'}"
                              for i, b, j in TRAIN])
def test_compiled_train_epoch(benchmark, impl, backend, jit, batch, fashion_train, bench_full):
    n = ROWS[batch] if bench_full else ROWS[batch] // 10
    x, y = fashion_train.x[:n], fashion_train.y[:n]
    weights = make_weights((784, 100, 10), seed=0)
    with _use(backend) as b:
        if impl == "numpy_hand":
            hand = HandMLP(weights)
            epochs = iter(range(10**6))
            run = lambda: hand.train_epoch(x, y, batch, 0.1, seed=next(epochs))  # noqa: E731
        else:
            model = _xpnet_mlp(weights, jit)
            xd, yd = B.asarray(x, backend=b), B.asarray(y, dtype="int64", backend=b)
            run = lambda: model.fit(xd, yd, epochs=1, batch_size=batch,  # noqa: E731
                                    verbose=0).history["loss"][0]
        benchmark.group = f"compiled steps: one epoch, 784-100-10 ReLU, batch {batch}"
        set_info(benchmark, workload="train_compiled", impl=impl, backend=backend or "numpy",
                 jit=jit, rows=n, batch=batch)
        loss = benchmark.pedantic(run, rounds=5 if bench_full else 1, warmup_rounds=1)
    assert math.isfinite(float(loss))


GPU_TRAIN = [("cupy", False), ("cupy", True), ("torch", False)]


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("backend,jit", GPU_TRAIN,
                         ids=[f"{b}-{'graph' if j else 'eager'}" for b, j in GPU_TRAIN])
def test_cuda_graph_train_epoch(benchmark, backend, jit, batch, fashion_train, bench_full):
    """One epoch on the GPU: eager CuPy, CuPy replaying a CUDA graph of the step and eager
    torch on CUDA; each timed run waits for its device (the stream is synchronised inside
    the timed function). Skipped, with the reason, where there is no GPU."""
    n = ROWS[batch] if bench_full else ROWS[batch] // 10
    x, y = fashion_train.x[:n], fashion_train.y[:n]
    weights = make_weights((784, 100, 10), seed=0)
    with _use(backend) as b:
        if backend == "torch" and getattr(b.device, "type", "cpu") != "cuda":
            pytest.skip(f"torch runs on {b.device} here, not on a CUDA device")
        model = _xpnet_mlp(weights, jit)
        xd, yd = B.asarray(x, backend=b), B.asarray(y, dtype="int64", backend=b)
        sync = make_sync(b)

        def run():
            loss = model.fit(xd, yd, epochs=1, batch_size=batch, verbose=0).history["loss"][0]
            sync()
            return loss

        benchmark.group = f"CUDA graphs: one epoch, 784-100-10 ReLU, batch {batch}"
        set_info(benchmark, workload="train_cuda_graph", impl="xpnet", backend=backend, jit=jit,
                 rows=n, batch=batch)
        loss = benchmark.pedantic(run, rounds=5 if bench_full else 1, warmup_rounds=1)
        if backend == "cupy" and jit:  # the graph ran: no eager fallback hid in the timing
            assert model._graph_steps is not None and model._graph_steps.failed is None
            assert model._graph_steps.replays > 0
    assert math.isfinite(float(loss))


PREDICT = [("numpy_hand", None, False), ("xpnet", "jax", True), ("xpnet", "jax", False),
           ("xpnet", "numpy", False)]


@pytest.mark.parametrize("impl,backend,jit", PREDICT,
                         ids=[i if b is None else f"{i}-{b}-{'jit' if j else 'eager'}"
                              for i, b, j in PREDICT])
def test_compiled_per_sample(benchmark, impl, backend, jit, mnist_book, bench_full):
    """``model(x[i:i+1])`` for each row, one call per row (the compiled predict on jax)."""
    n = PER_SAMPLE_ROWS if bench_full else 50
    with _use(backend) as b:
        if impl == "numpy_hand":
            hand = HandMLP(book_layers(mnist_book.weights), activation="sigmoid")
            xd = mnist_book.x
            one = hand.forward
        else:
            model = book_model(mnist_book.weights)
            model.compile(loss="categorical_crossentropy", jit_compile=jit)
            xd = mnist_book.x  # rows from the host, as requests come in
            one = model

        def run():
            outs = [one(xd[i:i + 1]) for i in range(n)]
            B.to_numpy(outs[-1])  # waits for JAX's asynchronous calls
            return outs

        benchmark.group = "compiled steps: inference, one row at a time"
        set_info(benchmark, workload="per_sample_compiled", impl=impl,
                 backend=backend or "numpy", jit=jit, rows=n, batch=1)
        outs = benchmark.pedantic(run, rounds=5 if bench_full else 1, warmup_rounds=1)
    probs = np.concatenate([np.asarray(B.to_numpy(o)) for o in outs])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)
