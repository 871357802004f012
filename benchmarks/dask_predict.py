"""Dask predict against in-memory predict: rows per second and peak memory, one run.

    python -m benchmarks.dask_predict [--rows 600000] [--out benchmarks/results/dask.md]

The model is a 784-100-10 ReLU/softmax MLP (numpy backend), ``predict(batch_size=5000)``.
Three ways over the same number of rows:

1. a cluster (``dask.distributed.LocalCluster``, 2 worker processes x 1 thread, 400 MiB
   each) predicting rows generated lazily on the workers, so the data never exists in
   one place: the time is ``predict(x).sum()`` minus the time of ``x.sum()`` alone (the
   generation), the memory is each worker's peak RSS and the client's;
2. in memory: ``model.predict(x)`` on a NumPy array holding the rows (one process);
3. Dask's threaded scheduler on that array (``da.from_array``, 2 threads).

Each is timed ``--repeat`` times; the best is reported (the machine is shared).
"""
from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path



def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run(rows=600_000, chunk=20_000, repeat=3, limit_mib=400, batch_size=5_000):
    import dask
    import dask.array as da
    from dask.distributed import Client, LocalCluster

    import xpnet as xn

    with xn.use_backend("numpy"):
        model = xn.Sequential([xn.layers.Dense(100, activation="relu", input_dim=784),
                               xn.layers.Dense(10, activation="softmax")], seed=0)
        model.build()
    lazy = da.random.default_rng(0).random((rows, 784), chunks=(chunk, 784), dtype="float32")
    out = {"rows": rows, "chunk": chunk, "gib": lazy.nbytes / 2**30, "limit_mib": limit_mib}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      memory_limit=f"{limit_mib}MiB", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        out["worker_start_mib"] = max(client.run(_peak_mib).values())
        gen = _best(lambda: lazy.sum().compute(), repeat)
        both = _best(lambda: model.predict(lazy, batch_size=batch_size).sum().compute(), repeat)
        out["cluster_s"], out["generate_s"] = both - gen, gen
        out["worker_peak_mib"] = max(client.run(_peak_mib).values())
    out["client_peak_mib"] = _peak_mib()
    x = lazy.compute(scheduler="threads")
    out["memory_s"] = _best(lambda: model.predict(x, batch_size=batch_size), repeat)
    with dask.config.set(scheduler="threads", num_workers=2):
        dx = da.from_array(x, chunks=(chunk, 784))
        out["threads_s"] = _best(lambda: model.predict(dx, batch_size=batch_size).compute(), repeat)
    out["memory_peak_mib"] = _peak_mib()
    return out


def table(r) -> str:
    rate = lambda s: f"{r['rows'] / s:,.0f}" if s > 0 else "(within the noise)"  # noqa: E731
    ratio = lambda s: f"{r['memory_s'] / s:.2f}x" if s > 0 else "-"  # noqa: E731
    base = r["memory_s"]
    return "\n".join([
        f"{r['rows']:,} rows x 784 float32 ({r['gib']:.2f} GiB), blocks of {r['chunk']:,} rows, "
        "784-100-10 MLP, predict(batch_size=5000), numpy backend; best of the repeats.",
        "",
        "| how | rows/s | vs in memory | peak memory |",
        "|---|---|---|---|",
        f"| in memory, one process | {rate(base)} | 1.00x | {r['memory_peak_mib']:,.0f} MiB "
        "(the process, data included) |",
        f"| Dask threads (2) on that array | {rate(r['threads_s'])} | "
        f"{ratio(r['threads_s'])} | (same process) |",
        f"| dask.distributed, 2 workers x 1 thread, {r['limit_mib']} MiB each, rows made on "
        f"the workers | {rate(r['cluster_s'])} | {ratio(r['cluster_s'])} | workers "
        f"{r['worker_peak_mib']:,.0f} MiB each (at start {r['worker_start_mib']:,.0f}); "
        f"client {r['client_peak_mib']:,.0f} MiB |",
        "",
        f"The cluster's time leaves out generating the rows ({r['generate_s']:.2f} s, timed "
        "alone and subtracted).",
    ])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=600_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/dask.md"))
    args = p.parse_args(argv)
    text = "# Dask predict\n\n" + table(run(rows=args.rows, repeat=args.repeat)) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
