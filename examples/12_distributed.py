"""Data-parallel training: the same script on one process or on N (torchrun, mpirun).

The book's 784-100-10 MLP trained with ``fit(..., distributed=xn.distributed.auto())``.
``batch_size`` is the global batch: each rank computes its share of every batch, the
gradients are summed in one all-reduce per step, and rank 0 alone prints and writes the
checkpoint. So the numbers printed -- losses, accuracies, the weights' checksum -- are the
same (to float rounding) on 1 process and on 2:

    python examples/12_distributed.py [--backend NAME] [--quick] [--out DIR]
    torchrun --standalone --nproc-per-node 2 examples/12_distributed.py --quick
    mpirun -n 2 python examples/12_distributed.py --quick

Data: Fashion-MNIST when installed (not with ``--quick``), else 784-feature synthetic
data labelled by a fixed random network (the output says which).
"""
from __future__ import annotations

import os
import time

import numpy as np

import _common as C
from _common import xn
from xpnet.callbacks import ModelCheckpoint
from xpnet.layers import Dense


def synthetic(n, seed=0):
    """Rows of 784 features, labelled by a fixed random 784-32-10 network (learnable)."""
    rng = np.random.default_rng(seed)
    teacher = np.random.default_rng(1234)
    w1, w2 = teacher.normal(size=(784, 32)), teacher.normal(size=(32, 10))
    x = rng.random((n, 784), dtype=np.float32)
    y = np.argmax(np.maximum(x @ w1 - 12, 0) @ w2, axis=1).astype("int64")
    return x, y


def load(quick):
    if not quick:
        try:
            x_tr, t_tr, x_te, t_te = C.load_fashion(flatten=True)
            return "Fashion-MNIST", (x_tr, t_tr), (x_te, t_te)
        except C.DatasetNotFoundError:
            pass
    x, y = synthetic(3_000 if quick else 30_000)
    n = len(x) * 5 // 6
    return "synthetic (784 features, 10 classes)", (x[:n], y[:n]), (x[n:], y[n:])


def main(argv=None):
    p = C.parser(__doc__)
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 5; 2 with --quick)")
    p.add_argument("--batch-size", type=int, default=200, help="the GLOBAL batch (default 200)")
    args = p.parse_args(argv)
    epochs = args.epochs or (2 if args.quick else 5)
    with C.session(args), xn.distributed.auto() as comm:
        name, (x_tr, y_tr), (x_te, y_te) = load(args.quick)
        say = print if comm.is_main else (lambda *a, **k: None)
        say(f"distributed: {comm.kind}, {comm.size} process(es); each step: "
            f"{args.batch_size} rows in all, {args.batch_size // comm.size} or so per rank")
        say(f"data: {name}, {len(x_tr):,} training and {len(x_te):,} test rows")
        model = xn.Sequential([Dense(100, activation="relu", input_dim=784),
                               Dense(10, activation="softmax")], seed=0)
        model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        args.out.mkdir(parents=True, exist_ok=True)
        path = os.path.join(args.out, "12_distributed.npz")
        start = time.perf_counter()
        history = model.fit(x_tr, y_tr, epochs=epochs, batch_size=args.batch_size, seed=0,
                            validation_data=(x_te, y_te), verbose=2 if comm.is_main else 0,
                            callbacks=[ModelCheckpoint(path)], distributed=comm)
        took = time.perf_counter() - start
        weights = model.get_weights()
        say(f"final: val_loss {history.history['val_loss'][-1]:.6f} val_accuracy "
            f"{history.history['val_accuracy'][-1]:.4f}")
        say(f"weights checksum: sum|W| = {sum(float(np.abs(w).sum()) for w in weights):.6f} "
            "(the same on 1 and N processes)")
        say(f"time: {took:.2f} s for {epochs} epochs on {comm.size} process(es); "
            f"checkpoint written by rank 0: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
