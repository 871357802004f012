"""The TensorBoard callback: its event files read back with TensorBoard's own reader.

Keras' layout is the reference: ``log_dir/train`` and ``log_dir/validation``, scalars
``epoch_<key>`` with ``val_`` dropped in the validation folder, one value per epoch.
"""
from __future__ import annotations

import numpy as np
import pytest

import xpnet as xn
from xpnet.callbacks import TensorBoard
from xpnet.layers import Dense


def _reader(folder):
    pytest.importorskip("tensorboardX", reason="the writer: pip install 'xpnet[tensorboard]'")
    acc = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                              reason="TensorBoard's reader checks the files")
    events = acc.EventAccumulator(str(folder), size_guidance={acc.HISTOGRAMS: 0, acc.SCALARS: 0})
    events.Reload()
    return events


def _fit(tmp_path, **kwargs):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 4)), rng.integers(0, 3, 60)
    model = xn.Sequential([Dense(5, activation="relu", input_dim=4, name="hidden"),
                           Dense(3, activation="softmax", name="out")], seed=0)
    model.compile(xn.optimizers.Adam(learning_rate=0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    cb = TensorBoard(log_dir=tmp_path / "logs", **kwargs)
    history = model.fit(x, y, epochs=3, batch_size=20, validation_split=0.25, verbose=0,
                        callbacks=[cb])
    return model, history


def test_scalars_per_epoch_in_keras_layout(tmp_path, backend):
    pytest.importorskip("tensorboardX", reason="the writer: pip install 'xpnet[tensorboard]'")
    _, history = _fit(tmp_path)
    train, val = _reader(tmp_path / "logs" / "train"), _reader(tmp_path / "logs" / "validation")
    assert set(train.Tags()["scalars"]) == {"epoch_loss", "epoch_accuracy"}
    assert set(val.Tags()["scalars"]) == {"epoch_loss", "epoch_accuracy"}
    for events, prefix in ((train, ""), (val, "val_")):
        for name in ("loss", "accuracy"):
            got = events.Scalars(f"epoch_{name}")
            assert [e.step for e in got] == [0, 1, 2]
            np.testing.assert_allclose([e.value for e in got], history.history[prefix + name],
                                       rtol=1e-6)  # stored as float32


def test_weight_histograms_every_n_epochs(tmp_path):
    pytest.importorskip("tensorboardX", reason="the writer: pip install 'xpnet[tensorboard]'")
    model, _ = _fit(tmp_path, histogram_freq=2)
    train = _reader(tmp_path / "logs" / "train")
    assert set(train.Tags()["histograms"]) == set(model.get_params(trainable_only=True))
    steps = [h.step for h in train.Histograms("hidden/W")]
    assert steps == [0, 2]
    last = train.Histograms("hidden/W")[-1].histogram_value
    w = xn.to_numpy(model.get_params()["hidden/W"])
    assert last.num == w.size and last.min == pytest.approx(w.min(), rel=1e-6)


@pytest.mark.parametrize("kwargs", [{"write_images": True}, {"profile_batch": 2},
                                    {"embeddings_freq": 1}, {"update_freq": "batch"}])
def test_what_is_not_supported_is_refused(kwargs, tmp_path):
    pytest.importorskip("tensorboardX", reason="the writer: pip install 'xpnet[tensorboard]'")
    with pytest.raises(NotImplementedError, match="not supported|only 'epoch'"):
        TensorBoard(log_dir=tmp_path, **kwargs)


def test_without_a_writer_the_extra_is_named(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"xpnet\[tensorboard\]"):
        TensorBoard()
