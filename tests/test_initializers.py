"""Initializers: same seed, same bits on every backend; the spread each scheme promises."""
from __future__ import annotations

import math

import numpy as np
import pytest

import xpnet as xn
from xpnet import backend as B
from xpnet.initializers import INITIALIZERS, initialize
from xpnet.layers import Dense


def _runnable_backends():
    names = []
    for name in B.BACKENDS:
        try:
            B.load(name)
        except xn.BackendUnavailableError:
            continue
        names.append(name)
    return names


@pytest.mark.parametrize("spec", ["he", "xavier", "glorot_uniform", 0.01])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_gives_bit_identical_dense_weights_everywhere(spec, dtype):
    names = _runnable_backends()
    assert {"numpy", "array_api_strict"} <= set(names)  # and torch, cupy where they run
    weights = {}
    for name in names:
        b = B.load(name)
        layer = Dense(7, kernel_initializer=spec)
        layer.build((5,), xp=b.xp, device=b.device, dtype=dtype, rng=B.host_rng(42))
        W = xn.to_numpy(layer.params["W"])
        assert W.dtype == np.dtype(dtype) and W.shape == (5, 7)
        weights[name] = W.tobytes()
    assert len(set(weights.values())) == 1, f"weights differ across {list(weights)}"
    other = Dense(7, kernel_initializer=spec)
    b = B.load("numpy")
    other.build((5,), xp=b.xp, device=b.device, dtype=dtype, rng=B.host_rng(43))
    assert xn.to_numpy(other.params["W"]).tobytes() != weights["numpy"]


def test_dense_weights_live_on_the_backend(backend, xp):
    layer = Dense(3, kernel_initializer="he")
    layer.build((4,), xp=xp, device=backend.device, dtype="float32", rng=0)
    assert isinstance(layer.params["W"], backend.array_type)
    assert isinstance(layer.params["b"], backend.array_type)
    assert layer.params["W"].dtype == xp.float32


FAN_IN, FAN_OUT = 400, 300


@pytest.mark.parametrize("spec, std", [
    ("he", math.sqrt(2 / FAN_IN)), ("relu", math.sqrt(2 / FAN_IN)),
    ("xavier", math.sqrt(1 / FAN_IN)), ("sigmoid", math.sqrt(1 / FAN_IN)),
    (0.01, 0.01), (1, 1.0),
])
def test_normal_initializers_have_the_promised_std(spec, std):
    w = initialize(spec, (FAN_IN, FAN_OUT), np.random.default_rng(0), dtype="float64")
    assert w.shape == (FAN_IN, FAN_OUT) and w.dtype == np.float64
    # 120,000 draws: the sample std is within ~0.4% of the true one (2 standard errors)
    assert w.std() == pytest.approx(std, rel=0.01)
    assert abs(w.mean()) < 0.01 * std


def test_glorot_uniform_bounds():
    limit = math.sqrt(6 / (FAN_IN + FAN_OUT))
    w = initialize("glorot_uniform", (FAN_IN, FAN_OUT), np.random.default_rng(1))
    assert w.dtype == np.float32
    assert w.min() >= -limit and w.max() <= limit
    assert w.max() > 0.99 * limit and w.min() < -0.99 * limit
    assert w.std() == pytest.approx(limit / math.sqrt(3), rel=0.01)


def test_zeros_and_ones():
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(initialize("zeros", (2, 3), rng), np.zeros((2, 3)))
    ones = initialize("ONES", (4,), rng, dtype="float64")
    assert ones.dtype == np.float64
    np.testing.assert_array_equal(ones, np.ones(4))


def test_names_are_case_insensitive_and_listed():
    rng = np.random.default_rng(0)
    for name in INITIALIZERS:
        assert initialize(name.upper(), (3, 2), rng).shape == (3, 2)


def test_dtype_default_is_float32():
    assert initialize("he", (3, 2), np.random.default_rng(0)).dtype == np.float32


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError) as info:
        initialize("lecun", (3, 2), np.random.default_rng(0))
    for name in INITIALIZERS:
        assert name in str(info.value)


@pytest.mark.parametrize("bad", [None, True, [0.1], {"std": 0.1}])
def test_bad_spec_type(bad):
    with pytest.raises(TypeError):
        initialize(bad, (3, 2), np.random.default_rng(0))
