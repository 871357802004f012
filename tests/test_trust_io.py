"""Weight files and checkpoints that would have loaded wrongly (or expensively) are refused,
on every backend: a declared input shape the file disagrees with, a checkpoint loaded
before ``compile``, NaN/inf weights, crafted files (refused from their headers, before any
large allocation), names of other formats and odd path types.
"""
from __future__ import annotations

import io
import json
import os
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import xpnet as xn
from xpnet import backend as B
from xpnet import io as xio
from xpnet.layers import Dense

N, D, K = 12, 4, 3
RNG = np.random.default_rng(11)
X = RNG.normal(size=(N, D)).astype("float32")
Y = RNG.integers(0, K, size=N)
CHEAP_BYTES = 4 * 2**20  # a refusal allocates less than this ...
CHEAP_SECONDS = 1.0      # ... and takes less than this


def model(d=D, seed=0, compiled=True, declared=True):
    kw = {"input_dim": d} if declared else {}
    m = xn.Sequential([Dense(5, activation="relu", **kw), Dense(K, activation="softmax")],
                      seed=seed)
    if compiled:
        m.compile("adam", loss="sparse_categorical_crossentropy")
    return m


def trained(seed=1):
    m = model(seed=seed)
    m.fit(X, Y, epochs=1, batch_size=4, verbose=0, seed=0)
    return m


def snapshot(m):
    return [w.copy() for w in m.get_weights()], m.opt_state


def assert_unchanged(m, before):
    weights, opt_state = before
    for a, b in zip(m.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    assert m.opt_state is opt_state


def npy(array=None, shape=None, dtype="float32", data=b""):
    """One ``.npy`` member: a real array, or a header declaring ``shape`` followed by
    ``data`` (which may hold far fewer bytes than declared)."""
    buf = io.BytesIO()
    if array is not None:
        np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
        return buf.getvalue()
    np.lib.format.write_array_header_1_0(buf, {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
        "shape": tuple(shape)})
    return buf.getvalue() + data


def craft(path, members, header):
    """Write a zip as ``np.savez`` does (stored members ``<name>.npy``), by hand."""
    with zipfile.ZipFile(path, "w") as z:
        for name, raw in members.items():
            z.writestr(name + ".npy", raw)
        z.writestr(xio.HEADER_KEY + ".npy", npy(np.frombuffer(json.dumps(header).encode(),
                                                                 np.uint8)))
    return path


def file_of(m, epoch=None):
    """``(members as .npy bytes, header)`` of ``m`` as ``save_checkpoint`` writes them."""
    arrays, header = xn.checkpoint._weight_arrays(m)
    members = {k: npy(xn.to_numpy(v)) for k, v in arrays.items()}
    header = dict(header, format=1)
    if epoch is not None:
        header["epoch"] = epoch
        header["optimizer"] = {"class": type(m.optimizer).__name__, "step": m.opt_state["step"]}
        for key, slots in m.opt_state["slots"].items():
            for slot, v in slots.items():
                members[f"optimizer/{key}/{slot}"] = npy(xn.to_numpy(v))
    return members, header


def refused_cheaply(call, exc, pattern):
    """``call()`` raises ``exc`` matching ``pattern``, allocating under CHEAP_BYTES and
    taking under CHEAP_SECONDS.

    Memory is measured under tracemalloc; time is measured on calls of their own, without
    it (tracemalloc makes Python several times slower), and the best of three counts: a
    refusal that really reads the data is slow every time, while a pause of a loaded CI
    machine (1.5 s once, for a refusal that takes 0.02 s) is not. A refusal leaves the
    model as it was, so the call can be repeated."""
    tracemalloc.start()
    try:
        with pytest.raises(exc, match=pattern) as info:
            call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < CHEAP_BYTES, f"{peak / 2**20:.1f} MiB allocated before the refusal"
    times = []
    for _ in range(3):
        start = time.perf_counter()
        with pytest.raises(exc, match=pattern):
            call()
        times.append(time.perf_counter() - start)
    assert min(times) < CHEAP_SECONDS, f"{min(times):.2f} s before the refusal (best of 3)"
    return info


# -- model state -------------------------------------------------------------------------

def test_declared_input_shape_wins_over_the_files(backend, tmp_path):
    """Keras builds from the declared shape and then refuses a file of another one; xpnet
    took the file's shape over ``input_dim=`` and loaded it."""
    path = tmp_path / "w.npz"
    model(d=4).save_weights(path)
    for m in (model(d=3, compiled=False), xn.Sequential(
            [Dense(5, activation="relu", input_shape=(2, 2)), Dense(K)], seed=0)):
        with pytest.raises(xio.WeightFileError,
                           match=r"input shape \(4,\).*'dense' declares \((3|2, 2),?\)"):
            m.load_weights(path)
        assert not m.built
    same = model(d=4, seed=5, compiled=False)
    same.load_weights(path)
    assert same.input_shape == (4,)


def test_load_checkpoint_before_compile_is_refused(backend, tmp_path):
    path = tmp_path / "ck.npz"
    trained().save_checkpoint(path, epoch=1)
    for m in (model(seed=3, compiled=False), model(seed=3, compiled=False, declared=False)):
        with pytest.raises(RuntimeError, match=r"Adam.*compile.*first"):
            m.load_checkpoint(path)
        assert not m.built and m.opt_state is None
    m = model(seed=3)  # compiled with the checkpoint's optimizer: resumes
    assert m.load_checkpoint(path) == 1 and m.opt_state["step"] == 3


def _bad(value, at=(0, 0)):
    def make(weights):
        w = [a.copy() for a in weights]
        w[0] = w[0].astype(np.asarray(value).dtype)
        w[0][at] = value
        return w
    return make


SET_WEIGHTS_CASES = [
    ("nan", _bad(np.float32(np.nan)), ValueError, r"layer 'dense' W.*NaN or inf"),
    ("inf", _bad(np.float32(-np.inf), (3, 4)), ValueError, r"layer 'dense' W.*NaN or inf"),
    ("float64-beyond-float32", _bad(np.float64(1e39)), ValueError,
     r"layer 'dense' W.*NaN or inf.*after the cast to float32"),
    ("nan-in-bias", lambda w: [*w[:3], np.full_like(w[3], np.nan)], ValueError,
     r"layer 'dense_1' b.*NaN"),
    ("last-shape-wrong", lambda w: [w[0] + 1, *w[1:3], np.zeros(K + 1, "float32")], ValueError,
     r"layer 'dense_1' b: expected shape \(3,\), got \(4,\)"),
    ("strings", lambda w: [*w[:3], np.array(["a"] * K)], ValueError,
     r"layer 'dense_1' b.*not a number type"),
]


@pytest.mark.parametrize("case", SET_WEIGHTS_CASES, ids=[c[0] for c in SET_WEIGHTS_CASES])
def test_set_weights_refuses_and_leaves_the_model_unchanged(backend, case):
    _, make, exc, pattern = case
    m = trained()
    before = snapshot(m)
    bad = make(before[0])
    with pytest.raises(exc, match=pattern):
        m.set_weights(bad)
    assert_unchanged(m, before)


def _poison(key, value, dtype=None):
    def make(members):
        arrays = {k: np.lib.format.read_array(io.BytesIO(v)) for k, v in members.items()}
        a = arrays[key].astype(dtype or arrays[key].dtype)
        a.reshape(-1)[-1] = value
        return dict(members, **{key: npy(a)})
    return make


FILE_VALUE_CASES = [
    ("nan-weight", _poison("dense_1/b", np.nan), r"layer 'dense_1' b.*NaN or inf"),
    ("inf-weight", _poison("dense/W", np.inf), r"layer 'dense' W.*NaN or inf"),
    ("float64-beyond-float32", _poison("dense/W", 1e39, "float64"),
     r"layer 'dense' W.*NaN or inf.*after the cast to float32"),
    ("nan-optimizer-slot", _poison("optimizer/dense/W/v", np.nan),
     r"optimizer state of 'dense/W' v.*NaN or inf"),
]


@pytest.mark.parametrize("case", FILE_VALUE_CASES, ids=[c[0] for c in FILE_VALUE_CASES])
def test_non_finite_values_in_a_file_are_refused(backend, tmp_path, case):
    _, make, pattern = case
    members, header = file_of(trained(), epoch=1)
    path = craft(tmp_path / "bad.npz", make(members), header)
    m = trained(seed=4)
    before = snapshot(m)
    with pytest.raises(xio.WeightFileError, match=pattern):
        m.load_checkpoint(path)
    assert_unchanged(m, before)


# -- crafted files cost nothing before they are refused -----------------------------------

def _huge_input_shape(tmp_path):
    members, header = file_of(_built())
    return craft(tmp_path / "c.npz", members, dict(header, input_shape=[10**7, 10**7]))


def _extra_member(shape, dtype="float64", data=b"\0" * 16):
    def make(tmp_path):
        members, header = file_of(_built())
        members["junk"] = npy(shape=shape, dtype=dtype, data=data)
        return craft(tmp_path / "c.npz", members, header)
    return make


def _member_declares(key, shape):
    def make(tmp_path):
        members, header = file_of(_built())
        members[key] = npy(shape=shape, data=b"\0" * 64)
        return craft(tmp_path / "c.npz", members, header)
    return make


def _header_value(**changes):
    def make(tmp_path):
        m = trained()
        members, header = file_of(m, epoch=1)
        for key, value in changes.items():
            if key == "step":
                header["optimizer"]["step"] = value
            else:
                header[key] = value
        return craft(tmp_path / "c.npz", members, header)
    return make


def _huge_header(tmp_path):
    members, _ = file_of(_built())
    with zipfile.ZipFile(tmp_path / "c.npz", "w") as z:
        for name, raw in members.items():
            z.writestr(name + ".npy", raw)
        z.writestr(xio.HEADER_KEY + ".npy", npy(shape=(10**12,), dtype="uint8", data=b"{}"))
    return tmp_path / "c.npz"


def _built():
    m = xn.Sequential([Dense(5, input_dim=D), Dense(K)], seed=0)
    m.build()
    return m


def _unbuilt():
    return xn.Sequential([Dense(5), Dense(K)], seed=0)


def _compiled():
    m = _built()
    m.compile("adam", loss="mse")
    return m


# (id, make(tmp_path) -> path, a model, load_weights or load_checkpoint, regex)
CRAFTED_CASES = [
    ("input-shape-1e7x1e7", _huge_input_shape, _unbuilt, "load_weights",
     r"input_shape \(10000000, 10000000\).*100,000,000,000,000 numbers"),
    ("extra-member-1e13", _extra_member((10**13,)), _built, "load_weights", r"'junk'"),
    ("extra-member-1e13-object", _extra_member((10**13,), dtype="O"), _built, "load_weights",
     r"'junk'"),
    ("weight-declares-1e13", _member_declares("dense/W", (10**13,)), _built, "load_weights",
     r"layer 'dense' W.*\(4, 5\).*\(10000000000000,\)"),
    ("weight-declares-1e13-unbuilt", _member_declares("dense_1/W", (10**13, K)), _unbuilt,
     "load_weights", r"'dense_1/W'|layer 'dense_1' W"),
    ("step-10**400", _header_value(step=10**400), _compiled, "load_checkpoint", r"step"),
    ("step-2**53", _header_value(step=2**53), _compiled, "load_checkpoint", r"step"),
    ("epoch-10**400", _header_value(epoch=10**400), _compiled, "load_checkpoint", r"epoch"),
    ("header-declares-1e12-bytes", _huge_header, _built, "load_weights", r"header"),
]


@pytest.mark.parametrize("case", CRAFTED_CASES, ids=[c[0] for c in CRAFTED_CASES])
def test_crafted_files_are_refused_from_their_headers(backend, tmp_path, case):
    _, make, new_model, method, pattern = case
    path = make(tmp_path)
    m = new_model()
    was_built = m.built
    before = snapshot(m) if was_built else None
    refused_cheaply(lambda: getattr(m, method)(path), xio.WeightFileError, pattern)
    assert m.built == was_built
    if was_built:
        assert_unchanged(m, before)


def test_an_extra_member_is_refused_unread(backend, tmp_path, monkeypatch):
    """Its data (8 MB, honestly declared) is never read, not even to check its CRC."""
    members, header = file_of(_built())
    members["notes"] = npy(np.zeros(2**20))
    path = craft(tmp_path / "extra.npz", members, header)
    read = {}
    real_read = zipfile.ZipExtFile.read

    def counting_read(self, n=-1):
        data = real_read(self, n)
        read[self.name] = read.get(self.name, 0) + len(data)
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    m = _built()
    before = snapshot(m)
    refused_cheaply(lambda: m.load_weights(path), xio.WeightFileError,
                    r"'notes'.*not part of this model")
    assert read.get("notes.npy", 0) < 4096, read
    assert_unchanged(m, before)
    # a checkpoint's optimizer state is not extra to load_weights: it is skipped, unread
    ck = tmp_path / "ck.npz"
    trained().save_checkpoint(ck, epoch=1)
    read.clear()
    m = model(seed=8)
    m.load_weights(ck)
    assert not any(name.startswith("optimizer/") for name in read), read


# -- file names and path types ------------------------------------------------------------

@pytest.mark.parametrize("name", ["w.h5", "model.weights.h5", "w.keras", "w.pt", "W.PTH",
                                  "w.pkl", "w.npy"])
def test_names_of_other_formats_are_refused(backend, tmp_path, name):
    m = trained()
    for save in (m.save_weights, lambda p: m.save_checkpoint(p, epoch=1)):
        with pytest.raises(ValueError, match=r"\.npz.*" + os.path.splitext(name)[0].replace(
                ".", r"\.") + r"\.npz"):
            save(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


class FsPath:
    """An ``os.PathLike`` that is not a ``pathlib.Path``."""

    def __init__(self, path):
        self.path = path

    def __fspath__(self):
        return self.path


def test_path_forms_save_and_load(backend, tmp_path):
    """Every form ``open`` takes names the same file; a name without a suffix is written
    as given (no ``.npz`` appended: the file is where it was asked to be)."""
    m = trained()
    forms = {"str": str, "bytes": os.fsencode, "pathlib": lambda t: t,
             "pathlike": lambda t: FsPath(str(t)),
             "bytes-pathlike": lambda t: FsPath(os.fsencode(t)),
             "no-suffix": lambda t: t.with_suffix("")}
    for form, make in forms.items():
        folder = tmp_path / form
        folder.mkdir()
        path = make(folder / "w.npz")
        m.save_weights(path)
        m.save_checkpoint(path, epoch=1)
        assert [p.name for p in folder.iterdir()] == ["w" if form == "no-suffix" else "w.npz"]
        n = model(seed=6)
        assert n.load_checkpoint(path) == 1, form
        n.load_weights(path)
        np.testing.assert_array_equal(n.predict(X), m.predict(X), err_msg=form)


PATH_CASES = [
    ("save-int", lambda m, t: m.save_weights(3), TypeError, r"path must be.*got int"),
    ("load-none", lambda m, t: m.load_weights(None), TypeError, r"path must be.*got NoneType"),
    ("checkpoint-list", lambda m, t: m.load_checkpoint([str(t / "w.npz")]), TypeError,
     r"path must be.*got list"),
    ("save-to-a-folder", lambda m, t: m.save_weights(t), IsADirectoryError,
     r"is a folder.*weights\.npz"),
    ("epoch-negative", lambda m, t: m.save_checkpoint(t / "c.npz", epoch=-1), ValueError,
     r"epoch.*-1"),
    ("epoch-fraction", lambda m, t: m.save_checkpoint(t / "c.npz", epoch=2.5), TypeError,
     r"epoch.*2\.5"),
    ("epoch-huge", lambda m, t: m.save_checkpoint(t / "c.npz", epoch=2**60), ValueError,
     r"epoch"),
]


@pytest.mark.parametrize("case", PATH_CASES, ids=[c[0] for c in PATH_CASES])
def test_bad_paths_and_epochs_say_what_is_accepted(backend, tmp_path, case):
    _, call, exc, pattern = case
    m = trained()
    m.save_weights(tmp_path / "w.npz")
    before = snapshot(m)
    with pytest.raises(exc, match=pattern):
        call(m, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]
    assert_unchanged(m, before)


@pytest.mark.parametrize("path, exc, pattern", [
    ("ck.h5", ValueError, r"names a \.h5 file.*'ck\.npz'"),
    ("best-{epoch}.keras", ValueError, r"names a \.keras file"),
    (3, TypeError, r"str, bytes or os\.PathLike, got int"),
], ids=["h5", "keras", "int"])
def test_model_checkpoint_refuses_other_formats_when_made(backend, path, exc, pattern):
    """Refused in the constructor, not when the first epoch ends."""
    with pytest.raises(exc, match=pattern):
        xn.callbacks.ModelCheckpoint(path)


def test_model_checkpoint_takes_a_bytes_path(backend, tmp_path):
    path = os.fsencode(tmp_path / "ck-{epoch}.npz")
    model().fit(X, Y, epochs=2, batch_size=4, verbose=0,
                callbacks=[xn.callbacks.ModelCheckpoint(path, monitor="loss")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck-1.npz", "ck-2.npz"]
