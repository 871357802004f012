"""Optimizers: the first two updates against the book's formulas written out in NumPy,
purity of ``apply``, the book's ``update``, weight decay, convergence, names, state keys."""
from __future__ import annotations

import numpy as np
import pytest

import xpnet as xn
from xpnet import optimizers as O

P0 = np.array([1.0, -2.0, 0.5])
G1 = np.array([0.1, -0.3, 0.2])
G2 = np.array([-0.2, 0.4, 0.05])
EPS = 1e-7


def _np(a):
    return xn.to_numpy(a)


# -- the book's update rules, by hand, in float64 NumPy (two steps, in-place as in the book) --

def _sgd(lr):
    p = P0.copy()
    out = []
    for g in (G1, G2):
        p -= lr * g
        out.append(p.copy())
    return out


def _momentum(lr, m):
    p, v = P0.copy(), np.zeros(3)
    out = []
    for g in (G1, G2):
        v = m * v - lr * g
        p += v
        out.append(p.copy())
    return out


def _nesterov(lr, m):
    # the book's common/optimizer.py: the weights move with the old v, then v is updated
    p, v = P0.copy(), np.zeros(3)
    out = []
    for g in (G1, G2):
        p += m * m * v
        p -= (1 + m) * lr * g
        v *= m
        v -= lr * g
        out.append(p.copy())
    return out


def _adagrad(lr):
    p, h = P0.copy(), np.zeros(3)
    out = []
    for g in (G1, G2):
        h += g * g
        p -= lr * g / (np.sqrt(h) + EPS)
        out.append(p.copy())
    return out


def _rmsprop(lr, d):
    p, h = P0.copy(), np.zeros(3)
    out = []
    for g in (G1, G2):
        h *= d
        h += (1 - d) * g * g
        p -= lr * g / (np.sqrt(h) + EPS)
        out.append(p.copy())
    return out


def _adam(lr, b1, b2):
    p, m, v = P0.copy(), np.zeros(3), np.zeros(3)
    out = []
    for t, g in enumerate((G1, G2), start=1):
        lr_t = lr * np.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
        m += (1 - b1) * (g - m)
        v += (1 - b2) * (g ** 2 - v)
        p -= lr_t * m / (np.sqrt(v) + EPS)
        out.append(p.copy())
    return out


CASES = {
    "sgd": (lambda: O.SGD(lr=0.3), lambda: _sgd(0.3)),
    "momentum": (lambda: O.Momentum(lr=0.2, momentum=0.8), lambda: _momentum(0.2, 0.8)),
    "nesterov": (lambda: O.Nesterov(lr=0.2, momentum=0.7), lambda: _nesterov(0.2, 0.7)),
    "adagrad": (lambda: O.AdaGrad(lr=0.5), lambda: _adagrad(0.5)),
    "rmsprop": (lambda: O.RMSprop(lr=0.05, decay_rate=0.9), lambda: _rmsprop(0.05, 0.9)),
    "adam": (lambda: O.Adam(lr=0.1, beta1=0.8, beta2=0.95), lambda: _adam(0.1, 0.8, 0.95)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_first_two_updates_match_the_book(to_xp, xp, name):
    make, by_hand = CASES[name]
    expected = by_hand()
    opt = make()
    params = {"w": to_xp(P0)}
    for step, g in enumerate((G1, G2)):
        opt.update(params, {"w": to_xp(g)})
        assert params["w"].dtype == xp.float64
        np.testing.assert_allclose(_np(params["w"]), expected[step], rtol=1e-12, atol=1e-15)
    assert opt.state["step"] == 2


@pytest.mark.parametrize("name", list(CASES))
def test_apply_is_pure(to_xp, name):
    opt = CASES[name][0]()
    params = {"layer/W": to_xp(np.arange(6.0).reshape(2, 3)), "layer/b": to_xp(P0)}
    grads = {"layer/W": to_xp(np.ones((2, 3))), "layer/b": to_xp(G1)}
    state = opt.init_state(params)
    state1 = opt.apply(params, grads, state)[1]  # a state with non-zero slots
    snap = {
        "params": {k: _np(v).copy() for k, v in params.items()},
        "grads": {k: _np(v).copy() for k, v in grads.items()},
        "slots": {k: {s: _np(a).copy() for s, a in d.items()} for k, d in state1["slots"].items()},
    }
    objects = (dict(params), dict(grads), {k: dict(d) for k, d in state1["slots"].items()})
    new_params, new_state = opt.apply(params, grads, state1)
    assert state1["step"] == 1 and new_state["step"] == 2
    assert objects == (params, grads, {k: dict(d) for k, d in state1["slots"].items()})
    for k, v in params.items():
        np.testing.assert_array_equal(_np(v), snap["params"][k])
        np.testing.assert_array_equal(_np(grads[k]), snap["grads"][k])
        assert new_params[k] is not v
        assert not np.array_equal(_np(new_params[k]), snap["params"][k])
        for s, a in state1["slots"][k].items():
            np.testing.assert_array_equal(_np(a), snap["slots"][k][s])


def test_update_rebinds_dict_entries(to_xp):
    opt = O.SGD(lr=0.5)
    w = to_xp(P0)
    params = {"w": w}
    opt.update(params, {"w": to_xp(G1)})
    assert params["w"] is not w
    np.testing.assert_array_equal(_np(w), P0)  # the old array was not written into
    np.testing.assert_allclose(_np(params["w"]), P0 - 0.5 * G1)


def test_weight_decay_applies_to_2d_params_only(to_xp):
    W, b = np.array([[1.0, -2.0], [3.0, 0.5]]), np.array([1.0, -1.0])
    opt = O.SGD(lr=0.1, weight_decay=0.5)
    params = {"W": to_xp(W), "b": to_xp(b)}
    opt.update(params, {"W": to_xp(np.zeros((2, 2))), "b": to_xp(np.zeros(2))})
    np.testing.assert_allclose(_np(params["W"]), W - 0.1 * 0.5 * W)
    np.testing.assert_array_equal(_np(params["b"]), b)


def test_weight_decay_in_adaptive_optimizer(to_xp):
    # the decay term is added to the gradient before the optimizer's rule
    W, gW = np.array([[2.0, -1.0]]), np.array([[0.1, 0.2]])
    opt = O.AdaGrad(lr=0.1, weight_decay=0.01)
    params = {"W": to_xp(W)}
    opt.update(params, {"W": to_xp(gW)})
    g = gW + 0.01 * W
    np.testing.assert_allclose(_np(params["W"]), W - 0.1 * g / (np.abs(g) + EPS), rtol=1e-12)


# the book's chapter-6 comparison: f(x, y) = x**2 / 20 + y**2 from (-7, 2)
BOOK_LR = {"sgd": 0.95, "momentum": 0.1, "nesterov": 0.1, "adagrad": 1.5, "rmsprop": 0.1,
           "adam": 0.3}


@pytest.mark.parametrize("name", list(BOOK_LR))
def test_every_optimizer_minimises_the_books_function(to_xp, name):
    opt = O.get_optimizer(name)
    opt.lr = BOOK_LR[name]
    params = {"x": to_xp(np.array(-7.0)), "y": to_xp(np.array(2.0))}
    f0 = 49 / 20 + 4
    for _ in range(100):
        opt.update(params, {"x": params["x"] / 10.0, "y": 2.0 * params["y"]})
    x, y = float(params["x"]), float(params["y"])
    assert x ** 2 / 20 + y ** 2 < 1e-3 * f0


def test_state_keys_are_param_names(to_xp):
    params = {"dense_1/W": to_xp(np.ones((2, 2))), "dense_1/b": to_xp(np.ones(2))}
    for name in O.OPTIMIZERS:
        opt = O.get_optimizer(name)
        state = opt.init_state(params)
        assert state["step"] == 0
        assert list(state["slots"]) == list(params)
        for key, slots in state["slots"].items():
            assert set(slots) == set(opt.slots)
            for a in slots.values():
                assert a.shape == params[key].shape
                np.testing.assert_array_equal(_np(a), 0.0)
        opt.update(dict(params), {k: v for k, v in params.items()})
        assert list(opt.state["slots"]) == list(params)


@pytest.mark.parametrize("name", list(O.OPTIMIZERS))
def test_names_resolve(name):
    opt = O.get_optimizer(name)
    assert type(opt) is O.OPTIMIZERS[name]
    assert type(O.get_optimizer(name.upper())) is O.OPTIMIZERS[name]


def test_instances_and_classes_resolve():
    opt = O.Adam(lr=0.01)
    assert O.get_optimizer(opt) is opt
    assert isinstance(O.get_optimizer(O.RMSprop), O.RMSprop)
    assert "lr=0.01" in repr(opt)


def test_unknown_optimizer_lists_names():
    with pytest.raises(ValueError) as info:
        O.get_optimizer("lbfgs")
    for name in O.OPTIMIZERS:
        assert name in str(info.value)
    with pytest.raises(TypeError):
        O.get_optimizer(None)


@pytest.mark.parametrize("bad", [0, -0.1, True, "0.1"])
def test_bad_learning_rate(bad):
    with pytest.raises(ValueError, match="lr"):
        O.SGD(lr=bad)


def test_negative_weight_decay():
    with pytest.raises(ValueError, match="weight_decay"):
        O.Adam(weight_decay=-1.0)
