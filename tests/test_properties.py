"""Property-based tests (hypothesis): for every input, a correct result or a documented
exception (ValueError, TypeError, BackendMismatchError) -- on every backend.

Correct means: ``predict`` in batches equals one forward pass computed with NumPy in
float64 from the model's own weights; ``evaluate`` gives a finite loss equal to the NumPy
reference of the loss.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import xpnet as xn
from xpnet import backend as B
from xpnet.layers import Dense
from _backends import unavailable

# derandomize: the same examples every run (reproducible in CI); modest counts keep the
# file well under 30 s for three backends
_SETTINGS = dict(deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SETTINGS = settings(max_examples=40, **_SETTINGS)
JUNK_SETTINGS = settings(max_examples=120, **_SETTINGS)
DOCUMENTED = (ValueError, TypeError, xn.BackendMismatchError)

ACTS = {
    None: lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "tanh": np.tanh,
    "sigmoid": lambda z: 0.5 * (1 + np.tanh(z / 2)),  # = 1 / (1 + exp(-z)), no overflow
    "softmax": lambda z: (lambda e: e / e.sum(axis=1, keepdims=True))(
        np.exp(z - z.max(axis=1, keepdims=True))),
}
X_DTYPES = ["float32", "float64", "int32", "int64", "uint8", "bool"]


@st.composite
def inputs(draw, rows=st.integers(1, 40)):
    """``x`` of a drawn dtype and value range, with the network that takes it."""
    n, d = draw(rows), draw(st.integers(1, 6))
    dtype = draw(st.sampled_from(X_DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if dtype == "bool":
        x = rng.random((n, d)) > 0.5
    elif dtype == "uint8":
        x = rng.integers(0, 256, (n, d)).astype("uint8")
    elif dtype.startswith("int"):
        x = rng.integers(-1000, 1001, (n, d)).astype(dtype)
    else:
        scale = draw(st.sampled_from([1e-3, 1.0, 100.0]))
        x = (rng.standard_normal((n, d)) * scale).astype(dtype)
    net = dict(hidden=draw(st.integers(1, 8)), act=draw(st.sampled_from(["relu", "tanh", "sigmoid"])),
               units=draw(st.integers(1, 4)), out=draw(st.sampled_from([None, "sigmoid", "softmax"])),
               dtype=draw(st.sampled_from(["float32", "float64"])), seed=draw(st.integers(0, 99)))
    return x, net, rng


def _model(d, net):
    m = xn.Sequential([Dense(net["hidden"], activation=net["act"], input_dim=d),
                       Dense(net["units"], activation=net["out"])],
                      seed=net["seed"], dtype=net["dtype"])
    m.build()
    return m


def _reference(m, x, net):
    W1, b1, W2, b2 = (w.astype("float64") for w in m.get_weights())
    h = ACTS[net["act"]](x.astype("float64") @ W1 + b1)
    return ACTS[net["out"]](h @ W2 + b2)


def _tol(net):
    return dict(rtol=2e-4, atol=2e-5) if net["dtype"] == "float32" else dict(rtol=1e-9, atol=1e-11)


@SETTINGS
@given(data=inputs(), batch_size=st.integers(1, 50), device=st.booleans())
def test_predict_in_batches_is_one_forward_pass(backend, data, batch_size, device):
    x, net, _ = data
    m = _model(x.shape[1], net)
    given_x = B.asarray(x, backend=backend) if device else x
    out = m.predict(given_x, batch_size=batch_size)
    assert type(out) is (backend.array_type if device else np.ndarray)
    out = xn.to_numpy(out)
    assert out.shape == (x.shape[0], net["units"]) and out.dtype == np.dtype(net["dtype"])
    assert np.all(np.isfinite(out))
    ref = _reference(m, x, net)
    np.testing.assert_allclose(out, ref, **_tol(net), err_msg=f"batch_size={batch_size}")
    whole = xn.to_numpy(m.predict(given_x, batch_size=x.shape[0]))
    np.testing.assert_allclose(out, whole, **_tol(net))


def _ref_loss(loss, p, y, dtype):
    if loss == "mse":
        return np.mean((p - y.reshape(p.shape)) ** 2)
    # clipped as the model does, in its own float type (1 - 1e-7 rounds in float32)
    lo, hi = np.asarray(1e-7, dtype), np.asarray(1 - 1e-7, dtype)
    pc = np.clip(p.astype(dtype), lo, hi).astype("float64")
    if loss == "binary_crossentropy":
        t = y.reshape(p.shape)
        return -np.mean(t * np.log(pc) + (1 - t) * np.log(1 - pc))
    return -np.mean(np.log(pc[np.arange(len(y)), y.reshape(-1)]))


@SETTINGS
@given(data=inputs(), batch_size=st.integers(1, 50),
       loss=st.sampled_from(["mse", "binary_crossentropy", "sparse_categorical_crossentropy"]))
def test_evaluate_matches_a_numpy_reference(backend, data, batch_size, loss):
    x, net, rng = data
    n = x.shape[0]
    if loss == "sparse_categorical_crossentropy":
        net = dict(net, out="softmax", units=max(2, net["units"]))
        y = rng.integers(0, net["units"], n)
    elif loss == "binary_crossentropy":
        net = dict(net, out="sigmoid")
        y = (rng.random((n, net["units"])) > 0.5).astype("float32")
    else:
        y = rng.standard_normal((n, net["units"])).astype("float32")
    m = _model(x.shape[1], net)
    m.compile("sgd", loss=loss)
    value = m.evaluate(x, y, batch_size=batch_size, verbose=0)
    assert np.isfinite(value)
    # the forward pass is checked against NumPy above; here the loss, its clipping and the
    # weighting of the batches, from the model's own outputs (float32 cross-entropy of a
    # saturated output is ill-conditioned, so a float64 forward would not be a fair reference)
    probs = m.predict(x, batch_size=batch_size).astype("float64")
    np.testing.assert_allclose(probs, _reference(m, x, net), **_tol(net))
    ref = _ref_loss(loss, probs, y, net["dtype"])
    assert value == pytest.approx(ref, rel=1e-5 if net["dtype"] == "float32" else 1e-9, abs=1e-6)


def _junk(draw_rng, kind, n, d):
    """Input that may or may not be valid."""
    if kind == "ok":
        return draw_rng.standard_normal((n, d)).astype("float32")
    if kind == "wrong-width":
        return draw_rng.standard_normal((n, d + 1))
    if kind == "3d":
        return draw_rng.standard_normal((n, d, 2))
    if kind == "1d":
        return draw_rng.standard_normal(n)
    if kind == "nan":
        x = draw_rng.standard_normal((n, d))
        x[draw_rng.integers(0, n), draw_rng.integers(0, d)] = draw_rng.choice([np.nan, np.inf])
        return x
    if kind == "empty":
        return np.zeros((0, d))
    if kind == "scalar":
        return 1.5
    if kind == "strings":
        return draw_rng.standard_normal((n, d)).astype(str)
    if kind == "list":
        return draw_rng.standard_normal((n, d)).tolist()
    if kind == "other-backend":
        others = [n for n in ("torch", "array_api_strict")
                  if n != B.get_backend() and unavailable(n) is None]
        assume(others)  # a foreign array needs a second library that runs here
        other = others[0]
        return B.asarray(draw_rng.standard_normal((n, d)).astype("float32"), backend=B.load(other))
    raise AssertionError(kind)


KINDS = ["ok", "wrong-width", "3d", "1d", "nan", "empty", "scalar", "strings", "list",
         "other-backend"]


@JUNK_SETTINGS
@given(xk=st.sampled_from(["ok"] * 6 + KINDS),  # valid input half the time, junk the rest
       yk=st.sampled_from(["ok"] * 6 + ["short", "range", "float", "2d"]),
       n=st.integers(1, 20),
       batch_size=st.one_of(st.integers(1, 30), st.integers(-2, 30), st.sampled_from([2.0, None, "8"])),
       epochs=st.sampled_from([0, 1, 2, 2, 2, -1]), split=st.sampled_from([0.0, 0.0, 0.25, 1.0, -0.5]),
       seed=st.integers(0, 2**16), call=st.sampled_from(["fit", "evaluate", "predict"]))
def test_any_input_gives_a_result_or_a_documented_error(backend, xk, yk, n, batch_size, epochs,
                                                        split, seed, call):
    rng = np.random.default_rng(seed)
    d, k = 3, 4
    x = _junk(rng, xk, n, d)
    y = {"ok": rng.integers(0, k, n), "short": rng.integers(0, k, max(n - 1, 0)),
         "range": rng.integers(-1, k + 2, n), "float": rng.random(n) * k,
         "2d": rng.random((n, k))}[yk]
    m = xn.Sequential([Dense(5, activation="relu", input_dim=d), Dense(k, activation="softmax")],
                      seed=0)
    m.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    try:
        if call == "fit":
            out = m.fit(x, y, batch_size=batch_size, epochs=epochs, validation_split=split, verbose=0)
        elif call == "evaluate":
            out = m.evaluate(x, y, batch_size=batch_size, verbose=0)
        else:
            out = m.predict(x, batch_size=batch_size)
    except DOCUMENTED as exc:
        assert str(exc), "an exception without a message"
        event(f"refused: {type(exc).__name__}")
        return
    event(f"ran: {call}")
    # it ran: then the input was valid, and the result is right
    assert xk in ("ok", "list") and isinstance(batch_size, int) and batch_size > 0
    if call == "predict":
        assert out.shape == (n, k) and np.all(np.isfinite(out))
        np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)
        return
    assert yk in ("ok",) or (yk == "range" and y.min() >= 0 and y.max() < k)
    if call == "evaluate":
        assert np.all(np.isfinite(out))
    else:
        assert epochs >= 0 and 0 <= split < 1
        assert len(out.epoch) == epochs
        assert all(np.isfinite(v) for vals in out.history.values() for v in vals)
