"""Input pipelines in fit: iterables and generators of batches, xn.data.Dataset and its
prefetch thread, validation_data as a pipeline, and the refusals."""
from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import xpnet as xn
from xpnet.callbacks import EarlyStopping, LambdaCallback
from xpnet.dataset import Prefetch

N, BATCH = 90, 20  # 5 batches, the last one short


def _data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.integers(0, 3, n)


def _model(dropout=False, **compile_kw):
    layers = [xn.layers.Dense(8, input_dim=4, activation="tanh")]
    layers += [xn.layers.Dropout(0.3)] if dropout else []
    layers += [xn.layers.Dense(3, activation="softmax")]
    model = xn.Sequential(layers, seed=1, dtype="float64")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], **compile_kw)
    return model


def _batches(x, y, w=None, size=BATCH):
    extra = () if w is None else (w,)
    return [(x[i:i + size], y[i:i + size], *(e[i:i + size] for e in extra))
            for i in range(0, len(x), size)]


def _same(h1, h2, rel=1e-12):
    assert h1.epoch == h2.epoch
    for key, values in h1.history.items():
        assert h2.history[key] == pytest.approx(values, rel=rel, abs=1e-12), key


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "xpnet-prefetch" and t.is_alive()]


@pytest.mark.parametrize("prefetch", [0, 2])
def test_dataset_equals_fit_on_arrays(backend, prefetch):
    """Shuffled, with dropout: the same numbers as fit(x, y, batch_size, seed)."""
    x, y = _data()
    ds = xn.data.Dataset(x, y, batch_size=BATCH)
    ds = ds.prefetch(prefetch) if prefetch else ds
    h1 = _model(dropout=True).fit(x, y, epochs=3, batch_size=BATCH, seed=7, verbose=0)
    h2 = _model(dropout=True).fit(ds, epochs=3, seed=7, verbose=0)
    _same(h1, h2)
    assert h2.params["steps"] == 5 and h2.params["batch_size"] == BATCH
    assert not _prefetch_threads()


def test_dataset_of_device_arrays_and_its_own_seed(backend, to_xp):
    x, y = _data()
    ds = xn.data.Dataset(to_xp(x), to_xp(y), batch_size=BATCH, seed=3).prefetch(1)
    h1 = _model().fit(to_xp(x), to_xp(y), epochs=2, batch_size=BATCH, seed=3, verbose=0)
    h2 = _model().fit(ds, epochs=2, seed=99, verbose=0)  # the Dataset's seed shuffles
    _same(h1, h2)


def test_dataset_drop_remainder_and_weights(backend):
    x, y = _data()
    w = np.linspace(0.5, 2.0, N)
    ds = xn.data.Dataset(x, y, w, batch_size=BATCH, shuffle=False, drop_remainder=True)
    assert len(ds) == 4
    h1 = _model().fit(x[:80], y[:80], sample_weight=w[:80], epochs=2, batch_size=BATCH,
                      shuffle=False, verbose=0)
    h2 = _model().fit(ds, epochs=2, verbose=0)
    _same(h1, h2)


def test_list_of_batches_equals_arrays_in_order(backend):
    x, y = _data()
    h1 = _model().fit(x, y, epochs=3, batch_size=BATCH, shuffle=False, verbose=0)
    h2 = _model().fit(_batches(x, y), epochs=3, verbose=0)
    _same(h1, h2)
    assert h2.params["steps"] == 5


def test_weighted_batches_and_class_weight(backend):
    x, y = _data()
    w = np.linspace(0.5, 2.0, N)
    h1 = _model().fit(x, y, sample_weight=w, epochs=2, batch_size=BATCH, shuffle=False,
                      verbose=0)
    _same(h1, _model().fit(_batches(x, y, w), epochs=2, verbose=0))
    cw = {0: 1.0, 1: 2.0, 2: 0.5}
    h3 = _model().fit(x, y, class_weight=cw, epochs=2, batch_size=BATCH, shuffle=False,
                      verbose=0)
    _same(h3, _model().fit(_batches(x, y), class_weight=cw, epochs=2, verbose=0))


def test_generator_is_consumed_across_epochs(backend):
    """An endless generator: steps_per_epoch batches an epoch, no batch drawn twice."""
    x, y = _data()
    batches, drawn = _batches(x, y), []

    def endless():
        k = 0
        while True:
            drawn.append(k)
            yield batches[k % 5]
            k += 1

    h1 = _model().fit(x[:60], y[:60], epochs=1, batch_size=BATCH, shuffle=False, verbose=0)
    h2 = _model().fit(endless(), steps_per_epoch=3, epochs=1, verbose=0)
    _same(h1, h2)
    h3 = _model().fit(endless(), steps_per_epoch=2, epochs=4, verbose=0)
    assert len(h3.epoch) == 4 and h3.params["steps"] == 2
    assert len(drawn) == 3 + 8  # the first fit drew 3, the second 4 x 2


def test_a_finite_generator_that_runs_out_stops_with_a_warning(backend):
    x, y = _data()
    gen = iter(_batches(x, y))  # 5 batches
    with pytest.warns(UserWarning, match="ran out of data"):
        history = _model().fit(gen, steps_per_epoch=2, epochs=4, verbose=0)
    assert history.epoch == [0, 1, 2]  # 2 + 2 + 1 batches: the short epoch is recorded
    assert "ran out of data in epoch 3" in history.stop_reason
    with pytest.warns(UserWarning, match="ran out of data"):  # one epoch = the whole of it
        history = _model().fit((b for b in _batches(x, y)), epochs=3, verbose=0)
    assert history.epoch == [0]


def test_steps_per_epoch_cuts_a_reiterable(backend):
    x, y = _data()
    h1 = _model().fit(x[:40], y[:40], epochs=3, batch_size=BATCH, shuffle=False, verbose=0)
    h2 = _model().fit(_batches(x, y), steps_per_epoch=2, epochs=3, verbose=0)
    _same(h1, h2)
    with pytest.warns(UserWarning, match="ran out of data"):
        h3 = _model().fit(_batches(x, y), steps_per_epoch=7, epochs=3, verbose=0)
    assert h3.epoch == [0]


def test_validation_data_as_a_pipeline(backend):
    x, y = _data()
    xv, yv = _data(1, 50)
    h1 = _model().fit(x, y, epochs=2, batch_size=BATCH, shuffle=False, verbose=0,
                      validation_data=(xv, yv))
    h2 = _model().fit(_batches(x, y), epochs=2, verbose=0,
                      validation_data=_batches(xv, yv, size=7))
    h3 = _model().fit(x, y, epochs=2, batch_size=BATCH, shuffle=False, verbose=0,
                      validation_data=xn.data.Dataset(xv, yv, batch_size=13, shuffle=False))
    _same(h1, h2)
    _same(h1, h3)
    endless = (b for _ in range(100) for b in _batches(xv, yv, size=10))
    h4 = _model().fit(_batches(x, y), epochs=2, verbose=0, validation_data=endless,
                      validation_steps=5)  # 50 rows a validation
    _same(h1, h4)


def test_refusals():
    x, y = _data()
    model = _model()
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(_batches(x, y), validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match="weights come in the batches"):
        model.fit(_batches(x, y), sample_weight=np.ones(N), verbose=0)
    with pytest.raises(TypeError, match="leave y=None"):
        model.fit(iter(_batches(x, y)), y, verbose=0)
    with pytest.raises(TypeError, match="fit got x but no y"):
        model.fit(x, verbose=0)
    with pytest.raises(ValueError, match="steps_per_epoch is for input pipelines"):
        model.fit(x, y, steps_per_epoch=3, verbose=0)
    with pytest.raises(ValueError, match="validation_steps is for"):
        model.fit(x, y, validation_data=(x, y), validation_steps=3, verbose=0)
    with pytest.raises(ValueError, match="validation_steps"):
        model.fit(_batches(x, y), validation_data=iter(_batches(x, y)), verbose=0)
    with pytest.raises(TypeError, match="tuple"):
        model.fit([x[:10], x[10:20]], verbose=0)
    with pytest.raises(ValueError, match="yields no batch"):
        _model().fit([], verbose=0)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        model.fit(_batches(x, y), steps_per_epoch=0, verbose=0)


def test_each_batch_is_checked(backend):
    x, y = _data()
    bad = _batches(x, y)
    bad[3] = (np.where(np.arange(20)[:, None] == 4, np.nan, bad[3][0]), bad[3][1])
    with pytest.raises(ValueError, match="batch 3 of x: x holds NaN"):
        _model().fit(bad, epochs=1, verbose=0)
    labels = _batches(x, y)
    labels[2] = (labels[2][0], labels[2][1] + 3)
    with pytest.raises(ValueError, match="batch 2 of x"):
        _model().fit(labels, epochs=1, verbose=0)
    shapes = _batches(x, y)
    shapes[1] = (shapes[1][0][:, :3], shapes[1][1])
    with pytest.raises(ValueError, match="does not fit layer"):
        _model().fit(shapes, epochs=1, verbose=0)


def test_torch_dataloader(backend):
    torch = pytest.importorskip("torch", reason="DataLoader batches need PyTorch")
    from torch.utils.data import DataLoader, TensorDataset

    x, y = _data()
    loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                        batch_size=BATCH, shuffle=False)
    h1 = _model().fit(x, y, epochs=2, batch_size=BATCH, shuffle=False, verbose=0,
                      validation_data=(x[:30], y[:30]))
    h2 = _model().fit(loader, epochs=2, verbose=0, validation_data=loader, validation_steps=1)
    assert h2.params["steps"] == 5
    # validation: the loader's first batch (20 rows), not 30: compare the training keys
    for key in ("loss", "accuracy"):
        assert h2.history[key] == pytest.approx(h1.history[key], rel=1e-12)


def test_prefetch_thread_stops_on_early_stop_and_on_errors(backend):
    x, y = _data()
    ds = xn.data.Dataset(x, y, batch_size=5).prefetch(3)  # 18 batches an epoch

    def boom(batch, logs):
        if batch == 4:
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        _model().fit(ds, epochs=2, verbose=0, callbacks=LambdaCallback(on_train_batch_end=boom))
    assert not _prefetch_threads()
    model = _model()

    def stop(batch, logs):
        if batch == 2:
            model.stop_training = True
    history = model.fit(ds, epochs=3, verbose=0, callbacks=LambdaCallback(on_train_batch_end=stop))
    assert history.epoch == [0] and not _prefetch_threads()
    history = _model().fit(ds, epochs=20, verbose=0, validation_data=(x, y),
                           callbacks=EarlyStopping(monitor="loss", min_delta=10.0, patience=0))
    assert len(history.epoch) == 2 and not _prefetch_threads()


def test_prefetch_hands_on_errors_and_closes():
    def items():
        yield 1
        yield 2
        raise KeyError("bad batch")
    it = Prefetch(items(), 1)
    assert next(it) == 1 and next(it) == 2
    with pytest.raises(KeyError, match="bad batch"):
        next(it)
    assert not it.thread.is_alive()
    endless = Prefetch(iter(range(10**9)), 2)
    assert next(endless) == 0
    endless.close()
    assert not endless.thread.is_alive()


def test_jit_compiled_step_takes_the_batches():
    pytest.importorskip("jax", reason="jit_compile compiles on the jax backend")
    x, y = _data()
    with xn.use_backend("jax"):
        eager = _model(jit_compile=False).fit(xn.data.Dataset(x, y, batch_size=BATCH).prefetch(2),
                                              epochs=2, seed=2, verbose=0)
        model = _model(jit_compile=True)
        jit = model.fit(xn.data.Dataset(x, y, batch_size=BATCH).prefetch(2), epochs=2, seed=2,
                        verbose=0)
        gen = model.fit(iter(_batches(x, y) * 2), steps_per_epoch=5, epochs=2, verbose=0)
        assert xn.compiled.steps(model).traces == 2  # batches of 20 and of 10 rows, once each
    _same(eager, jit, rel=1e-10)
    assert len(gen.epoch) == 2


def test_progress_bar_and_lines(backend, capsys):
    x, y = _data()
    _model().fit(_batches(x, y), epochs=2, verbose=1)
    err = capsys.readouterr().err
    assert "Epoch 2/2" in err and "5/5" in err and "loss=" in err
    _model().fit(iter(_batches(x, y) * 2), steps_per_epoch=5, epochs=2, verbose=1)
    assert "5/5" in capsys.readouterr().err
    _model().fit((b for b in _batches(x, y)), epochs=1, verbose=1)  # length unknown
    assert "5batch" in capsys.readouterr().err.replace(" ", "")
    history = _model().fit(_batches(x, y), epochs=2, verbose=2)
    assert f"{history.history['loss'][1]:.4f}" in capsys.readouterr().out


def test_dataset_on_its_own():
    x, y = _data()
    ds = xn.data.Dataset(x, y, batch_size=BATCH, shuffle=False)
    assert len(ds) == 5 and "rows=90" in repr(ds)
    batches = list(ds)
    assert [len(b[0]) for b in batches] == [20, 20, 20, 20, 10]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    shuffled = xn.data.Dataset(x, y, batch_size=BATCH, seed=4)
    first, second = (np.concatenate([b[1] for b in shuffled]) for _ in range(2))
    assert sorted(first) == sorted(y) and not np.array_equal(first, second)  # a new order
    with pytest.raises(ValueError, match="drop_remainder"):
        xn.data.Dataset(x[:5], y[:5], batch_size=10, drop_remainder=True)
    with pytest.raises(ValueError, match="different lengths"):
        xn.data.Dataset(x, y[:5])
    with pytest.raises(ValueError, match="buffer_size"):
        ds.prefetch(0)
    cw = {0: 1.0, 1: 3.0, 2: 0.5}
    h1 = _model().fit(x, y, class_weight=cw, epochs=2, batch_size=BATCH, seed=5, verbose=0)
    h2 = _model().fit(xn.data.Dataset(x, y, batch_size=BATCH), class_weight=cw, epochs=2,
                      seed=5, verbose=0)
    _same(h1, h2)


def test_prefetch_moves_host_rows_through_the_backends_pinned_copy():
    """The page-locked branch (CuPy, torch on CUDA) cannot run without a GPU: its wiring is
    checked with a stand-in device (torch's meta) and a stand-in copy."""
    torch = pytest.importorskip("torch", reason="the stand-in device is torch's meta")
    import dataclasses

    from xpnet import backend as B
    from xpnet.dataset import batches

    assert B.load("torch").pinned is None or str(B.load("torch").device) != "cpu"
    copies = []

    def pinned(host, backend):
        copies.append((host.shape, str(host.dtype)))
        return torch.empty(host.shape, dtype=getattr(torch, str(host.dtype)), device="meta")

    meta = dataclasses.replace(B.load("torch"), device=torch.device("meta"), pinned=pinned)
    assert not meta.on_host
    x, y = _data()
    out = list(batches(x, y, None, ("float32", "int64"), np.arange(N)[::-1], [(0, 50), (50, 90)],
                       meta, pinned=True))
    assert copies == [((50, 4), "float32"), ((50,), "int64"), ((40, 4), "float32"), ((40,), "int64")]
    assert all(b[0].device.type == "meta" and b[2] is None for b in out)
    copies.clear()
    list(batches(x, y, None, ("float32", "int64"), None, [(0, 50)], meta, pinned=False))
    assert copies == []  # without prefetch: the ordinary move
