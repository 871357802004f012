"""``predict``'s NaN/inf check of its input, and the activations that may compute in
their input's memory.

The check raises exactly when ``x`` holds NaN or infinity, names the same rows as
``check_finite``, raises nothing for a finite ``x`` whose ``x @ W + b`` overflows, reads
host data batch by batch (large batches) or once (small ones, and device data: no
device wait per batch), and is skipped with ``check_finite=False``.
"""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import xpnet as xn
from xpnet import backend as B
from xpnet import data as D
from xpnet import functions as F
from xpnet.layers import BatchNormalization, Dense, Flatten, Sigmoid, Softmax

RNG = np.random.default_rng(11)
N = 50
X = RNG.normal(size=(N, 6)).astype("float32")
IMAGES = RNG.random(size=(N, 2, 3)).astype("float32")


def _dense_first():
    return xn.Sequential([Dense(4, "sigmoid", input_dim=6), Dense(3, "softmax")], seed=0)


def _flatten_first():
    return xn.Sequential([Flatten(input_shape=(2, 3)), Dense(4, "relu"), Dense(3, "softmax")],
                         seed=0)


def _batchnorm_first():  # no probe: x itself is checked
    return xn.Sequential([BatchNormalization(input_shape=(6,)), Dense(3, "softmax")], seed=0)


MODELS = {"dense": (_dense_first, X), "flatten": (_flatten_first, IMAGES),
          "batchnorm": (_batchnorm_first, X)}


def _assert_names_row(info, row):
    """The message is check_finite's, and its row range holds the bad row."""
    found = re.fullmatch(r"x holds NaN or infinite values \(first in rows (\d+)\.\.(\d+)\); "
                         r"clean the data before using it", str(info.value))
    assert found, str(info.value)
    assert int(found[1]) <= row <= int(found[2]), str(info.value)


@pytest.mark.parametrize("where", ["host", "device"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("row", [0, 17, N - 1])
@pytest.mark.parametrize("kind", list(MODELS))
def test_bad_row_raises_the_check_finite_error(backend, kind, row, value, where):
    make, data = MODELS[kind]
    x = data.copy()
    x.reshape(N, -1)[row, 1] = value
    moved = x if where == "host" else B.asarray(x, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the ValueError, never a RuntimeWarning first
        with pytest.raises(ValueError) as info:
            make().predict(moved, batch_size=8)
    _assert_names_row(info, row)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_bad_row_is_found_even_with_all_zero_weights(backend, value):
    """IEEE: nan * 0 and inf * 0 are NaN, so a zero first layer still reveals the row."""
    model = _dense_first()
    W, b, *rest = model.get_weights()
    model.set_weights([np.zeros_like(W), np.zeros_like(b), *rest])
    x = X.copy()
    x[33, 0] = value
    with pytest.raises(ValueError) as info:
        model.predict(x, batch_size=10)
    _assert_names_row(info, 33)


def test_finite_input_whose_preactivation_overflows_is_not_refused(backend):
    model = _dense_first()
    W, *rest = model.get_weights()
    model.set_weights([np.full_like(W, 3e38), *rest])
    x = np.full((4, 6), 3e38, dtype="float32")  # finite; x @ W overflows to inf
    D.check_finite(x)  # the data really are finite
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumPy says "overflow encountered": that is true
        out = B.to_numpy(model.predict(x))
    assert out.shape == (4, 3)


@pytest.fixture
def reads(monkeypatch):
    """The ``(begin, end)`` of every read of x's rows by the NaN/inf check."""
    seen = []
    real = D._check_rows
    monkeypatch.setattr(D, "_check_rows", lambda *a: (seen.append(a[3:]), real(*a))[1])
    return seen


@pytest.mark.parametrize("where", ["host", "device"])
@pytest.mark.parametrize("batch", ["small", "large"])
def test_clean_input_is_read_once_or_batch_by_batch(backend, monkeypatch, reads, batch, where):
    """Where the first layer's pre-activations cannot stand in for x (BatchNormalization
    first): small batches and device data are read once before the loop, large host
    batches one by one, just before the model computes with them."""
    if batch == "large":
        monkeypatch.setattr(D, "_FINITE_BATCH", 1)
    model = _batchnorm_first()
    x = X if where == "host" else B.asarray(X, backend=backend)
    out = B.to_numpy(model.predict(x, batch_size=7))
    expected = np.concatenate([B.to_numpy(model(X[i:i + 7])) for i in range(0, N, 7)])
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)
    on_device = B.library_of(x) != "numpy"
    if batch == "large" and not on_device:
        assert reads == D.batch_slices(N, 7)
    else:
        assert reads == [(0, N)]


@pytest.mark.parametrize("kind", ["dense", "flatten"])
def test_clean_input_is_checked_on_the_preactivations_only(backend, kind, reads):
    """On a host backend, finite data never make predict read x for the check."""
    make, data = MODELS[kind]
    model = make()
    out = B.to_numpy(model.predict(data, batch_size=7))
    expected = np.concatenate([B.to_numpy(model(data[i:i + 7])) for i in range(0, N, 7)])
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)
    if backend.on_host:
        assert reads == []
    else:  # a device backend checks x once, before the loop (no sync per batch)
        assert reads == [(0, N)]


@pytest.mark.parametrize("kind", list(MODELS))
def test_check_finite_false_skips_the_check(backend, kind, reads):
    make, data = MODELS[kind]
    x = data.copy()
    x.reshape(N, -1)[3, 1] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NaN through the layers may warn: not predict's doing
        out = B.to_numpy(make().predict(x, batch_size=8, check_finite=False))
    assert reads == []
    assert np.isnan(out[3]).all() and np.isfinite(np.delete(out, 3, axis=0)).all()


def test_batchnorm_first_still_checks_x(backend, reads):
    _batchnorm_first().predict(X, batch_size=7)
    assert reads  # x itself was read


def test_integer_input_needs_no_check(backend):
    x = (X * 10).astype("int64")
    out = B.to_numpy(_dense_first().predict(x, batch_size=16))
    assert out.shape == (N, 3) and np.all(np.isfinite(out))


# -- activations that may use their input's memory ------------------------------------

@pytest.mark.parametrize("fn", [F.sigmoid, F.softmax], ids=["sigmoid", "softmax"])
def test_overwrite_x_gives_the_same_result_and_default_leaves_x(to_xp, fn):
    x = to_xp(RNG.normal(size=(5, 4)) * 4, "float64")
    before = B.to_numpy(x).copy()
    plain = B.to_numpy(fn(x))
    np.testing.assert_array_equal(B.to_numpy(x), before)  # untouched by default
    owned = B.to_numpy(fn(to_xp(before, "float64"), overwrite_x=True))
    np.testing.assert_array_equal(owned, plain)


@pytest.mark.parametrize("layer", [Sigmoid, Softmax], ids=["sigmoid", "softmax"])
def test_forward_owned_matches_forward(to_xp, layer):
    x = RNG.normal(size=(6, 3))
    a, b = layer(), layer()
    # copies: on NumPy to_xp hands back x itself, and forward_owned may write into it
    np.testing.assert_array_equal(B.to_numpy(a.forward_owned(to_xp(x.copy(), "float64"))),
                                  B.to_numpy(b.forward(to_xp(x.copy(), "float64"))))
    dout = to_xp(RNG.normal(size=(6, 3)), "float64")
    np.testing.assert_array_equal(B.to_numpy(a.backward(dout)), B.to_numpy(b.backward(dout)))


def test_dense_leaves_its_input_unchanged(to_xp):
    for act in ("sigmoid", "softmax", "relu", "tanh", None):
        layer = Dense(3, act)
        x = to_xp(RNG.normal(size=(4, 5)), "float64")
        before = B.to_numpy(x).copy()
        layer.forward(x)
        np.testing.assert_array_equal(B.to_numpy(x), before)


def test_a_dense_subclass_with_its_own_forward_is_run_as_written(backend, reads):
    """predict must not swap a user's forward for Affine's steps to probe it."""
    class Doubled(Dense):
        def forward(self, x, training=True):
            return super().forward(x, training) * 2.0

    model = xn.Sequential([Doubled(4, "sigmoid", input_dim=6), Dense(3, "softmax")], seed=0)
    out = B.to_numpy(model.predict(X, batch_size=16))
    np.testing.assert_allclose(out, B.to_numpy(model(X)), rtol=1e-6, atol=1e-7)
    plain = xn.Sequential([Dense(4, "sigmoid", input_dim=6), Dense(3, "softmax")], seed=0)
    assert not np.allclose(out, B.to_numpy(plain.predict(X)))  # the doubling did happen
    assert reads  # checked on x itself


@pytest.mark.parametrize("base", [Sigmoid, Softmax], ids=["sigmoid", "softmax"])
def test_an_activation_subclass_with_its_own_forward_is_run_as_written(to_xp, base):
    """Dense hands its product to forward_owned; a subclass that only overrides forward
    must still have that forward run."""
    class Tempered(base):
        def forward(self, x, training=True):
            return super().forward(x * 0.5, training)

    x = to_xp(RNG.normal(size=(5, 6)), "float64")
    custom, plain = Dense(3, Tempered()), Dense(3, base())
    custom.forward(x)  # build, then share the weights
    plain.forward(x)
    plain.params.update(custom.params)
    z = B.to_numpy(custom.preactivation(x))
    expected = B.to_numpy(base().forward(to_xp(z * 0.5, "float64")))
    np.testing.assert_allclose(B.to_numpy(custom.forward(x)), expected, rtol=1e-12)
    assert not np.allclose(B.to_numpy(custom.forward(x)), B.to_numpy(plain.forward(x)))
