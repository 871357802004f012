"""Write ``examples/quickstart.ipynb`` from the cells below (run after editing them).

    python examples/make_quickstart_notebook.py

The notebook is stored without outputs; ``tests/test_notebook.py`` runs it top to bottom.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

PATH = Path(__file__).resolve().parent / "quickstart.ipynb"

CELLS = [
    ("md", """# xpnet quickstart

The book *Deep Learning from Scratch* as a small library: layers, losses and optimizers
written once against the Python array API, so the same model runs on NumPy (CPU), CuPy
(GPU), PyTorch and array-api-strict. This notebook chooses a backend, loads data, builds,
compiles and fits a small model, plots its learning curves and predicts.

It takes well under a minute on a laptop CPU: it trains on a subset of the data."""),
    ("md", """## 1. Choose a backend

xpnet reads the environment variable `XPNET_BACKEND` when it is imported (`numpy` when
unset). On a machine with an NVIDIA GPU and CuPy (`pip install 'xpnet[cuda12]'`), either
start Jupyter with

```bash
XPNET_BACKEND=cupy jupyter lab
```

or switch in code with `xn.set_backend("cupy")`. A backend that cannot run here raises
`xn.BackendUnavailableError`, whose message says why; the cell below asks for the GPU
(unless `XPNET_BACKEND` names another backend) and falls back to NumPy."""),
    ("code", """import os

import numpy as np
import xpnet as xn

wanted = os.environ.get("XPNET_BACKEND") or "cupy"
try:
    xn.set_backend(wanted)
except xn.BackendUnavailableError as exc:
    print(f"{wanted!r} cannot run here: {str(exc).split('. ')[0]}.")
    print("Using NumPy on the CPU instead.")
    xn.set_backend("numpy")
print("backend:", xn.get_backend())"""),
    ("md", """## 2. Load data

Fashion-MNIST (28x28 greyscale images of 10 kinds of clothing) when it is on disk:
`apt-get install dataset-fashion-mnist`, or the four IDX files in
`$XPNET_DATA/fashion-mnist`, or `xn.datasets.load_fashion_mnist(download=True)` once
when online. Without it, the notebook uses the built-in synthetic spirals. The data stay
NumPy arrays on the host; `fit` moves one batch at a time to the backend."""),
    ("code", """try:
    (x_train, y_train), (x_test, y_test) = xn.datasets.load_fashion_mnist(flatten=False, download=False)
    x_train, x_test = x_train.reshape(-1, 28, 28), x_test.reshape(-1, 28, 28)
    class_names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    epochs = 5
except xn.datasets.DatasetNotFoundError:
    print("Fashion-MNIST not found: using synthetic spirals")
    x, y = xn.datasets.make_spirals(n_per_class=500, n_classes=3, seed=0)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    (x_train, y_train), (x_test, y_test) = (x[:1200], y[:1200]), (x[1200:], y[1200:])
    class_names = ["arm 0", "arm 1", "arm 2"]
    epochs = 30  # 1,200 points, not 6,000 images: more passes (0.84 test accuracy; 0.58 after 5)

# a subset, to keep this quick
x_train, y_train = x_train[:6000], y_train[:6000].astype(np.int64)
x_test, y_test = x_test[:1000], y_test[:1000].astype(np.int64)
print("train:", x_train.shape, "test:", x_test.shape)"""),
    ("code", """import matplotlib.pyplot as plt

if x_train.ndim == 3:
    fig, axes = plt.subplots(1, 6, figsize=(9, 1.8))
    for ax, img, label in zip(axes, x_train, y_train):
        ax.imshow(img, cmap="gray")
        ax.set_title(class_names[label], fontsize=8)
        ax.axis("off")
else:
    plt.scatter(x_train[:, 0], x_train[:, 1], c=y_train, s=5)
plt.show()"""),
    ("md", """## 3. Build, compile, fit

A Keras-style `Sequential`: flatten each image, one hidden layer of 64 ReLU units, a
softmax over the classes. `seed` fixes the initial weights (drawn on the host, so they
are the same on every backend) and the shuffling."""),
    ("code", """from xpnet.layers import Dense, Flatten

model = xn.Sequential([
    Flatten(input_shape=x_train.shape[1:]),
    Dense(64, activation="relu"),
    Dense(len(class_names), activation="softmax"),
], seed=0)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.summary()
print(f"{model.count_params():,} weights to learn")"""),
    ("code", """history = model.fit(x_train, y_train, epochs=epochs, batch_size=32,
                    validation_data=(x_test, y_test), verbose=2)  # verbose=1: a progress bar"""),
    ("md", """## 4. Learning curves

`history.history` holds one value per epoch for the loss, each metric and their `val_`
versions; `history.plot()` draws them."""),
    ("code", """fig = history.plot()
plt.show()"""),
    ("md", """## 5. Evaluate and predict

`evaluate` returns the loss then the metrics; `predict` returns class probabilities (a
NumPy array for NumPy input, whatever the backend)."""),
    ("code", """test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
print(f"test accuracy: {test_acc:.4f}")

probs = model.predict(x_test[:5])
for p, label in zip(probs, y_test[:5]):
    print(f"predicted {class_names[p.argmax()]:<12} ({p.max():.2f})   true {class_names[label]}")"""),
    ("md", """## Next

- `python -m xpnet demo` trains on the full data set and compares per-sample with batched
  inference; `python -m xpnet info` lists the backends this machine can run.
- `examples/01_perceptron.py` ... `examples/10_optimizers.py` follow the book chapter by
  chapter; each takes `--backend NAME` and `--quick`."""),
]


def build():
    nb = new_notebook()
    nb.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def main():
    nb = build()
    nbformat.validate(nb)
    nbformat.write(nb, PATH)
    print(f"wrote {PATH}")


if __name__ == "__main__":
    main()
