"""Learning-rate schedules, LR callbacks, gradient clipping and AdamW, against Keras'
documented formulas and PyTorch's implementations."""
from __future__ import annotations

import math

import numpy as np
import pytest

import xpnet as xn
from xpnet import optimizers as O
from xpnet.callbacks import LearningRateScheduler, ReduceLROnPlateau
from xpnet.schedules import CosineDecay, ExponentialDecay, PiecewiseConstantDecay


# -- schedules: the formulas of keras.optimizers.schedules' documentation -----------------

def test_exponential_decay():
    s = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    for step in (0, 3, 10, 25):
        assert s(step) == pytest.approx(0.1 * 0.5 ** (step / 10), rel=1e-15)
    stair = ExponentialDecay(0.1, 10, 0.5, staircase=True)
    assert [stair(k) for k in (0, 9, 10, 19, 20)] == [0.1, 0.1, 0.05, 0.05, 0.025]


def test_piecewise_constant_decay():
    s = PiecewiseConstantDecay([100, 110], [1.0, 0.5, 0.1])
    # "1.0 for the first 100001 steps, 0.5 for the next 10000 steps, and 0.1 for any
    # additional steps" (the docs' example, scaled down): boundaries are inclusive
    assert [s(k) for k in (0, 100, 101, 110, 111)] == [1.0, 1.0, 0.5, 0.5, 0.1]
    with pytest.raises(xn.InvalidParameterError):
        PiecewiseConstantDecay([1, 2], [1.0])
    with pytest.raises(xn.InvalidParameterError):
        PiecewiseConstantDecay([5, 2], [1.0, 2.0, 3.0])


def test_cosine_decay_with_and_without_warmup():
    s = CosineDecay(0.1, decay_steps=100, alpha=0.2)
    for step in (0, 30, 100, 150):
        done = min(step, 100) / 100
        assert s(step) == pytest.approx(0.1 * ((1 - 0.2) * 0.5 * (1 + math.cos(math.pi * done)) + 0.2))
    w = CosineDecay(0.0, decay_steps=50, warmup_target=0.4, warmup_steps=10)
    assert [w(k) for k in (0, 5)] == pytest.approx([0.0, 0.2])  # linear warmup
    assert w(10) == pytest.approx(0.4) and w(35) == pytest.approx(0.2) and w(60) == pytest.approx(0.0)


def _linear_fit(optimizer, steps=12, dtype="float64"):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    model = xn.Sequential([xn.layers.Dense(1, input_dim=3)], seed=0, dtype=dtype)
    model.compile(optimizer, "mse")
    w0 = model.get_weights()
    model.fit(x, y, epochs=steps, batch_size=16, shuffle=False, verbose=0)
    return x, y, w0, model


def test_sgd_follows_a_schedule_step_by_step(backend):
    """Against PyTorch: SGD with LambdaLR stepped once per update."""
    torch = pytest.importorskip("torch", reason="PyTorch is the reference")
    sched = ExponentialDecay(0.2, decay_steps=3, decay_rate=0.6)
    x, y, (W, b), model = _linear_fit(O.SGD(learning_rate=sched))
    tw, tb = torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)
    opt = torch.optim.SGD([tw, tb], lr=0.2)
    lam = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: sched(k) / 0.2)
    for _ in range(12):
        opt.zero_grad()
        torch.mean((torch.from_numpy(x) @ tw + tb - torch.from_numpy(y)) ** 2).backward()
        opt.step()
        lam.step()
    got = model.get_weights()
    np.testing.assert_allclose(got[0], tw.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[1], tb.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_a_resumed_checkpoint_continues_the_schedule(tmp_path):
    sched = PiecewiseConstantDecay([5], [0.1, 0.01])
    x, y, _, whole = _linear_fit(O.Momentum(learning_rate=sched), steps=10)
    _, _, _, part = _linear_fit(O.Momentum(learning_rate=sched), steps=4)
    part.save_checkpoint(tmp_path / "c.npz", epoch=4)
    again = xn.Sequential([xn.layers.Dense(1, input_dim=3)], seed=1, dtype="float64")
    again.compile(O.Momentum(learning_rate=sched), "mse")
    again.fit(x, y, epochs=10, batch_size=16, shuffle=False, verbose=0,
              initial_epoch=again.load_checkpoint(tmp_path / "c.npz"))
    for a, b in zip(whole.get_weights(), again.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-14)


def test_the_lr_callbacks():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 3)), rng.standard_normal((40, 1))
    model = xn.Sequential([xn.layers.Dense(1, input_dim=3)], seed=0)
    model.compile(O.SGD(learning_rate=0.1), "mse")
    history = model.fit(x, y, epochs=4, verbose=0,
                        callbacks=[LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3, 0.025])
    # ReduceLROnPlateau, fed a sequence of val_loss as Keras' rule reads it
    cb = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.02, min_delta=0.0)
    cb.set_model(model)
    model.optimizer.lr = 0.1
    cb.on_train_begin()
    rates = []
    for val in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]:
        logs = {"val_loss": val}
        cb.on_epoch_end(0, logs)
        rates.append(logs["learning_rate"])
    # two epochs without improvement -> halve; one epoch of cooldown; never below 0.02
    # (Keras' rule: the epoch that ends a cooldown already counts towards the patience)
    assert rates == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025, 0.02])
    sched_model = xn.Sequential([xn.layers.Dense(1, input_dim=3)])
    sched_model.compile(O.SGD(learning_rate=ExponentialDecay(0.1, 10, 0.5)), "mse")
    with pytest.raises(ValueError, match="schedule"):
        sched_model.fit(x, y, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: lr)])


# -- clipping: PyTorch's clip_grad_norm_ / clip_grad_value_ ---------------------------------

def _one_step(optimizer, backend):
    rng = np.random.default_rng(3)
    W, b = rng.standard_normal((4, 3)) * 3, rng.standard_normal((3,)) * 3
    gW, gb = rng.standard_normal((4, 3)) * 5, rng.standard_normal((3,)) * 5
    to = lambda a: xn.backend.asarray(a)  # noqa: E731
    params, grads = {"W": to(W), "b": to(b)}, {"W": to(gW), "b": to(gb)}
    new, _ = optimizer.apply(params, grads, optimizer.init_state(params))
    return (W, b), (gW, gb), {k: xn.to_numpy(v) for k, v in new.items()}


@pytest.mark.parametrize("kind", ["clipnorm", "global_clipnorm", "clipvalue"])
def test_clipping_against_pytorch(backend, kind):
    torch = pytest.importorskip("torch", reason="PyTorch is the reference")
    (W, b), (gW, gb), new = _one_step(O.SGD(lr=1.0, **{kind: 1.5}), backend)
    tw, tb = torch.tensor(W), torch.tensor(b)
    tw.grad, tb.grad = torch.tensor(gW), torch.tensor(gb)
    if kind == "clipnorm":  # Keras: each gradient on its own
        torch.nn.utils.clip_grad_norm_([tw], 1.5)
        torch.nn.utils.clip_grad_norm_([tb], 1.5)
    elif kind == "global_clipnorm":
        torch.nn.utils.clip_grad_norm_([tw, tb], 1.5)
    else:
        torch.nn.utils.clip_grad_value_([tw, tb], 1.5)
    np.testing.assert_allclose(new["W"], W - tw.grad.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(new["b"], b - tb.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_clipping_refusals_and_aliases():
    with pytest.raises(xn.InvalidParameterError, match="only one of"):
        O.Adam(clipnorm=1.0, clipvalue=0.5)
    with pytest.raises(xn.InvalidParameterError):
        O.SGD(clipnorm=-1.0)
    opt = O.Adam(learning_rate=0.02, global_clipnorm=2.0)
    assert opt.lr == opt.learning_rate == 0.02 and opt.global_clipnorm == 2.0
    assert repr(O.SGD()) == "SGD(lr=0.01, weight_decay=0.0)"  # unused clips not shown


# -- AdamW: torch.optim.AdamW ---------------------------------------------------------------

def test_adamw_against_pytorch(backend):
    torch = pytest.importorskip("torch", reason="PyTorch is the reference")
    rng = np.random.default_rng(5)
    W = rng.standard_normal((5, 4))
    # gradients of one sign, |g| in [0.5, 2]: sqrt(v) is far above epsilon, whose place
    # differs (the book's Adam adds it outside the bias correction, PyTorch inside)
    sign = np.sign(rng.standard_normal((5, 4)))
    grads = [sign * rng.uniform(0.5, 2.0, (5, 4)) for _ in range(10)]
    opt = O.AdamW(lr=0.01, weight_decay=0.1)
    params = {"W": xn.backend.asarray(W)}
    state = opt.init_state(params)
    for g in grads:
        params, state = opt.apply(params, {"W": xn.backend.asarray(g)}, state)
    tw = torch.tensor(W, requires_grad=True)
    topt = torch.optim.AdamW([tw], lr=0.01, weight_decay=0.1, eps=1e-7)
    for g in grads:
        tw.grad = torch.tensor(g)
        topt.step()
    # the displacements agree to ~1e-6 (a coupled decay would be ~10% off)
    np.testing.assert_allclose(xn.to_numpy(params["W"]) - W, tw.detach().numpy() - W, rtol=1e-5)
    assert O.get_optimizer("adamw").weight_decay == 0.004  # Keras' default


def test_adamw_differs_from_coupled_decay():
    """Adam(weight_decay) adds lambda*W to the gradient (which Adam rescales); AdamW shrinks W."""
    _, _, coupled = _one_step(O.Adam(lr=0.1, weight_decay=0.5), None)
    _, _, decoupled = _one_step(O.AdamW(lr=0.1, weight_decay=0.5), None)
    assert np.abs(coupled["W"] - decoupled["W"]).max() > 1e-3
