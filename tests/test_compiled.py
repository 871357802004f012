"""``compile(jit_compile=...)``: compiled steps give the eager numbers, keep nothing traced
on the layers, and take everything that changes per call as an input."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import xpnet as xn
from xpnet import compiled as C
from xpnet.callbacks import Callback

from _backends import require

OPTIMIZERS = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]


@pytest.fixture
def jax64():
    """The jax backend in float64 (64-bit arrays switched on), restored afterwards."""
    require("jax")
    before = xn.get_floatx()
    xn.set_floatx("float64")
    with xn.use_backend("jax") as b:
        yield b
    xn.set_floatx(before)


def _data(n=53, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, k, n)


def _model(jit, optimizer="adam", dropout=0.3, lr=None):
    model = xn.Sequential([xn.layers.Dense(8, activation="relu", input_shape=(6,)),
                           xn.layers.BatchNormalization(), xn.layers.Dropout(dropout),
                           xn.layers.Dense(3, activation="softmax")], seed=4)
    opt = xn.optimizers.get_optimizer(optimizer)
    if lr is not None:
        opt.lr = lr
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit)
    return model


def _weights(model):
    return [np.asarray(w) for w in model.get_weights()]


class _Halve(Callback):
    """A schedule: the learning rate halves at the start of every epoch after the first."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch:
            self.model.optimizer.lr = self.model.optimizer.lr * 0.5


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_compiled_fit_equals_eager_fit(jax64, optimizer):
    """Two epochs with a partial last batch (53 = 2 * 20 + 13), BatchNormalization and
    Dropout: the compiled step gives the eager step's parameters, running statistics,
    losses and metrics to 1e-12 (the masks are drawn from the same keys)."""
    x, y = _data()
    runs = []
    for jit in (False, True):
        model = _model(jit, optimizer, lr=0.05)
        hist = model.fit(x, y, epochs=2, batch_size=20, verbose=0, seed=7, callbacks=[_Halve()])
        runs.append((model, hist.history))
        assert (C.steps(model) is not None) == jit
    (eager, h_eager), (jit, h_jit) = runs
    for a, b in zip(_weights(eager), _weights(jit)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    for key in h_eager:
        np.testing.assert_allclose(h_jit[key], h_eager[key], rtol=1e-12)
    assert jit.opt_state["step"] == eager.opt_state["step"] == 6
    np.testing.assert_allclose(jit.evaluate(x, y, verbose=0), eager.evaluate(x, y, verbose=0),
                               rtol=1e-12)
    np.testing.assert_allclose(jit.predict(x, batch_size=16), eager.predict(x, batch_size=16),
                               rtol=1e-12, atol=1e-14)


def test_no_recompile_per_epoch_or_rate(jax64):
    """The full and the partial batch are traced once each; a new learning rate (the
    schedule) and further epochs and fits reuse them: the rate is an input of the step."""
    x, y = _data()
    model = _model(True)
    model.fit(x, y, epochs=1, batch_size=20, verbose=0)
    steps = C.steps(model)
    traced = steps.traces
    assert traced == 2  # batches of 20 rows and of 13 rows
    model.fit(x, y, epochs=3, batch_size=20, verbose=0, callbacks=[_Halve()])
    assert C.steps(model) is steps and steps.traces == traced


def test_no_tracers_left_on_layers(jax64):
    """After tracing, every layer holds its own arrays: no tracer in params, state, grads
    or the forward pass's scratch, and the model still runs eagerly."""
    import jax

    x, y = _data()
    model = _model(True)
    model.fit(x, y, epochs=1, batch_size=20, verbose=0)
    model.predict(x)
    for obj in [*model.layers, model.loss]:
        for name, value in vars(obj).items():
            values = value.values() if isinstance(value, dict) else [value]
            assert not any(isinstance(v, jax.core.Tracer) for v in values), (obj, name)
    model.jit_compile = False
    eager = model.predict(x)  # would raise UnexpectedTracerError on a leaked tracer
    model.jit_compile = True
    np.testing.assert_allclose(model.predict(x), eager, rtol=1e-12)


def test_jaxpr_of_the_step_holds_the_update(jax64):
    """The traced step computes Adam's update, with the bias correction from the step
    count (a traced input: ``pow`` of it appears) and the learning rate as inputs."""
    import jax

    x, y = _data(n=20)
    model = _model(True)
    model.fit(x, y, epochs=1, batch_size=20, verbose=0)  # builds, makes the state
    steps = C.steps(model)
    params = model.get_params(trainable_only=True)
    state = steps.begin_epoch(params, model.opt_state)
    xp = jax64.xp
    args = (params, state, C.layer_state(model), steps._carry[1], xp.asarray(0.01),
            {}, xp.asarray(x), xp.asarray(y))
    jaxpr = jax.make_jaxpr(steps.train_fn)(*args)
    prims = {eqn.primitive.name for eqn in jaxpr.jaxpr.eqns}
    assert {"sqrt", "pow", "dot_general"} <= prims
    out = jax.core.eval_jaxpr(jaxpr.jaxpr, jaxpr.consts, *jax.tree_util.tree_leaves(args))
    new_params = jax.tree_util.tree_unflatten(
        jax.tree_util.tree_structure(steps.train_fn(*args)), out)[0]
    # the same step with the learning rate doubled moves every weight twice as far
    # (Adam's first step is lr * sign-like: the rate enters linearly, as an input)
    args2 = args[:4] + (xp.asarray(0.02),) + args[5:]
    twice = steps.train_fn(*args2)[0]
    for key, p in params.items():
        np.testing.assert_allclose(np.asarray(twice[key]) - np.asarray(p),
                                   2 * (np.asarray(new_params[key]) - np.asarray(p)), rtol=1e-9)


def test_dropout_masks_change_per_step(jax64):
    """The Dropout key is carried: two steps on the same batch draw different masks."""
    x, y = _data(n=20)
    model = _model(True, optimizer="sgd", dropout=0.5)
    model.fit(x, y, epochs=1, batch_size=20, verbose=0)
    steps = C.steps(model)
    params = model.get_params(trainable_only=True)
    state = steps.begin_epoch(params, model.opt_state)
    keys0 = steps._carry[1]
    xb, yb = jax64.xp.asarray(x), jax64.xp.asarray(y)
    steps.train_step(params, state, xb, yb)
    keys1 = steps._carry[1]
    import jax

    assert not np.array_equal(jax.random.key_data(keys0[0]), jax.random.key_data(keys1[0]))


def test_compiled_steps_copy_as_nothing(jax64):
    """Compiled functions do not pickle: a copy of the model holds none and compiles again."""
    x, y = _data(n=20)
    model = _model(True)
    model.fit(x, y, epochs=1, batch_size=20, verbose=0)
    steps = C.steps(model)
    assert pickle.loads(pickle.dumps(steps)) is None and copy.deepcopy(steps) is None


def test_jit_compile_is_a_no_op_without_a_compiler(backend):
    """numpy, array_api_strict, torch: jit_compile changes nothing (no compiled steps)."""
    if backend.compiler is not None:
        pytest.skip(f"{backend.name} compiles steps (the tests above)")
    x, y = _data(n=20)
    model = _model(True)
    model.fit(x, y, epochs=1, batch_size=20, verbose=0)
    assert C.steps(model) is None


@pytest.mark.parametrize("bad", [1, 0, "yes", None])
def test_jit_compile_takes_true_false_or_auto(bad):
    model = xn.Sequential([xn.layers.Dense(2, input_shape=(3,))])
    with pytest.raises(xn.InvalidParameterError, match="jit_compile"):
        model.compile(optimizer="sgd", loss="mse", jit_compile=bad)


def test_device_data_rows_taken_in_the_step(jax64):
    """Data already on the device: the compiled step gathers the shuffled rows itself
    (one trace for every batch of a size), with the eager numbers."""
    x, y = _data()
    eager = _model(False)
    eager.fit(x, y, epochs=2, batch_size=20, verbose=0, seed=3)
    jit = _model(True)
    xd, yd = xn.backend.asarray(x), xn.backend.asarray(y)
    jit.fit(xd, yd, epochs=2, batch_size=20, verbose=0, seed=3)
    for a, b in zip(_weights(eager), _weights(jit)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    assert C.steps(jit).traces == 2
    np.testing.assert_allclose(np.asarray(jit(x[:3])), eager.predict(x[:3]), rtol=1e-12)


def test_frozen_layer_and_interrupted_fit(jax64):
    """A frozen layer stays as it is under the compiled step (as eagerly); a fit stopped
    mid-epoch leaves the model holding live arrays (the donated inputs are replaced)."""
    x, y = _data()
    models = []
    for jit in (False, True):
        model = _model(jit, "momentum")
        model.build()
        model.layers[0].trainable = False
        model.fit(x, y, epochs=2, batch_size=20, verbose=0, seed=1)
        models.append(model)
    for a, b in zip(_weights(models[0]), _weights(models[1])):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)

    class Stop(Exception):
        pass

    model = models[1]
    calls = {"n": 0}
    original = C.steps(model).train_step

    def stop_after_one(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Stop
        return original(*args)

    C.steps(model).train_step = stop_after_one
    with pytest.raises(Stop):
        model.fit(x, y, epochs=1, batch_size=20, verbose=0)
    assert all(np.isfinite(w).all() for w in _weights(model))  # no deleted buffer


def test_call_per_row_reads_the_current_arrays(jax64):
    """``model(x_i)`` through the compiled predict reads the parameters and the layers'
    state afresh on every call: after a fit (BatchNormalization's statistics too),
    ``set_weights`` and ``set_params`` it gives the eager numbers, without tracing again;
    a host row of another dtype is cast; the steps are kept until the trainable set changes."""
    x, y = _data()
    model, eager = _model(True), _model(False)
    model.build()
    eager.build()

    def same():
        eager.set_weights(model.get_weights())
        for i in range(3):
            np.testing.assert_allclose(np.asarray(model(x[i:i + 1])),
                                       np.asarray(eager(x[i:i + 1])), rtol=1e-12)
        row = x[:1].astype("float32")
        np.testing.assert_allclose(np.asarray(model(row)), np.asarray(eager(row)), rtol=1e-12)

    same()
    steps = C.steps(model)
    model.fit(x, y, epochs=1, batch_size=20, verbose=0)
    same()
    traces = steps.traces
    model.set_weights([w * 0.5 for w in model.get_weights()])
    same()
    model.set_params({k: v + 1.0 for k, v in model.get_params().items()})
    same()
    assert C.steps(model) is steps and steps.traces == traces
    model.layers[0].trainable = False
    model.fit(x, y, epochs=1, batch_size=20, verbose=0)
    assert C.steps(model) is not steps
    same()
