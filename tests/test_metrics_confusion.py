"""Precision, Recall and AUC: Keras 3's documented numbers, scikit-learn's values, streaming
over batches, the loops (fit, evaluate, validation, compiled JAX, data-parallel)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from sklearn.metrics import (average_precision_score, precision_score, recall_score,
                             roc_auc_score)

import xpnet as xn
from xpnet import backend as B
from xpnet.metrics import AUC, Precision, Recall, get_metric

from _backends import require


def value(metric, y_pred, t, w=None, dtype="float32"):
    """The metric over one batch, as the loops log it."""
    move = lambda a: B.asarray(np.asarray(a, dtype=dtype), backend=B.current())  # noqa: E731
    total = metric.batch_sum(move(y_pred), move(t), None if w is None else move(w))
    return metric.result(total, len(t))


# -- Keras 3's docstring and test numbers ---------------------------------------------------

def test_keras_precision_recall_examples(backend):
    for m in (Precision(), Recall()):
        assert value(m, [1, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx(2 / 3)
        assert value(m, [1, 0, 1, 1], [0, 1, 1, 1], [0, 0, 1, 0]) == 1.0
    assert value(Precision(top_k=2), [1, 1, 1, 1], [0, 0, 1, 1]) == 0.0
    assert value(Precision(top_k=4), [1, 1, 1, 1], [0, 0, 1, 1]) == 0.5
    assert value(Precision(), [0, 0, 0, 0], [0, 0, 0, 0]) == 0.0  # divide_no_nan


Y_TRUE, Y_PRED, W = [0, 0, 1, 1], [0, 0.5, 0.3, 0.9], [1, 2, 3, 4]


@pytest.mark.parametrize("curve, method, expected", [
    ("ROC", "interpolation", 0.7855), ("ROC", "majoring", 1.0), ("ROC", "minoring", 0.571),
    ("PR", "majoring", 1.0), ("PR", "minoring", 0.7 * 0.429),
    ("PR", "interpolation", 2.416 / 7 + 4 / 7)])
def test_keras_weighted_auc_numbers(backend, curve, method, expected):
    m = AUC(num_thresholds=3, curve=curve, summation_method=method)
    assert value(m, Y_PRED, Y_TRUE, W) == pytest.approx(expected, abs=1e-3)


def test_keras_auc_examples(backend):
    assert value(AUC(num_thresholds=3), Y_PRED, Y_TRUE) == pytest.approx(0.75)
    assert value(AUC(num_thresholds=3), Y_PRED, Y_TRUE, [1, 0, 0, 1]) == pytest.approx(1.0)
    assert value(AUC(num_thresholds=2, thresholds=[0.5]), Y_PRED, Y_TRUE) == pytest.approx(0.75)
    # Keras' MultiAUCTest: two labels, thresholds [-1e-7, 0.25, 0.5, 0.75, 1 + 1e-7]
    p = np.array([[0, 0.5, 0.3, 0.9], [0.1, 0.2, 0.3, 0.4]]).T
    t = np.array([[0, 0, 1, 1], [0, 0, 1, 1]]).T
    assert value(AUC(5, multi_label=True), p, t) == pytest.approx((0.875 + 1.0) / 2)
    assert value(AUC(5), p, t) == pytest.approx(1 - 3 / 32)
    assert value(AUC(5), p, t, W) == pytest.approx(1 - 0.3333 * (1 - 0.2857) / 2, abs=1e-3)
    p32 = p.astype("float32")  # as Keras' test: float32 logits (0.5 + 1e-12 is 0.5)
    logits = -np.log(1 / (p32 + np.float32(1e-12)) - 1)
    assert value(AUC(5, from_logits=True), logits, t) == pytest.approx(1 - 3 / 32)
    assert value(AUC(thresholds=[0.5], multi_label=True), p, t) == pytest.approx(0.625)
    assert value(AUC(thresholds=[0.75, 0.25, 0.5]), p, t) == value(AUC(5), p, t)


# -- scikit-learn as the reference --------------------------------------------------------

def _scores(n=2000, labels=1, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, (n, labels))
    p = 1 / (1 + np.exp(-(1.5 * (2 * t - 1) + rng.normal(scale=2.0, size=(n, labels)))))
    return p, t


@pytest.mark.parametrize("threshold", [None, 0.3, 0.8])
def test_precision_recall_equal_sklearn(backend, threshold):
    p, t = _scores(500, labels=3)
    cut = 0.5 if threshold is None else threshold
    for metric, score in ((Precision, precision_score), (Recall, recall_score)):
        # multi-label outputs count as separate decisions (sklearn's 'micro' on the entries)
        got = value(metric(thresholds=threshold), p, t, dtype="float64")
        assert got == pytest.approx(score(t.ravel(), p.ravel() > cut), abs=1e-12)
        got = value(metric(thresholds=threshold, class_id=2), p, t, dtype="float64")
        assert got == pytest.approx(score(t[:, 2], p[:, 2] > cut), abs=1e-12)
        got = value(metric(thresholds=[threshold or 0.5]), p[:, :1], t[:, 0], dtype="float64")
        assert got == pytest.approx(score(t[:, 0], p[:, 0] > cut), abs=1e-12)


def test_top_k_equals_a_sorted_reference(backend):
    p, t = _scores(300, labels=6, seed=1)
    p[::5, 1] = p[::5, 3]  # ties go to the lower index
    for k in (1, 2, 4):
        order = np.argsort(-p, axis=1, kind="stable")[:, :k]
        chosen = np.zeros_like(t)
        np.put_along_axis(chosen, order, 1, axis=1)
        got = value(Precision(top_k=k), p, t, dtype="float64")
        assert got == pytest.approx(precision_score(t.ravel(), chosen.ravel()), abs=1e-12)
        got = value(Recall(top_k=k, class_id=3), p, t, dtype="float64")
        assert got == pytest.approx(recall_score(t[:, 3], chosen[:, 3]), abs=1e-12)


def test_auc_is_sklearn_within_the_discretisation(backend):
    p, t = _scores()
    exact = roc_auc_score(t[:, 0], p[:, 0])
    assert value(AUC(), p, t) == pytest.approx(exact, abs=1e-3)  # 200 thresholds
    assert value(AUC(num_thresholds=2000), p, t) == pytest.approx(exact, abs=1e-4)
    lower = value(AUC(summation_method="minoring"), p, t)
    upper = value(AUC(summation_method="majoring"), p, t)
    assert lower <= exact <= upper
    ap = average_precision_score(t[:, 0], p[:, 0])  # a step function: close, not equal
    assert value(AUC(curve="PR"), p, t) == pytest.approx(ap, abs=1e-3)  # 3.8e-4 measured
    pm, tm = _scores(1000, labels=3, seed=2)
    macro = roc_auc_score(tm, pm, average="macro")
    assert value(AUC(multi_label=True), pm, tm) == pytest.approx(macro, abs=1e-3)
    flat = roc_auc_score(tm.ravel(), pm.ravel())
    assert value(AUC(), pm, tm) == pytest.approx(flat, abs=1e-3)


@pytest.mark.parametrize("metric", [Precision(), Recall(0.3), Precision(top_k=2), AUC(),
                                    AUC(curve="PR", multi_label=True), AUC(thresholds=[0.2, 0.7])],
                         ids=repr)
def test_batches_add_up_to_the_whole(backend, metric):
    p, t = _scores(103, labels=3, seed=3)
    xp, move = backend.xp, lambda a: B.asarray(a, dtype="float64", backend=backend)
    whole = metric.batch_sum(move(p), move(t))
    parts = [metric.batch_sum(move(p[i:i + 25]), move(t[i:i + 25])) for i in range(0, 103, 25)]
    assert tuple(whole.shape) == metric.stat_shape((3,))
    np.testing.assert_array_equal(xn.to_numpy(xp.sum(xp.stack(parts), axis=0)), xn.to_numpy(whole))
    assert metric.result(whole, 103) == metric.result(xp.sum(xp.stack(parts), axis=0), 103)


def test_batch_sums_stay_on_the_device():
    """No host read in a batch: torch's meta tensors have no values to read."""
    torch = pytest.importorskip("torch")
    with xn.use_backend("torch"):
        y = torch.empty((8, 3), device="meta")
        for m in (Precision(), Recall(top_k=2), AUC(), AUC(multi_label=True, curve="PR")):
            total = m.batch_sum(y, y)
            assert total.device.type == "meta" and tuple(total.shape) == m.stat_shape((3,))


# -- in the loops ---------------------------------------------------------------------------

METRICS = ["precision", "recall", "auc"]


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    return x, (x[:, 0] - 0.5 * x[:, 1] + rng.normal(scale=0.7, size=n) > 0).astype("float64")


def _model(metrics=METRICS, jit=False, units=1, dtype="float32"):
    model = xn.Sequential([xn.layers.Dense(6, activation="relu", input_shape=(5,)),
                           xn.layers.Dense(units, activation="sigmoid")], seed=3, dtype=dtype)
    model.compile("adam", loss="binary_crossentropy", metrics=metrics, jit_compile=jit)
    return model


def test_fit_and_evaluate_log_them(backend, capsys):
    x, y = _data()
    model = _model([*METRICS, AUC(curve="PR", name="pr_auc"), "accuracy"])
    history = model.fit(x[:150], y[:150], epochs=2, batch_size=32, verbose=2,
                        validation_data=(x[150:], y[150:]))
    names = [*METRICS, "pr_auc", "accuracy"]
    assert set(history.history) == {"loss", *names, *(f"val_{k}" for k in ["loss", *names])}
    assert "val_auc:" in capsys.readouterr().out
    logs = model.evaluate(x[150:], y[150:], batch_size=16, verbose=0, return_dict=True)
    assert logs["auc"] == history.history["val_auc"][-1]
    p = xn.to_numpy(model.predict(x[150:]))[:, 0].astype("float64")
    # float32 counts divided in float32
    assert logs["precision"] == pytest.approx(precision_score(y[150:], p > 0.5), rel=1e-6)
    assert logs["recall"] == pytest.approx(recall_score(y[150:], p > 0.5), rel=1e-6)
    assert logs["auc"] == pytest.approx(roc_auc_score(y[150:], p), abs=5e-3)


def test_callbacks_maximise_them():
    for monitor in ("val_auc", "precision", "val_recall", "val_pr_auc"):
        assert xn.callbacks.EarlyStopping(monitor=monitor).mode == "max"
    assert xn.callbacks.EarlyStopping(monitor="val_mse").mode == "min"


def test_names_and_raw_scores():
    logits = xn.losses.BinaryCrossentropy(from_logits=True)
    assert get_metric("precision", logits).threshold == 0.0
    assert get_metric("Recall").threshold == 0.5 and get_metric("auc", logits).from_logits
    assert not get_metric("auc").from_logits
    assert get_metric(AUC(name="x")).name == "x"


@pytest.mark.parametrize("make, match", [
    (lambda: Precision(thresholds=[0.3, 0.6]), "one threshold per metric"),
    (lambda: Recall(thresholds=1.5), r"must be in \[0, 1\]"),
    (lambda: AUC(curve="PRGAIN"), "Invalid AUC curve"),
    (lambda: AUC(summation_method="trapezoid"), "Invalid AUC summation method"),
    (lambda: AUC(num_thresholds=1), "must be an integer > 1"),
    (lambda: AUC(label_weights=[1, 2]), "not supported"),
    (lambda: Precision(top_k=0), "top_k"),
])
def test_refusals(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_class_id_out_of_range_is_named(backend):
    with pytest.raises(ValueError, match="class_id=3"):
        value(Precision(class_id=3), np.zeros((4, 3)), np.zeros((4, 3)))


def test_dask_evaluate_refuses_them():
    da = pytest.importorskip("dask.array")
    x, y = _data(40)
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(NotImplementedError, match="not means over the rows"):
        model.evaluate(da.from_array(x, chunks=20), y, verbose=0)


def test_compiled_jax_gives_the_eager_numbers():
    require("jax")
    x, y = _data()
    with xn.use_backend("jax"):
        runs = []
        for jit in (False, True):
            model = _model(jit=jit, units=1)
            h = model.fit(x, y, epochs=2, batch_size=48, verbose=0, seed=1,
                          validation_split=0.25)
            runs.append({k: np.array(v) for k, v in h.history.items()})
        assert runs[0].keys() == runs[1].keys()
        for k in runs[0]:
            np.testing.assert_allclose(runs[1][k], runs[0][k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_saved_and_loaded(tmp_path):
    model = _model([AUC(num_thresholds=50, curve="PR", name="pr"), Precision(class_id=0)])
    x, y = _data(40)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.xpnet")
    back = xn.load_model(tmp_path / "m.xpnet")
    assert back.metric_names == ["pr", "precision"]
    assert (back.metrics[0].num_thresholds, back.metrics[0].curve) == (50, "PR")
    assert back.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)


# -- data-parallel: two ranks as threads, their metric counts all-reduced -------------------

class _Threads:
    """Collectives between threads (one model each), for ``fit(distributed=...)``."""

    name, timeout = "threads", 30.0

    def __init__(self, shared, rank, backend):
        self.shared, self.rank, self.size, self.local_rank = shared, rank, 2, rank
        self.backend = backend

    def _all(self, obj):
        slots, barrier = self.shared
        slots[self.rank] = obj
        barrier.wait()
        out = list(slots)
        barrier.wait()
        return out

    def allreduce_sum(self, buf, what=""):
        a, b = self._all(xn.to_numpy(buf))
        return B.asarray(a + b, backend=self.backend)

    def broadcast(self, buf, root=0, what=""):
        return B.asarray(self._all(xn.to_numpy(buf))[root], backend=self.backend)

    def broadcast_object(self, obj, root=0, what=""):
        return self._all(obj)[root]

    def allgather_object(self, obj, what=""):
        return self._all(obj)

    def barrier(self, what=""):
        self.shared[1].wait()

    def close(self):
        pass


@pytest.mark.parametrize("name", ["numpy", "array_api_strict", "torch"])
def test_data_parallel_all_reduces_the_counts(name):
    """Uneven shards (51/50) and a last batch of one row (rank 0 has none): the counts of
    both ranks add up to one process's, so the logs are the one-process logs."""
    require(name)
    x, y = _data(1011)
    y2 = np.stack([y, 1 - y], axis=1)
    metrics = ["accuracy", "precision", AUC(multi_label=True, curve="PR"), Recall(class_id=1)]
    with xn.use_backend(name) as backend:
        ref = _model(metrics, units=2, dtype="float64").fit(
            x, y2, batch_size=101, epochs=2, seed=3, verbose=0).history
        shared, out = ([None, None], threading.Barrier(2, timeout=60)), [None, None]

        def rank(r):
            # closed at the end: the last communicator made is the process's world, which
            # decides who writes files (a rank-1 world left behind stops later checkpoints)
            with xn.distributed.Communicator(_Threads(shared, r, backend)) as comm:
                out[r] = _model(metrics, units=2, dtype="float64").fit(
                    x, y2, batch_size=101, epochs=2, seed=3, verbose=0,
                    distributed=comm).history
        threads = [threading.Thread(target=rank, args=(r,)) for r in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
    assert xn.distributed.world() is None
    assert out[0] == out[1] and set(out[0]) == set(ref)
    for k in ref:
        np.testing.assert_allclose(out[0][k], ref[k], rtol=1e-9, err_msg=k)
