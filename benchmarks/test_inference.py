"""Inference: the book's MNIST network, one row at a time and in batches.

The network is 784-50-100-10 (sigmoid, sigmoid, softmax) with the book's pretrained
weights (``sample_weight.pkl``) on the 10,000 MNIST test images: the book reports an
accuracy of 0.9352, and every implementation here must reproduce it.

Compared in the same process: xpnet (``model(x[i:i+1])`` and ``model.predict``), the
hand-written NumPy forward pass and ``torch.nn.Sequential`` under ``inference_mode``.
"""
from __future__ import annotations

import numpy as np
import pytest

from xpnet import backend as B

from .baselines import HandMLP, TorchMLP
from .common import BOOK_ACCURACY, book_layers, book_model, need_torch, set_info

IMPLS = ["xpnet", "numpy_hand", "torch"]
BATCHES = [1, 10, 100, 1000, 10_000]


def _accuracy(probs, t):
    probs = np.asarray(B.to_numpy(probs))
    return float(np.mean(np.argmax(probs, axis=1) == t[:probs.shape[0]]))


def _check_probs(probs, n):
    probs = np.asarray(B.to_numpy(probs), dtype=np.float64)
    assert probs.shape == (n, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)


def _reference(mnist, n):
    """Probabilities of the first ``n`` rows from the float64 NumPy forward pass (the
    book's ``predict``), to check the other implementations against."""
    x = mnist.x[:n].astype(np.float64)
    w = {k: v.astype(np.float64) for k, v in mnist.weights.items()}
    a = 1 / (1 + np.exp(-(x @ w["W1"] + w["b1"])))
    a = 1 / (1 + np.exp(-(a @ w["W2"] + w["b2"])))
    z = a @ w["W3"] + w["b3"]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _make(impl, mnist, xbackend, hand_xp, torch_device):
    """``(run_one_row(i), run_batched(batch_size), x)`` for one implementation."""
    if impl == "xpnet":
        model = book_model(mnist.weights)
        x_dev = B.asarray(mnist.x, backend=xbackend)
        return (lambda i: model(x_dev[i:i + 1, ...]),
                lambda b, n: model.predict(mnist.x[:n], batch_size=b))
    if impl == "numpy_hand":
        hand = HandMLP(book_layers(mnist.weights), activation="sigmoid", xp=hand_xp)
        x_dev = hand_xp.asarray(mnist.x)
        return (lambda i: hand.forward(x_dev[i:i + 1]),
                lambda b, n: hand.predict(x_dev[:n], b))
    need_torch(torch_device)
    net = TorchMLP(book_layers(mnist.weights), activation="sigmoid", device=torch_device)
    x_dev = net.tensor(mnist.x)
    return (lambda i: net(x_dev[i:i + 1]),
            lambda b, n: net.predict(x_dev[:n], b))


@pytest.mark.parametrize("impl", IMPLS)
def test_per_sample(benchmark, impl, mnist_book, xbackend, sizes, sync, hand_xp, torch_device):
    """``model(x[i:i+1])`` for each of ``per_sample_rows`` rows, one call per row."""
    one, _ = _make(impl, mnist_book, xbackend, hand_xp, torch_device)
    n = sizes.per_sample_rows

    def run():
        outs = [one(i) for i in range(n)]
        sync()
        return outs

    benchmark.group = "inference: one row at a time"
    set_info(benchmark, workload="per_sample", impl=impl, backend=xbackend.name, rows=n,
             batch=1, real_data=mnist_book.real)
    outs = benchmark.pedantic(run, rounds=sizes.rounds, warmup_rounds=1 if sizes.full else 0)
    probs = np.concatenate([np.asarray(B.to_numpy(o)) for o in outs])
    _check_probs(probs, n)
    np.testing.assert_allclose(probs, _reference(mnist_book, n), rtol=1e-3, atol=1e-5)
    if mnist_book.real and n == mnist_book.x.shape[0]:
        assert round(_accuracy(probs, mnist_book.t), 4) == BOOK_ACCURACY


@pytest.mark.parametrize("impl", IMPLS)  # impl varies fastest: the compared runs are adjacent
@pytest.mark.parametrize("batch", BATCHES)
def test_predict(benchmark, impl, batch, mnist_book, xbackend, sizes, sync, hand_xp,
                 torch_device):
    """``predict(x, batch_size=batch)`` over the test set (batch 1: ``per_sample_rows``)."""
    _, batched = _make(impl, mnist_book, xbackend, hand_xp, torch_device)
    rows = {1: sizes.per_sample_rows, 10: sizes.small_batch_rows, 100: sizes.small_batch_rows}
    n = min(rows.get(batch, sizes.infer_rows), mnist_book.x.shape[0])

    def run():
        out = batched(batch, n)
        sync()
        return out

    benchmark.group = "inference: predict"
    set_info(benchmark, workload="predict", impl=impl, backend=xbackend.name, rows=n,
             batch=batch, real_data=mnist_book.real)
    probs = benchmark.pedantic(run, rounds=sizes.rounds, warmup_rounds=1 if sizes.full else 0)
    _check_probs(probs, n)
    acc = _accuracy(probs, mnist_book.t)
    benchmark.extra_info["accuracy"] = acc
    if mnist_book.real and n == mnist_book.x.shape[0]:
        assert round(acc, 4) == BOOK_ACCURACY  # the book's number
    else:
        np.testing.assert_allclose(np.asarray(B.to_numpy(probs)), _reference(mnist_book, n),
                                   rtol=1e-3, atol=1e-5)
