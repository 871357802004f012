"""Dask predict against in-memory predict: rows per second and peak memory, one run.

    python -m benchmarks.dask_predict [--rows 600000] [--out benchmarks/results/dask.md]

The model is a 784-100-10 ReLU/softmax MLP (numpy backend), ``predict(batch_size=5000)``,
over rows drawn by ``dask.array.random`` (the same rows each way). Every way is timed end to
end, drawing the rows included, and the drawing alone is timed too:

1. in memory: draw the rows into one NumPy array, then ``model.predict(x)``;
2. Dask's threaded scheduler (2 threads): ``model.predict(x_lazy).sum().compute()``;
3. a cluster (``dask.distributed.LocalCluster``, 2 worker processes x 1 thread, 400 MiB
   each): the same, so the rows are drawn on the workers and never exist in one place.

Memory: each worker's peak RSS, the client's peak RSS before the in-memory run, and the
process's peak after it. Each time is the best of ``--repeat`` (the machine is shared).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path



def _peak_mib() -> float:
    """This process's peak resident memory (VmHWM, of its own address space: unlike
    ``ru_maxrss``, which Linux carries over from the parent across fork and exec)."""
    with open("/proc/self/status") as f:
        line = next(l for l in f if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024  # kB


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
    total = lambda: model.predict(lazy, batch_size=batch_size).sum().compute()  # noqa: E731
    r = {"rows": rows, "chunk": chunk, "gib": lazy.nbytes / 2**30, "limit_mib": limit_mib}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      memory_limit=f"{limit_mib}MiB", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        r["worker_start_mib"] = max(client.run(_peak_mib).values())
        r["cluster_draw_s"] = _best(lambda: lazy.sum().compute(), repeat)
        r["cluster_s"] = _best(total, repeat)
        r["worker_peak_mib"] = max(client.run(_peak_mib).values())
    r["client_peak_mib"] = _peak_mib()
    with dask.config.set(scheduler="threads", num_workers=2):
        r["threads_draw_s"] = _best(lambda: lazy.sum().compute(), repeat)
        r["threads_s"] = _best(total, repeat)
        t = time.perf_counter()
        x = lazy.compute()
        r["memory_draw_s"] = time.perf_counter() - t
    r["memory_predict_s"] = _best(lambda: model.predict(x, batch_size=batch_size), repeat)
    r["memory_s"] = r["memory_draw_s"] + r["memory_predict_s"]
    r["memory_peak_mib"] = _peak_mib()
    return r


def table(r) -> str:
    rows = r["rows"]
    rate = lambda s: f"{rows / s:,.0f}" if s > 0 else "-"  # noqa: E731
    predict = {"memory": r["memory_predict_s"], "threads": r["threads_s"] - r["threads_draw_s"],
               "cluster": r["cluster_s"] - r["cluster_draw_s"]}
    ratio = lambda k: f"{r['memory_predict_s'] / predict[k]:.2f}x" if predict[k] > 0 else "-"  # noqa: E731
    return "\n".join([
        f"{rows:,} rows x 784 float32 ({r['gib']:.2f} GiB), blocks of {r['chunk']:,} rows, "
        "784-100-10 MLP, predict(batch_size=5000), numpy backend; best of the repeats. "
        "End to end includes drawing the random rows; predict is end to end minus the "
        "drawing timed alone.",
        "",
        "| how | rows/s end to end | drawing alone | rows/s of predict | predict vs in memory "
        "| peak memory |",
        "|---|---|---|---|---|---|",
        f"| in memory, one process | {rate(r['memory_s'])} | {r['memory_draw_s']:.2f} s (into one "
        f"array) | {rate(predict['memory'])} | 1.00x | {r['memory_peak_mib']:,.0f} MiB "
        "(the process, data included) |",
        f"| Dask threads (2) | {rate(r['threads_s'])} | {r['threads_draw_s']:.2f} s | "
        f"{rate(predict['threads'])} | {ratio('threads')} | (same process) |",
        f"| dask.distributed, 2 workers x 1 thread, {r['limit_mib']} MiB each | "
        f"{rate(r['cluster_s'])} | {r['cluster_draw_s']:.2f} s | {rate(predict['cluster'])} | "
        f"{ratio('cluster')} | workers {r['worker_peak_mib']:,.0f} MiB each (at start "
        f"{r['worker_start_mib']:,.0f}); client {r['client_peak_mib']:,.0f} MiB |",
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
