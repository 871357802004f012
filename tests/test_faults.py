"""Training survives faults: SIGKILL at random points never loses or corrupts the
checkpoint, a resumed run ends where an uninterrupted one does, a diverging run stops
with a clear message, and long runs keep their memory flat.
"""
from __future__ import annotations

import gc
import multiprocessing as mp
import os
import sys
import time
import tracemalloc
import warnings

import numpy as np
import pytest

import _kill_worker as kw
import xpnet as xn
from xpnet import io as xio
from xpnet.callbacks import Callback, EarlyStopping, ModelCheckpoint, TerminateOnNaN
from xpnet.layers import BatchNormalization, Dense, Dropout

RANDOM_KILLS = 24
SELF_KILLS = ("mid-write", "before-fsync", "before-rename")


@pytest.fixture(scope="module")
def forkserver(tmp_path_factory):
    """Children forked from a server that has imported xpnet and the backends once. JAX's
    children share a compilation cache on disk: the first compiles the step, the 27 others
    read it (else each would spend seconds compiling the same step again)."""
    if "forkserver" not in mp.get_all_start_methods():
        pytest.skip("the kill test needs the 'forkserver' start method (POSIX)")
    env = {"JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax_cache")),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # read by the fork server's JAX when it starts
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["_kill_worker", "array_api_strict", "torch", "jax"])
    yield ctx
    for k, v in before.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _check_checkpoint(path, ref):
    """Load ``path`` into a fresh model and compare it with the uninterrupted run."""
    m = kw.make_model()
    epoch = m.load_checkpoint(path)
    arrays, header = xio.load_arrays(path)
    assert header["epoch"] == epoch and 1 <= epoch <= kw.EPOCHS
    assert [e["name"] for e in header["layers"]] == ["dense", "dropout", "dense_1"]
    weights, slots, step = ref[epoch]
    got = m.get_weights()
    assert [w.shape for w in got] == [w.shape for w in weights] == [(4, 8), (8,), (8, 3), (3,)]
    for a, b in zip(got, weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert set(slots) == {k for k in arrays if k.startswith("optimizer/")}
    for key, value in slots.items():
        np.testing.assert_allclose(arrays[key], value, rtol=1e-5, atol=1e-7)
    assert header["optimizer"] == {"class": "Adam", "step": step} and step == 2 * epoch
    return epoch


def _check_folder(folder, path):
    """Only the checkpoint matches ``*.npz``; anything else is a named xpnet temp file."""
    assert sorted(folder.glob("*.npz")) == [path]
    strays = [p for p in folder.iterdir() if p != path]
    assert all(p.name.startswith(".xpnet-") and p.name.endswith(".npz.tmp") for p in strays), strays
    return len(strays)


def _start(ctx, backend, path, kill_at=None):
    counter = ctx.RawValue("i", -1)  # no lock: a killed child must not leave one held
    proc = ctx.Process(target=kw.train, args=(backend.name, str(path), counter, kill_at))
    proc.start()
    return proc, counter


def test_sigkill_never_loses_or_corrupts_the_checkpoint(backend, tmp_path, forkserver):
    ref = kw.reference()
    path = tmp_path / "ckpt.npz"
    rng = np.random.default_rng(20240611)
    targets = np.sort(rng.choice(np.arange(1, kw.EPOCHS - 30), RANDOM_KILLS, replace=False))
    survived, last, t0 = [], 0, time.perf_counter()
    for target in targets:
        proc, counter = _start(forkserver, backend, path)
        deadline = time.monotonic() + 60
        while counter.value < target and proc.is_alive() and time.monotonic() < deadline:
            time.sleep(0.0002)
        time.sleep(rng.uniform(0, 0.004))  # a random point inside the following epoch(s)
        assert proc.is_alive(), f"the child ended before the kill (exit code {proc.exitcode})"
        seen = counter.value
        proc.kill()
        proc.join()
        assert proc.exitcode == -9
        epoch = _check_checkpoint(path, ref)
        assert last <= epoch and seen <= epoch <= seen + 1, (last, seen, epoch)
        survived.append(epoch)
        last = epoch
    for where in SELF_KILLS:  # inside the save itself, at chosen steps
        proc, counter = _start(forkserver, backend, path, kill_at=(last + 2, where))
        proc.join(60)
        assert proc.exitcode == -9, where
        assert _check_checkpoint(path, ref) == last + 1, where  # the old file, whole
        survived.append(last + 1)
        last += 1
    strays = _check_folder(tmp_path, path)
    proc, counter = _start(forkserver, backend, path)  # resume to the end, unhurt
    proc.join(60)
    assert proc.exitcode == 0
    assert _check_checkpoint(path, ref) == kw.EPOCHS
    assert len(survived) == RANDOM_KILLS + len(SELF_KILLS)
    print(f"\n{backend.name}: {len(survived)} kill points survived at checkpoint epochs "
          f"{survived}; {strays} stray temp files (never *.npz); "
          f"{time.perf_counter() - t0:.1f} s")


def test_saves_are_atomic_temp_file_fsync_rename(backend, tmp_path, monkeypatch):
    """The protocol itself: a temp file in the target's folder, fsync'ed, then renamed."""
    m = kw.make_model()
    m.build()
    target = tmp_path / "w.npz"
    calls = []
    real_fsync, real_replace = xio.os.fsync, xio.os.replace

    def fsync(fd):
        calls.append(("fsync", fd))
        return real_fsync(fd)

    def replace(src, dst):
        calls.append(("replace", src, dst))
        assert os.path.dirname(src) == os.path.dirname(os.fspath(dst)) == str(tmp_path)
        assert os.path.basename(src).startswith(".xpnet-") and not src.endswith(".npz")
        xio.load_arrays(src)  # complete before it takes the target's name
        return real_replace(src, dst)

    monkeypatch.setattr(xio.os, "fsync", fsync)
    monkeypatch.setattr(xio.os, "replace", replace)
    m.save_weights(target)
    kinds = [c[0] for c in calls]
    assert kinds[:2] == ["fsync", "replace"], kinds  # file synced before the rename
    assert kinds[2:] == ["fsync"], kinds  # then the folder, so the rename itself is durable
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temp(backend, tmp_path, monkeypatch):
    m = kw.make_model()
    m.build()
    target = tmp_path / "w.npz"
    m.save_weights(target)
    old = target.read_bytes()

    def disk_full(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xio.np, "savez", disk_full)
    with pytest.raises(OSError, match="No space left"):
        m.save_checkpoint(target, epoch=3)
    assert target.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


# ---------------------------------------------------------------- resuming

RX = np.random.default_rng(3).normal(size=(20, 4)).astype("float32")
RY = (RX[:, 0] > 0).astype("int64") + (RX[:, 1] > 0.5).astype("int64")


def _resumable(optimizer, seed):
    m = xn.Sequential([Dense(8, activation="relu", input_dim=4), Dropout(0.3),
                       BatchNormalization(), Dense(3, activation="softmax")], seed=seed)
    opt = (xn.optimizers.Momentum(lr=0.05, momentum=0.9) if optimizer == "momentum"
           else xn.optimizers.Adam(lr=0.01))
    m.compile(opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_resume_from_checkpoint_matches_an_unbroken_run(backend, tmp_path, optimizer):
    fit = dict(batch_size=6, shuffle=True, seed=42, verbose=0)
    full = _resumable(optimizer, seed=1)
    h_full = full.fit(RX, RY, epochs=8, **fit)
    first = _resumable(optimizer, seed=1)
    first.fit(RX, RY, epochs=3, callbacks=[ModelCheckpoint(tmp_path / "ck-{epoch}.npz")], **fit)
    resumed = _resumable(optimizer, seed=99)  # other initial weights: all must come from the file
    k = resumed.load_checkpoint(tmp_path / "ck-3.npz")
    assert k == 3 and resumed.opt_state["step"] == 3 * 4
    h_resumed = resumed.fit(RX, RY, epochs=8, initial_epoch=k, **fit)
    assert h_resumed.epoch == [3, 4, 5, 6, 7]
    np.testing.assert_allclose(h_resumed.history["loss"], h_full.history["loss"][3:], rtol=1e-5)
    for a, b in zip(resumed.get_weights(), full.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # the control: weights alone, without the optimizer state, end elsewhere
    weights_only = _resumable(optimizer, seed=99)
    weights_only.load_weights(tmp_path / "ck-3.npz")
    weights_only.fit(RX, RY, epochs=8, initial_epoch=3, **fit)
    gap = max(np.abs(a - b).max() for a, b in zip(weights_only.get_weights(), full.get_weights()))
    assert gap > 1e-4


# ---------------------------------------------------------------- divergence

class Recorder(Callback):
    def on_train_begin(self, logs=None):
        self.weights = {}

    def on_epoch_end(self, epoch, logs=None):
        self.weights[epoch] = self.model.get_weights()


class BlowUpAt(Callback):
    def __init__(self, epoch, lr=1e12):
        self.epoch, self.lr = epoch, lr

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.optimizer.lr = self.lr


def _regression(lr, seed=0):
    m = xn.Sequential([Dense(8, activation="tanh", input_dim=4), Dense(1)], seed=seed)
    m.compile(xn.optimizers.SGD(lr=lr), loss="mse")
    return m, RX * 10, (RX[:, :1] * 3).astype("float32")


def test_a_learning_rate_that_blows_up_stops_training_with_a_message(backend):
    m, x, y = _regression(lr=5.0)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning) as caught:
        hist = m.fit(x, y, epochs=200, batch_size=4, verbose=0)
    messages = [str(w.message) for w in caught if "xpnet" in str(w.message)]
    assert len(messages) == 1, messages
    assert hist.stop_reason and "non-finite" in hist.stop_reason
    stopped = len(hist.epoch)  # the non-finite epoch is recorded, with its loss
    assert f"epoch {stopped}, batch " in messages[0] and "learning rate" in messages[0]
    assert len(hist.epoch) < 200
    assert all(np.isfinite(v) for vals in hist.history.values() for v in vals[:-1])
    assert not np.isfinite(hist.history["loss"][-1])


def test_early_stopping_keeps_the_best_weights_when_training_diverges(backend):
    m, x, y = _regression(lr=0.001)
    rec = Recorder()
    stop = EarlyStopping(monitor="loss", patience=100, restore_best_weights=True)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning, match=r"non-finite") as caught:
        hist = m.fit(x, y, epochs=50, batch_size=5, callbacks=[rec, stop, BlowUpAt(6),
                                                                TerminateOnNaN()], verbose=0)
    ran = len(hist.epoch) - 1  # epochs with a finite loss; then the non-finite one
    assert 6 <= ran < 50 and hist.epoch == list(range(ran + 1))
    assert f"at epoch {ran + 1}, batch " in str(caught[0].message)
    assert hist.stop_reason == str(caught[0].message)[len("xpnet: "):-len(". Training stopped.")]
    best = int(np.argmin(hist.history["loss"][:ran]))
    assert stop.best_epoch == best and best <= 5
    for a, b in zip(m.get_weights(), rec.weights[best]):
        np.testing.assert_array_equal(a, b)
    pred = m.predict(x)
    assert np.all(np.isfinite(pred))
    assert m.evaluate(x, y, verbose=0) == pytest.approx(hist.history["loss"][best], rel=0.2)


# ---------------------------------------------------------------- long runs

class MemoryWindows(Callback):
    """Traced peak and gc object count over each window of ``size`` epochs.

    Each window starts with ``gc.collect()``: garbage in reference cycles waiting for the
    collector (array-api-strict makes some) is not growth.
    """

    def __init__(self, size=100):
        self.size, self.peaks, self.objects, self.history_bytes = size, [], [], []

    def _record(self):
        self.peaks.append(tracemalloc.get_traced_memory()[1])
        self.objects.append(len(gc.get_objects()))
        h = self.model.history
        self.history_bytes.append(sum(sys.getsizeof(seq) + sum(sys.getsizeof(v) for v in seq)
                                      for seq in [h.epoch, *h.history.values()]))

    def on_epoch_begin(self, epoch, logs=None):
        if epoch % self.size == 0:
            if epoch:
                self._record()
            gc.collect()
            tracemalloc.reset_peak()

    def on_train_end(self, logs=None):
        self._record()


def test_a_thousand_epochs_keep_memory_flat(backend):
    x, y = RX[:8], RY[:8]
    m = xn.Sequential([Dense(8, activation="relu", input_dim=4), Dropout(0.2),
                       Dense(3, activation="softmax")], seed=0)
    m.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    windows = MemoryWindows(100)
    gc.collect()
    tracemalloc.start()
    try:
        hist = m.fit(x, y, epochs=1000, batch_size=8, callbacks=[windows], verbose=0, seed=0)
    finally:
        tracemalloc.stop()
    assert len(windows.peaks) == 10 and len(hist.epoch) == 1000
    # the History (its lists, floats and ints, measured with sys.getsizeof) is the one
    # thing that grows; the margin: 16 KB, plus each History list once, since a list
    # being resized holds its old and its new block for a moment
    h = m.history
    margin = 16 * 1024 + sum(sys.getsizeof(seq) for seq in [h.epoch, *h.history.values()])
    grown = windows.history_bytes[-1] - windows.history_bytes[0]
    assert windows.peaks[-1] - windows.peaks[0] <= grown + margin, (windows.peaks, grown)
    assert windows.objects[-1] - windows.objects[1] <= 200, windows.objects
    print(f"\n{backend.name}: traced peak per 100 epochs {windows.peaks}; History grew "
          f"{grown:,} B (margin {margin:,} B); gc objects {windows.objects[0]} -> "
          f"{windows.objects[-1]}")


def test_predict_memory_is_the_output_plus_a_few_batches(backend):
    rows, batch = 200_000, 2048
    x = np.random.default_rng(0).normal(size=(rows, 4)).astype("float32")
    m = xn.Sequential([Dense(16, activation="relu", input_dim=4), Dense(3, activation="softmax")],
                      seed=0)
    m.build()
    head = m.predict(x[:batch])
    gc.collect()
    tracemalloc.start()
    try:
        out = m.predict(x, batch_size=batch)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == (rows, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[:batch], head, rtol=1e-6, atol=1e-7)
    batch_bytes = batch * 16 * 4  # the widest activation of one batch
    bound = out.nbytes + 8 * batch_bytes + 256 * 1024  # + the finite check's fixed-size mask
    assert peak <= bound, f"peak {peak:,} bytes > {bound:,} (output {out.nbytes:,})"
    assert peak < 1.5 * out.nbytes  # a concat of the batches would take twice the output
    print(f"\n{backend.name}: predict {rows:,} rows: output {out.nbytes:,} B, traced peak "
          f"{peak:,} B")
