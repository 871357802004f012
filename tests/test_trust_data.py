"""Data entering xpnet, the environment, the data sets and their downloads: no wrong answer
passes silently, and no error comes from deep inside NumPy or torch -- on every backend.

Data cases run with host (NumPy) data and with arrays of the active backend, as in
test_bad_input.py. Environment variables are tested in a fresh interpreter.
"""
from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import xpnet as xn
from _isolation import isolate_data
from xpnet import backend as B
from xpnet import cli, datasets
from xpnet.datasets import DatasetNotFoundError
from xpnet.datasets import mnist as mnist_mod
from xpnet.layers import Dense
from xpnet.models import Trainer, TwoLayerNet

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XPNET_SHARED", REPO.parent / "shared"))
N, D, K = 12, 4, 3
RNG = np.random.default_rng(3)
X = RNG.normal(size=(N, D)).astype("float32")
Y = RNG.integers(0, K, size=N)
BIG = float(np.finfo(np.float32).max) * 10  # about 3.4e39: finite in float64, inf in float32


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No test sees the real ~/.cache, the Debian data set or the user's XPNET_* variables."""
    isolate_data(monkeypatch, tmp_path)
    monkeypatch.setattr(mnist_mod, "FASHION_MNIST",
                        dataclasses.replace(mnist_mod.FASHION_MNIST, system_dirs=()))


def model(units=K, act="softmax", loss="sparse_categorical_crossentropy", dtype=None):
    m = xn.Sequential([Dense(5, activation="relu", input_dim=D), Dense(units, activation=act)],
                      seed=0, dtype=dtype)
    m.compile("sgd", loss=loss)
    return m


def _big_at(row, col=1, n=N, value=1e39):
    a = np.resize(X, (n, D)).astype("float64")
    a[row, col] = value
    return a


def _mse():
    return model(1, None, "mse")


# -- 1. data beyond float32 ---------------------------------------------------------------
# float64 data for a float32 model: 1e39 is finite where it is given and inf where the
# model computes; NumPy's own finfo says where float32 ends (an independent reference)

OVERFLOW = r"x holds values that are not finite in float32 .*1e39"
FLOAT_CASES = [
    ("fit", lambda d: model().fit(d(_big_at(5)), d(Y), verbose=0), OVERFLOW),
    ("evaluate", lambda d: model().evaluate(d(_big_at(0, value=-BIG)), d(Y), verbose=0),
     OVERFLOW),
    ("predict", lambda d: model().predict(d(_big_at(11))), OVERFLOW),
    ("predict-large-batches", lambda d: model().predict(d(_big_at(20_000, n=40_000)),
                                                        batch_size=20_000), OVERFLOW),
    ("fit-validation", lambda d: model().fit(d(X), d(Y), validation_data=(d(_big_at(2)), d(Y)),
                                             verbose=0), r"val_x holds values that are not finite"),
    ("fit-mse-target", lambda d: _mse().fit(d(X), d(_big_at(3, col=0)[:, :1]), verbose=0),
     r"y holds values that are not finite in float32"),
]


@pytest.mark.parametrize("where", ["host", "device"])
@pytest.mark.parametrize("case", FLOAT_CASES, ids=[c[0] for c in FLOAT_CASES])
def test_float64_beyond_float32_is_refused(backend, case, where):
    assert 1e39 > float(np.finfo(np.float32).max) and BIG < float(np.finfo(np.float64).max)
    _, call, pattern = case
    move = (lambda a: a) if where == "host" else (lambda a: B.asarray(a, backend=backend))
    with pytest.raises(ValueError, match=pattern):
        call(move)


@pytest.mark.parametrize("where", ["host", "device"])
def test_float64_model_takes_1e39_and_float32_model_takes_its_max(backend, where):
    move = (lambda a: a) if where == "host" else (lambda a: B.asarray(a, backend=backend))
    out = B.to_numpy(model(dtype="float64").predict(move(_big_at(4) * 1e-30)))
    assert np.isfinite(out).all()
    edge = _big_at(4, value=float(np.finfo(np.float32).max))  # exactly float32's largest
    with np.errstate(over="ignore", invalid="ignore"):  # the product overflows, not x
        model().predict(move(edge))


# -- 2. arrays from elsewhere ------------------------------------------------------------

@pytest.mark.parametrize("call", ["fit", "evaluate"])
@pytest.mark.parametrize("moved", ["y", "x"])
def test_host_x_with_backend_y_and_the_reverse(backend, call, moved):
    x = B.asarray(X, backend=backend) if moved == "x" else X
    y = B.asarray(Y, backend=backend) if moved == "y" else Y
    m = model()
    run = (lambda: m.fit(x, y, verbose=0)) if call == "fit" else (
        lambda: m.evaluate(x, y, verbose=0))
    if backend.name == "numpy":  # a NumPy array is both: nothing to mix up
        run()
        return
    with pytest.raises(B.BackendMismatchError,
                       match=rf"NumPy array but y is|x is an array of the {backend.name}.*"
                             r"both as NumPy arrays"):
        run()


def _other_device(backend, a):
    if backend.name == "array_api_strict":
        import array_api_strict

        return array_api_strict.asarray(a, device=array_api_strict.Device("device1"))
    if backend.name == "torch":
        import torch

        return torch.asarray(a, device="meta")
    pytest.skip("NumPy arrays have one device")


@pytest.mark.parametrize("call", ["fit", "predict"])
def test_arrays_on_another_device_are_refused(backend, call):
    x = _other_device(backend, X)
    m = model()
    with pytest.raises(B.BackendMismatchError, match=r"on device .*runs on|tensor on meta"):
        m.fit(x, Y, verbose=0) if call == "fit" else m.predict(x)
    with pytest.raises(B.BackendMismatchError, match=r"device"):
        B.asarray(x, backend=backend)


def test_pandas_nullable_dtypes(backend):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({f"c{i}": pd.array(X[:, i].tolist(), dtype="Float32")
                          for i in range(D - 1)})
    frame["n"] = pd.array(np.round(X[:, -1] * 10).astype(int).tolist(), dtype="Int64")
    labels = pd.array(Y.tolist(), dtype="Int64")
    expected = np.concatenate([X[:, :-1], np.round(X[:, -1:] * 10)], axis=1)
    m = model()
    m.fit(frame, labels, verbose=0)  # pandas gives an object array for these columns
    np.testing.assert_allclose(m.predict(frame), m.predict(expected), rtol=1e-6)
    series = pd.Series(pd.array(X[:, 0].tolist(), dtype="Float32"))
    assert B.host_asarray(series).dtype == np.float32
    with_na = frame.copy()
    with_na.loc[4, "c1"] = pd.NA
    with pytest.raises(ValueError, match=r"^x: holds 1 missing value.*pd\.NA.*row 4.*fillna"):
        m.predict(with_na)
    with pytest.raises(ValueError, match=r"^y: holds 1 missing value.*pd\.NA"):
        m.fit(frame, pd.array([*Y[:-1].tolist(), None], dtype="Int64"), verbose=0)
    with pytest.raises(ValueError, match=r"pd\.NA"):  # pandas itself would give a NaN here
        B.host_asarray(pd.Series(pd.array([1.0, None], dtype="Float32")))


# -- 3. the environment ------------------------------------------------------------------

def _python(code, **env):
    full = dict(os.environ, PYTHONPATH=str(REPO), **env)
    for var in ("XPNET_BACKEND", "XPNET_FLOATX"):
        if var not in env:
            full.pop(var, None)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full, timeout=120)


def test_xpnet_floatx_unknown_is_a_clear_error_at_first_use(backend):
    code = f"""
import numpy as np, xpnet as xn
from xpnet.layers import Dense
print("imported")
try:
    xn.Sequential([Dense(2, input_dim=3)]).predict(np.ones((1, 3)))
except ValueError as exc:
    print("first use:", exc)
xn.set_floatx("float64")
print(xn.Sequential([Dense(2, input_dim=3)]).predict(np.ones((1, 3))).dtype, xn.get_backend())
"""
    proc = _python(code, XPNET_FLOATX="bf16", XPNET_BACKEND=backend.name)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "imported"
    assert lines[1].startswith("first use: unknown float type 'bf16'")
    assert "XPNET_FLOATX" in lines[1] and "float32, float64" in lines[1]
    assert lines[2].split()[-1] == backend.name


def test_xpnet_backend_unknown_is_never_returned(backend):
    code = f"""
import xpnet as xn
try:
    print("get_backend returned", xn.get_backend())
except ValueError as exc:
    print("error:", exc)
xn.set_backend({backend.name!r})
print(xn.get_backend())
"""
    proc = _python(code, XPNET_BACKEND="bogus")
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()
    assert first.startswith("error: unknown backend 'bogus'")
    assert "XPNET_BACKEND" in first and "numpy, array_api_strict, torch, cupy" in first
    assert second == backend.name


# -- 4. data set paths, IDX labels, the book's Trainer -------------------------------------

def _idx(arr):
    arr = np.asarray(arr, dtype=np.uint8)
    return bytes([0, 0, 0x08, arr.ndim]) + np.array(arr.shape, ">u4").tobytes() + arr.tobytes()


@pytest.mark.parametrize("loader", ["load_mnist", "load_fashion_mnist", "load_mnist_test"])
def test_dataset_path_that_is_a_file(backend, tmp_path, loader):
    f = tmp_path / "t10k-images-idx3-ubyte.gz"
    f.write_bytes(b"not a folder")
    with pytest.raises(NotADirectoryError, match=r"path must be a folder.*is a file"):
        getattr(datasets, loader)(path=f, download=True, progress=False)
    assert f.read_bytes() == b"not a folder"


def test_load_idx_pair_labels_out_of_range(backend, tmp_path):
    (tmp_path / "i").write_bytes(_idx(np.zeros((3, 2, 2))))
    (tmp_path / "l").write_bytes(_idx([0, 9, 10]))
    with pytest.raises(ValueError, match=r"label 10 out of range for 10 classes"):
        datasets.load_idx_pair(tmp_path / "i", tmp_path / "l")
    with pytest.raises(ValueError, match=r"label 10 out of range for 4 classes"):
        datasets.load_idx_pair(tmp_path / "i", tmp_path / "l", one_hot_label=True, num_classes=4)
    _, t = datasets.load_idx_pair(tmp_path / "i", tmp_path / "l", num_classes=11)
    assert t.tolist() == [0, 9, 10]


TRAINER_CASES = [
    ("no-train-rows", dict(x_train=X[:0], t_train=Y[:0]), r"x_train has no rows"),
    ("no-test-rows", dict(x_test=X[:0], t_test=Y[:0]), r"x_test has no rows"),
    ("evaluate-0", dict(evaluate_sample_num_per_epoch=0),
     r"evaluate_sample_num_per_epoch needs a positive int, got 0"),
    ("evaluate-negative", dict(evaluate_sample_num_per_epoch=-5),
     r"evaluate_sample_num_per_epoch needs a positive int"),
    ("evaluate-float", dict(evaluate_sample_num_per_epoch=2.5),
     r"evaluate_sample_num_per_epoch needs a positive int"),
]


@pytest.mark.parametrize("case", TRAINER_CASES, ids=[c[0] for c in TRAINER_CASES])
def test_trainer_bad_data_and_sample_count(backend, case):
    _, changes, pattern = case
    args = dict(dict(x_train=X, t_train=Y, x_test=X, t_test=Y), epochs=1, mini_batch_size=4,
                verbose=False, seed=0)
    args.update(changes)
    with pytest.raises(ValueError, match=pattern):
        Trainer(TwoLayerNet(D, 5, K, seed=0), **args).train()


def test_trainer_host_x_with_device_t(backend):
    t = B.asarray(Y, backend=backend)
    trainer = Trainer(TwoLayerNet(D, 5, K, seed=0), X, t, X, t, epochs=2, mini_batch_size=4,
                      verbose=False, seed=0, evaluate_sample_num_per_epoch=np.int64(6))
    trainer.train()
    assert len(trainer.train_acc_list) == 2 and 0 <= trainer.final_test_acc <= 1


# -- 5. downloads have an overall deadline -------------------------------------------------

class _Trickle(http.server.BaseHTTPRequestHandler):
    """Promises 1,000 bytes and sends one every 0.2 s: each read gets something in time."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(1000):
                self.wfile.write(b"\0")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:  # the client gave up: what the test wants
            pass

    def log_message(self, *args):
        pass


def _serve(handler):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    return httpd, thread, f"http://127.0.0.1:{httpd.server_address[1]}/"


def _stop(httpd, thread):
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_download_deadline_cuts_off_a_trickling_mirror(backend, tmp_path):
    httpd, thread, url = _serve(_Trickle)
    try:
        start = time.monotonic()
        with pytest.raises(DatasetNotFoundError) as info:
            datasets.load_mnist_test(path=tmp_path / "dl", base_url=url, timeout=1.5,
                                     progress=True)
        elapsed = time.monotonic() - start
    finally:
        _stop(httpd, thread)
    msg = str(info.value)
    assert f"{url}t10k-images-idx3-ubyte.gz" in msg and "deadline of 1.5 s" in msg
    assert "timeout=" in msg
    assert 1.4 < elapsed < 6, elapsed
    assert not list((tmp_path / "dl").glob("*.part"))
    with pytest.raises(ValueError, match=r"timeout must be a number of seconds > 0"):
        datasets.load_mnist_test(path=tmp_path / "dl", base_url=url, timeout=0)


# -- 6. example 04 finds the book's weights where examples/README.md says ------------------

def test_example_04_finds_weights_in_xpnet_data(backend, tmp_path, monkeypatch, capsys):
    src = SHARED / "data" / "mnist"
    names = ["sample_weight.pkl", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    if not all((src / n).is_file() for n in names):
        pytest.skip(f"the MNIST test set and the book's weights are not in {src}")
    data = tmp_path / "data" / "mnist"
    data.mkdir(parents=True)
    for n in names:
        shutil.copy(src / n, data / n)
    monkeypatch.setenv("XPNET_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XPNET_SHARED", str(tmp_path / "no-shared"))
    sys.path.insert(0, str(REPO / "examples"))
    try:
        import importlib.util

        spec = importlib.util.spec_from_file_location("xpnet_trust_ex04",
                                                      REPO / "examples" / "04_mnist_inference.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        status = module.main(["--backend", backend.name, "--out", str(tmp_path / "out")])
    finally:
        sys.path.remove(str(REPO / "examples"))
    out, err = capsys.readouterr()
    assert status == 0, err
    assert f"weights: {data / 'sample_weight.pkl'}" in out
    assert out.count("Accuracy:0.9352\n") == 2  # the book's number, both ways


# -- 7. the demo downloads Fashion-MNIST when it can, else falls back ----------------------

def _closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


def _demo(capsys, *args):
    status = cli.main(["demo", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_demo_falls_back_quickly_when_the_mirror_does_not_answer(backend, capsys, monkeypatch):
    monkeypatch.setenv("XPNET_FASHION_MNIST_URL", _closed_port_url())
    start = time.monotonic()
    status, out, _ = _demo(capsys, "--backend", backend.name, "--epochs", "1")
    assert status == 0
    assert "did not answer" in out and "127.0.0.1" in out
    assert "using the built-in synthetic spirals" in out and "data: synthetic spirals" in out
    assert time.monotonic() - start < 60
    status, out, _ = _demo(capsys, "--backend", backend.name, "--epochs", "1", "--no-download")
    assert status == 0 and "did not answer" not in out and "downloading" not in out
    assert "data: synthetic spirals" in out


FAKE = {"train-images-idx3-ubyte": (20, 28, 28), "train-labels-idx1-ubyte": (20,),
        "t10k-images-idx3-ubyte": (10, 28, 28), "t10k-labels-idx1-ubyte": (10,)}


def test_demo_downloads_fashion_mnist_into_the_cache(backend, tmp_path, capsys, monkeypatch):
    srv = tmp_path / "srv"
    srv.mkdir()
    rng = np.random.default_rng(0)
    archive, content = {}, {}
    for name, shape in FAKE.items():
        arr = np.arange(20)[:shape[0]] % 10 if len(shape) == 1 else rng.integers(0, 256, shape)
        raw = _idx(arr)
        (srv / f"{name}.gz").write_bytes(gzip.compress(raw))
        archive[name] = hashlib.sha256((srv / f"{name}.gz").read_bytes()).hexdigest()
        content[name] = hashlib.sha256(raw).hexdigest()
    # test-only: the served files are small fakes, so the known sums are theirs
    monkeypatch.setattr(mnist_mod, "FASHION_MNIST", dataclasses.replace(
        mnist_mod.FASHION_MNIST, archive_sha256=archive, content_sha256=content))
    handler = functools.partial(_Quiet, directory=str(srv))
    httpd, thread, url = _serve(handler)
    monkeypatch.setenv("XPNET_FASHION_MNIST_URL", url)
    try:
        status, out, err = _demo(capsys, "--backend", backend.name, "--epochs", "1")
        quick_status, quick_out, _ = _demo(capsys, "--backend", backend.name, "--quick")
    finally:
        _stop(httpd, thread)
    assert status == 0, err
    assert "downloading Fashion-MNIST" in out and url in out
    assert "data: Fashion-MNIST: 20 training / 10 test images" in out
    cache = tmp_path / "home" / ".cache" / "xpnet" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{n}.gz" for n in FAKE)
    assert quick_status == 0 and "downloading" not in quick_out  # now found in the cache
    assert "data: Fashion-MNIST: 20 training / 10 test images" in quick_out


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
