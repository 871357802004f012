"""The report's arithmetic and verdicts (``python -m benchmarks`` is tested in
tests/test_bench_command.py: a benchmark run must not start another)."""
from __future__ import annotations

import json
import re

import pytest

from . import report


def _bench(impl, seconds, rows=10_000, **info):
    return {"name": f"test_predict[{impl}]", "group": "predict",
            "stats": {"min": seconds, "median": seconds * 1.1},
            "extra_info": {"workload": "predict", "impl": impl, "backend": "numpy",
                           "rows": rows, "batch": 1000, **info}}


def _write(tmp_path, mode):
    data = {"benchmarks": [_bench("xpnet", 0.010), _bench("numpy_hand", 0.0095),
                           _bench("torch", 0.011)],
            "machine_info": {"xpnet_bench": {"mode": mode}}, "datetime": "2026-11-24"}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(data))
    return path


def test_targets_are_ratios_of_best_rounds(tmp_path):
    recs, machine, _ = report.load(_write(tmp_path, "full"))
    checks = {name: (best, target, med, ok) for name, best, target, med, ok in report.targets(recs)}
    best, target, med, ok = checks["predict batch 1000: xpnet / hand NumPy"]
    assert best == pytest.approx(0.95) and med == pytest.approx(0.95) and target == 0.9 and ok
    best, target, _, ok = checks["predict batch 1000: xpnet / PyTorch"]
    assert best == pytest.approx(1.1) and target == 1.2 and not ok


def test_full_run_prints_pass_and_fail(tmp_path, capsys):
    assert report.main([str(_write(tmp_path, "full")), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "PASS    predict batch 1000: xpnet / hand NumPy" in out
    assert "FAIL    predict batch 1000: xpnet / PyTorch" in out
    assert "1/2 targets met" in out
    text = (tmp_path / "results.md").read_text()
    assert "| PASS |" in text and "| FAIL |" in text and "quick mode" not in text


def test_quick_run_gives_no_verdicts(tmp_path, capsys):
    report.main([str(_write(tmp_path, "quick")), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert not re.search(r"^(PASS|FAIL)", out, re.M) and "not verdicts" in out
    text = (tmp_path / "results.md").read_text()
    assert "quick mode" in text and "| (quick) |" in text and "| PASS |" not in text
