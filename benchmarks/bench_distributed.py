"""Data-parallel step time and all-reduce share: 2 ranks against 1 process.

    python benchmarks/bench_distributed.py [--repeat 3] [--out benchmarks/results/distributed.md]

For the 784-100-10 MLP (79,510 parameters: a 318 kB float32 gradient) and a wide
784-4096-10 one (3,256,330: 13 MB), at a global batch of 256 rows, on NumPy: one process
with 1 and with 2 BLAS threads, then 2 ranks of 1 thread each over torch.distributed/gloo
on loopback and, where ``mpirun`` and mpi4py exist, over MPI. Each configuration runs one
warm-up epoch then ``--repeat`` timed epochs (the best is kept; the spread is printed);
the all-reduce share is the time inside the one all-reduce per step (waiting for the other
rank included) over the step time. Writes a markdown table (default
``benchmarks/results/distributed.md``). Not collected by pytest (a script, not ``test_*``).
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

MODELS = {"784-100-10": 100, "784-4096-10": 4096}
BATCH = 256


def _threads(n):
    os.environ["OMP_NUM_THREADS"] = str(n)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(n)
    except ImportError:
        pass
    import torch
    torch.set_num_threads(n)


def measure(hidden, steps, repeat, comm=None):
    """(best step time, its all-reduce time per step, all step times, median time of an
    all-reduce of the gradient's size alone) in seconds."""
    import numpy as np
    import xpnet as xn
    from xpnet.layers import Dense

    rng = np.random.default_rng(0)
    x = rng.random((BATCH * steps, 784), dtype=np.float32)
    y = rng.integers(0, 10, BATCH * steps)
    model = xn.Sequential([Dense(hidden, activation="relu", input_dim=784),
                           Dense(10, activation="softmax")], seed=0)
    model.compile(xn.optimizers.SGD(lr=0.01), loss="sparse_categorical_crossentropy")
    spent = [0.0]
    if comm is not None:
        inner = comm.allreduce_sum

        def timed(buf, what=""):
            t = time.perf_counter()
            out = inner(buf, what)
            spent[0] += time.perf_counter() - t
            return out
        comm.allreduce_sum = timed
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, distributed=comm)  # warm-up
    rounds = []
    for _ in range(repeat):
        if comm is not None:
            comm.barrier()
        spent[0] = 0.0
        t = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, distributed=comm)
        rounds.append(((time.perf_counter() - t) / steps, spent[0] / steps))
    best = min(rounds)
    bare = math.nan
    if comm is not None:  # the gradient's all-reduce alone, no compute between: the wire cost
        buf = np.zeros(model.count_params(), dtype=np.float32)
        comm.barrier()
        times = []
        for _ in range(20):
            t = time.perf_counter()
            inner(buf)
            times.append(time.perf_counter() - t)
        bare = sorted(times)[len(times) // 2]
    return best[0], best[1], [r[0] for r in rounds], bare


def _gloo_rank(rank, port, hidden, steps, repeat, queue):
    _threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), LOCAL_RANK=str(rank))
    import xpnet as xn
    with xn.distributed.auto(timeout=120) as comm:
        result = measure(hidden, steps, repeat, comm)
    if rank == 0:
        queue.put(result)


def gloo(hidden, steps, repeat):
    ctx = mp.get_context("spawn")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    queue = ctx.Queue()
    procs = [ctx.Process(target=_gloo_rank, args=(r, port, hidden, steps, repeat, queue))
             for r in range(2)]
    for p in procs:
        p.start()
    result = queue.get(timeout=600)
    for p in procs:
        p.join(60)
    return result


def mpi(hidden, steps, repeat):
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        return None
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    root = ["--allow-run-as-root"] if os.geteuid() == 0 else []
    cmd = [mpirun, *root, "--oversubscribe", "-n", "2", sys.executable, __file__,
           "--mpi-rank", str(hidden), str(steps), str(repeat)]
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK")}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return tuple(json.loads(done.stdout.strip().splitlines()[-1]))


def one(hidden, steps, repeat, threads):
    ctx = mp.get_context("spawn")  # a fresh process: its own thread settings
    with ctx.Pool(1) as pool:
        return pool.apply(_one, (hidden, steps, repeat, threads))


def _one(hidden, steps, repeat, threads):
    _threads(threads)
    return measure(hidden, steps, repeat)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, default=HERE / "results" / "distributed.md")
    p.add_argument("--mpi-rank", nargs=3, type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.mpi_rank:  # one rank under mpirun
        _threads(1)
        import xpnet as xn
        comm = xn.distributed.auto()
        result = measure(*args.mpi_rank, comm)
        if comm.rank == 0:
            print(json.dumps(result))
        return 0
    rows = []
    for name, hidden in MODELS.items():
        steps = 40 if hidden < 1000 else 12
        params = 784 * hidden + hidden + hidden * 10 + 10
        runs = {"1 process, 1 thread": one(hidden, steps, args.repeat, 1),
                "1 process, 2 threads": one(hidden, steps, args.repeat, 2),
                "2 ranks x 1 thread, gloo": gloo(hidden, steps, args.repeat)}
        got = mpi(hidden, steps, args.repeat)
        if got is not None:
            runs["2 ranks x 1 thread, MPI"] = got
        base = runs["1 process, 1 thread"][0]
        for what, (step, reduce, all_rounds, bare) in runs.items():
            spread = f"{min(all_rounds) * 1e3:.2f}-{max(all_rounds) * 1e3:.2f}"
            share = f"{reduce / step:.0%} ({reduce * 1e3:.2f} ms)" if "ranks" in what else "-"
            alone = f"{bare * 1e3:.2f}" if "ranks" in what else "-"
            rows.append(f"| {name} ({params * 4 / 1e6:.2f} MB) | {what} | {step * 1e3:.2f} "
                        f"| {spread} | {base / step:.2f}x | {share} | {alone} |")
            print(rows[-1], flush=True)
    header = ["| model (float32 gradient) | run | step, ms (best) | spread, ms | speed vs "
              "1 process 1 thread | all-reduce share of the step | all-reduce alone, ms (median of 20) |",
              "|---|---|---|---|---|---|---|"]
    text = (f"Data-parallel SGD step, global batch {BATCH}, NumPy, {args.repeat} timed epochs "
            f"each (best; spread over the epochs), {time.strftime('%Y-%m-%d')}, "
            f"{os.cpu_count()} CPU cores (`python benchmarks/bench_distributed.py`).\n\n"
            + "\n".join(header + rows) + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
