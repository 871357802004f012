"""``python -m xpnet demo`` and ``python -m xpnet info`` (``xpnet.cli``).

The demo runs in this process with ``--quick`` and its printed numbers are checked; one
subprocess checks what a user sees for a backend that cannot run here: one message and
a non-zero status, no traceback.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import xpnet as xn
from xpnet import cli
from xpnet.__main__ import main as module_main

REPO = Path(__file__).resolve().parents[1]


def demo(capsys, *args):
    status = cli.main(["demo", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def value(out, label):
    match = re.search(rf"{re.escape(label)}\s*([\d.,]+)", out)
    assert match, f"{label!r} not in output:\n{out}"
    return float(match.group(1).replace(",", ""))


def check_timing(out):
    single, batched = value(out, "one row per call:"), value(out, "batches of 1,000:")
    speedup = value(out, "speedup from batching:")
    assert single > 0 and batched > 0
    assert speedup == pytest.approx(batched / single, rel=0.06, abs=0.051)  # printed to 0.1
    agree, total = map(int, re.search(r"same class for (\d+)/(\d+) rows", out).groups())
    assert agree >= total - 2


def cupy_reason():
    try:
        xn.backend.load("cupy")
    except xn.BackendUnavailableError as exc:
        return str(exc)
    return None


def fashion_installed():
    try:
        xn.datasets.load_fashion_mnist(download=False, progress=False)
    except xn.datasets.DatasetNotFoundError:
        return False
    return True


def test_entry_point_is_the_cli_main():
    assert module_main is cli.main


def test_demo_quick_on_fashion_mnist_or_spirals(capsys, monkeypatch):
    monkeypatch.delenv("XPNET_BACKEND", raising=False)
    status, out, err = demo(capsys, "--quick")
    assert status == 0
    assert f"backend: {xn.get_backend()} on " in out
    assert "the default: XPNET_BACKEND is not set" in out
    assert "Epoch 1/" in err  # the progress bar (tqdm writes to stderr)
    accuracy = value(out, "test accuracy:")
    if fashion_installed():  # 1 epoch on 5,000 images: 0.78 measured
        assert "data: Fashion-MNIST: 5,000 training / 1,000 test images" in out
        assert "training: 1 epoch(s)" in out and accuracy > 0.7
    else:  # 10 epochs on the spirals: 0.9+ measured
        assert "data: synthetic spirals" in out
        assert "apt-get install dataset-fashion-mnist" in out and accuracy > 0.8
    check_timing(out)


def test_demo_on_every_backend_with_spirals(backend, capsys):
    status, out, _ = demo(capsys, "--backend", backend.name, "--data", "spirals", "--quick")
    assert status == 0
    assert f"backend: {backend.name} on " in out and "chosen with --backend" in out
    assert "synthetic spirals: 3 classes, 360 training / 90 test points" in out
    assert value(out, "test accuracy:") > 0.8  # 10 epochs; 0.9+ measured on each backend
    check_timing(out)


def test_demo_epochs_and_environment_variable(capsys, monkeypatch):
    monkeypatch.setenv("XPNET_BACKEND", "numpy")
    status, out, _ = demo(capsys, "--data", "spirals", "--epochs", "2", "--quick")
    assert status == 0
    assert "from the environment variable XPNET_BACKEND=numpy" in out
    assert "training: 2 epoch(s)" in out


def test_demo_falls_back_to_spirals_and_says_how_to_get_the_data(capsys, monkeypatch):
    def missing(**kwargs):
        raise xn.datasets.DatasetNotFoundError("Fashion-MNIST files not found: (test)")

    monkeypatch.setattr(cli, "load_fashion_mnist", missing)
    status, out, _ = demo(capsys, "--quick", "--backend", "numpy")
    assert status == 0
    assert "using the built-in synthetic spirals" in out
    assert "apt-get install dataset-fashion-mnist" in out and "XPNET_DATA" in out
    assert "data: synthetic spirals" in out


def test_demo_asked_for_missing_fashion_mnist_fails_cleanly(capsys, monkeypatch):
    def missing(**kwargs):
        raise xn.datasets.DatasetNotFoundError("Fashion-MNIST files not found: (test)")

    monkeypatch.setattr(cli, "load_fashion_mnist", missing)
    status, out, err = demo(capsys, "--data", "fashion-mnist", "--backend", "numpy")
    assert status == 2
    assert err.startswith("xpnet: error: Fashion-MNIST files not found")
    assert "apt-get install dataset-fashion-mnist" in err


def test_demo_unknown_backend(capsys):
    status, _, err = demo(capsys, "--backend", "nope")
    assert status == 2
    assert "unknown backend 'nope'" in err and "numpy, array_api_strict, torch, cupy" in err


def test_demo_cupy_without_gpu_in_process(capsys):
    reason = cupy_reason()
    if reason is None:
        pytest.skip("cupy runs on this machine")
    status, out, err = demo(capsys, "--backend", "cupy", "--quick")
    assert status == 2 and out == ""
    assert err == f"xpnet: error: backend 'cupy' cannot be used here: {reason}\n"


def test_demo_cupy_without_gpu_command_line():
    if cupy_reason() is None:
        pytest.skip("cupy runs on this machine")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "xpnet", "demo", "--backend", "cupy"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "xpnet: error: backend 'cupy' cannot be used here" in proc.stderr
    assert "XPNET_BACKEND=numpy" in proc.stderr  # the message names the way out


def test_bad_arguments_exit_2(capsys):
    for argv in ([], ["demo", "--epochs", "0"], ["nope"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
    capsys.readouterr()


def test_info(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"xpnet {xn.__version__} on Python ")
    assert re.search(r"numpy\s+\d+\.\d+", out)
    for name in xn.BACKENDS:
        row = re.search(rf"^  {name}\s+(available \(device .+\)|unavailable: .+)$", out, flags=re.M)
        assert row, f"backend {name} not reported"
    reason = cupy_reason()
    if reason is not None:
        assert f"unavailable: {reason}" in out
    assert "BLAS and threads:" in out and "numpy built with" in out
    assert re.search(r"Fashion-MNIST: (found|not found)", out)


def test_info_says_where_each_data_set_was_found(tmp_path, monkeypatch, capsys):
    mnist = tmp_path / "data" / "mnist"
    mnist.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (mnist / name).write_bytes(b"")  # info locates; it does not read or check
    monkeypatch.setenv("XPNET_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XPNET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XPNET_NO_SYSTEM_DATA", "1")
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"MNIST: 2 of 4 files found in {mnist} (checksummed when loaded)" in out
    assert "MNIST: missing train-images-idx3-ubyte, train-labels-idx1-ubyte (searched " in out
    assert re.search(rf"Fashion-MNIST: not found \(searched {re.escape(str(tmp_path))}", out)


def test_help_describes_the_commands_in_plain_words(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out
    assert "The benchmarks run from a source checkout: python -m benchmarks." in " ".join(out.split())
    with pytest.raises(SystemExit):  # moved to the source checkout: python -m benchmarks
        cli.main(["bench"])
    assert "invalid choice: 'bench'" in capsys.readouterr().err


@pytest.mark.parametrize("var, value", [("XPNET_FLOATX", "bf16"), ("XPNET_BACKEND", "bogus")])
def test_info_with_a_bad_variable_is_one_message(var, value):
    res = subprocess.run([sys.executable, "-m", "xpnet", "info"], capture_output=True, text=True,
                         env=dict(os.environ, **{var: value}), cwd=REPO)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "xpnet: error: " in res.stderr and var in res.stderr and value in res.stderr
