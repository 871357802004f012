"""Seconds per epoch of ``fit`` at batch 100 (784-100-10 ReLU, NumPy, float32), for
comparing two checkouts: run it in each in turn, several rounds (benchmarks/README.md,
"The training step with the Keras-parity features unused").

    OPENBLAS_NUM_THREADS=1 python -m benchmarks.fit_epoch sgd    # prints: best median
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np

import xpnet as xn
from xpnet.layers import Dense


def main(optimizer: str = "sgd", rounds: int = 5) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    x = rng.random((10_000, 784), dtype=np.float32)
    y = rng.integers(0, 10, 10_000)
    model = xn.Sequential([Dense(100, activation="relu", input_dim=784),
                           Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=1, batch_size=100, verbose=0, seed=0)  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=100, verbose=0, seed=0)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


if __name__ == "__main__":
    best, median = main(*sys.argv[1:2])
    print(f"{best:.4f} {median:.4f}")
