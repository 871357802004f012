"""``python -m benchmarks`` (in the source checkout): runs the suite in a subprocess, then the
report; never nests, and quick runs never write over the committed full run.

These live in ``tests/``, not ``benchmarks/``: a benchmark run must not time a nested one."""
from __future__ import annotations

import json

import pytest

from benchmarks import __main__ as bench

RESULTS = bench.RESULTS


def test_quick_run_writes_json_markdown_and_plot(tmp_path, monkeypatch):
    """The real thing, small (~10 s): pytest-benchmark in a subprocess, then the report."""
    pytest.importorskip("matplotlib", reason="the report's plot needs matplotlib")
    monkeypatch.delenv(bench.RUNNING, raising=False)
    assert bench.main(["--quick", "--backends", "numpy", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["machine_info"]["xpnet_bench"]["mode"] == "quick"
    assert {b["extra_info"]["workload"] for b in data["benchmarks"]} >= {
        "predict", "per_sample", "train"}
    assert "quick mode" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "throughput.png").stat().st_size > 1000


def test_does_not_start_inside_a_benchmark_run(monkeypatch, capsys):
    monkeypatch.setenv(bench.RUNNING, "1")
    assert bench.main(["--quick"]) == 2
    assert "already in progress" in capsys.readouterr().err


def test_quick_never_writes_over_the_committed_full_run(monkeypatch, capsys):
    """--quick goes to benchmarks/results/quick (git-ignored); naming the full run's folder
    is refused before anything runs."""
    monkeypatch.delenv(bench.RUNNING, raising=False)
    before = {p.name: p.stat().st_mtime_ns for p in RESULTS.iterdir() if p.is_file()}
    calls = []

    def fake_call(cmd, cwd=None, env=None):
        calls.append(cmd)
        return 1  # as if pytest failed: no report is run either

    monkeypatch.setattr(bench.subprocess, "call", fake_call)
    assert bench.main(["--quick", "--out", str(RESULTS)]) == 2
    assert "never replace the full run" in capsys.readouterr().err and not calls
    assert bench.main(["--quick"]) == 1
    assert f"--benchmark-json={RESULTS / 'quick' / 'bench.json'}" in calls[0]
    after = {p.name: p.stat().st_mtime_ns for p in RESULTS.iterdir() if p.is_file()}
    assert after == before
