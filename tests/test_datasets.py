"""Tests for xpnet.datasets: IDX reader, MNIST/Fashion-MNIST loaders, downloads, toy data.

Downloads are tested only against a local http.server on 127.0.0.1; nothing
here contacts the internet.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _isolation import isolate_data
from xpnet import datasets
from xpnet.datasets import (ChecksumError, DatasetNotFoundError, IDXFormatError, read_idx)
from xpnet.datasets import mnist as mnist_mod

SHARED = Path(os.environ.get("XPNET_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
SHARED_MNIST = SHARED / "data" / "mnist"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")

needs_shared_mnist = pytest.mark.skipif(
    not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file(),
    reason=f"MNIST test files absent from {SHARED_MNIST} (set XPNET_SHARED to the shared/ folder)")
needs_debian_fashion = pytest.mark.skipif(  # read before _isolated clears XPNET_NO_SYSTEM_DATA
    not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file()
    or DEBIAN_FASHION not in mnist_mod._system_dirs(mnist_mod.FASHION_MNIST),
    reason="Fashion-MNIST absent (apt-get install dataset-fashion-mnist) or hidden "
           "(XPNET_NO_SYSTEM_DATA)")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No test sees the real ~/.cache or the user's XPNET_* variables."""
    isolate_data(monkeypatch, tmp_path)


# ---------------------------------------------------------------- IDX writer

CODES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def idx_bytes(arr: np.ndarray, code: int) -> bytes:
    arr = np.asarray(arr)
    head = bytes([0, 0, code, arr.ndim]) + np.array(arr.shape, dtype=">u4").tobytes()
    return head + arr.astype(CODES[code]).tobytes()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def sample(code: int, shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(CODES[code])
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt.newbyteorder("="))
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dt.newbyteorder("="))


# ---------------------------------------------------------------- read_idx

@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("shape", [(5,), (2, 3, 4)], ids=["1d", "3d"])
@pytest.mark.parametrize("code", sorted(CODES), ids=[CODES[c] for c in sorted(CODES)])
def test_read_idx_roundtrip(tmp_path, code, shape, gz):
    arr = sample(code, shape)
    out = read_idx(write(tmp_path / "a.idx", idx_bytes(arr, code), gz))
    assert out.shape == shape
    assert out.dtype == arr.dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)
    assert out.flags.writeable


def test_gzip_detected_by_magic_not_name(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    a = write(tmp_path / "plain.gz", idx_bytes(arr, 0x08))           # raw, misleading name
    b = write(tmp_path / "compressed.idx", idx_bytes(arr, 0x08), True)  # gzip, no .gz
    np.testing.assert_array_equal(read_idx(a), arr)
    np.testing.assert_array_equal(read_idx(str(b)), arr)


def test_read_idx_zero_length_dimension(tmp_path):
    out = read_idx(write(tmp_path / "e.idx", idx_bytes(np.zeros((0, 4), np.uint8), 0x08)))
    assert out.shape == (0, 4)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(0, 4), min_size=1, max_size=4),
       code=st.sampled_from(sorted(CODES)), gz=st.booleans())
def test_read_idx_property(tmp_path_factory, shape, code, gz):
    arr = sample(code, tuple(shape), seed=len(shape))
    path = write(tmp_path_factory.mktemp("h") / "p", idx_bytes(arr, code), gz)
    np.testing.assert_array_equal(read_idx(path), arr)


GOOD = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4), 0x08)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("data, fragment", [
    (GOOD[:-5], "expected 24 bytes of data, found 19"),
    (GOOD[:10], "truncated header"),
    (GOOD[:2], "truncated header"),
    (b"", "empty"),
    (b"\x01\x00" + GOOD[2:], "wrong magic number"),
    (GOOD[:2] + b"\x07" + GOOD[3:], "unknown element type code 0x07"),
    (GOOD + b"junk", "trailing garbage"),
], ids=["truncated-data", "truncated-dims", "truncated-magic", "empty", "magic", "type", "trailing"])
def test_read_idx_format_errors(tmp_path, data, fragment, gz):
    path = write(tmp_path / "bad-file.idx", data, gz)
    with pytest.raises(IDXFormatError, match=fragment) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_trailing_count_reported(tmp_path):
    path = write(tmp_path / "t.idx", GOOD + b"1234567")
    with pytest.raises(IDXFormatError, match="found 7 extra bytes"):
        read_idx(path)


@pytest.mark.parametrize("mangle", [
    lambda z: z[:-6],                                # stream cut off
    lambda z: z[:20] + bytes(b ^ 0xFF for b in z[20:30]) + z[30:],  # deflate data damaged
    lambda z: z[:-8] + b"\0\0\0\0" + z[-4:],         # CRC wrong
    lambda z: z + b"not gzip",                       # garbage after the gzip member
], ids=["cut", "damaged", "crc", "garbage-after"])
def test_read_idx_corrupt_gzip(tmp_path, mangle):
    big = idx_bytes(np.random.default_rng(1).integers(0, 255, (4, 16, 16), dtype=np.uint8), 0x08)
    path = write(tmp_path / "broken.gz", mangle(gzip.compress(big)))
    with pytest.raises(IDXFormatError, match="broken.gz") as info:
        read_idx(path)
    assert "gzip" in str(info.value) or "truncated" in str(info.value)


def test_read_idx_missing_file(tmp_path):
    missing = tmp_path / "nope" / "t10k-images-idx3-ubyte.gz"
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.gz"):
        read_idx(missing)


@needs_shared_mnist
def test_read_idx_real_mnist_test_set():
    x = read_idx(SHARED_MNIST / "t10k-images-idx3-ubyte.gz")
    t = read_idx(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert t.shape == (10000,) and t.dtype == np.uint8
    assert t[:5].tolist() == [7, 2, 1, 0, 4]
    assert x.max() == 255 and x.min() == 0


# ---------------------------------------------------------------- real loaders

@needs_shared_mnist
def test_load_mnist_test_only_from_shared():
    x, t = datasets.load_mnist_test(path=SHARED_MNIST, download=False)
    assert x.shape == (10000, 784) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() == 1.0
    assert t.dtype == np.uint8 and t[:5].tolist() == [7, 2, 1, 0, 4]
    x2, t2 = datasets.load_idx_pair(SHARED_MNIST / "t10k-images-idx3-ubyte.gz",
                                    SHARED_MNIST / "t10k-labels-idx1-ubyte.gz",
                                    normalize=False, flatten=False, one_hot_label=True)
    assert x2.shape == (10000, 1, 28, 28) and x2.dtype == np.uint8
    np.testing.assert_array_equal(x, x2.reshape(10000, -1) / np.float32(255))
    assert t2.shape == (10000, 10) and t2.dtype == np.float32
    np.testing.assert_array_equal(t2.argmax(axis=1), t)


@needs_shared_mnist
def test_load_mnist_without_train_files_is_a_clear_error():
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.load_mnist(path=SHARED_MNIST, download=False)
    msg = str(info.value)
    assert "train-images-idx3-ubyte" in msg and "train-labels-idx1-ubyte" in msg
    assert "t10k" not in msg.split("Searched")[0]
    assert str(SHARED_MNIST) in msg and "download=False" in msg
    assert isinstance(info.value, FileNotFoundError)


@pytest.fixture(scope="module")
def fashion():
    # Module scope runs outside the per-test isolation: name the folder explicitly.
    return datasets.load_fashion_mnist(path=DEBIAN_FASHION, download=False)


@needs_debian_fashion
def test_load_fashion_mnist_default(fashion):
    (x, t), (xs, ts) = fashion
    assert x.shape == (60000, 784) and xs.shape == (10000, 784)
    assert x.dtype == xs.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert t.shape == (60000,) and ts.shape == (10000,) and t.dtype == np.uint8
    assert np.bincount(t).tolist() == [6000] * 10
    assert np.bincount(ts).tolist() == [1000] * 10


@needs_debian_fashion
def test_load_fashion_mnist_raw_unflattened_one_hot(fashion):
    (x, t), (xs, ts) = fashion
    (xr, tr), (xsr, tsr) = datasets.load_fashion_mnist(
        normalize=False, flatten=False, one_hot_label=True, download=False)
    assert xr.shape == (60000, 1, 28, 28) and xsr.shape == (10000, 1, 28, 28)
    assert xr.dtype == np.uint8
    np.testing.assert_array_equal(xsr.reshape(10000, -1) / np.float32(255), xs)
    assert tr.shape == (60000, 10) and tr.dtype == np.float32
    assert tr.sum(axis=1).tolist() == [1.0] * 60000
    np.testing.assert_array_equal(tr.argmax(axis=1), t)
    np.testing.assert_array_equal(tsr.argmax(axis=1), ts)


# ---------------------------------------------------------------- fake data set + server

FAKE = {"train-images-idx3-ubyte": (7, 28, 28), "train-labels-idx1-ubyte": (7,),
        "t10k-images-idx3-ubyte": (3, 28, 28), "t10k-labels-idx1-ubyte": (3,)}


@pytest.fixture
def fake(tmp_path):
    """Small fake MNIST .gz files in a served folder, and their SHA-256 sums."""
    srv = tmp_path / "srv"
    srv.mkdir()
    rng = np.random.default_rng(0)
    arrays, archive, content = {}, {}, {}
    for name, shape in FAKE.items():
        hi = 10 if len(shape) == 1 else 256
        arr = rng.integers(0, hi, shape, dtype=np.uint8)
        raw = idx_bytes(arr, 0x08)
        gz = gzip.compress(raw)
        (srv / f"{name}.gz").write_bytes(gz)
        arrays[name] = arr
        archive[name] = hashlib.sha256(gz).hexdigest()
        content[name] = hashlib.sha256(raw).hexdigest()
    return srv, arrays, archive, content


@pytest.fixture
def server(fake):
    handler = functools.partial(_QuietHandler, directory=str(fake[0]))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _patch(monkeypatch, attr, **changes):
    source = dataclasses.replace(getattr(mnist_mod, attr), **changes)
    monkeypatch.setattr(mnist_mod, attr, source)
    return source


def _closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def _leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_success(tmp_path, fake, server, monkeypatch):
    _, arrays, archive, content = fake
    _patch(monkeypatch, "MNIST", archive_sha256=archive, content_sha256=content)
    dest = tmp_path / "dl"
    (x, t), (xs, ts) = datasets.load_mnist(path=dest, base_url=server, progress=True)
    assert _leftovers(dest) == sorted(f"{n}.gz" for n in FAKE)
    for name, expected in archive.items():
        assert hashlib.sha256((dest / f"{name}.gz").read_bytes()).hexdigest() == expected
    assert x.shape == (7, 784) and xs.shape == (3, 784) and x.dtype == np.float32
    np.testing.assert_array_equal(ts, arrays["t10k-labels-idx1-ubyte"])
    np.testing.assert_array_equal(x.reshape(7, 28, 28) * 255,
                                  arrays["train-images-idx3-ubyte"].astype(np.float32))
    # Now everything is local: no server needed.
    (x2, _), _ = datasets.load_mnist(path=dest, download=False)
    np.testing.assert_array_equal(x, x2)


def test_download_to_cache_from_env_url(tmp_path, fake, server, monkeypatch):
    _, _, archive, content = fake
    _patch(monkeypatch, "MNIST", archive_sha256=archive, content_sha256=content)
    monkeypatch.setenv("XPNET_MNIST_URL", server.rstrip("/"))
    x, t = datasets.load_mnist_test(progress=False)
    cache = tmp_path / "home" / ".cache" / "xpnet" / "mnist"
    assert _leftovers(cache) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert x.shape == (3, 784)


def test_xpnet_data_folder_is_searched(tmp_path, fake, monkeypatch):
    srv, arrays, archive, content = fake
    _patch(monkeypatch, "MNIST", archive_sha256=archive, content_sha256=content)
    (tmp_path / "data").mkdir()
    srv.rename(tmp_path / "data" / "mnist")
    monkeypatch.setenv("XPNET_DATA", str(tmp_path / "data"))
    _, (xs, ts) = datasets.load_mnist(normalize=False, download=False)
    np.testing.assert_array_equal(xs.reshape(3, 28, 28), arrays["t10k-images-idx3-ubyte"])


def test_download_sha_mismatch_removes_file(tmp_path, fake, server, monkeypatch):
    _, _, archive, content = fake
    wrong = dict(archive, **{"train-labels-idx1-ubyte": "0" * 64})
    _patch(monkeypatch, "MNIST", archive_sha256=wrong, content_sha256=content)
    dest = tmp_path / "dl"
    with pytest.raises(ChecksumError) as info:
        datasets.load_mnist(path=dest, base_url=server, progress=False)
    msg = str(info.value)
    assert "train-labels-idx1-ubyte.gz" in msg
    assert "0" * 64 in msg and archive["train-labels-idx1-ubyte"] in msg
    assert "train-labels-idx1-ubyte.gz" not in _leftovers(dest)
    assert not [n for n in _leftovers(dest) if n.endswith(".part")]


def test_download_404(tmp_path, fake, server, monkeypatch):
    srv, _, archive, content = fake
    _patch(monkeypatch, "MNIST", archive_sha256=archive, content_sha256=content)
    (srv / "t10k-labels-idx1-ubyte.gz").unlink()
    dest = tmp_path / "dl"
    with pytest.raises(DatasetNotFoundError, match="404") as info:
        datasets.load_mnist_test(path=dest, base_url=server, progress=False)
    assert str(dest) in str(info.value)
    assert _leftovers(dest) == ["t10k-images-idx3-ubyte.gz"]


def test_offline_error_lists_searched_folders(tmp_path, monkeypatch):
    system = tmp_path / "usr-share-fashion"
    _patch(monkeypatch, "FASHION_MNIST", system_dirs=(system,))
    monkeypatch.setenv("XPNET_DATA", str(tmp_path / "xdata"))
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.load_fashion_mnist(path=tmp_path / "mine", base_url=_closed_port_url(),
                                    progress=False)
    msg = str(info.value)
    for folder in (tmp_path / "mine", tmp_path / "xdata" / "fashion-mnist",
                   tmp_path / "home" / ".cache" / "xpnet" / "fashion-mnist", system):
        assert str(folder) in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "XPNET_DATA" in msg and "path=" in msg
    assert "failed" in msg
    assert not [n for n in _leftovers(tmp_path / "mine") if n.endswith(".part")]


def test_local_file_with_wrong_content_is_rejected(tmp_path, fake):
    srv = fake[0]  # fake data under the real MNIST names, but the real sums
    with pytest.raises(ChecksumError, match="t10k-images-idx3-ubyte") as info:
        datasets.load_mnist_test(path=srv, download=False)
    assert mnist_mod.MNIST.content_sha256["t10k-images-idx3-ubyte"] in str(info.value)


def test_non_http_url_refused(tmp_path, fake, monkeypatch):
    _, _, archive, content = fake
    _patch(monkeypatch, "MNIST", archive_sha256=archive, content_sha256=content)
    with pytest.raises(ValueError, match="only http"):
        datasets.load_mnist_test(path=tmp_path / "dl", base_url=f"file://{fake[0]}/")


def test_load_idx_pair_rejects_mismatched_files(tmp_path):
    images = write(tmp_path / "i", idx_bytes(np.zeros((3, 2, 2), np.uint8), 0x08))
    labels = write(tmp_path / "l", idx_bytes(np.array([1, 2], np.uint8), 0x08))
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        datasets.load_idx_pair(images, labels)
    labels = write(tmp_path / "l", idx_bytes(np.array([1, 2, 12], np.uint8), 0x08))
    for one_hot in (False, True):  # as the docstring says: with or without one-hot rows
        with pytest.raises(ValueError, match="label 12 out of range"):
            datasets.load_idx_pair(images, labels, one_hot_label=one_hot)
    assert datasets.load_idx_pair(images, labels, num_classes=13)[1].tolist() == [1, 2, 12]
    t = datasets.load_idx_pair(images, labels, one_hot_label=True, num_classes=13)[1]
    assert t.shape == (3, 13) and t[2, 12] == 1.0
    with pytest.raises(ValueError, match="images must be"):
        datasets.load_idx_pair(labels, labels)


def test_no_pickle_anywhere():
    for src in Path(datasets.__file__).parent.glob("*.py"):
        text = src.read_text()
        assert "pickle" not in text.replace("Nothing is ever unpickled", ""), src.name


@needs_shared_mnist
def test_known_test_set_sums_match_shared_files():
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        raw = gzip.decompress((SHARED_MNIST / f"{name}.gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest() == mnist_mod.MNIST.content_sha256[name]
    gz = (SHARED_MNIST / "t10k-labels-idx1-ubyte.gz").read_bytes()
    assert hashlib.sha256(gz).hexdigest() == mnist_mod.MNIST.archive_sha256["t10k-labels-idx1-ubyte"]


# ---------------------------------------------------------------- synthetic

def test_study_sleep_3rows_matches_notes():
    X, y = datasets.STUDY_SLEEP_3ROWS
    np.testing.assert_allclose(X, [[1.0, 1.0], [0.25, 0.625], [0.875, 0.75]])
    np.testing.assert_allclose(y, [[1.0], [0.35714286], [0.83928571]], rtol=1e-7)
    assert not X.flags.writeable and not y.flags.writeable


def test_make_study_sleep():
    X, y = datasets.make_study_sleep(seed=3)
    assert X.shape == (1000, 2) and y.shape == (1000, 1)
    assert X.dtype == y.dtype == np.float32
    np.testing.assert_array_equal(X.max(axis=0), [1.0, 1.0])
    assert X.min() >= 1 / 8 and 0.47 <= y.min() and y.max() <= 0.96
    X2, y2 = datasets.make_study_sleep(seed=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, datasets.make_study_sleep(seed=4)[0])
    # y = 5*study/100 + 2*sleep/100 + 0.4 with study = X0*max0: exactly linear in X.
    A = np.c_[X.astype(np.float64), np.ones(len(X))]
    coef, *_ = np.linalg.lstsq(A, y.astype(np.float64), rcond=None)
    np.testing.assert_allclose(coef[2, 0], 0.40, atol=1e-5)
    np.testing.assert_allclose(coef[0, 0] / coef[1, 0], 5 / 2, rtol=0.01)  # maxima both ~8
    assert np.abs(A @ coef - y).max() < 1e-5
    assert datasets.make_study_sleep(n=5, seed=0)[0].shape == (5, 2)


def test_make_spirals():
    X, y = datasets.make_spirals(seed=0)
    assert X.shape == (300, 2) and X.dtype == np.float32
    assert y.shape == (300,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [100, 100, 100]
    assert (np.hypot(X[:, 0], X[:, 1]) <= 1 + 1e-6).all()
    np.testing.assert_array_equal(X, datasets.make_spirals(seed=0)[0])
    X0, y0 = datasets.make_spirals(n_per_class=50, n_classes=4, noise=0.0)
    r = np.tile(np.arange(50) / 50, 4)
    theta = 4.0 * y0 + 4.0 * r
    np.testing.assert_allclose(X0, np.c_[r * np.sin(theta), r * np.cos(theta)], atol=1e-6)


def test_make_xor():
    X, y = datasets.make_xor(seed=1)
    assert X.shape == (200, 2) and X.dtype == np.float32
    assert y.shape == (200,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [100, 100]
    np.testing.assert_array_equal(X, datasets.make_xor(seed=1)[0])
    nearest = np.rint(np.clip(X, 0, 1)).astype(np.int64)
    assert ((nearest[:, 0] ^ nearest[:, 1]) == y).mean() > 0.95
    X0, y0 = datasets.make_xor(n=8, noise=0.0, seed=2)
    assert set(map(tuple, X0.tolist())) == {(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)}
    np.testing.assert_array_equal(y0, X0[:, 0].astype(int) ^ X0[:, 1].astype(int))


@pytest.mark.parametrize("call", [
    lambda: datasets.make_study_sleep(n=0),
    lambda: datasets.make_spirals(n_classes=0),
    lambda: datasets.make_spirals(noise=-1.0),
    lambda: datasets.make_xor(n=2.5),
    lambda: datasets.make_xor(noise=float("nan")),
])
def test_synthetic_bad_arguments(call):
    with pytest.raises(ValueError):
        call()


def test_public_api():
    for name in datasets.__all__:
        obj = getattr(datasets, name)
        if callable(obj) and not isinstance(obj, type):
            assert obj.__doc__ and obj.__doc__.strip(), name


def test_cache_dir_and_no_system_data_variables(tmp_path, monkeypatch):
    """XPNET_CACHE_DIR moves the cache (searched and downloaded into); XPNET_NO_SYSTEM_DATA=1
    drops the system folders from the search, which the not-found message then lists."""
    system = tmp_path / "usr-share-fashion"
    _patch(monkeypatch, "FASHION_MNIST", system_dirs=(system,))
    monkeypatch.setenv("XPNET_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.load_fashion_mnist(download=False)
    text = str(info.value)
    assert f"{tmp_path / 'cache' / 'fashion-mnist'}  (cache, $XPNET_CACHE_DIR)" in text
    assert str(system) in text and ".cache/xpnet" not in text
    monkeypatch.setenv("XPNET_NO_SYSTEM_DATA", "1")
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.load_fashion_mnist(download=False)
    assert str(system) not in str(info.value)
