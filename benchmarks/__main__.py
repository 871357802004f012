"""``python -m benchmarks``: the benchmark suite (pytest-benchmark) and its report.

    python -m benchmarks [--backends LIST] [--quick] [--out DIR]

The same as ``nox -s bench`` without nox, run from a source checkout with ``xpnet[test]``
installed: pytest over ``benchmarks/`` with timing on, then :mod:`benchmarks.report`
(``results.md``, ``throughput.png``, PASS/FAIL). Quick runs go to
``benchmarks/results/quick/`` and never over the committed full run.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RUNNING = "_XPNET_BENCH_RUNNING"  # set for the pytest it starts: no recursion


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run xpnet's benchmark suite (pytest-benchmark), then write its report.")
    parser.add_argument("--backends", default=None,
                        help="comma-separated backends xpnet is timed on (default: "
                             "$XPNET_BENCH_BACKENDS, else $XPNET_BACKEND, else numpy)")
    parser.add_argument("--quick", action="store_true", help="the small smoke sizes, timed once")
    parser.add_argument("--out", default=None,
                        help="folder for bench.json, results.md, throughput.png (default: "
                             "benchmarks/results; benchmarks/results/quick with --quick, "
                             "which never writes over the full run)")
    return parser


def _fail(message) -> int:
    print(f"python -m benchmarks: error: {message}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    """Run the suite and the report; return pytest's exit status (the report's PASS/FAIL
    lines are information)."""
    args = build_parser().parse_args(argv)
    if find_spec("pytest_benchmark") is None:
        return _fail("the benchmarks need pytest-benchmark: pip install -e '.[test]'")
    if os.environ.get(RUNNING):
        return _fail(f"a benchmark run is already in progress in this process tree ({RUNNING} "
                     "is set); not starting another")
    out = Path(args.out).resolve() if args.out else (RESULTS / "quick" if args.quick else RESULTS)
    if args.quick and out == RESULTS.resolve():
        return _fail(f"quick runs never replace the full run committed in {RESULTS}: leave out "
                     "--out (they go to benchmarks/results/quick) or name another folder")
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, **{RUNNING: "1"})
    if args.backends:
        env["XPNET_BENCH_BACKENDS"] = args.backends
    if args.quick:
        env["XPNET_BENCH_QUICK"] = "1"
    json_path = out / "bench.json"
    cmd = [sys.executable, "-m", "pytest", "benchmarks", "--benchmark-enable",
           f"--benchmark-json={json_path}", "-p", "no:randomly", "-p", "no:cacheprovider", "-q"]
    print("$ " + " ".join(cmd), flush=True)
    status = subprocess.call(cmd, cwd=ROOT, env=env)
    if json_path.is_file():
        report = [sys.executable, "-m", "benchmarks.report", str(json_path), "--out", str(out)]
        status = status or subprocess.call(report, cwd=ROOT, env=env)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
