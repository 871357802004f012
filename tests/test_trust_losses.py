"""Losses, targets and logits give a right answer or a clear error -- on every backend.

``from_logits`` is checked against PyTorch (values and gradients, logits of +-1000
included); the output-layer and target checks follow the case-table style of
``test_bad_input.py``; metrics and the book's functions are compared with NumPy.
"""
from __future__ import annotations

import numpy as np
import pytest

import xpnet as xn
from xpnet import backend as B
from xpnet import functions as F
from xpnet import losses as L
from xpnet import metrics as M
from xpnet.gradcheck import check_loss
from xpnet.layers import Dense, Layer, Relu, Softmax
from xpnet.models import TwoLayerNet

N, D, K = 12, 4, 3
RNG = np.random.default_rng(11)
X = RNG.normal(size=(N, D)).astype("float32")
Y = RNG.integers(0, K, size=N)
LOGITS = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0], [0.3, -1.2, 2.0],
                   [5.0, 5.0, 5.0], [-3.0, 0.0, 1000.0]])
LABELS = np.array([1, 2, 0, 2, 2])


def _np(a):
    return xn.to_numpy(a)


def _torch():
    return pytest.importorskip("torch", reason="the reference values come from PyTorch")


def _torch_ce(z, target):
    """PyTorch's mean cross-entropy of logits ``z`` and its gradient w.r.t. ``z``."""
    torch = _torch()
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    tt = torch.tensor(target)
    loss = torch.nn.functional.cross_entropy(zt, tt)
    loss.backward()
    return loss.item(), zt.grad.numpy()


def _torch_bce(z, target):
    torch = _torch()
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        zt, torch.tensor(target, dtype=torch.float64))
    loss.backward()
    return loss.item(), zt.grad.numpy()


# -- 1. from_logits: values and gradients against PyTorch ----------------------------------

@pytest.mark.parametrize("form", ["sparse", "sparse-column", "one-hot", "soft-rows"])
def test_crossentropy_from_logits_matches_torch(to_xp, form):
    if form.startswith("sparse"):
        loss = L.SparseCategoricalCrossentropy(from_logits=True)
        ref_t = LABELS
        t = to_xp(LABELS.reshape(-1, 1) if form == "sparse-column" else LABELS, "int64")
    else:
        loss = L.CategoricalCrossentropy(from_logits=True)
        ref_t = np.eye(K)[LABELS] if form == "one-hot" else np.full((5, K), 1 / K)
        t = to_xp(ref_t, "float64")
    want, want_grad = _torch_ce(LOGITS, ref_t)
    z = to_xp(LOGITS, "float64")
    value, grad = loss.value_and_grad(z, t)
    assert np.isfinite(float(value)) and np.all(np.isfinite(_np(grad)))
    assert float(value) == pytest.approx(want, rel=1e-12)
    assert float(loss(z, t)) == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(_np(grad), want_grad, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("targets", ["labels", "soft"])
def test_binary_crossentropy_from_logits_matches_torch(to_xp, targets):
    z = np.array([[1000.0, -1000.0], [-1000.0, 1000.0], [0.5, -2.0], [30.0, -30.0]])
    t = (np.array([[1, 0], [1, 1], [0, 1], [0, 1]], dtype="float64") if targets == "labels"
         else np.array([[0.2, 0.9], [0.5, 0.0], [1.0, 0.3], [0.7, 0.1]]))
    want, want_grad = _torch_bce(z, t)
    loss = L.BinaryCrossentropy(from_logits=True)
    value, grad = loss.value_and_grad(to_xp(z, "float64"), to_xp(t, "float64"))
    assert float(value) == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(_np(grad), want_grad, rtol=1e-10, atol=1e-15)


def test_log_sigmoid_matches_torch_for_large_inputs(to_xp):
    torch = _torch()
    x = np.array([-1000.0, -40.0, -1.0, 0.0, 1.0, 40.0, 1000.0])
    want = torch.nn.functional.logsigmoid(torch.tensor(x)).numpy()
    got = _np(F.log_sigmoid(to_xp(x, "float64")))
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("cls", [L.CategoricalCrossentropy, L.BinaryCrossentropy],
                         ids=lambda c: c.__name__)
def test_gradcheck_from_logits(to_xp, cls):
    loss = cls(from_logits=True)
    z = to_xp(np.random.default_rng(3).normal(size=(4, 3)) * 2, "float64")
    t = to_xp(np.eye(3)[[0, 2, 1, 1]], "float64")
    assert check_loss(loss, z, t) < 1e-6


def _separable(n=150, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, 8)) * 4
    labels = rng.integers(0, 10, n)
    return (centres[labels] + rng.normal(size=(n, 8))).astype("float32"), labels


def test_linear_output_with_from_logits_learns(backend):
    x, labels = _separable()
    model = xn.Sequential([Dense(10, input_dim=8)], seed=1)
    model.compile(optimizer=xn.optimizers.Adam(lr=0.05),
                  loss=xn.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    history = model.fit(x, labels, epochs=30, batch_size=32, verbose=0, seed=2)
    assert history.history["accuracy"][-1] > 0.9  # chance is 0.1
    loss, acc = model.evaluate(x, labels, verbose=0)
    assert acc > 0.9 and 0 < loss < 0.5
    # predict gives the last layer's output, the scores themselves (as Keras)
    W, b = model.get_weights()
    np.testing.assert_allclose(_np(model.predict(x)), x @ W + b, rtol=1e-4, atol=1e-4)
    assert loss == pytest.approx(_torch_ce(x.astype("float64") @ W + b, labels)[0], rel=1e-4)


def test_binary_from_logits_accuracy_thresholds_scores_at_zero(backend):
    x, labels = _separable()
    y = (labels % 2).astype("float32")
    model = xn.Sequential([Dense(16, input_dim=8, activation="relu"), Dense(1)], seed=3)
    model.compile("adam", loss=L.BinaryCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, y, epochs=20, batch_size=16, verbose=0, seed=4)
    scores = _np(model.predict(x))[:, 0]
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert logs["accuracy"] == pytest.approx(np.mean((scores > 0) == (y > 0.5)), abs=1e-6)
    assert logs["accuracy"] > 0.85


def test_from_logits_must_be_a_bool():
    with pytest.raises(TypeError, match=r"from_logits must be True or False, got 'yes'"):
        L.CategoricalCrossentropy(from_logits="yes")


# -- 2. output layers that give no probabilities are refused -------------------------------

def _compiled(units, act, loss, built=False):
    m = xn.Sequential([Dense(5, activation="relu", input_dim=D), Dense(units, activation=act)],
                      seed=0)
    if built:
        m.build()
    m.compile("sgd", loss=loss)
    return m


FIX_SOFTMAX = r"from_logits=True or activation='softmax'"
FIX_SIGMOID = r"from_logits=True or activation='sigmoid'"

# (id, call, regex the ValueError must match)
OUTPUT_CASES = [
    ("linear-sparse", lambda: _compiled(K, None, "sparse_categorical_crossentropy"),
     r"sparse_categorical_crossentropy reads probabilities.*'dense_1' outputs linear.*"
     + FIX_SOFTMAX),
    ("linear-sparse-built", lambda: _compiled(K, None, "sparse_categorical_crossentropy", True),
     FIX_SOFTMAX),
    ("linear-categorical", lambda: _compiled(K, "linear", "categorical_crossentropy"),
     FIX_SOFTMAX),
    ("relu-categorical", lambda: _compiled(K, "relu", "categorical_crossentropy"), FIX_SOFTMAX),
    ("tanh-sparse", lambda: _compiled(K, "tanh", "sparse_categorical_crossentropy"),
     FIX_SOFTMAX),
    ("sigmoid-categorical", lambda: _compiled(K, "sigmoid", "categorical_crossentropy"),
     r"outputs sigmoid.*activation='softmax'.*binary_crossentropy.*from_logits=True"),
    ("sigmoid-sparse", lambda: _compiled(K, "sigmoid", "sparse_categorical_crossentropy", True),
     r"outputs sigmoid"),
    ("linear-binary", lambda: _compiled(1, None, "binary_crossentropy"), FIX_SIGMOID),
    ("relu-binary", lambda: _compiled(2, "relu", "binary_crossentropy", True), FIX_SIGMOID),
    ("softmax-binary", lambda: _compiled(K, "softmax", "binary_crossentropy"),
     r"outputs softmax.*activation='sigmoid'"),
    ("softmax-from-logits", lambda: _compiled(K, "softmax", L.CategoricalCrossentropy(
        from_logits=True)), r"reads raw scores.*outputs softmax.*activation=None"),
    ("sigmoid-from-logits", lambda: _compiled(1, "sigmoid", L.BinaryCrossentropy(
        from_logits=True)), r"reads raw scores.*outputs sigmoid"),
    ("activation-layer-last", lambda: xn.Sequential([Dense(K, input_dim=D), Relu()]).compile(
        "sgd", loss="categorical_crossentropy"), r"'relu' outputs relu.*" + FIX_SOFTMAX),
    ("categorical-on-1-unit", lambda: _compiled(1, "softmax", "categorical_crossentropy"),
     r"one output unit per class.*'dense_1' has 1"),
]


@pytest.mark.parametrize("case", OUTPUT_CASES, ids=[c[0] for c in OUTPUT_CASES])
def test_output_without_probabilities_is_refused(backend, case):
    _, call, pattern = case
    with pytest.raises(ValueError, match=pattern):
        call()


def test_layer_added_after_compile_is_refused_at_fit(backend):
    m = xn.Sequential([Dense(5, activation="relu", input_dim=D)], seed=0)
    m.compile("sgd", loss="mse")
    with pytest.raises(ValueError, match=FIX_SOFTMAX):
        m.compile("sgd", loss="sparse_categorical_crossentropy")  # the relu output
    assert m.loss.name == "mse"  # a refused compile changes nothing
    m.add(Dense(K, activation="softmax"))
    m.compile("sgd", loss="sparse_categorical_crossentropy")
    m.add(Dense(K))  # the output is linear now: refused when the model is built
    for call in (lambda: m.fit(X, Y, verbose=0), lambda: m.evaluate(X, Y, verbose=0)):
        with pytest.raises(ValueError, match=r"'dense_2' outputs linear.*" + FIX_SOFTMAX):
            call()  # each time: the refusal does not leave the model built


class Swish(Layer):
    """An activation of the user's own: xpnet cannot tell what it outputs."""

    def forward(self, x, training=True):
        self.x = x
        return x * F.sigmoid(x)

    def backward(self, dout):
        s = F.sigmoid(self.x)
        return dout * (s + self.x * s * (1 - s))


class NamedSoftmax(Softmax):
    """A softmax by another name: still a softmax."""


class HotSoftmax(Softmax):
    """Changes what the softmax computes: no longer known as one."""

    def forward(self, x, training=True):
        self.out = F.softmax(x * 2.0)
        return self.out

    def backward(self, dout):
        return 2.0 * super().backward(dout)

    forward_owned = forward


def test_unknown_and_subclassed_activations(backend):
    custom = xn.Sequential([Dense(K, input_dim=D, activation=Swish())], seed=0)
    custom.compile("sgd", loss="sparse_categorical_crossentropy")  # accepted: not refused
    named = xn.Sequential([Dense(K, input_dim=D, activation=NamedSoftmax())], seed=0)
    named.compile("sgd", loss="sparse_categorical_crossentropy")
    named.build()
    assert named._fused  # by class, not by its name
    hot = xn.Sequential([Dense(K, input_dim=D, activation=HotSoftmax())], seed=0, dtype="float64")
    hot.compile("sgd", loss="sparse_categorical_crossentropy")
    hot.build()
    assert not hot._fused  # its own forward/backward run
    errors = xn.gradcheck.check_model(hot, B.asarray(X, "float64"),
                                      B.asarray(Y, "int64"))
    assert max(errors.values()) < 1e-6
    assert L.output_activation(hot.layers[-1]) is None
    assert L.output_activation(named.layers[-1]) is Softmax


# -- 3. targets ----------------------------------------------------------------------------

def _model(units=K, act="softmax", loss="sparse_categorical_crossentropy"):
    m = xn.Sequential([Dense(5, activation="relu", input_dim=D), Dense(units, activation=act)],
                      seed=0)
    m.compile("sgd", loss=loss)
    return m


ONE_HOT = np.eye(K, dtype="float32")[Y]
BIN = (X[:, :2] > 0).astype("float32")

# (id, call(data), regex) -- data(host array) moves the array to the tested place
TARGET_CASES = [
    ("binary-label-2", lambda d: _model(2, "sigmoid", "binary_crossentropy").fit(
        d(X), d(BIN * 2), verbose=0), r"y holds values from 0 to 2.*\[0, 1\]"),
    ("binary-label-minus-1", lambda d: _model(2, "sigmoid", "binary_crossentropy").evaluate(
        d(X), d(BIN - 1), verbose=0), r"y holds values from -1 to 0.*binary_crossentropy"),
    ("binary-logits-label-3", lambda d: _model(2, None, L.BinaryCrossentropy(
        from_logits=True)).fit(d(X), d(BIN * 3), verbose=0), r"y holds values from 0 to 3"),
    ("binary-val", lambda d: _model(2, "sigmoid", "binary_crossentropy").fit(
        d(X), d(BIN), validation_data=(d(X), d(BIN + 1)), verbose=0), r"val_y holds values"),
    ("categorical-negative", lambda d: _model(loss="categorical_crossentropy").fit(
        d(X), d(ONE_HOT * 2 - 0.5), verbose=0), r"y holds negative values.*one-hot or probab"),
    ("categorical-row-sum", lambda d: _model(loss="categorical_crossentropy").evaluate(
        d(X), d(np.where(np.arange(N)[:, None] == 4, 1.0, ONE_HOT).astype("float32")),
        verbose=0), r"y row 4 sums to 3.*sum to 1"),
    ("categorical-zero-row", lambda d: _model(loss="categorical_crossentropy").fit(
        d(X), d(ONE_HOT * (np.arange(N) != 7)[:, None]), verbose=0), r"y row 7 sums to 0"),
]


@pytest.mark.parametrize("where", ["host", "device"])
@pytest.mark.parametrize("case", TARGET_CASES, ids=[c[0] for c in TARGET_CASES])
def test_bad_targets_are_refused(backend, case, where):
    _, call, pattern = case
    move = (lambda a: a) if where == "host" else (lambda a: B.asarray(a, backend=backend))
    with pytest.raises(ValueError, match=pattern):
        call(move)


def test_soft_targets_stay_allowed(backend):
    soft_bin = np.clip(X[:, :2] * 0.3 + 0.5, 0, 1).astype("float32")
    m = _model(2, "sigmoid", "binary_crossentropy")
    assert np.isfinite(m.fit(X, soft_bin, epochs=1, verbose=0).history["loss"][0])
    smooth = (ONE_HOT * 0.9 + 0.1 / K).astype("float32")  # Keras' label smoothing
    m = _model(loss="categorical_crossentropy")
    assert np.isfinite(m.evaluate(X, smooth, verbose=0))
    assert np.isfinite(m.evaluate(X, ONE_HOT.astype("int64"), verbose=0))


# (id, call(to_xp), regex)
LABEL_CASES = [
    ("cross-entropy-error-7", lambda a: F.cross_entropy_error(a(np.full((2, 3), 1 / 3)),
                                                              a(np.array([0, 7]))),
     r"t holds labels from 0 to 7, but y has 3 classes"),
    ("cross-entropy-error-one-sample", lambda a: F.cross_entropy_error(
        a(np.full(3, 1 / 3)), a(np.array(-1))), r"labels from -1 to -1"),
    ("one-hot-minus-1", lambda a: F.one_hot(a(np.array([-1])), 3),
     r"labels from -1 to -1, but num_classes is 3 \(labels must be 0\.\.2\)"),
    ("one-hot-fraction", lambda a: F.one_hot(a(np.array([0.5])), 3), r"non-integer"),
    ("sparse-loss-7", lambda a: L.SparseCategoricalCrossentropy()(a(np.full((2, 3), 1 / 3)),
                                                                  a(np.array([7, 1]))),
     r"t holds labels from 1 to 7.*3 units"),
    ("sparse-logits-minus-1", lambda a: L.SparseCategoricalCrossentropy(from_logits=True)(
        a(np.zeros((2, 3))), a(np.array([-1, 1]))), r"labels from -1 to 1"),
    ("sparse-loss-one-hot", lambda a: L.SparseCategoricalCrossentropy()(
        a(np.full((2, 3), 1 / 3)), a(np.eye(3)[:2])), r"integer class labels.*categorical_cross"),
    ("binary-loss-2", lambda a: L.BinaryCrossentropy()(a(np.full((2, 1), 0.5)),
                                                       a(np.array([[0.0], [2.0]]))),
     r"t holds values from 0 to 2"),
    ("categorical-loss-row", lambda a: L.CategoricalCrossentropy()(
        a(np.full((2, 3), 1 / 3)), a(np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))),
     r"t row 0 sums to 2"),
]


@pytest.mark.parametrize("case", LABEL_CASES, ids=[c[0] for c in LABEL_CASES])
def test_direct_calls_with_bad_labels_are_refused(to_xp, case):
    _, call, pattern = case
    with pytest.raises(ValueError, match=pattern):
        call(to_xp)


@pytest.mark.parametrize("where", ["host", "device"])
def test_two_layer_net_refuses_a_label_beyond_its_classes(backend, where):
    net = TwoLayerNet(D, 5, 3, seed=0)
    t = np.array([0, 7, 1] * 4)
    t = t if where == "host" else B.asarray(t, backend=backend)
    with pytest.raises(ValueError, match=r"t holds labels from 0 to 7, but the network has 3 "
                                         r"classes \(labels must be 0\.\.2\)"):
        net.loss(X, t)
    with pytest.raises(ValueError, match=r"labels from -1"):
        net.gradient(X, np.arange(N) % 3 - 1)
    assert np.isfinite(float(net.loss(X, Y)))  # good labels still work


# -- 4. shapes, metrics and integer input --------------------------------------------------

def test_mse_shapes(to_xp):
    y = np.arange(12.0).reshape(4, 3)
    with pytest.raises(ValueError, match=r"mse: targets of shape \(4, 2\) do not fit "
                                         r"predictions of shape \(4, 3\)"):
        L.MeanSquaredError()(to_xp(y), to_xp(np.ones((4, 2))))
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(4, 3\)"):  # no silent broadcast
        L.MeanSquaredError().value_and_grad(to_xp(y), to_xp(np.ones((4, 1))))
    col, flat = np.arange(4.0).reshape(4, 1), np.array([1.0, 0.0, 2.0, 5.0])
    want = np.mean((col[:, 0] - flat) ** 2)  # (n,) against (n, 1): accepted, as Keras
    assert float(L.MeanSquaredError()(to_xp(col), to_xp(flat))) == pytest.approx(want)
    assert float(L.MeanSquaredError()(to_xp(flat), to_xp(col))) == pytest.approx(want)


def test_mae_metric_with_integer_labels_is_cast(backend, to_xp):
    p = np.random.default_rng(2).random((N, 1)).astype("float32")
    labels = Y % 2
    got = M.MeanAbsoluteError().batch_sum(to_xp(p), to_xp(labels))
    assert float(got) == pytest.approx(np.sum(np.abs(p[:, 0] - labels)), rel=1e-6)
    m = xn.Sequential([Dense(1, input_dim=D)], seed=0)
    m.compile("sgd", loss="mse", metrics=["mae"])
    logs = m.evaluate(X, labels, verbose=0, return_dict=True)
    pred = _np(m.predict(X))[:, 0]
    assert logs["mae"] == pytest.approx(np.mean(np.abs(pred - labels)), rel=1e-5)


def test_mae_metric_with_class_labels_is_a_clear_error(backend):
    m = xn.Sequential([Dense(K, input_dim=D, activation="softmax")], seed=0)
    m.compile("sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy", "mae"])
    with pytest.raises(ValueError, match=r"metric 'mae': targets of shape \(\d+,\) do not fit "
                                         r"predictions of shape \(\d+, 3\)"):
        m.fit(X, Y, verbose=0)


def test_categorical_accuracy_with_integer_labels_is_refused(backend, to_xp):
    m = xn.Sequential([Dense(K, input_dim=D, activation="softmax")], seed=0)
    m.compile("sgd", loss="sparse_categorical_crossentropy", metrics=[M.CategoricalAccuracy()])
    with pytest.raises(ValueError, match=r"CategoricalAccuracy takes one-hot.*"
                                         r"SparseCategoricalAccuracy"):
        m.evaluate(X, Y, verbose=0)
    p = to_xp(np.eye(K, dtype="float32")[Y])
    with pytest.raises(ValueError, match=r"SparseCategoricalAccuracy"):
        M.CategoricalAccuracy().batch_sum(p, to_xp(Y))
    assert float(M.SparseCategoricalAccuracy().batch_sum(p, to_xp(Y))) == N


@pytest.mark.parametrize("name", ["softmax", "sigmoid", "log_softmax", "tanh", "log_sigmoid"])
def test_integer_input_is_cast_to_the_default_float(backend, xp, to_xp, name):
    fn = getattr(F, name)
    ints = np.array([[0, 1, 2], [-3, 4, 5]])
    got = fn(to_xp(ints, "int64"))
    default = xp.__array_namespace_info__().default_dtypes()["real floating"]
    assert got.dtype == default
    want = fn(to_xp(ints.astype(xn.to_numpy(xp.zeros(1, dtype=default)).dtype)))
    np.testing.assert_array_equal(_np(got), _np(want))
    with_bool = fn(to_xp(ints > 0))
    assert with_bool.dtype == default


@pytest.mark.parametrize("loss", ["sparse", "categorical", "binary"])
def test_from_logits_losses_do_not_read_the_host(loss):
    """The per-batch calls (value_and_grad in a step, value in evaluate) on meta tensors,
    which raise on any read back to the host."""
    torch = _torch()
    z = torch.empty((8, 3), device="meta")
    made = {"sparse": (L.SparseCategoricalCrossentropy(from_logits=True),
                       torch.empty((8,), dtype=torch.int64, device="meta")),
            "categorical": (L.CategoricalCrossentropy(from_logits=True), torch.empty_like(z)),
            "binary": (L.BinaryCrossentropy(from_logits=True), torch.empty_like(z))}
    fn, t = made[loss]
    with xn.use_backend("torch"):
        value, grad = fn.value_and_grad(z, t)
        assert value.device.type == "meta" and grad.shape == z.shape
        assert fn.value(z, t).device.type == "meta"
