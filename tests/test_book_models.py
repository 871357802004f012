"""The book's networks (chapters 4-6) and Trainer on every backend."""
from __future__ import annotations

import numpy as np
import pytest

import xpnet as xn
from xpnet import backend as B
from xpnet.models import MultiLayerNet, Trainer, TwoLayerNet
from xpnet.optimizers import SGD, Adam


def _max_diffs(a: dict, b: dict) -> dict:
    assert list(a) == list(b)
    return {k: float(np.max(np.abs(xn.to_numpy(a[k]) - xn.to_numpy(b[k])))) for k in a}


def _check_data(batch, n_in=10, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, n_in)), rng.integers(0, n_out, batch)


def _xor(n=400, seed=0):
    """Quadrant XOR: no linear model gets much above 0.5, a hidden layer gets ~0.98."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    return x, ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.int64)


def _blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 2.0], [-1.8, -1.0], [1.8, -1.0]])
    t = np.arange(n) % 3
    return (centers[t] + 0.6 * rng.standard_normal((n, 2))).astype(np.float32), t


# -- gradient checks (float64) -----------------------------------------------------------

def test_two_layer_net_gradient_check(backend):
    x, t = _check_data(3)
    net = TwoLayerNet(10, 5, 3, weight_init_std=0.5, seed=1, dtype="float64")
    diffs = _max_diffs(net.gradient(x, t), net.numerical_gradient(x, t))
    assert set(diffs) == {"W1", "b1", "W2", "b2"}
    assert max(diffs.values()) < 1e-6, diffs  # measured: <= 6e-10


def test_two_layer_net_gradient_check_one_hot_targets(backend):
    x, t = _check_data(4)
    t1 = np.eye(3)[t]
    net = TwoLayerNet(10, 5, 3, weight_init_std=0.5, seed=2, dtype="float64")
    labels, one_hot = net.gradient(x, t), net.gradient(x, t1)
    assert max(_max_diffs(labels, one_hot).values()) < 1e-12
    assert max(_max_diffs(one_hot, net.numerical_gradient(x, t1)).values()) < 1e-6


@pytest.mark.parametrize("options", [
    {"use_batchnorm": True},
    {"weight_decay_lambda": 0.1},
    {"use_batchnorm": True, "weight_decay_lambda": 0.1, "activation": "sigmoid",
     "weight_init_std": "xavier"},
    {"use_batchnorm": True, "use_dropout": True, "dropout_ratio": 0.3},
], ids=["batchnorm", "weight_decay", "bn_decay_sigmoid", "bn_dropout_fixed_mask"])
def test_multi_layer_net_gradient_check(backend, options):
    # batch 8: batch statistics over 3 rows make the loss curved enough that the
    # central difference itself is off by ~6e-7; over 8 rows it is ~3e-8
    x, t = _check_data(8)
    net = MultiLayerNet(10, [6, 5], 3, seed=1, dtype="float64", **options)
    numeric = net.numerical_gradient(x, t)  # each probe restarts the dropout masks
    net.reset_dropout()  # ... so backprop sees that same mask
    diffs = _max_diffs(net.gradient(x, t), numeric)
    expected = ["W1", "b1", "W2", "b2", "W3", "b3"]
    if options.get("use_batchnorm"):
        expected += ["gamma1", "beta1", "gamma2", "beta2"]
    assert list(diffs) == expected
    assert max(diffs.values()) < 1e-6, diffs  # measured: <= 2e-7


def test_weight_decay_terms(backend):
    x, t = _check_data(5)
    plain = MultiLayerNet(10, [6], 3, seed=3, dtype="float64")
    decayed = MultiLayerNet(10, [6], 3, seed=3, dtype="float64", weight_decay_lambda=0.5)
    W = [xn.to_numpy(plain.params[k]) for k in ("W1", "W2")]
    penalty = 0.25 * sum(float(np.sum(w * w)) for w in W)
    assert float(decayed.loss(x, t)) == pytest.approx(float(plain.loss(x, t)) + penalty, rel=1e-12)
    g0, g1 = plain.gradient(x, t), decayed.gradient(x, t)
    np.testing.assert_allclose(xn.to_numpy(g1["W1"]), xn.to_numpy(g0["W1"]) + 0.5 * W[0], rtol=1e-12)
    np.testing.assert_allclose(xn.to_numpy(g1["b1"]), xn.to_numpy(g0["b1"]), rtol=1e-12)


def test_numerical_gradient_leaves_network_unchanged(backend):
    x, t = _check_data(8)
    net = MultiLayerNet(10, [4], 3, use_batchnorm=True, seed=0, dtype="float64")
    before = {k: v for k, v in net.params.items()}
    mean_before = xn.to_numpy(net.layers["BatchNorm1"].state["running_mean"])
    net.numerical_gradient(x, t)
    assert all(net.params[k] is before[k] for k in before)
    np.testing.assert_array_equal(xn.to_numpy(net.layers["BatchNorm1"].state["running_mean"]),
                                  mean_before)


# -- parameters are rebound, layers follow ---------------------------------------------

def test_layers_read_rebound_params(backend, xp):
    net = TwoLayerNet(4, 3, 2, seed=0)
    x = np.ones((2, 4), dtype=np.float32)
    net.params["W2"] = xp.zeros((3, 2), dtype=net.dtype, device=backend.device)
    net.params["b2"] = xp.asarray([1.0, -2.0], dtype=net.dtype, device=backend.device)
    np.testing.assert_array_equal(xn.to_numpy(net.predict(x)), [[1.0, -2.0], [1.0, -2.0]])
    assert net.layers["Affine2"].params["W"] is net.params["W2"]


def test_same_seed_same_initial_params_on_every_backend():
    runs = {}
    for name in ("numpy", "array_api_strict", "torch"):
        try:
            B.load(name)
        except xn.BackendUnavailableError:
            continue
        with xn.use_backend(name):
            two = TwoLayerNet(6, 5, 3, seed=42)
            multi = MultiLayerNet(6, [5, 4], 3, use_batchnorm=True, seed=42)
            runs[name] = {**{"two_" + k: xn.to_numpy(v) for k, v in two.params.items()},
                          **{"multi_" + k: xn.to_numpy(v) for k, v in multi.params.items()}}
    assert len(runs) >= 2
    first = runs["numpy"]
    assert first["two_W1"].dtype == np.dtype(xn.get_floatx())
    for name, params in runs.items():
        assert list(params) == list(first)
        for key in first:
            np.testing.assert_array_equal(params[key], first[key], err_msg=f"{name} {key}")


# -- training -----------------------------------------------------------------------

def test_two_layer_net_sgd_learns_xor(backend):
    x, t = _xor()
    net = TwoLayerNet(2, 16, 2, weight_init_std=1.0, seed=0)
    loss_before, acc_before = float(net.loss(x, t)), net.accuracy(x, t)
    opt = SGD(lr=0.1)
    for _ in range(300):
        opt.update(net.params, net.gradient(x, t))
    loss_after, acc_after = float(net.loss(x, t)), net.accuracy(x, t)
    # measured on every backend: 0.826 -> 0.149, accuracy 0.43 -> 0.98
    assert acc_before < 0.6
    assert loss_after < 0.3 and loss_after < 0.5 * loss_before
    assert acc_after > 0.93


@pytest.mark.parametrize("optimizer, param", [
    ("sgd", {"lr": 0.1}), ("Adam", {"lr": 0.01}), ("MOMENTUM", {"lr": 0.01}),
])
def test_trainer(backend, optimizer, param):
    x, t = _blobs()
    net = TwoLayerNet(2, 16, 3, weight_init_std="he", seed=0)
    acc_before = net.accuracy(x[200:], t[200:])  # measured 0.38
    trainer = Trainer(net, x[:200], t[:200], x[200:], t[200:], epochs=5, mini_batch_size=20,
                      optimizer=optimizer, optimizer_param=param, verbose=False, seed=0)
    assert trainer.train() is trainer
    assert len(trainer.train_loss_list) == 5 * 10
    assert all(isinstance(v, float) for v in trainer.train_loss_list)
    assert len(trainer.train_acc_list) == len(trainer.test_acc_list) == 5
    assert acc_before < 0.5
    assert trainer.test_acc_list[-1] > 0.95  # measured 0.99 for all three
    assert trainer.final_test_acc == trainer.test_acc_list[-1]
    first, last = trainer.train_loss_list[:10], trainer.train_loss_list[-10:]
    assert sum(last) < 0.3 * sum(first)  # measured ratio 0.01 to 0.06


def test_trainer_on_device_data_matches_host_data(backend, to_xp):
    x, t = _blobs()
    results = []
    for move in (lambda a: a, to_xp):
        net = MultiLayerNet(2, [8], 3, use_batchnorm=True, seed=1)
        trainer = Trainer(net, move(x[:200]), move(t[:200]), move(x[200:]), move(t[200:]),
                          epochs=2, mini_batch_size=50, optimizer="adam",
                          optimizer_param={"lr": 0.01}, evaluate_sample_num_per_epoch=50,
                          verbose=False, seed=3).train()
        results.append((trainer.train_loss_list, trainer.test_acc_list, trainer.final_test_acc))
    assert len(results[0][0]) == 8
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    assert results[0][1:] == results[1][1:]


def test_trainer_verbose_prints_one_line_per_epoch(backend, capsys):
    x, t = _blobs(60)
    Trainer(TwoLayerNet(2, 4, 3, seed=0), x, t, x, t, epochs=3, mini_batch_size=20,
            seed=0).train()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("=== epoch 1/3: train loss ")
    assert lines[-1].startswith("=== final test accuracy: ")


def test_trainer_rejects_bad_arguments():
    x, t = _blobs(40)
    net = TwoLayerNet(2, 4, 3, seed=0)
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        Trainer(net, x, t, x, t, optimizer="lbfgs")
    with pytest.raises(ValueError, match="optimizer_param"):
        Trainer(net, x, t, x, t, optimizer=Adam(), optimizer_param={"lr": 0.1})
    with pytest.raises(ValueError, match="differ in length"):
        Trainer(net, x, t[:10], x, t)
    with pytest.raises(ValueError, match="epochs"):
        Trainer(net, x, t, x, t, epochs=0)
    with pytest.raises(ValueError, match="dtype"):
        TwoLayerNet(2, 4, 3, dtype="float16")
    with pytest.raises(ValueError, match="hidden_size"):
        TwoLayerNet(2, 0, 3)
    with pytest.raises(ValueError, match="weight_init_std"):
        MultiLayerNet(2, [4], 3, weight_init_std="uniform")


def test_training_step_makes_no_host_sync():
    """On torch's "meta" device any host sync raises: gradient, update and loss stay lazy."""
    torch = pytest.importorskip("torch")
    with xn.use_backend("torch") as b:
        meta = B.Backend("torch", b.xp, torch.device("meta"), torch.Tensor)
        x, t = _blobs(1000)
        for net in (TwoLayerNet(2, 5, 3, seed=0),
                    MultiLayerNet(2, [5, 5], 3, use_batchnorm=True, weight_decay_lambda=0.1,
                                  seed=0)):
            net.backend = meta
            net.params.update({k: v.to("meta") for k, v in net.params.items()})
            for layer in net.layers.values():
                layer.state.update({k: v.to("meta") for k, v in layer.state.items()})
            trainer = Trainer(net, x, t, x, t, mini_batch_size=10, optimizer="adam", seed=0)
            for _ in range(3):  # 100 steps per epoch: no epoch end, so no sync expected
                trainer.train_step()
            assert net.params["W1"].device.type == "meta"
            with pytest.raises(RuntimeError):
                float(trainer._epoch_losses[-1])


# -- real data ------------------------------------------------------------------------

def test_two_layer_net_on_mnist(shared_data):
    datasets = pytest.importorskip("xpnet.datasets")
    folder = shared_data / "mnist"
    x = datasets.read_idx(folder / "t10k-images-idx3-ubyte.gz").reshape(10000, -1)
    x = x.astype(np.float32) / 255.0
    t = datasets.read_idx(folder / "t10k-labels-idx1-ubyte.gz")
    with xn.use_backend("numpy"):
        net = TwoLayerNet(784, 50, 10, weight_init_std="he", seed=0)
        trainer = Trainer(net, x[:8000], t[:8000], x[8000:], t[8000:], epochs=2,
                          mini_batch_size=100, optimizer="sgd", optimizer_param={"lr": 0.1},
                          verbose=False, seed=0).train()
    # measured over seeds 0-9: 0.9025 to 0.916 (the book's weight_init_std=0.01: 0.848-0.863)
    assert trainer.final_test_acc > 0.88
    assert trainer.train_acc_list[-1] > trainer.train_acc_list[0]
