"""Whole-model files: ``model.save`` / ``xn.load_model``."""
from __future__ import annotations

import numpy as np
import pytest

import xpnet as xn
from xpnet import checkpoint as C
from xpnet import saving as S
from xpnet.layers import Layer


def _model(**compile_args):
    model = xn.Sequential([
        xn.layers.Flatten(input_shape=(3, 2)),
        xn.layers.Dense(12, activation="tanh", kernel_initializer="he_uniform"),
        xn.layers.BatchNormalization(momentum=0.8),
        xn.layers.Dense(8, activation=xn.layers.LeakyReLU(0.1)),
        xn.layers.LayerNormalization(epsilon=1e-4),
        xn.layers.Activation("swish"),
        xn.layers.Dense(3, activation="softmax"),
    ], seed=0, name="net")
    model.compile(**(compile_args or dict(
        optimizer=xn.optimizers.Adam(lr=0.005), loss="sparse_categorical_crossentropy",
        metrics=["accuracy", xn.metrics.SparseTopKCategoricalAccuracy(2)])))
    return model


def _data(n=90):
    rng = np.random.default_rng(0)
    return rng.random((n, 3, 2)).astype("float32"), rng.integers(0, 3, n)


def test_a_saved_model_comes_back_whole(backend, tmp_path):
    x, y = _data()
    model = _model()
    model.layers[2].trainable = False
    model.fit(x, y, epochs=2, batch_size=30, verbose=0, seed=1)
    model.save(tmp_path / "m.xpnet")
    back = xn.load_model(tmp_path / "m.xpnet")
    assert back.backend.name == backend.name and back.name == "net"
    assert [type(l) for l in back.layers] == [type(l) for l in model.layers]
    assert [l.name for l in back.layers] == [l.name for l in model.layers]
    assert back.layers[2].trainable is False and back.layers[2].momentum == 0.8
    assert back.layers[3].activation.negative_slope == 0.1
    assert type(back.optimizer) is xn.optimizers.Adam and back.optimizer.lr == 0.005
    assert back.metric_names == model.metric_names
    np.testing.assert_array_equal(xn.to_numpy(back.predict(x)), xn.to_numpy(model.predict(x)))
    assert back.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    # the optimizer state came too: training on gives the same weights
    model.fit(x, y, epochs=1, batch_size=30, verbose=0, seed=2)
    back.fit(x, y, epochs=1, batch_size=30, verbose=0, seed=2)
    for a, b in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_a_file_loads_on_another_backend(backend, tmp_path):
    x, y = _data()
    with xn.use_backend("numpy"):
        model = _model()
        model.fit(x, y, epochs=1, verbose=0)
        model.save(tmp_path / "m.xpnet")
        expected = model.predict(x)
    back = xn.load_model(tmp_path / "m.xpnet")
    assert back.backend.name == backend.name
    np.testing.assert_allclose(xn.to_numpy(back.predict(x)), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("obj", [
    xn.layers.Dense(4, activation="gelu", use_bias=False), xn.layers.Dropout(0.3, seed=4),
    xn.layers.BatchNormalization(0.7, 1e-3, "zeros"), xn.layers.ELU(0.5), xn.layers.Softplus(),
    xn.optimizers.SGD(lr=0.3), xn.optimizers.Momentum(lr=0.2, momentum=0.8),
    xn.optimizers.Nesterov(), xn.optimizers.AdaGrad(), xn.optimizers.RMSprop(),
    xn.losses.CategoricalCrossentropy(from_logits=True), xn.losses.Huber(0.3),
    xn.losses.MeanSquaredError(), xn.metrics.BinaryAccuracy(0.2),
], ids=lambda o: type(o).__name__)
def test_serialize_round_trip(obj):
    entry = S.serialize(obj)
    again = S.deserialize(entry)
    assert type(again) is type(obj)
    assert S.serialize(again) == entry


def test_custom_layers_register_by_name(tmp_path):
    class Scale(Layer):
        def __init__(self, factor=2.0, name=None, input_shape=None):
            super().__init__(name=name, input_shape=input_shape)
            self.factor = factor

        def forward(self, x, training=True):
            return x * self.factor

        def backward(self, dout):
            return dout * self.factor

    model = xn.Sequential([xn.layers.Dense(2, input_dim=3), Scale(3.0)], seed=0)
    with pytest.raises(TypeError, match="register_layer"):
        model.save(tmp_path / "m.xpnet")
    xn.register_layer(Scale)
    try:
        model.save(tmp_path / "m.xpnet")
        back = xn.load_model(tmp_path / "m.xpnet")
        assert back.layers[1].factor == 3.0
        x = np.ones((2, 3), dtype="float32")
        np.testing.assert_array_equal(back.predict(x), model.predict(x))
    finally:
        del S._REGISTRY["layer"]["Scale"]
    with pytest.raises(ValueError, match="unknown class 'Scale'.*register"):
        xn.load_model(tmp_path / "m.xpnet")


def test_refusals(tmp_path):
    x, y = _data()
    model = _model()
    model.save_weights(tmp_path / "w.npz")
    with pytest.raises(xn.io.WeightFileError, match="no model.*load_weights"):
        xn.load_model(tmp_path / "w.npz")
    config = S._model_config(model)
    config["format"] = S.MODEL_FORMAT + 1
    C.save(model, tmp_path / "new.xpnet", extra={"model": config})
    with pytest.raises(xn.io.WeightFileError, match="newer than this xpnet reads"):
        xn.load_model(tmp_path / "new.xpnet")
    fn_loss = xn.losses.FunctionLoss(lambda t, p: p[:, 0], grad=lambda t, p: p)
    with pytest.raises(TypeError, match="cannot save FunctionLoss"):
        _model(optimizer="sgd", loss=fn_loss).save(tmp_path / "f.xpnet")
    with pytest.raises(ValueError, match="names a .keras file"):
        model.save(tmp_path / "m.keras")
    book = xn.Sequential([xn.layers.Affine(np.ones((2, 2)), np.zeros(2))])
    with pytest.raises(TypeError, match="Affine"):
        book.save(tmp_path / "a.xpnet")


def test_a_callable_initializer_is_not_saved_but_the_weights_are(tmp_path):
    model = xn.Sequential([xn.layers.Dense(2, input_dim=2,
                                           kernel_initializer=lambda s, d: np.full(s, 7.0))])
    model.save(tmp_path / "m.xpnet")
    back = xn.load_model(tmp_path / "m.xpnet")
    np.testing.assert_array_equal(back.layers[0].params["W"], np.full((2, 2), 7.0))
