"""The study notes' Keras walk-through on Fashion-MNIST, with xpnet's Keras-style API.

Fashion-MNIST: 70,000 greyscale 28x28 images of 10 kinds of clothing (60,000 to train,
10,000 to test), a harder drop-in for the MNIST digits. Load, scale to [0, 1], define,
compile, fit, evaluate, predict:

1. the notes' model, ``Flatten(input_shape=(28, 28))`` + ``Dense(10, "softmax")`` -- a
   linear classifier, 7,850 weights -- with Adam, 10 epochs, batches of 32, checked on
   the test set after every epoch (the notes reach 0.8429; it should reach >= 0.83);
2. the same with a hidden layer, ``Dense(128, "relu")``, which should reach >= 0.87.

Needs the data set on disk (nothing is downloaded): ``apt-get install
dataset-fashion-mnist``, or the four IDX files in ``$XPNET_DATA/fashion-mnist``.

    python examples/09_fashion_mnist.py [--backend NAME] [--quick] [--epochs N] [--out DIR]
"""
from __future__ import annotations

import sys

import numpy as np

import _common as C
from _common import xn
from xpnet.layers import Dense, Flatten

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
TARGETS = {"linear": 0.83, "mlp": 0.87}


def load(quick):
    (x_tr, y_tr), (x_te, y_te) = C.load_fashion(flatten=False)     # (N, 1, 28, 28) in [0, 1]
    x_tr, x_te = x_tr.reshape(-1, 28, 28), x_te.reshape(-1, 28, 28)
    y_tr, y_te = y_tr.astype(np.int64), y_te.astype(np.int64)
    if quick:
        x_tr, y_tr, x_te, y_te = x_tr[:6000], y_tr[:6000], x_te[:1000], y_te[:1000]
    return x_tr, y_tr, x_te, y_te


def run(name, layers, data, epochs, seed):
    x_tr, y_tr, x_te, y_te = data
    model = xn.Sequential(layers, seed=seed, name=name)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary()
    with C.Timer() as t:
        history = model.fit(x_tr, y_tr, epochs=epochs, batch_size=32,
                            validation_data=(x_te, y_te), verbose=2, seed=seed)
    loss, acc = model.evaluate(x_te, y_te, verbose=0)
    print(f"{name}: test loss {loss:.4f}, test accuracy {acc:.4f} "
          f"({epochs} epochs in {t.seconds:.2f} s)")
    return model, history, acc


def plot(histories, model, data, out):
    plt = C.pyplot()
    if plt is None:
        C.no_plot_note()
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, h in histories.items():
        epochs = np.array(h.epoch) + 1
        axes[0].plot(epochs, h.history["loss"], "o-", label=f"{name} train")
        axes[0].plot(epochs, h.history["val_loss"], "s--", label=f"{name} test")
        axes[1].plot(epochs, h.history["accuracy"], "o-", label=f"{name} train")
        axes[1].plot(epochs, h.history["val_accuracy"], "s--", label=f"{name} test")
    axes[0].set(xlabel="epoch", title="loss")
    axes[1].set(xlabel="epoch", title="accuracy")
    for ax in axes:
        ax.legend(fontsize=7)
    C.savefig(fig, out, "09_fashion_mnist_history.png")

    x_te, y_te = data[2], data[3]
    pred = model.predict(x_te[:9]).argmax(axis=1)
    fig, axes = plt.subplots(3, 3, figsize=(6, 6.6))
    for i, ax in enumerate(axes.ravel()):
        ax.imshow(x_te[i], cmap="gray")
        ok = pred[i] == y_te[i]
        ax.set_title(f"{CLASSES[pred[i]]}" + ("" if ok else f"\n(is {CLASSES[y_te[i]]})"),
                     fontsize=8, color="k" if ok else "C3")
        ax.axis("off")
    C.savefig(fig, out, "09_fashion_mnist_predictions.png")


def main(argv=None):
    p = C.parser(__doc__)
    p.add_argument("--epochs", type=int, default=None, help="epochs per model (default 10; 2 with --quick)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        data = load(args.quick)
    except C.DatasetNotFoundError as exc:
        print(f"error: {exc}\n\n{C.FASHION_HELP}", file=sys.stderr)
        return 2
    epochs = args.epochs or (2 if args.quick else 10)
    with C.session(args):
        x_tr, _, x_te, _ = data
        print(f"data: Fashion-MNIST, {len(x_tr):,} training and {len(x_te):,} test images "
              f"of {x_tr.shape[1]}x{x_tr.shape[2]}" + (" (--quick: a subset)" if args.quick else ""))
        histories, accs = {}, {}
        print("\n1. the notes' model: Flatten + Dense(10, softmax)")
        model, histories["linear"], accs["linear"] = run(
            "linear", [Flatten(input_shape=(28, 28)), Dense(10, activation="softmax")],
            data, epochs, args.seed)
        probs = model.predict(x_te[:1])
        print(f"predict(x_test[0:1]) = {np.array2string(probs, precision=4)}\n"
              f"  -> {CLASSES[int(probs.argmax())]}")

        print("\n2. with a hidden layer: Flatten + Dense(128, relu) + Dense(10, softmax)")
        model, histories["mlp"], accs["mlp"] = run(
            "mlp", [Flatten(input_shape=(28, 28)), Dense(128, activation="relu"),
                    Dense(10, activation="softmax")], data, epochs, args.seed)

        print("\nsummary:")
        for name, acc in accs.items():
            if args.quick:
                verdict = f"--quick run; the target {TARGETS[name]:.2f} is for the full run"
            else:
                verdict = ("meets" if acc >= TARGETS[name] else "below") + f" the target {TARGETS[name]:.2f}"
            print(f"  {name:<6} test accuracy {acc:.4f} ({verdict})")
        plot(histories, model, data, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
