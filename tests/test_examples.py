"""The book's examples (``examples/NN_*.py``) run in this process with ``--quick`` and print
the book's numbers.

Each example's ``main(argv)`` is called directly (no subprocess) and its printed output
is parsed: a wrong forward pass, gradient or accuracy fails here. The fast, data-free
examples (01, 02, 03, 05, 07) run on every backend; the training ones on NumPy (12 on one
process here; under torchrun in ``tests/test_distributed.py``).
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import xpnet as xn

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NAMES = ["01_perceptron", "02_activations", "03_three_layer_forward", "04_mnist_inference",
         "05_gradients", "06_two_layer_net", "07_computational_graph", "08_study_sleep",
         "09_fashion_mnist", "10_optimizers", "11_keras_features", "12_distributed"]
_modules: dict = {}


def load(name):
    """Import ``examples/<name>.py`` as a module (once)."""
    if name not in _modules:
        if str(EXAMPLES) not in sys.path:
            sys.path.insert(0, str(EXAMPLES))
        spec = importlib.util.spec_from_file_location(f"xpnet_example_{name}", EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _modules[name] = module
    return _modules[name]


def run(name, capsys, tmp_path, *args):
    """``main([*args, "--out", tmp_path])``; returns (exit status, stdout, stderr)."""
    status = load(name).main([*args, "--out", str(tmp_path)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def numbers(text):
    """Every number in ``text`` (brackets and commas ignored), as floats."""
    return [float(v) for v in re.findall(r"[-+]?\d+\.?\d*(?:e[-+]?\d+)?", text)]


def line(out, start):
    """The first output line that starts with ``start`` (after stripping)."""
    for text in out.splitlines():
        if text.strip().startswith(start):
            return text.strip()
    raise AssertionError(f"no line starting with {start!r} in:\n{out}")


def have_matplotlib():
    return importlib.util.find_spec("matplotlib") is not None


@pytest.fixture
def fashion():
    """Skip unless Fashion-MNIST is on disk (checked when a test needs it, not at import)."""
    try:
        xn.datasets.load_fashion_mnist(download=False)
    except xn.datasets.DatasetNotFoundError:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")


@pytest.fixture
def images():
    """Skip unless the images examples 06 and 10 train on are here: Fashion-MNIST, or the
    MNIST test set (in the usual places or the shared folder)."""
    common = load("_common")
    try:
        common.load_training_data(10, 10)
    except xn.datasets.DatasetNotFoundError:
        pytest.skip("neither Fashion-MNIST nor the MNIST test set is on this machine "
                    "(apt-get install dataset-fashion-mnist, or XPNET_SHARED=<shared folder>)")


def check_png(tmp_path, name):
    if have_matplotlib():
        path = tmp_path / name
        assert path.is_file() and path.stat().st_size > 1000, f"{name} not saved"


# -- every example: a docstring, main(argv), the common options --------------------------

@pytest.mark.parametrize("name", NAMES)
def test_example_has_docstring_and_common_options(name, capsys):
    module = load(name)
    assert module.__doc__ and "python examples/" in module.__doc__
    with pytest.raises(SystemExit) as exc:
        module.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--backend", "--quick", "--out"):
        assert option in text


def test_unavailable_backend_exits_with_its_message(capsys, tmp_path):
    try:
        xn.backend.load("cupy")
    except xn.BackendUnavailableError as exc:
        reason = str(exc)
    else:
        pytest.skip("cupy runs on this machine")
    with pytest.raises(SystemExit) as info:
        load("01_perceptron").main(["--backend", "cupy", "--quick", "--out", str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "backend 'cupy' cannot be used" in err and reason in err


# -- fast examples, every backend ------------------------------------------------------

def test_01_perceptron(backend, capsys, tmp_path):
    status, out, _ = run("01_perceptron", capsys, tmp_path, "--backend", backend.name, "--quick")
    assert status == 0
    assert f"backend: {backend.name}" in out
    assert "XOR(0, 0) = 0  XOR(1, 0) = 1  XOR(0, 1) = 1  XOR(1, 1) = 0" in out
    assert "AND  w=(+0.5, +0.5) b=-0.7 -> [0, 0, 0, 1]" in out
    assert "NAND w=(-0.5, -0.5) b=+0.7 -> [1, 1, 1, 0]" in out
    assert "OR   w=(+0.5, +0.5) b=-0.2 -> [0, 1, 1, 1]" in out
    assert "XOR  [0, 1, 1, 0]: 0 of 1331 weight settings work" in out
    for gate in ("AND ", "NAND", "OR  "):
        found = numbers(line(out, f"{gate} [").split(":")[1])[0]
        assert found > 0, gate
    # the two-layer table: x1 x2 | s1 s2 | y
    rows = [numbers(line(out, f"{a}  {b} |")) for a, b in ((0, 0), (1, 0), (0, 1), (1, 1))]
    assert rows == [[0, 0, 1, 0, 0], [1, 0, 1, 1, 1], [0, 1, 1, 1, 1], [1, 1, 0, 1, 0]]
    check_png(tmp_path, "01_xor.png")


def test_02_activations(backend, capsys, tmp_path):
    status, out, _ = run("02_activations", capsys, tmp_path, "--backend", backend.name, "--quick")
    assert status == 0
    y = numbers(line(out, "softmax(").split("=")[1])
    np.testing.assert_allclose(y, [0.01821127, 0.24519181, 0.73659691], rtol=1e-6)
    assert "sum = 1.000000" in out
    np.testing.assert_allclose(numbers(line(out, "sigmoid").split("=")[1]),
                               [0.11920292, 0.26894142, 0.5, 0.73105858, 0.88079708], rtol=1e-7)
    assert numbers(line(out, "relu").split("=")[1]) == [0, 0, 0, 1, 2]
    assert numbers(line(out, "step").split("=")[1]) == [0, 0, 0, 1, 1]
    stable = numbers(line(out, "xpnet softmax").split(":")[1])
    np.testing.assert_allclose(stable, [9.99954600e-01, 4.53978686e-05, 2.06106005e-09], rtol=1e-6)
    check_png(tmp_path, "02_activations.png")


def test_03_three_layer_forward(backend, capsys, tmp_path):
    status, out, _ = run("03_three_layer_forward", capsys, tmp_path, "--backend", backend.name)
    assert status == 0
    for start in ("y (step by step)", "y (Affine/Sigmoid layers)"):
        np.testing.assert_allclose(numbers(line(out, start).split("=")[1]),
                                   [0.31682708, 0.69627909], rtol=1e-7)
    check_png(tmp_path, "03_three_layer_forward.png")


def test_05_gradients(backend, capsys, tmp_path):
    status, out, _ = run("05_gradients", capsys, tmp_path, "--backend", backend.name, "--quick")
    assert status == 0
    good, bad = numbers(line(out, "class 2 scored")), numbers(line(out, "class 7 scored"))
    np.testing.assert_allclose(good[-2:], [0.0975, 0.510825457099338], rtol=1e-12)
    np.testing.assert_allclose(bad[-2:], [0.5975, 2.302584092994546], rtol=1e-12)
    assert "central difference at x = 5: 0.1999999999990898" in out
    assert "central difference at x = 10: 0.2999999999986347" in out
    assert "df/dx0 = 6.00000000000378, df/dx1 = 7.999999999999119" in out
    assert numbers(line(out, "numerical_gradient at (3.0, 4.0)").split("=")[1]) == [6, 8]
    np.testing.assert_allclose(numbers(line(out, "lr = 0.1:").split(":")[1]),
                               [-6.11110793e-10, 8.14814391e-10], rtol=1e-8)
    np.testing.assert_allclose(numbers(line(out, "lr = 10:").split(":")[1]),
                               [-2.58983747e13, -1.29524862e12], rtol=1e-8)
    np.testing.assert_allclose(numbers(line(out, "lr = 1e-10:").split(":")[1]),
                               [-2.99999994, 3.99999992], rtol=1e-8)
    assert numbers(line(out, "largest difference"))[0] < 1e-6
    check_png(tmp_path, "05_gradient_field.png")
    check_png(tmp_path, "05_gradient_descent.png")


def test_07_computational_graph(backend, capsys, tmp_path):
    status, out, _ = run("07_computational_graph", capsys, tmp_path, "--backend", backend.name)
    assert status == 0
    apples, both = out.split("apples and oranges")
    assert "price: 220" in apples
    assert "dApple: 2.2  dApple_num: 110  dTax: 200" in apples
    assert "price: 715" in both
    assert "dApple: 2.2  dApple_num: 110" in both
    assert "dOrange: 3.3  dOrange_num: 165" in both
    assert "dTax: 650" in both
    check_png(tmp_path, "07_computational_graph.png")


# -- the examples that load data or train, on NumPy ------------------------------------

def test_04_mnist_inference(shared_data, capsys, tmp_path):
    weights = shared_data / "mnist" / "sample_weight.pkl"
    if not weights.is_file():
        pytest.skip(f"the book's weights are not at {weights}")
    status, out, _ = run("04_mnist_inference", capsys, tmp_path, str(weights),
                         "--data", str(shared_data / "mnist"), "--backend", "numpy", "--quick")
    assert status == 0
    assert out.count("Accuracy:0.9352\n") == 2  # one image at a time, then in batches
    assert len(re.findall(r"time: [\d.]+ s \([\d,]+ images/s\)", out)) == 2
    assert "batching is" in out


def test_04_missing_weights_file(capsys, tmp_path):
    status, _, err = run("04_mnist_inference", capsys, tmp_path, str(tmp_path / "none.pkl"))
    assert status == 2 and "no weights file" in err


def test_06_two_layer_net(images, capsys, tmp_path):
    status, out, _ = run("06_two_layer_net", capsys, tmp_path, "--backend", "numpy", "--quick")
    assert status == 0
    for key in ("W1", "b1", "W2", "b2"):
        assert numbers(line(out, f"{key}: mean |backprop - numerical|"))[-1] < 1e-8
    first, last = numbers(line(out, "loss: first step"))
    assert last < first
    train_acc, test_acc = numbers(line(out, "final:"))
    assert test_acc > 0.6 and train_acc > 0.6  # 0.766 / 0.790 measured on Fashion-MNIST
    assert len(re.findall(r"epoch +\d+: train acc", out)) == 10
    check_png(tmp_path, "06_two_layer_net.png")


def test_08_study_sleep(capsys, tmp_path):
    status, out, _ = run("08_study_sleep", capsys, tmp_path, "--backend", "numpy", "--quick")
    assert status == 0
    steps = [int(s) for s in re.findall(r"EPOCH (\d+)-", out)]
    assert steps == [1, 2, 3, 4, 5, 1000, 2000]  # the notes' print schedule (quick: 2,000 iterations)
    errors = [float(e) for e in re.findall(r"error: ([\d.e-]+)", out)]
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 0.01 < errors[0]
    first, last = re.search(r"first epoch: loss ([\d.]+).*last epoch: loss ([\d.]+)", out).groups()
    assert float(last) < float(first)
    assert "Epoch 15/15" in out
    check_png(tmp_path, "08_study_sleep_curves.png")


def test_09_fashion_mnist(fashion, capsys, tmp_path):
    status, out, _ = run("09_fashion_mnist", capsys, tmp_path, "--backend", "numpy", "--quick")
    assert status == 0
    assert "Total params: 7,850" in out and "Total params: 101,770" in out
    linear = numbers(line(out, "linear: test loss"))[1]
    mlp = numbers(line(out, "mlp: test loss"))[1]
    assert linear > 0.7 and mlp > 0.7  # 0.779 and 0.799 measured (quick: 6,000 images, 2 epochs)
    assert "-> " in out
    check_png(tmp_path, "09_fashion_mnist_history.png")


def test_09_without_the_data_says_how_to_get_it(capsys, tmp_path, monkeypatch):
    load("09_fashion_mnist")
    common = sys.modules["_common"]  # the examples' shared helper module

    def missing(flatten=True):
        raise xn.datasets.DatasetNotFoundError("Fashion-MNIST files not found: (test)")

    monkeypatch.setattr(common, "load_fashion", missing)
    status, _, err = run("09_fashion_mnist", capsys, tmp_path, "--quick")
    assert status == 2
    assert "apt-get install dataset-fashion-mnist" in err and "XPNET_DATA" in err


def test_10_optimizers(images, capsys, tmp_path):
    status, out, _ = run("10_optimizers", capsys, tmp_path, "--backend", "numpy", "--quick")
    assert status == 0
    summary = out.split("mean loss over the last")[1]
    ranked = re.findall(r"^\s+(SGD|Momentum|AdaGrad|RMSprop|Adam)\s+loss", summary, flags=re.M)
    assert sorted(ranked) == sorted(["SGD", "Momentum", "AdaGrad", "RMSprop", "Adam"])
    assert ranked[-1] == "SGD"  # plain SGD is the slowest to bring the loss down
    check_png(tmp_path, "10_optimizers.png")


def test_11_keras_features(fashion, capsys, tmp_path):
    status, out, _ = run("11_keras_features", capsys, tmp_path, "--backend", "numpy", "--quick")
    assert status == 0
    assert len(re.findall(r"Epoch \d/2 - loss", out)) == 2
    rates = numbers(line(out, "learning rate at the start"))
    assert rates[0] == 0 and rates[1] > rates[2] > rates[3] == 0  # warm-up, then the cosine
    assert numbers(line(out, "saved"))[-1] < 1e-6  # the loaded model predicts the same
    assert numbers(line(out, "optimizer state carried over"))[:3] == [120, 2, 60]
    acc = numbers(line(out, "one more epoch after loading"))[1]
    assert acc > 0.75  # 0.82 measured (quick: 6,000 images, 2 + 1 epochs)
    assert (tmp_path / "11_keras_features.xpnet").is_file()


def test_11_without_the_data_says_how_to_get_it(capsys, tmp_path, monkeypatch):
    load("11_keras_features")
    common = sys.modules["_common"]

    def missing(flatten=True):
        raise xn.datasets.DatasetNotFoundError("Fashion-MNIST files not found: (test)")

    monkeypatch.setattr(common, "load_fashion", missing)
    status, _, err = run("11_keras_features", capsys, tmp_path, "--quick")
    assert status == 2 and "apt-get install dataset-fashion-mnist" in err


def test_12_distributed_on_one_process(capsys, tmp_path, monkeypatch):
    for var in ("WORLD_SIZE", "RANK", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"):
        monkeypatch.delenv(var, raising=False)  # no launcher: auto() is a no-op
    status, out, _ = run("12_distributed", capsys, tmp_path, "--backend", "numpy", "--quick")
    assert status == 0
    assert "distributed: single, 1 process(es)" in out
    assert len(re.findall(r"Epoch \d/2 - loss: [\d.]+ - accuracy", out)) == 2
    first, last = (numbers(line(out, f"Epoch {k}/2"))[2] for k in (1, 2))
    assert last < first  # it learns
    assert numbers(line(out, "weights checksum"))[0] > 0
    assert (tmp_path / "12_distributed.npz").is_file()
