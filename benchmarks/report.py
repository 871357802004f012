"""Turn a pytest-benchmark JSON file into ``results.md``, ``throughput.png`` and PASS/FAIL lines.

    python -m pytest benchmarks --benchmark-enable --benchmark-json=benchmarks/results/bench.json
    python -m benchmarks.report benchmarks/results/bench.json

Throughputs use each benchmark's best round (``stats.min``): on a shared machine the
fastest round is the one least disturbed by other processes. The median-based ratio is
printed beside it. Every ratio compares measurements of the same run. The targets are
checked on the NumPy backend; the exit status is 0 even when a target is missed (the
report says which, and by how much).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["load", "targets", "render", "main"]

BATCHES = (1, 10, 100, 1000, 10_000)
TARGET_BACKEND = "numpy"


class Rec:
    """One benchmark: its extra_info and timing."""

    def __init__(self, bench):
        self.info = bench.get("extra_info", {})
        self.stats = bench["stats"]
        self.name = bench["name"]
        self.group = bench.get("group")

    def __getattr__(self, key):
        try:
            return self.__dict__["info"][key]
        except KeyError:
            raise AttributeError(key) from None

    def get(self, key, default=None):
        return self.info.get(key, default)

    def rate(self, stat="min"):
        """Rows per second (``rows`` per call / seconds per call)."""
        return self.info["rows"] / self.stats[stat]

    def gflops(self, stat="min"):
        return self.info["flops"] / self.stats[stat] / 1e9


def load(path):
    """``(records, machine_info, datetime)`` from a pytest-benchmark JSON file."""
    data = json.loads(Path(path).read_text())
    recs = [Rec(b) for b in data["benchmarks"] if "workload" in b.get("extra_info", {})]
    return recs, data.get("machine_info", {}), data.get("datetime", "")


def _find(recs, **want):
    for r in recs:
        if all(r.get(k) == v for k, v in want.items()):
            return r
    return None


def _fmt_rate(x):
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def _num(x, fmt=".2f", suffix=""):
    return "-" if x is None else f"{x:{fmt}}{suffix}"


def _row(*cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(*header):
    return [_row(*header), _row(*["---"] * len(header))]


def _ratio(a, b, stat="min"):
    if a is None or b is None:
        return None
    return a.rate(stat) / b.rate(stat)


# -- targets ------------------------------------------------------------------------------

def targets(recs, backend=TARGET_BACKEND):
    """``[(name, measured, target, stat_note, passed)]`` for every target that was measured."""
    out = []
    mine = [r for r in recs if r.get("backend") == backend]

    def add(name, num, den, target, kind="rate"):
        if num is None or den is None:
            return
        if kind == "rate":
            best, med = num.rate("min") / den.rate("min"), num.rate("median") / den.rate("median")
        else:
            best = num.gflops("min") / den.gflops("min")
            med = num.gflops("median") / den.gflops("median")
        out.append((name, best, target, med, best >= target))

    for b in (100, 1000, 10_000):
        x = _find(mine, workload="predict", impl="xpnet", batch=b)
        add(f"predict batch {b}: xpnet / hand NumPy", x,
            _find(mine, workload="predict", impl="numpy_hand", batch=b), 0.9)
        add(f"predict batch {b}: xpnet / PyTorch", x,
            _find(mine, workload="predict", impl="torch", batch=b), 1.2)
    x = _find(mine, workload="per_sample", impl="xpnet")
    add("per-sample model(x_i): xpnet / hand NumPy", x,
        _find(mine, workload="per_sample", impl="numpy_hand"), 0.5)
    add("per-sample model(x_i): xpnet / PyTorch", x,
        _find(mine, workload="per_sample", impl="torch"), 1.0)
    x = _find(mine, workload="train", impl="xpnet", batch=100, optimizer="sgd")
    add("train epoch batch 100 (SGD): xpnet / hand NumPy", x,
        _find(mine, workload="train", impl="numpy_hand", batch=100, optimizer="sgd"), 0.85)
    add("train epoch batch 100 (SGD): xpnet / PyTorch", x,
        _find(mine, workload="train", impl="torch", batch=100, optimizer="sgd"), 1.3)
    for r in mine:
        if r.get("workload") == "scale_width" and r.get("impl") == "xpnet" and r.width >= 1024:
            gemm = _find(mine, workload="scale_width", impl="numpy_gemm", width=r.width)
            add(f"train batch 1000, width {r.width}: xpnet GFLOP/s / GEMM GFLOP/s", r, gemm,
                0.5, kind="flops")
    return out


# -- markdown -----------------------------------------------------------------------------

def _machine(machine, when):
    xb = machine.get("xpnet_bench", {})
    lines = ["## Machine", ""]
    cpu = xb.get("cpu_model") or machine.get("cpu", {}).get("brand_raw", "?")
    lines.append(f"- CPU: {cpu}, {xb.get('cpu_count', '?')} logical cores; "
                 f"{machine.get('python_implementation', 'Python')} {machine.get('python_version', '')}")
    for pool in xb.get("threadpools", []):
        path = Path(pool.get("filepath", ""))
        kernels = f" ({pool['architecture']} kernels)" if pool.get("architecture") else ""
        lines.append(f"- {pool.get('user_api')}: {pool.get('internal_api')} {pool.get('version') or ''}"
                     f"{kernels}, {pool.get('num_threads')} threads, `{path.parent.name}/{path.name}`"
                     + (" (NumPy's: xpnet and the hand-written baseline)" if "numpy" in str(path) else ""))
    lines.append(f"- NumPy {xb.get('numpy_version')}, PyTorch {xb.get('torch_version')} "
                 f"({xb.get('torch_threads')} threads, {xb.get('torch_blas', '?')} BLAS), "
                 f"scikit-learn {xb.get('sklearn_version')}")
    env = xb.get("env", {})
    lines.append("- environment: " + (", ".join(f"`{k}={v}`" for k, v in sorted(env.items()))
                                      or "no OPENBLAS_/OMP_/MKL_ variables set"))
    la, lb = xb.get("loadavg_at_start"), xb.get("loadavg_at_end")
    if la:
        lines.append(f"- load average (1, 5, 15 min) at start {tuple(round(v, 2) for v in la)}"
                     + (f", at end {tuple(round(v, 2) for v in lb)}" if lb else "")
                     + " (other processes share these cores: compare ratios, not absolute numbers)")
    lines.append(f"- run: {when}; xpnet backends: {', '.join(xb.get('xpnet_backends', []))}")
    return lines


def _data_note(recs, workloads, real):
    flags = {r.get("real_data") for r in recs if r.get("workload") in workloads}
    if flags == {True}:
        return f"Data: {real}."
    return "Data: RANDOM stand-ins (the real files were not found)."


def _inference(recs):
    note = _data_note(recs, ("predict", "per_sample"),
                      "the real MNIST test set and the book's weights")
    lines = ["## Inference: the book's MNIST network (784-50-100-10, sigmoid), 10,000 test images",
             "", "Rows per second (best round). Speedup: over xpnet's own per-sample "
             f"`model(x[i:i+1])`. {note}", ""]
    lines += _table("backend", "mode", "xpnet rows/s", "hand NumPy rows/s", "PyTorch rows/s",
                    "xpnet / hand", "xpnet / torch", "xpnet speedup vs per-sample", "accuracy")
    for backend in sorted({r.backend for r in recs if r.get("workload") in ("predict", "per_sample")}):
        mine = [r for r in recs if r.get("backend") == backend]
        ps = _find(mine, workload="per_sample", impl="xpnet")
        rows = [("model(x[i:i+1])", {"workload": "per_sample"})]
        rows += [(f"predict(batch_size={b})", {"workload": "predict", "batch": b}) for b in BATCHES]
        for label, key in rows:
            x, h, t = (_find(mine, impl=i, **key) for i in ("xpnet", "numpy_hand", "torch"))
            if x is None and h is None and t is None:
                continue
            lines.append(_row(backend, label, *(_fmt_rate(r and r.rate()) for r in (x, h, t)),
                              _num(_ratio(x, h)), _num(_ratio(x, t)),
                              _num(_ratio(x, ps), ".1f", "x"),
                              _num(x.get("accuracy") if x is not None else None, ".4f")))
    return lines


def _training(recs):
    lines = ["## Training: one epoch of 784-100-10 ReLU on Fashion-MNIST (60,000 rows)", "",
             _data_note(recs, ("train",), "the real Fashion-MNIST training set"), ""]
    lines += _table("backend", "implementation", "optimizer", "batch", "samples/s (best)",
                    "samples/s (median)", "mean epoch loss", "vs hand NumPy", "vs PyTorch")
    train = [r for r in recs if r.get("workload") == "train"]
    for r in sorted(train, key=lambda r: (r.backend, r.optimizer, r.batch, r.impl)):
        mine = [q for q in train if q.backend == r.backend and q.batch == r.batch]
        h = _find(mine, impl="numpy_hand", optimizer=r.optimizer)
        t = _find(mine, impl="torch", optimizer=r.optimizer)
        lines.append(_row(r.backend, r.impl, r.optimizer, r.batch, _fmt_rate(r.rate()),
                          _fmt_rate(r.rate("median")), _num(r.get("loss"), ".3f"),
                          _num(_ratio(r, h)), _num(_ratio(r, t))))
    return lines


SWEEPS = (("scale_batch", "Scaling: batch size (784-100-10, SGD)", "batch"),
          ("scale_width", "Scaling: hidden width (784-w-10, batch 1000, SGD)", "width"),
          ("scale_depth", "Scaling: depth (784-256xd-10, batch 100, SGD)", "depth"))


def _scaling(recs):
    lines = []
    for workload, title, key in SWEEPS:
        rs = [r for r in recs if r.get("workload") == workload]
        if not rs:
            continue
        width = workload == "scale_width"
        header = ["backend", key, "xpnet samples/s", "hand samples/s", "xpnet / hand",
                  "xpnet GFLOP/s", "hand GFLOP/s"]
        header += ["GEMM GFLOP/s (same products)", "xpnet / GEMM"] if width else []
        lines += [f"## {title}", ""] + _table(*header)
        for backend in sorted({r.backend for r in rs}):
            for value in sorted({r.get(key) for r in rs if r.backend == backend}):
                x, h, g = (_find(rs, backend=backend, impl=i, **{key: value})
                           for i in ("xpnet", "numpy_hand", "numpy_gemm"))
                cells = [backend, value, _fmt_rate(x and x.rate()), _fmt_rate(h and h.rate()),
                         _num(_ratio(x, h)), _num(x and x.gflops(), ".1f"),
                         _num(h and h.gflops(), ".1f")]
                if width:
                    share = x.gflops() / g.gflops() if x is not None and g is not None else None
                    cells += [_num(g and g.gflops(), ".1f"), _num(share, ".0%")]
                lines.append(_row(*cells))
        lines.append("")
    for r in (r for r in recs if r.get("workload") == "gemm_peak"):
        n = r.gemms[0][0]
        lines += [f"GEMM peak ({r.backend}): float32 {n}x{n}x{n} product: "
                  f"{r.gflops():.1f} GFLOP/s (best round).", ""]
    return lines


def _memory(recs):
    rs = [r for r in recs if r.get("workload", "").startswith("memory_")]
    if not rs:
        return []
    mib = 2 ** 20
    lines = ["## Memory (tracemalloc, traced peak during the call)", ""]
    lines += _table("backend", "call", "rows", "data MiB", "output MiB", "traced peak MiB",
                    "limit MiB", "seconds")
    for r in rs:
        call = ("predict (20-64-10, batch 1000)" if r.workload == "memory_predict"
                else "fit, 1 epoch (784-100-10, batch 100)")
        out = r.get("output_bytes")
        lines.append(_row(r.backend, call, f"{r.rows:,}", f"{r.input_bytes / mib:.1f}",
                          _num(out and out / mib, ".1f"), f"{r.peak_bytes / mib:.1f}",
                          f"{r.allowance_bytes / mib:.1f}", f"{r.stats['min']:.2f}"))
    return lines


QUICK_NOTE = ("quick mode (XPNET_BENCH_QUICK=1): small sizes, one round, no warm-up -- the "
              "ratios are a smoke test, not verdicts; run the full suite for PASS/FAIL")


def is_quick(machine) -> bool:
    """True when the JSON comes from a quick-size run (recorded by benchmarks/conftest.py)."""
    return machine.get("xpnet_bench", {}).get("mode") == "quick"


def _verdict(ok, quick):
    return "(quick)" if quick else ("PASS" if ok else "FAIL")


def render(recs, machine, when, checks):
    quick = is_quick(machine)
    lines = ["# xpnet benchmark results", "",
             "Generated by `python -m benchmarks.report` from pytest-benchmark's JSON. "
             "Throughputs are from each benchmark's best round; every ratio compares "
             "measurements of the same run, same process, same data, float32, same threads.", ""]
    if quick:
        lines += [f"**{QUICK_NOTE}.**", ""]
    lines += ["## Targets (NumPy backend)", ""]
    lines += _table("target", "measured (best)", "measured (median)", "needed", "result")
    for name, best, target, med, ok in checks:
        lines.append(_row(name, f"{best:.2f}", f"{med:.2f}", f">= {target}", _verdict(ok, quick)))
    lines.append("")
    for part in (_machine(machine, when), _inference(recs), _training(recs), _scaling(recs),
                 _memory(recs)):
        if part:
            lines += part + [""]
    lines.append("![throughput](throughput.png)")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="pytest-benchmark JSON (--benchmark-json=...)")
    parser.add_argument("--out", help="folder for results.md and throughput.png "
                                      "(default: the JSON file's folder)")
    args = parser.parse_args(argv)
    recs, machine, when = load(args.json)
    out = Path(args.out or Path(args.json).parent)
    out.mkdir(parents=True, exist_ok=True)
    checks = targets(recs)
    (out / "results.md").write_text(render(recs, machine, when, checks))
    if recs:
        from .plot import plot

        plot(recs, out / "throughput.png")
    width = max((len(c[0]) for c in checks), default=10)
    quick = is_quick(machine)
    for name, best, target, med, ok in checks:
        print(f"{_verdict(ok, quick):<7} {name:<{width}}  {best:6.2f} (median {med:.2f})  needed >= {target}")
    if quick:
        print(QUICK_NOTE)
    else:
        print(f"{sum(c[4] for c in checks)}/{len(checks)} targets met")
    print(f"wrote {out / 'results.md'} and {out / 'throughput.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
