"""The runs ``tests/test_distributed.py`` makes on 2 ranks and on one process.

Each scenario is one function of ``comm`` (None: one process, the reference). The ranks
are started by the test through a fork server (``run``: torch.distributed over gloo on
loopback) or by ``mpirun -n 2 python tests/_dist_worker.py OUT`` (mpi4py). Each rank
pickles what it computed to ``OUT/rank<r>.pkl``; the test compares those with the same
scenarios run in its own process.

Not a test module (the leading underscore keeps pytest from collecting it).
"""
from __future__ import annotations

import os
import pickle
import signal
import sys
import time
from pathlib import Path

import numpy as np

if __name__ == "__main__":  # under mpirun: the repository's xpnet
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import xpnet as xn  # noqa: E402
from xpnet.callbacks import Callback, CSVLogger, EarlyStopping, ModelCheckpoint  # noqa: E402
from xpnet.layers import BatchNormalization, Dense, Dropout  # noqa: E402

OPTIMIZERS = {"sgd": lambda: xn.optimizers.SGD(lr=0.1),
              "momentum": lambda: xn.optimizers.Momentum(lr=0.05),
              "adam": lambda: xn.optimizers.Adam(lr=0.01)}
N_IN, N_OUT = 20, 5


def data(n, seed=0):
    w = np.random.default_rng(100).normal(size=(N_IN, N_OUT))  # one task for every seed
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_IN)).astype("float32")
    y = np.argmax(x @ w + rng.normal(scale=0.5, size=(n, N_OUT)), axis=1).astype("int64")
    return x, y


def make_model(opt="adam", dtype="float32", bn=False, dropout=False, seed=7, synchronized=False):
    layers = [Dense(32, activation="relu", input_dim=N_IN)]
    layers += [BatchNormalization(synchronized=synchronized)] if bn else []
    layers += [Dropout(0.3)] if dropout else []
    layers += [Dense(N_OUT, activation="softmax")]
    model = xn.Sequential(layers, seed=seed, dtype=dtype)
    model.compile(OPTIMIZERS[opt](), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def steps(comm, opt, dtype, rows=2000, batch_size=100):
    """``rows / batch_size`` steps (20: 2 ranks x 50 rows against 1 x 100); the weights."""
    x, y = data(rows)
    model = make_model(opt, dtype)
    model.fit(x, y, batch_size=batch_size, epochs=1, seed=3, verbose=0, distributed=comm)
    return model.get_weights()


def weighted(comm, rows=1011, batch_size=101):
    """Uneven shards with sample weights (some 0): the weights follow their rows."""
    x, y = data(rows, seed=6)
    w = np.random.default_rng(6).random(rows) * 2
    w[::7] = 0.0
    model = make_model("adam", "float64")
    history = model.fit(x, y, batch_size=batch_size, epochs=2, seed=3, verbose=0,
                        sample_weight=w, distributed=comm)
    return {"weights": model.get_weights(), "history": history.history}


def sync_bn(comm, rows=1010, batch_size=101):
    """BatchNormalization(synchronized=True) on shares of 50 and 51 rows: the global
    batch's statistics, so 2 ranks must train as 1 process (weights, running statistics)."""
    x, y = data(rows, seed=8)
    model = make_model("momentum", "float64", bn=True, synchronized=True)
    history = model.fit(x, y, batch_size=batch_size, epochs=2, seed=3, verbose=0,
                        distributed=comm)
    state = {k: v for l in model.layers for k, v in l.state.items()}
    return {"weights": model.get_weights(), "history": history.history,
            "running": [np.asarray(xn.to_numpy(v)) for _, v in sorted(state.items())]}


def confusion(comm, rows=1011, batch_size=101):
    """Precision, recall and AUC (vectors of confusion counts in the all-reduce) on uneven
    shards and a last batch of one row: the history."""
    x, y = data(rows, seed=10)
    model = xn.Sequential([Dense(16, activation="relu", input_dim=N_IN),
                           Dense(N_OUT, activation="sigmoid")], seed=7, dtype="float64")
    model.compile(OPTIMIZERS["adam"](), loss="binary_crossentropy",
                  metrics=["precision", "recall", "auc",
                           xn.metrics.AUC(multi_label=True, curve="PR", name="pr_auc"),
                           xn.metrics.Recall(class_id=2, name="recall_2")])
    history = model.fit(x, np.eye(N_OUT)[y], batch_size=batch_size, epochs=2, seed=3,
                        verbose=0, distributed=comm)
    return history.history


def full_fit(comm, folder):
    """fit with validation, EarlyStopping and ModelCheckpoint: history, weights, files."""
    x, y = data(600, seed=1)
    xv, yv = data(200, seed=2)
    model = make_model("adam")
    model.optimizer.lr = 0.03  # overfits in a few epochs: early stopping stops it (7 epochs)
    folder.mkdir(parents=True, exist_ok=True)
    callbacks = [EarlyStopping(patience=2, restore_best_weights=True),
                 ModelCheckpoint(str(folder / "best-{epoch:02d}.npz"), save_best_only=True),
                 CSVLogger(folder / "log.csv")]
    history = model.fit(x, y, batch_size=64, epochs=40, validation_data=(xv, yv), seed=5,
                        callbacks=callbacks, verbose=0, distributed=comm)
    log = folder / "log.csv"
    return {"history": history.history, "stop": history.stop_reason,
            "weights": model.get_weights(), "files": sorted(p.name for p in folder.iterdir()),
            "csv_rows": len(log.read_text().splitlines()) if log.exists() else 0}


def resume(comm, folder):
    """2 epochs with a checkpoint per epoch, then a fresh model resumed from it to 4."""
    x, y = data(500, seed=3)
    path = folder / "ckpt.npz"
    if comm is None:  # the reference: 4 epochs without a break
        model = make_model("momentum")
        history = model.fit(x, y, batch_size=40, epochs=4, seed=9, verbose=0)
        return {"weights": model.get_weights(), "history": history.history}
    folder.mkdir(parents=True, exist_ok=True)
    make_model("momentum").fit(x, y, batch_size=40, epochs=2, seed=9, verbose=0, distributed=comm,
                               callbacks=[ModelCheckpoint(str(path))])
    comm.barrier()  # rank 0 has written it
    model = make_model("momentum", seed=123)  # other initial weights: all come from the file
    epoch = model.load_checkpoint(str(path))
    history = model.fit(x, y, batch_size=40, epochs=4, seed=9, verbose=0, initial_epoch=epoch,
                        distributed=comm)
    return {"weights": model.get_weights(), "history": history.history}


def bn_dropout(comm):
    """BatchNormalization and Dropout: the ranks must end with the same arrays."""
    x, y = data(400, seed=4)
    model = make_model("adam", bn=True, dropout=True, seed=None)  # a seed per rank: broadcast
    history = model.fit(x, y, batch_size=50, epochs=3, verbose=0, distributed=comm)
    return {"weights": model.get_weights(), "history": history.history}


def mismatch(comm):
    """Rank 1 gives fit one row fewer: every rank must refuse."""
    x, y = data(100)
    if comm.rank == 1:
        x, y = x[:-1], y[:-1]
    try:
        make_model().fit(x, y, batch_size=10, epochs=1, verbose=0, distributed=comm)
    except ValueError as exc:
        return str(exc)
    return None


def scenarios(comm, backend, out):
    """Everything the test compares, on ``backend``, as host values."""
    tag = "ref" if comm is None else f"rank{comm.rank}"
    with xn.use_backend(backend):
        res = {("steps", o, d): steps(comm, o, d) for o in OPTIMIZERS
               for d in ("float32", "float64")}
        res["uneven"] = steps(comm, "adam", "float64", rows=1011, batch_size=101)
        res["weighted"] = weighted(comm)
        res["sync_bn"] = sync_bn(comm)
        res["confusion"] = confusion(comm)
        res["fit"] = full_fit(comm, out / backend / tag / "fit")
        res["resume"] = resume(comm, out / backend / ("ref" if comm is None else "shared"))
        if comm is not None:
            res["bn_dropout"] = bn_dropout(comm)
            res["mismatch"] = mismatch(comm)
    return res


class _Stop(Callback):
    """After 2 epochs: SIGKILL this process, or stall (a rank that hangs)."""

    def __init__(self, how):
        self.how = how

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            if self.how == "killed":
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(120)  # the test kills it once rank 0 has given up


def stopped(comm, how):
    """Rank 1 is killed (or stalls) after 2 epochs; rank 0 must raise DistributedError."""
    x, y = data(400)
    model = make_model()
    callbacks = [_Stop(how)] if comm.rank == 1 else []
    try:
        model.fit(x, y, batch_size=50, epochs=50, verbose=0, callbacks=callbacks,
                  distributed=comm)
    except xn.distributed.DistributedError as exc:
        return {"error": str(exc), "at": time.time()}
    return {"error": None}


def _one_thread():
    """One BLAS and one torch thread per rank (two ranks share the machine's cores)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    try:  # NumPy's BLAS may have started its threads already (the fork server imported it)
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:
        pass
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


def run(rank, world, port, backends, out, mode="scenarios", timeout=60.0):
    """One rank of a torch.distributed (gloo, loopback) run; results to ``out``."""
    _one_thread()
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    out = Path(out)
    with xn.distributed.auto(timeout=timeout) as comm:
        if mode in ("killed", "stalled"):
            res = stopped(comm, mode)
        else:
            res = {b: scenarios(comm, b, out) for b in backends}
        (out / f"rank{rank}.pkl").write_bytes(pickle.dumps(res))


if __name__ == "__main__":  # mpirun -n 2 python tests/_dist_worker.py OUT [BACKEND...]
    _one_thread()
    out = Path(sys.argv[1])
    comm = xn.distributed.auto()
    assert comm.kind == "mpi", comm
    result = {b: scenarios(comm, b, out) for b in sys.argv[2:] or ["numpy"]}
    from mpi4py import MPI  # fit also takes an mpi4py communicator as it is
    result["raw_mpi4py"] = steps(MPI.COMM_WORLD, "adam", "float64")
    (out / f"rank{comm.rank}.pkl").write_bytes(pickle.dumps(result))
