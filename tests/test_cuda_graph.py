"""The CUDA-graph training step of the cupy backend (:mod:`xpnet._cuda_graph`), on the CPU:
the numpy backend with a stand-in stream whose ``end_capture`` returns a stand-in graph
that replays the captured Python step. A real graph needs a GPU (the ``gpu`` tests)."""
from __future__ import annotations

import copy
import dataclasses
import pickle

import numpy as np
import pytest

import xpnet as xn
from xpnet import backend as B
from xpnet import compiled as C
from xpnet._cuda_graph import GraphSteps
from xpnet.callbacks import Callback

from _backends import require


class FakeGraph:
    """Stands for a ``cupy.cuda.Graph``: ``launch`` runs the captured step again."""

    def __init__(self, fn, calls):
        self.fn, self.calls = fn, calls

    def launch(self, stream=None):
        self.calls.append("launch")
        self.fn()


class FakeStream:
    """Stands for the capture stream: records its calls; ``fail`` names one that raises."""

    def __init__(self, fn, calls, fail=None):
        self.fn, self.calls, self.fail = fn, calls, fail
        self.capturing = False

    def _call(self, name):
        self.calls.append(name)
        if name == self.fail:
            raise RuntimeError(f"{name}: operation not permitted when stream is capturing")

    def __enter__(self):
        self._call("enter")
        return self

    def __exit__(self, *exc):
        self.calls.append("exit")
        return False

    def synchronize(self):
        self._call("synchronize")

    def begin_capture(self):
        self._call("begin_capture")
        self.capturing = True

    def end_capture(self):
        self.capturing = False
        self._call("end_capture")
        return FakeGraph(self.fn, self.calls)


class FakeGraphs:
    """Stands for the backend's :class:`~xpnet._backend_jit.CupyGraphs`."""

    name, captures_graphs = "fake graph", True

    def __init__(self, fail=None):
        self.fail, self.calls, self.streams = fail, [], []

    def capture(self, fn):
        self.streams.append(FakeStream(fn, self.calls, self.fail))
        return self.streams[-1]


@pytest.fixture
def fake(monkeypatch):
    """numpy in float64, its backend given a stand-in graph maker (restored after)."""
    before = xn.get_floatx()
    xn.set_floatx("float64")
    graphs = FakeGraphs()
    monkeypatch.setitem(B._cache, "numpy", dataclasses.replace(B.load("numpy"), compiler=graphs))
    with xn.use_backend("numpy"):
        yield graphs
    xn.set_floatx(before)


def _data(n=53, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, k, n)


def _optimizer(name):
    if name == "adam_schedule":
        lr = xn.schedules.ExponentialDecay(0.05, decay_steps=2, decay_rate=0.5)
        return xn.optimizers.Adam(learning_rate=lr)
    return xn.optimizers.get_optimizer(name)


def _model(jit, optimizer="adam", dropout=None, lr=0.05):
    layers = [xn.layers.Dense(8, activation="relu", input_shape=(6,)),
              xn.layers.BatchNormalization()]
    layers += [xn.layers.Dropout(dropout)] if dropout else []
    model = xn.Sequential([*layers, xn.layers.Dense(3, activation="softmax")], seed=4)
    opt = _optimizer(optimizer)
    if not callable(opt.lr):
        opt.lr = lr
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit)
    return model


class _Halve(Callback):
    """The rate halves at every epoch after the first (the rate buffer is written)."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch and not callable(self.model.optimizer.lr):
            self.model.optimizer.lr = self.model.optimizer.lr * 0.5


def _fit_both(optimizer="adam", dropout=None, epochs=2, **fit):
    """An eager model and a graph model trained alike: ``(eager, graph, histories)``."""
    x, y = _data()
    models, hists = [], []
    for jit in (False, True):
        model = _model(jit, optimizer, dropout)
        hist = model.fit(x, y, epochs=epochs, batch_size=20, verbose=0, seed=7,
                         callbacks=[_Halve()], **fit)
        models.append(model)
        hists.append(hist.history)
    return models[0], models[1], hists


def _assert_same(eager, graph, hists):
    for a, b in zip(eager.get_weights(), graph.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    for key in hists[0]:
        np.testing.assert_allclose(hists[1][key], hists[0][key], rtol=1e-12)
    assert graph.opt_state["step"] == eager.opt_state["step"]
    for key, slots in eager.opt_state["slots"].items():
        for name, a in slots.items():
            np.testing.assert_allclose(graph.opt_state["slots"][key][name], a, rtol=1e-12,
                                       atol=1e-12)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adam_schedule"])
def test_replays_equal_eager_steps(fake, optimizer):
    """53 rows in batches of 20, two epochs: the graph is captured once and replayed for
    the 2 full batches of each epoch (the partial batch of 13 runs the step eagerly on the
    same buffers); parameters, slots, step count, BatchNormalization's running
    statistics, losses and metrics equal the eager fit's to 1e-12, with the rate halved
    between epochs (its buffer rewritten) or a schedule read at the step-count buffer."""
    eager, graph, hists = _fit_both(optimizer)
    _assert_same(eager, graph, hists)
    steps = graph._graph_steps
    assert steps.captures == 1 and steps.replays == 4 and steps.failed is None
    assert graph.opt_state["step"] == 6
    assert fake.calls == ["enter", "synchronize", "begin_capture", "end_capture", "exit",
                          *["launch"] * 4]
    assert C.train_steps(graph) is steps and C.steps(graph) is None  # inference stays eager


def test_static_buffers_are_reused(fake):
    """Every replay reads and writes the same arrays: no buffer is made per step or per
    epoch; the loop gets copies of the loss and of the parameters at the end of an epoch."""
    x, y = _data()
    model = _model(True, "momentum")
    seen, losses = [], []

    class Ids(Callback):
        def on_epoch_end(self, epoch, logs=None):
            s = model._graph_steps
            bufs = [*s._params.values(), *s._frozen.values(), *s._state.values(), s._step,
                    s._lr[1], *(a for v in s._slots.values() for a in v.values()),
                    *(a for a in s._inputs if a is not None), *s._outputs]
            seen.append([id(a) for a in bufs])
            assert not any(p is b for p in model.get_params().values() for b in bufs)

    model.fit(x, y, epochs=3, batch_size=20, verbose=0, seed=1, callbacks=[Ids(), _Halve()])
    assert seen[0] == seen[1] == seen[2]
    steps = model._graph_steps
    out = steps.train_batch(None, None, x, y, None, 0, 20, "int64")
    losses.append(out[2])
    out = steps.train_batch(None, None, x, y, None, 0, 20, "int64")
    assert out[2] is not losses[0] and out[2] is not steps._outputs[0]


def test_partial_batch_only_and_batch_size_change(fake):
    """Fewer rows than a batch: nothing to replay, the one batch is captured (and the
    graph launched once) per epoch's first batch; a later fit with another batch size
    captures again for the new shape and still equals eager."""
    x, y = _data(n=53)
    eager, graph = _model(False, "adam"), _model(True, "adam")
    for batch in (20, 25):
        for model in (eager, graph):
            model.fit(x, y, epochs=1, batch_size=batch, verbose=0, seed=2)
    _assert_same(eager, graph, [{}, {}])
    assert graph._graph_steps.captures == 2


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam_schedule"])
def test_n_replays_are_n_train_steps(fake, optimizer):
    """The graph steps driven by hand: 5 launches on 5 batches of 10 rows give what 5 calls
    of :func:`xpnet.training.train_step` give, parameters, slots, step count and losses."""
    from xpnet.training import train_step

    x, y = _data(n=50)
    eager, graph = _model(False, optimizer), _model(True, optimizer)
    for model in (eager, graph):
        model.build()
        model.plan_training()
        model.opt_state = model.optimizer.init_state(model.get_params())
    params, state = eager.get_params(trainable_only=True), eager.opt_state
    losses = []
    for i in range(0, 50, 10):
        params, state, loss, _ = train_step(eager, eager.optimizer, params, state,
                                            x[i:i + 10], y[i:i + 10])
        losses.append(float(loss))
    steps = GraphSteps(graph, fake.capture)
    gstate = steps.begin_epoch(graph.get_params(trainable_only=True), graph.opt_state)
    glosses = []
    for i in range(0, 50, 10):
        view, gstate, loss, _ = steps.train_batch(None, gstate, x, y, None, i, i + 10, "int64")
        glosses.append(float(loss))
    gstate = steps.end_epoch(gstate)
    assert steps.replays == 5 and steps.captures == 1 and gstate["step"] == state["step"] == 5
    np.testing.assert_allclose(glosses, losses, rtol=1e-12)
    for k, p in params.items():
        np.testing.assert_allclose(view[k], p, rtol=1e-12, atol=1e-12)
        for n, a in state["slots"][k].items():
            np.testing.assert_allclose(gstate["slots"][k][n], a, rtol=1e-12, atol=1e-12)


def test_a_new_schedule_is_captured_again(fake):
    """A float rate, then a schedule, then another schedule: each change of what the graph
    computes the rate from captures again; the numbers stay the eager ones."""
    x, y = _data()
    eager, graph = _model(False, "adam"), _model(True, "adam")
    rates = [0.01, xn.schedules.ExponentialDecay(0.05, 2, 0.5),
             xn.schedules.ExponentialDecay(0.02, 3, 0.9)]
    for lr in rates:
        for model in (eager, graph):
            model.optimizer.lr = lr
            model.fit(x, y, epochs=1, batch_size=20, verbose=0, seed=3)
    _assert_same(eager, graph, [{}, {}])
    assert graph._graph_steps.captures == 3 and graph._graph_steps.replays == 6


@pytest.mark.parametrize("fail", ["synchronize", "begin_capture", "end_capture"])
def test_failed_capture_falls_back_with_one_warning(fake, fail):
    """A warm-up or capture that raises: one RuntimeWarning naming the error, the eager
    numbers (the buffers are put back), and eager training in later fits."""
    fake.fail = fail
    with pytest.warns(RuntimeWarning, match="capture failed") as caught:
        eager, graph, hists = _fit_both("adam", epochs=3)
    assert len([w for w in caught if "xpnet" in str(w.message)]) == 1
    assert fail in str(caught[0].message)
    _assert_same(eager, graph, hists)
    assert C.train_steps(graph) is None
    assert "launch" not in fake.calls


def test_dropout_trains_eagerly_with_a_warning(fake):
    """CuPy's generator would replay one mask: a model with Dropout trains eagerly (the
    eager masks, the eager numbers), saying so once under jit_compile=True."""
    with pytest.warns(RuntimeWarning, match="Dropout") as caught:
        eager, graph, hists = _fit_both("momentum", dropout=0.3)
    assert len([w for w in caught if "Dropout" in str(w.message)]) == 1
    _assert_same(eager, graph, hists)
    assert C.train_steps(graph) is None and fake.calls == []
    assert "Dropout" in graph._graph_steps.failed


def test_auto_captures_and_dropout_is_quiet_under_auto(fake):
    """"auto" captures as True does where the graph maker allows it (the stand-in does;
    CuPy's not yet, see below); with Dropout it trains eagerly without
    a warning (a graph where one can be made), the reason kept on the steps."""
    x, y = _data()
    model = _model("auto", "sgd")
    model.fit(x, y, epochs=1, batch_size=20, verbose=0)
    assert model._graph_steps.replays == 2
    model = _model("auto", "sgd", dropout=0.2)
    model.fit(x, y, epochs=1, batch_size=20, verbose=0)  # warnings are errors here
    assert "Dropout" in model._graph_steps.failed and C.train_steps(model) is None


def test_auto_leaves_cupy_eager_until_the_graph_has_run_on_a_gpu(fake):
    """CuPy's graph maker does not turn the graph on under "auto" (the default) until the
    path is verified on a GPU; True still asks for it."""
    from xpnet._backend_jit import CupyGraphs

    assert CupyGraphs.auto is False
    fake.auto = False  # the stand-in as CuPy's says
    x, y = _data()
    model = _model("auto", "sgd")
    model.fit(x, y, epochs=1, batch_size=20, verbose=0)
    assert C.train_steps(model) is None and fake.calls == []
    model = _model(True, "sgd")
    model.fit(x, y, epochs=1, batch_size=20, verbose=0)
    assert model._graph_steps.replays == 2


def test_sample_weights_and_a_frozen_layer(fake):
    """Row weights get their own input buffer; a frozen layer's parameters are buffers too
    (read by the graph, never updated)."""
    x, y = _data()
    w = np.random.default_rng(3).uniform(0.5, 2.0, size=len(x))
    models = []
    for jit in (False, True):
        model = _model(jit, "momentum")
        model.build()
        model.layers[0].trainable = False
        model.fit(x, y, epochs=2, batch_size=20, verbose=0, seed=5, sample_weight=w)
        models.append(model)
    _assert_same(*models, [{}, {}])
    assert models[1]._graph_steps.replays == 4


def test_graph_steps_do_not_pickle(fake):
    """A graph does not pickle or copy: a copy of a trained model holds none, and captures
    its own when it trains."""
    x, y = _data()
    model = _model(True, "sgd")
    model.fit(x, y, epochs=1, batch_size=20, verbose=0)
    assert isinstance(model._graph_steps, GraphSteps)
    assert pickle.loads(pickle.dumps(model._graph_steps)) is None
    for twin in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert getattr(twin, "_graph_steps", None) is None
        twin.fit(x, y, epochs=1, batch_size=20, verbose=0)
        assert twin._graph_steps.replays == 2


def test_no_graph_on_cpu_backends(backend):
    """numpy, array_api_strict, torch (and jax, which compiles): no graph steps."""
    if backend.name == "cupy":
        pytest.skip("cupy captures graphs (test_graph_on_the_gpu)")
    x, y = _data(n=20)
    model = _model(True, "sgd")
    model.fit(x, y, epochs=1, batch_size=20, verbose=0)
    assert getattr(model, "_graph_steps", None) is None


@pytest.mark.gpu
@pytest.mark.parametrize("optimizer", ["momentum", "adam_schedule"])
def test_graph_on_the_gpu(optimizer):
    """A real CUDA graph: the eager CuPy numbers to 1e-12 in float64, without a warning."""
    require("cupy")
    before = xn.get_floatx()
    xn.set_floatx("float64")
    try:
        with xn.use_backend("cupy"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)
                eager, graph, hists = _fit_both(optimizer)
            _assert_same(eager, graph, hists)
            assert graph._graph_steps.replays == 4
    finally:
        xn.set_floatx(before)


def test_float32_stays_float32(fake):
    """In float32 (a schedule's rate cast to it, as a Python float meets float32 eagerly)
    the buffers and the trained parameters stay float32, near the eager numbers."""
    xn.set_floatx("float32")  # the fixture puts the caller's type back
    eager, graph, hists = _fit_both("adam_schedule")
    for a, b in zip(eager.get_weights(), graph.get_weights()):
        assert b.dtype == a.dtype == np.float32
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert all(a.dtype == np.float32 for a in graph._graph_steps._params.values())
    assert graph._graph_steps.replays == 4
