"""Helpers shared by the benchmark modules: sizes, data, models, device sync."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import xpnet as xn
from xpnet import backend as B

from .baselines import HandMLP, TorchMLP, make_weights, sklearn_epoch

__all__ = ["SHARED", "BOOK_ACCURACY", "Sizes", "FULL", "QUICK", "STRICT",
           "backend_names", "make_sync", "need_torch", "Mnist", "load_mnist_book", "Fashion",
           "load_fashion_train", "book_model", "book_layers", "mlp", "set_info", "blas_threads",
           "threadpools", "LR", "epoch_runner"]

SHARED = Path(os.environ.get("XPNET_SHARED", Path(__file__).resolve().parents[2] / "shared"))
BOOK_ACCURACY = 0.9352  # the book's accuracy of sample_weight.pkl on the MNIST test set


@dataclass(frozen=True)
class Sizes:
    """Problem sizes for one mode."""

    full: bool
    per_sample_rows: int      # rows fed one at a time to model(x[i:i+1]) (and batch 1)
    infer_rows: int           # rows for predict at batch >= 1000
    small_batch_rows: int     # rows for predict at batch 10 and 100
    train_rows: int           # rows of one training epoch
    scale_rows: int           # rows of one epoch in the scaling runs
    widths: tuple
    depths: tuple
    scale_batches: tuple
    memory_rows: int          # rows for the predict memory test
    fit_memory_rows: int
    rounds: int               # timed rounds of the cheap benchmarks
    train_rounds: int


FULL = Sizes(full=True, per_sample_rows=10_000, infer_rows=10_000, small_batch_rows=10_000,
             train_rows=60_000, scale_rows=10_000, widths=(100, 256, 512, 1024, 2048, 4096),
             depths=(1, 2, 4, 8), scale_batches=(10, 100, 1000, 10_000),
             memory_rows=1_000_000, fit_memory_rows=60_000, rounds=15, train_rounds=5)
QUICK = Sizes(full=False, per_sample_rows=300, infer_rows=10_000, small_batch_rows=1_000,
              train_rows=2_000, scale_rows=2_000, widths=(100, 1024), depths=(1, 2),
              scale_batches=(100, 1000), memory_rows=100_000, fit_memory_rows=20_000,
              rounds=1, train_rounds=1)
STRICT = Sizes(full=False, per_sample_rows=200, infer_rows=2_000, small_batch_rows=1_000,
               train_rows=2_000, scale_rows=2_000, widths=(100, 1024), depths=(1, 2),
               scale_batches=(100, 1000), memory_rows=50_000, fit_memory_rows=10_000,
               rounds=1, train_rounds=1)


def backend_names():
    """The backends xpnet is benchmarked on: ``XPNET_BENCH_BACKENDS``, else ``XPNET_BACKEND``."""
    names = os.environ.get("XPNET_BENCH_BACKENDS") or os.environ.get(B.ENV_VAR) or "numpy"
    return [n.strip() for n in names.split(",") if n.strip()]


def threadpools() -> list:
    """threadpoolctl's report of the loaded BLAS/OpenMP libraries ([] without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return threadpool_info()


def blas_threads() -> int:
    """The thread count of NumPy's BLAS (threadpoolctl), else the CPU count."""
    blas = [p for p in threadpools() if p.get("user_api") == "blas"
            and "numpy" in p.get("filepath", "")]
    blas = blas or [p for p in threadpools() if p.get("user_api") == "blas"]
    return int(blas[0]["num_threads"]) if blas else (os.cpu_count() or 1)


def make_sync(backend):
    """A function that waits for ``backend``'s device; a no-op on the CPU."""
    if backend.name == "cupy":
        import cupy

        return lambda: cupy.cuda.get_current_stream().synchronize()
    if backend.name == "torch" and getattr(backend.device, "type", "cpu") == "cuda":
        import torch

        return torch.cuda.synchronize
    return lambda: None


def need_torch(device="cpu"):
    """The torch module, or skip the test with a reason (no torch, or no CUDA for it)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a test dependency
        pytest.skip("PyTorch is not installed")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("this PyTorch cannot use CUDA: no torch baseline on the GPU")
    return torch


@dataclass
class Mnist:
    x: np.ndarray
    t: np.ndarray
    weights: dict
    real: bool
    why: str


def load_mnist_book() -> Mnist:
    """The MNIST test images and the book's weights, or random stand-ins of the same shape."""
    data_dir = SHARED / "data" / "mnist"
    try:
        x, t = xn.datasets.load_mnist_test(path=data_dir, download=False, progress=False)
        weights = xn.io.load_book_weights(data_dir / "sample_weight.pkl", trusted=True)
        return Mnist(np.ascontiguousarray(x, dtype=np.float32), t.astype(np.int64), weights,
                     True, "")
    except (OSError, xn.datasets.DatasetNotFoundError) as exc:
        rng = np.random.default_rng(0)
        layer_sizes = [784, 50, 100, 10]
        weights = {}
        for i, (m, n) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:]), start=1):
            weights[f"W{i}"] = (rng.standard_normal((m, n)) * 0.1).astype(np.float32)
            weights[f"b{i}"] = np.zeros(n, np.float32)
        return Mnist(rng.random((10_000, 784), dtype=np.float32),
                     rng.integers(0, 10, 10_000), weights, False,
                     f"MNIST or the book's weights not found ({exc}); random stand-ins")


@dataclass
class Fashion:
    x: np.ndarray
    y: np.ndarray
    real: bool


def load_fashion_train() -> Fashion:
    """60,000 Fashion-MNIST training rows (float32 in [0, 1], int64 labels), or random."""
    try:  # wherever the loader finds it (never downloaded here)
        (x, y), _ = xn.datasets.load_fashion_mnist(download=False, progress=False)
        return Fashion(np.ascontiguousarray(x, dtype=np.float32), y.astype(np.int64), True)
    except (OSError, xn.datasets.DatasetNotFoundError):
        pass
    rng = np.random.default_rng(0)
    return Fashion(rng.random((60_000, 784), dtype=np.float32),
                   rng.integers(0, 10, 60_000), False)


def book_model(weights, dtype="float32"):
    """The book's 784-50-100-10 network (sigmoid, sigmoid, softmax) with ``weights`` set."""
    from xpnet.layers import Dense

    model = xn.Sequential([Dense(50, "sigmoid", input_dim=784), Dense(100, "sigmoid"),
                           Dense(10, "softmax")], dtype=dtype)
    model.set_weights([weights[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3")])
    return model


def book_layers(weights):
    """The book's weights as ``[(W1, b1), (W2, b2), (W3, b3)]``."""
    return [(weights[f"W{i}"], weights[f"b{i}"]) for i in (1, 2, 3)]


def mlp(layer_sizes, seed=0, optimizer=None):
    """A ReLU MLP ``layer_sizes[0]-...-layer_sizes[-1]`` with a softmax output, compiled
    with softmax cross-entropy and ``optimizer`` (default SGD, lr 0.1)."""
    from xpnet.layers import Dense

    layers = [Dense(layer_sizes[1], "relu", input_dim=layer_sizes[0])]
    layers += [Dense(n, "relu") for n in layer_sizes[2:-1]]
    layers.append(Dense(layer_sizes[-1], "softmax"))
    model = xn.Sequential(layers, seed=seed, dtype="float32")
    model.compile(optimizer=optimizer or xn.optimizers.SGD(lr=0.1),
                  loss="sparse_categorical_crossentropy")
    return model


def set_info(benchmark, **info):
    """Put ``info`` into the benchmark's ``extra_info`` (what report.py reads)."""
    for k, v in info.items():
        benchmark.extra_info[k] = v


LR = {"sgd": 0.1, "adam": 0.001}


def _xpnet_optimizer(name):
    return xn.optimizers.SGD(lr=LR[name]) if name == "sgd" else xn.optimizers.Adam(lr=LR[name])


def epoch_runner(impl, optimizer, batch, x, y, xbackend, hand_xp, torch_device, *, layer_sizes,
                 seed=0):
    """``(setup, run)`` for pytest-benchmark's pedantic mode: ``setup()`` makes a fresh ReLU
    MLP of ``layer_sizes`` (softmax output) from the same He-initialised weights for every
    implementation, ``run(model)`` trains it one shuffled epoch of ``(x, y)`` and returns the
    mean training loss. ``impl``: "xpnet", "numpy_hand", "torch" or "sklearn"."""
    weights = make_weights(layer_sizes, seed=seed)
    lr = LR[optimizer]
    if impl == "xpnet":
        x_dev, y_dev = B.asarray(x, backend=xbackend), B.asarray(y, backend=xbackend)

        def setup():
            model = mlp(layer_sizes, seed=seed, optimizer=_xpnet_optimizer(optimizer))
            model.set_weights([a for pair in weights for a in pair])
            return (model,), {}

        def run(model):
            history = model.fit(x_dev, y_dev, epochs=1, batch_size=batch, verbose=0, seed=seed)
            return history.history["loss"][-1]
    elif impl == "numpy_hand":
        x_dev, y_dev = hand_xp.asarray(x), hand_xp.asarray(y)

        def setup():
            return (HandMLP(weights, xp=hand_xp),), {}

        def run(model):
            return model.train_epoch(x_dev, y_dev, batch, lr, seed=seed, optimizer=optimizer)
    elif impl == "torch":
        torch = need_torch(torch_device)
        x_dev = torch.from_numpy(np.ascontiguousarray(x)).to(torch_device)
        y_dev = torch.from_numpy(np.ascontiguousarray(y)).to(torch_device)

        def setup():
            return (TorchMLP(weights, device=torch_device),), {}

        def run(model):
            return model.train_epoch(x_dev, y_dev, batch, lr, seed=seed, optimizer=optimizer)
    else:
        pytest.importorskip("sklearn", reason="scikit-learn is not installed")
        if xbackend.name == "cupy":
            pytest.skip("scikit-learn runs on the CPU only; no GPU baseline")

        def setup():
            return (None,), {}

        def run(_):
            return float(sklearn_epoch(x, y, hidden=tuple(layer_sizes[1:-1]), batch_size=batch,
                                       lr=lr, seed=seed).loss_)
    return setup, run
