"""Bad input to ``compile``/``fit``/``evaluate``/``predict`` and to the weight loaders gets a
clear exception that says what is wrong and what is accepted -- on every backend.

Every data case runs twice per backend: with host (NumPy) data and with arrays of the
active backend, since the two take different paths through ``xpnet.data``.
"""
from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest

import xpnet as xn
from xpnet import backend as B
from xpnet import io as xio
from xpnet.callbacks import TerminateOnNaN
from xpnet.layers import Dense, Dropout

N, D, K = 12, 4, 3
RNG = np.random.default_rng(7)
X = RNG.normal(size=(N, D)).astype("float32")
Y = RNG.integers(0, K, size=N)


def model(units=K, act="softmax", loss="sparse_categorical_crossentropy", d=D, metrics=None,
          seed=0):
    m = xn.Sequential([Dense(5, activation="relu", input_dim=d), Dense(units, activation=act)],
                      seed=seed)
    m.compile("sgd", loss=loss, metrics=metrics)
    return m


def _nan_at(a, row, value=np.nan):
    a = np.array(a, dtype="float64" if a.dtype.kind != "f" else a.dtype)
    a[row, ...] = value
    return a


# (id, call(m_x_y) -> None, exception, regex the message must match)
# each call gets ``data(host_array)`` that moves the array to the tested place
DATA_CASES = [
    ("fit-len", lambda d: model().fit(d(X), d(Y[:7]), verbose=0), ValueError,
     r"different lengths: x has 12 rows, y has 7"),
    ("evaluate-len", lambda d: model().evaluate(d(X[:5]), d(Y), verbose=0), ValueError,
     r"x has 5 rows, y has 12"),
    ("fit-empty", lambda d: model().fit(d(X[:0]), d(Y[:0]), verbose=0), ValueError, r"empty"),
    ("evaluate-empty", lambda d: model().evaluate(d(X[:0]), d(Y[:0]), verbose=0), ValueError,
     r"empty"),
    ("predict-empty", lambda d: model().predict(d(X[:0])), ValueError, r"empty"),
    ("fit-features", lambda d: model(d=5).fit(d(X), d(Y), verbose=0), ValueError,
     r"layer 'dense'.*\(batch, 5\).*\(4,\)"),
    ("evaluate-features", lambda d: model(d=3).evaluate(d(X), d(Y), verbose=0), ValueError,
     r"layer 'dense'.*\(batch, 3\).*\(4,\)"),
    ("predict-features", lambda d: model(d=6).predict(d(X)), ValueError,
     r"layer 'dense'.*\(batch, 6\).*\(4,\)"),
    ("predict-3d-x", lambda d: model().predict(d(X.reshape(N, 2, 2))), ValueError,
     r"layer 'dense'.*\(batch, 4\).*\(2, 2\)"),
    ("label-too-big", lambda d: model().fit(d(X), d(np.full(N, K)), verbose=0), ValueError,
     r"labels from 3 to 3.*3 units.*0\.\.2"),
    ("label-negative", lambda d: model().evaluate(d(X), d(np.arange(N) - 1), verbose=0),
     ValueError, r"labels from -1 to 10.*3 units"),
    ("label-fraction", lambda d: model().fit(d(X), d(Y + 0.5), verbose=0), ValueError,
     r"non-integer"),
    ("sparse-onehot-y", lambda d: model().fit(d(X), d(np.eye(K)[Y]), verbose=0), ValueError,
     r"shape \(12, 3\).*categorical_crossentropy"),
    ("onehot-width", lambda d: model(loss="categorical_crossentropy").fit(
        d(X), d(np.eye(K + 1, dtype="float32")[Y]), verbose=0), ValueError,
     r"per-sample shape \(4,\).*outputs \(3,\)"),
    ("onehot-given-labels", lambda d: model(loss="categorical_crossentropy").evaluate(
        d(X), d(Y), verbose=0), ValueError, r"sparse_categorical_crossentropy"),
    ("y-3d-mse", lambda d: model(1, None, "mse").fit(d(X), d(np.zeros((N, 1, 1), "float32")),
                                                     verbose=0), ValueError,
     r"per-sample shape \(1, 1\).*outputs \(1,\)"),
    ("x-nan-fit", lambda d: model().fit(d(_nan_at(X, 5)), d(Y), verbose=0), ValueError,
     r"x holds NaN or infinite"),
    ("x-inf-evaluate", lambda d: model().evaluate(d(_nan_at(X, 0, np.inf)), d(Y), verbose=0),
     ValueError, r"x holds NaN or infinite"),
    ("x-inf-predict", lambda d: model().predict(d(_nan_at(X, 11, -np.inf))), ValueError,
     r"x holds NaN or infinite"),
    ("y-nan-fit", lambda d: model(1, None, "mse").fit(
        d(X), d(_nan_at(np.zeros((N, 1), "float32"), 3)), verbose=0), ValueError,
     r"y holds NaN or infinite"),
    ("y-nan-labels", lambda d: model().fit(d(X), d(_nan_at(Y, 3)), verbose=0), ValueError,
     r"y holds NaN or infinite"),
    ("val-nan", lambda d: model().fit(d(X), d(Y), validation_data=(d(_nan_at(X, 1)), d(Y)),
                                      verbose=0), ValueError, r"val_x holds NaN"),
    ("val-labels", lambda d: model().fit(d(X), d(Y), validation_data=(d(X), d(Y + K)),
                                         verbose=0), ValueError, r"val_y holds labels"),
]


@pytest.mark.parametrize("where", ["host", "device"])
@pytest.mark.parametrize("case", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_bad_data_is_refused(backend, case, where):
    _, call, exc, pattern = case
    move = (lambda a: a) if where == "host" else (lambda a: B.asarray(a, backend=backend))
    with pytest.raises(exc, match=pattern):
        call(move)


class FrameLike:
    """Stands in for a pandas/polars DataFrame: only ``to_numpy``."""

    def __init__(self, values):
        self.values = np.asarray(values)

    def to_numpy(self):
        return self.values


TYPE_CASES = [
    ("x-string", lambda: model().predict("1,2,3,4"), r"got str"),
    ("x-bytes", lambda: model().predict(b"\x00" * 16), r"got bytes"),
    ("x-None", lambda: model().fit(None, Y, verbose=0), r"got NoneType"),
    ("x-scalar", lambda: model().predict(3.0), r"single number.*\[\[\.\.\.\]\]"),
    ("y-scalar", lambda: model().fit(X, 1, verbose=0), r"y is a single number"),
    ("x-dict", lambda: model().predict({"a": 1}), r"numeric"),
    ("x-str-array", lambda: model().fit(X.astype(str), Y, verbose=0), r"dtype <U"),
    ("y-str-labels", lambda: model().fit(X, Y.astype(str), verbose=0), r"y: .*dtype <U"),
    ("x-object-array", lambda: model().predict(np.array([[1, "a", None, 2]], dtype=object)),
     r"dtype object"),
    ("x-ragged-list", lambda: model().predict([[1.0, 2.0, 3.0, 4.0], [1.0]]), r"numeric|list"),
    ("x-complex", lambda: model().predict(X + 1j), r"complex"),
    ("frame-of-strings", lambda: model().predict(FrameLike(X.astype(str))), r"dtype <U"),
    ("batch-float", lambda: model().fit(X, Y, batch_size=4.0, verbose=0), r"batch_size"),
    ("batch-str", lambda: model().predict(X, batch_size="32"), r"batch_size"),
    ("batch-bool", lambda: model().evaluate(X, Y, batch_size=True, verbose=0), r"batch_size"),
    ("batch-None", lambda: model().fit(X, Y, batch_size=None, verbose=0), r"batch_size"),
    ("validation-data-array", lambda: model().fit(X, Y, validation_data=X, verbose=0),
     r"validation_data must be a tuple"),
    ("callback-not-callback", lambda: model().fit(X, Y, callbacks=[print], verbose=0),
     r"Callback"),
    ("compile-optimizer-int", lambda: model().compile(5, loss="mse"), r"optimizer"),
    ("compile-loss-int", lambda: model().compile("sgd", loss=3), r"loss"),
    ("compile-metric-int", lambda: model().compile("sgd", loss="mse", metrics=[1]), r"metric"),
]


@pytest.mark.parametrize("case", TYPE_CASES, ids=[c[0] for c in TYPE_CASES])
def test_wrong_types_say_what_is_accepted(backend, case):
    _, call, pattern = case
    with pytest.raises(TypeError, match=pattern):
        call()


VALUE_CASES = [
    ("batch-zero", lambda: model().fit(X, Y, batch_size=0, verbose=0), r"batch_size.*got 0"),
    ("batch-negative", lambda: model().predict(X, batch_size=-8), r"batch_size.*got -8"),
    ("epochs-negative", lambda: model().fit(X, Y, epochs=-1, verbose=0), r"epochs.*>= 0.*-1"),
    ("epochs-float", lambda: model().fit(X, Y, epochs=2.5, verbose=0), r"epochs"),
    ("initial-epoch-negative", lambda: model().fit(X, Y, initial_epoch=-2, verbose=0),
     r"initial_epoch"),
    ("split-one", lambda: model().fit(X, Y, validation_split=1.0, verbose=0), r"\[0, 1\)"),
    ("split-negative", lambda: model().fit(X, Y, validation_split=-0.1, verbose=0), r"\[0, 1\)"),
    ("split-nan", lambda: model().fit(X, Y, validation_split=float("nan"), verbose=0),
     r"\[0, 1\)"),
    ("split-too-small", lambda: model().fit(X, Y, validation_split=0.01, verbose=0),
     r"leaves no rows"),
    ("verbose-3", lambda: model().fit(X, Y, verbose=3), r"verbose"),
    ("compile-unknown-optimizer", lambda: model().compile("lion", loss="mse"),
     r"unknown optimizer 'lion'.*sgd.*momentum.*adam"),
    ("compile-unknown-loss", lambda: model().compile("sgd", loss="squared_hinge"),
     r"unknown loss 'squared_hinge'.*mse.*sparse_categorical_crossentropy.*binary_crossentropy"),
    ("compile-unknown-metric", lambda: model().compile("sgd", loss="mse", metrics=["f1"]),
     r"unknown metric 'f1'.*accuracy.*mae.*mse"),
    ("compile-no-loss", lambda: model().compile("sgd"), r"needs a loss"),
    ("compile-sparse-on-1-unit", lambda: model(1, "sigmoid", "sparse_categorical_crossentropy"),
     r"sparse_categorical_crossentropy.*'dense_1' has 1.*binary_crossentropy"),
    ("compile-sparse-on-built-1-unit", lambda: _built(1, "sigmoid").compile(
        "sgd", loss="sparse_categorical_crossentropy"), r"'dense_1' has 1"),
]


def _built(units, act):
    m = xn.Sequential([Dense(5, input_dim=D), Dense(units, activation=act)], seed=0)
    m.build()
    return m


@pytest.mark.parametrize("case", VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_bad_values_are_refused(backend, case):
    _, call, pattern = case
    with pytest.raises(ValueError, match=pattern):
        call()


def test_fit_before_compile_says_so(backend):
    m = xn.Sequential([Dense(K, input_dim=D)])
    with pytest.raises(RuntimeError, match=r"compile"):
        m.fit(X, Y, verbose=0)


def _other_arrays(backend):
    """Arrays of every other library that can run here (NumPy is host data, not foreign)."""
    others = []
    for name in ("torch", "array_api_strict"):
        if name != backend.name:
            try:
                others.append(B.load(name))
            except xn.BackendUnavailableError:
                pass
    return others


MISMATCH_CALLS = [
    ("fit-x", lambda m, o: m.fit(o(X), Y, verbose=0), "x"),
    ("fit-y", lambda m, o: m.fit(X, o(Y), verbose=0), "y"),
    ("fit-val", lambda m, o: m.fit(X, Y, validation_data=(o(X), Y), verbose=0), "val_x"),
    ("evaluate-y", lambda m, o: m.evaluate(X, o(Y), verbose=0), "y"),
    ("predict", lambda m, o: m.predict(o(X)), "x"),
    ("call", lambda m, o: m(o(X)), "x"),
]


@pytest.mark.parametrize("call", MISMATCH_CALLS, ids=[c[0] for c in MISMATCH_CALLS])
def test_arrays_of_another_backend_are_refused(backend, call):
    _, fn, name = call
    others = _other_arrays(backend)
    if not others:
        pytest.skip(f"no array library other than {backend.name} and NumPy can run here")
    for other in others:
        move = lambda a: B.asarray(a, backend=other)  # noqa: E731
        with pytest.raises(xn.BackendMismatchError, match=rf"{other.name} array.*{backend.name}"
                           r".*(to_numpy|set_backend|model\.to)") as info:
            fn(model(), move)
        if call[0] != "call":
            assert f"{name} is a" in str(info.value)


def test_accepted_forms_give_the_same_result(backend):
    """Lists of lists, pandas-like objects, backend arrays and NumPy arrays are one thing."""
    ref = model().predict(X)
    assert isinstance(ref, np.ndarray) and ref.shape == (N, K)
    for form in (X.tolist(), FrameLike(X), B.asarray(X, backend=backend)):
        out = xn.to_numpy(model().predict(form))
        np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-7)
    hist = model().fit(FrameLike(X), FrameLike(Y).values.tolist(), epochs=2, verbose=0, seed=1)
    assert len(hist.history["loss"]) == 2


@pytest.mark.parametrize("dtype", ["uint8", "int32", "int64", "bool"])
def test_integer_pixels_cast_as_they_are(backend, dtype):
    """Integer (and bool) x is cast unchanged to the model's float type: no hidden /255."""
    raw = RNG.integers(0, 2 if dtype == "bool" else 256, size=(N, D)).astype(dtype)
    as_float = raw.astype("float32")
    results = []
    for data in (raw, as_float):
        m = model(seed=3)
        hist = m.fit(data, Y, epochs=3, batch_size=4, seed=5, verbose=0)
        results.append((hist.history["loss"], m.get_weights(), m.predict(data)))
    (loss_i, w_i, p_i), (loss_f, w_f, p_f) = results
    np.testing.assert_array_equal(loss_i, loss_f)
    for a, b in zip(w_i, w_f):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(p_i, p_f)
    assert p_i.dtype == np.float32


def test_labels_as_float_integers_or_column_are_accepted(backend):
    base = model().evaluate(X, Y, verbose=0)
    assert np.isfinite(base)
    for y in (Y.astype("float32"), Y.reshape(-1, 1), Y.astype("uint8")):
        assert model().evaluate(X, y, verbose=0) == pytest.approx(base, rel=1e-6)


class BlowUpAt(xn.callbacks.Callback):
    """Raise the learning rate at the start of one epoch: training diverges there."""

    def __init__(self, epoch, lr=1e12):
        self.epoch, self.lr = epoch, lr

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.optimizer.lr = self.lr


def test_terminate_on_nan_names_epoch_and_batch(backend):
    """Clean data, then a learning rate that overflows: fit stops and says where."""
    m = model(1, None, "mse")
    y = np.ones((N, 1), "float32")
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning, match=r"epoch 4, batch \d+"):
        hist = m.fit(X, y, epochs=50, batch_size=4, callbacks=[BlowUpAt(3), TerminateOnNaN()],
                     verbose=0)
    assert hist.stop_reason and "non-finite" in hist.stop_reason
    loss = hist.history["loss"]  # the non-finite epoch is recorded, with its loss
    assert len(loss) == 4 and all(np.isfinite(loss[:3])) and not np.isfinite(loss[3])


# ---------------------------------------------------------------- weight files

def _saved(tmp_path, backend):
    m = model(seed=1)
    m.build()
    path = tmp_path / "w.npz"
    m.save_weights(path)
    return path


def _snapshot(m):
    return [w.copy() for w in m.get_weights()]


def _assert_unchanged(m, before):
    for a, b in zip(m.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def _write_npz(path, arrays, header=None):
    arrays = dict(arrays)
    if header is not None:
        arrays[xio.HEADER_KEY] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def test_missing_weight_file(backend, tmp_path):
    m = model()
    m.build()
    before = _snapshot(m)
    with pytest.raises(FileNotFoundError, match=r"no weight file"):
        m.load_weights(tmp_path / "nope.npz")
    with pytest.raises(FileNotFoundError):
        m.load_checkpoint(tmp_path / "nope.npz")
    _assert_unchanged(m, before)


def test_truncated_or_corrupt_weight_files(backend, tmp_path):
    """Every prefix length and a byte flipped at many places: a WeightFileError, never
    another exception, and the model is unchanged."""
    good = _saved(tmp_path, backend).read_bytes()
    m = model(seed=9)
    m.build()
    before = _snapshot(m)
    bad = tmp_path / "bad.npz"
    cuts = sorted(set(np.linspace(0, len(good) - 1, 60).astype(int)))
    flips = sorted(set(np.random.default_rng(0).integers(0, len(good), 60)))
    tried = 0
    for cut in cuts:
        bad.write_bytes(good[:cut])
        with pytest.raises(xio.WeightFileError):
            m.load_weights(bad)
        tried += 1
    for pos in flips:
        data = bytearray(good)
        data[pos] ^= 0xFF
        bad.write_bytes(bytes(data))
        try:
            m.load_weights(bad)
        except xio.WeightFileError:
            tried += 1
        else:  # a flip in zip padding the CRC does not cover loads fine and gives the same weights
            np.testing.assert_array_equal(m.get_weights()[0], model(seed=1).get_weights()[0])
            m.set_weights(before)
    assert tried >= len(cuts) + len(flips) // 2
    _assert_unchanged(m, before)
    bad.write_text("not a zip at all")
    with pytest.raises(xio.WeightFileError, match=r"not a readable|truncated or corrupt|pickle"):
        m.load_weights(bad)
    _assert_unchanged(m, before)


def test_file_of_another_architecture_names_layer_and_shapes(backend, tmp_path):
    path = _saved(tmp_path, backend)  # Dense(5) -> Dense(3)
    wide = xn.Sequential([Dense(6, activation="relu", input_dim=D), Dense(K)], seed=0)
    wide.build()
    before = _snapshot(wide)
    with pytest.raises(xio.WeightFileError, match=r"layer 'dense' W.*\(4, 6\).*\(4, 5\)"):
        wide.load_weights(path)
    _assert_unchanged(wide, before)
    deeper = xn.Sequential([Dense(5, input_dim=D), Dense(K), Dense(2)], seed=0)
    deeper.build()
    with pytest.raises(xio.WeightFileError, match=r"layers \['dense', 'dense_1'\].*"
                                                  r"\['dense', 'dense_1', 'dense_2'\]"):
        deeper.load_weights(path)
    other_input = model(d=7)
    other_input.build()
    before = _snapshot(other_input)
    with pytest.raises(xio.WeightFileError, match=r"\(7, 5\).*\(4, 5\)"):
        other_input.load_weights(path)
    _assert_unchanged(other_input, before)


def test_pickle_in_a_weight_file_is_refused_and_not_run(backend, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    obj = np.empty(1, dtype=object)
    obj[0] = Payload()
    m = model(seed=1)
    m.build()
    arrays, header = xn.checkpoint._weight_arrays(m)
    arrays = {k: xn.to_numpy(v) for k, v in arrays.items()}
    arrays["dense/W"] = obj
    path = _write_npz(tmp_path / "evil.npz", arrays, dict(header, format=1))
    before = _snapshot(m)
    with pytest.raises(xio.WeightFileError, match=r"pickle"):
        m.load_weights(path)
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(xio.WeightFileError, match=r"pickle"):
        m.load_checkpoint(raw)
    assert not marker.exists()
    _assert_unchanged(m, before)


def test_odd_but_pickle_free_contents_are_refused(backend, tmp_path):
    m = model(seed=1)
    m.build()
    arrays, header = xn.checkpoint._weight_arrays(m)
    arrays = {k: xn.to_numpy(v) for k, v in arrays.items()}
    header = dict(header, format=1)
    before = _snapshot(m)
    cases = {
        "no-header": (arrays, None, r"not an xpnet weight file"),
        "header-not-json": (dict(arrays, **{xio.HEADER_KEY: np.frombuffer(b"{oops", np.uint8)}),
                            None, r"corrupt header"),
        "header-layers-not-list": (arrays, dict(header, layers=5), r"header"),
        "header-is-list": (arrays, [1, 2], r"header"),
        "missing-array": ({k: v for k, v in arrays.items() if k != "dense_1/b"}, header,
                          r"no 'dense_1/b'"),
        "string-weights": (dict(arrays, **{"dense/W": arrays["dense/W"].astype(str)}), header,
                           r"dense/W.*dtype"),
    }
    for name, (arrs, head, pattern) in cases.items():
        path = _write_npz(tmp_path / f"{name}.npz", arrs, head)
        with pytest.raises(xio.WeightFileError, match=pattern):
            m.load_weights(path)
        _assert_unchanged(m, before)


def test_bad_checkpoint_optimizer_state_leaves_model_unchanged(backend, tmp_path):
    """A checkpoint from another optimizer: refused before anything changes."""
    src = model(seed=1)
    src.compile("adam", loss="sparse_categorical_crossentropy")
    src.fit(X, Y, epochs=1, verbose=0, seed=0)
    path = tmp_path / "ck.npz"
    src.save_checkpoint(path, epoch=1)
    dst = model(seed=2)
    dst.compile("momentum", loss="sparse_categorical_crossentropy")
    dst.fit(X, Y, epochs=1, verbose=0, seed=0)
    before, state = _snapshot(dst), dst.opt_state
    with pytest.raises(xio.WeightFileError, match=r"Adam.*Momentum|optimizer"):
        dst.load_checkpoint(path)
    _assert_unchanged(dst, before)
    assert dst.opt_state is state


def test_failed_load_leaves_an_unbuilt_model_unbuilt(backend, tmp_path):
    path = _saved(tmp_path, backend)
    m = xn.Sequential([Dense(7, input_dim=D), Dense(K)], seed=0)
    with pytest.raises(xio.WeightFileError):
        m.load_weights(path)
    assert not m.built
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == sorted(
            ["dense/W.npy", "dense/b.npy", "dense_1/W.npy", "dense_1/b.npy", "__xpnet__.npy"])


def test_dropout_model_loads_its_own_file(backend, tmp_path):
    m = xn.Sequential([Dense(5, input_dim=D), Dropout(0.3), Dense(K, activation="softmax")],
                      seed=0)
    m.compile("adam", loss="sparse_categorical_crossentropy")
    m.fit(X, Y, epochs=2, verbose=0, seed=0)
    m.save_checkpoint(tmp_path / "c.npz", epoch=2)
    n = xn.Sequential([Dense(5, input_dim=D), Dropout(0.3), Dense(K, activation="softmax")],
                      seed=4)
    n.compile("adam", loss="sparse_categorical_crossentropy")
    assert n.load_checkpoint(tmp_path / "c.npz") == 2
    np.testing.assert_array_equal(n.predict(X), m.predict(X))
