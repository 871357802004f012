"""``xpnet.sklearn.MLPClassifier`` against ``sklearn.neural_network.MLPClassifier`` on
Fashion-MNIST: fit time and test accuracy side by side.

Both get the same parameters (784-100-10 ReLU, the solver, batch 200 = scikit-learn's
'auto', ``random_state``), run exactly ``--epochs`` epochs (``n_iter_no_change`` above
it), on the same float32 data, with the same BLAS threads (threadpoolctl; torch set to
match). xpnet follows scikit-learn step for step, so the accuracies agree to float32
rounding. Rounds are interleaved (A B, then B A ...); the table gives the best and the
median fit time of each and the per-round speedups with their range, in wall time and in
the process's CPU time (with one BLAS thread the two agree on an idle machine; on a shared
one, CPU time leaves out the time the process waited for a core).

    python -m benchmarks.sklearn_mlp                   # writes benchmarks/results/sklearn.md
    python -m benchmarks.sklearn_mlp --quick --out DIR  # a small run (a smoke test)

Where a GPU is usable, ``xpnet-torch`` (torch tensors on torch's default device) and
``xpnet-cupy`` (CuPy arrays) are timed too, through scikit-learn's array API dispatch.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # for array API dispatch, before SciPy loads

import numpy as np  # noqa: E402

import xpnet as xn  # noqa: E402
from xpnet import backend as B  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def load_data(quick: bool):
    """Fashion-MNIST as float32 in [0, 1], or None (with the reason) where it is absent."""
    try:
        (x, y), (xt, yt) = xn.datasets.load_fashion_mnist(download=not quick, progress=False)
    except xn.datasets.DatasetNotFoundError as exc:
        return None, str(exc).splitlines()[0]
    x, xt = x.astype(np.float32), xt.astype(np.float32)
    if quick:
        x, y, xt, yt = x[:3000], y[:3000], xt[:1000], yt[:1000]
    return (x, y, xt, yt), None


def _gpu_impls():
    """The GPU variants that can run here: (name, move-to-device function)."""
    impls = []
    try:
        import torch
        if torch.cuda.is_available():
            impls.append(("xpnet-torch-cuda", lambda a: torch.asarray(a, device="cuda")))
    except ImportError:
        pass
    try:
        B.load("cupy")
        import cupy
        impls.append(("xpnet-cupy", cupy.asarray))
    except xn.BackendUnavailableError:
        pass
    return impls


def _sync():
    try:
        import torch
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    except ImportError:
        pass


def fit_once(impl, move, params, data):
    """Fit one estimator; ``(seconds, test accuracy, final loss, epochs run, CPU seconds)``."""
    import sklearn
    from sklearn.neural_network import MLPClassifier as SkMLP

    from xpnet.sklearn import MLPClassifier

    x, y, xt, yt = data
    est = (SkMLP if impl == "sklearn" else MLPClassifier)(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=Warning)  # max_iter reached, by design
        if move is None:
            start, cpu = time.perf_counter(), time.process_time()
            est.fit(x, y)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            accuracy = float(est.score(xt, yt))
        else:
            with sklearn.config_context(array_api_dispatch=True):
                xd, yd, xtd, ytd = (move(a) for a in (x, y, xt, yt))
                _sync()
                start, cpu = time.perf_counter(), time.process_time()
                est.fit(xd, yd)
                _sync()
                seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
                accuracy = float(est.score(xtd, ytd))
    return seconds, accuracy, float(est.loss_curve_[-1]), int(est.n_iter_), cpu


def run(solvers, epochs, rounds, threads, quick, gpu=True):
    """Every implementation for every solver, interleaved; a list of result dicts."""
    from threadpoolctl import threadpool_limits

    data, why = load_data(quick)
    if data is None:
        return None, why
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        pass
    impls = [("sklearn", None), ("xpnet", None)] + (_gpu_impls() if gpu else [])
    results = []
    with threadpool_limits(limits=threads):
        for solver in solvers:
            params = dict(hidden_layer_sizes=(100,), solver=solver, batch_size=200,
                          max_iter=epochs, n_iter_no_change=epochs + 1, random_state=0,
                          learning_rate_init=0.001 if solver == "adam" else 0.01)
            runs = {name: [] for name, _ in impls}
            for r in range(rounds):
                order = impls if r % 2 == 0 else impls[::-1]
                for name, move in order:
                    runs[name].append(fit_once(name, move, params, data))
                    print(f"{solver} round {r + 1}/{rounds} {name}: {runs[name][-1][0]:.2f} s, "
                          f"accuracy {runs[name][-1][1]:.4f}", flush=True)
            base = [t for t, *_ in runs["sklearn"]]
            base_cpu = [r[4] for r in runs["sklearn"]]
            for name, _ in impls:
                times = [t for t, *_ in runs[name]]
                cpus = [r[4] for r in runs[name]]
                ratios = [b / t for b, t in zip(base, times)]
                cpu_ratios = [b / t for b, t in zip(base_cpu, cpus)]
                results.append(dict(
                    cpu_best_s=min(cpus), cpu_speedup_median=statistics.median(cpu_ratios),
                    cpu_speedup_min=min(cpu_ratios), cpu_speedup_max=max(cpu_ratios), cpus=cpus,
                    impl=name, solver=solver, epochs=epochs, rows=len(data[0]),
                    best_s=min(times), median_s=statistics.median(times),
                    speedup_best=min(base) / min(times), speedup_median=statistics.median(ratios),
                    speedup_min=min(ratios), speedup_max=max(ratios),
                    accuracy=runs[name][0][1], loss=runs[name][0][2],
                    epochs_run=runs[name][0][3], times=times))
    return results, None


def machine(threads):
    from threadpoolctl import threadpool_info

    import sklearn
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = [f"{p['internal_api']} {p['version']} ({p.get('architecture')})"
            for p in threadpool_info() if p["user_api"] == "blas"]
    return dict(cpu=cpu, cores=os.cpu_count(), threads=threads, blas=", ".join(blas),
                python=platform.python_version(), numpy=np.__version__,
                sklearn=sklearn.__version__, xpnet=xn.__version__)


def write(results, info, out: Path, rounds):
    out.mkdir(parents=True, exist_ok=True)
    (out / "sklearn.json").write_text(json.dumps(dict(machine=info, results=results), indent=1))
    lines = [
        "# xpnet.sklearn.MLPClassifier vs sklearn.neural_network.MLPClassifier",
        "",
        f"Fashion-MNIST, {results[0]['rows']:,} training rows, float32, 784-100-10 ReLU, batch 200, "
        f"{results[0]['epochs']} epochs, random_state=0; {rounds} interleaved rounds. "
        f"{info['cpu']} ({info['cores']} cores), BLAS {info['blas']} limited to "
        f"{info['threads']} thread(s) for both; scikit-learn {info['sklearn']}, NumPy {info['numpy']}.",
        "",
        "| solver | estimator | fit, best (s) | fit, median (s) | speedup: best / median "
        "(range) | CPU s, best | CPU-time speedup: median (range) | test accuracy | final loss |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        base = r["impl"] == "sklearn"
        speed = ("1.00x" if base else f"{r['speedup_best']:.2f}x / {r['speedup_median']:.2f}x "
                 f"({r['speedup_min']:.2f}-{r['speedup_max']:.2f}x)")
        cpu = ("1.00x" if base else f"{r['cpu_speedup_median']:.2f}x "
               f"({r['cpu_speedup_min']:.2f}-{r['cpu_speedup_max']:.2f}x)")
        lines.append(f"| {r['solver']} | {r['impl']} | {r['best_s']:.2f} | {r['median_s']:.2f} | "
                     f"{speed} | {r['cpu_best_s']:.2f} | {cpu} | {r['accuracy']:.4f} | "
                     f"{r['loss']:.4f} |")
    (out / "sklearn.md").write_text("\n".join(lines) + "\n")
    return out / "sklearn.md"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solvers", default="adam,sgd")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="3,000 rows, for a smoke test")
    parser.add_argument("--no-gpu", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results, why = run(args.solvers.split(","), args.epochs, args.rounds, args.threads,
                       args.quick, gpu=not args.no_gpu)
    if results is None:
        print(f"skipped: Fashion-MNIST is not available ({why}); "
              "apt-get install dataset-fashion-mnist, or let the loader download it")
        return 0
    path = write(results, machine(args.threads), args.out, args.rounds)
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
