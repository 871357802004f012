"""Gradient descent and backpropagation on the study notes' study/sleep regression.

Exam score = 5 * study hours + 2 * sleep hours (+ 40), both inputs scaled to at most 1.

Part 1 is the notes' hand-made network: 2 inputs -> 3 sigmoid units -> 1 sigmoid output,
no biases, weights drawn from a normal distribution, trained on the 3-row data set
(``xpnet.datasets.STUDY_SLEEP_3ROWS``) for 10,000 iterations of full-batch gradient
descent with step 1 on the loss 0.5 * sum((y - output)**2). ``feed_forward``,
``backward`` and ``train`` are written with xpnet's ``Affine`` and ``Sigmoid`` layers, so
backpropagation is each layer's own ``backward``. The error (the mean of the squared
differences) is printed at iterations 1-5 and every 1,000, as in the notes (which go
from 0.195 to 0.0038; the starting weights are random, so the path differs). Note: the
notes' own ``backward`` applies the sigmoid derivative to the output and to the output
sum, where the chain rule wants it at the output sum and the hidden sum; the layers
here use the chain rule.

Part 2 is the notes' Keras walk-through with xpnet's Keras-style API:
``Dense(3, "sigmoid", input_dim=2)``, ``Dense(1, "sigmoid")``, optimizer "sgd", loss
"mse", metrics mae and mse, 50 epochs on ``make_study_sleep(1000)`` (the notes: loss
0.0819 after the first epoch, 0.0099 after the 50th).

    python examples/08_study_sleep.py [--backend NAME] [--quick] [--out DIR]
"""
from __future__ import annotations

import numpy as np

import _common as C
from _common import xn
from xpnet.layers import Affine, Dense, Sigmoid


class NeuralNetwork:
    """The notes' 2-3-1 sigmoid network, written with xpnet layers.

    Parameters
    ----------
    inputs, hidden, outputs : int
        Layer widths (2, 3, 1 in the notes).
    lr : float
        Step size of the weight update (the notes add the raw gradient: 1.0).
    seed : int
        Seed of the host generator the normal weights are drawn from.
    """

    def __init__(self, inputs=2, hidden=3, outputs=1, lr=1.0, seed=0):
        rng = xn.backend.host_rng(seed)
        w1 = xn.backend.asarray(rng.standard_normal((inputs, hidden)))
        w2 = xn.backend.asarray(rng.standard_normal((hidden, outputs)))
        self.layers = [Affine(w1), Sigmoid(), Affine(w2), Sigmoid()]
        self.layers[0].need_input_grad = False
        self.lr = lr

    @property
    def w1(self):
        return self.layers[0].params["W"]

    @property
    def w2(self):
        return self.layers[2].params["W"]

    def feed_forward(self, X):
        """The output for inputs ``X`` (one row per example)."""
        for layer in self.layers:
            X = layer.forward(X)
        return X

    def backward(self, X, y, o):
        """Backpropagate the loss 0.5 * sum((y - o)**2) and take one gradient step.

        ``o`` is the output ``feed_forward(X)`` just computed; its gradient is ``o - y``.
        """
        dout = o - y
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        for layer in (self.layers[0], self.layers[2]):
            layer.params["W"] = layer.params["W"] - self.lr * layer.grads["W"]

    def train(self, X, y):
        """One iteration: a forward pass, then a backward pass with the update."""
        o = self.feed_forward(X)
        self.backward(X, y, o)


def part1(xp, iterations):
    X_host, y_host = xn.datasets.STUDY_SLEEP_3ROWS
    X, y = xn.backend.asarray(X_host.copy()), xn.backend.asarray(y_host.copy())
    print("\nPart 1: the notes' NeuralNetwork, 3 rows, full-batch gradient descent")
    print(f"study, sleep (scaled):\n{X_host}\nscore (scaled):\n{y_host}")
    nn = NeuralNetwork()
    print(f"initial w1:\n{xn.to_numpy(nn.w1)}\ninitial w2:\n{xn.to_numpy(nn.w2)}")
    errors = {}
    for i in range(iterations):
        step = i + 1
        if step <= 5 or step % 1000 == 0:
            o = nn.feed_forward(X)
            error = float(xp.mean((y - o) ** 2))
            errors[step] = error
            print(f"+---------EPOCH {step}---------+")
            print(f"prediction: {xn.to_numpy(o).ravel()}  error: {error!r}")
        nn.train(X, y)
    return errors


def part2(epochs, seed, out):
    print(f"\nPart 2: the Keras-style model on make_study_sleep(1000), {epochs} epochs")
    X, y = xn.datasets.make_study_sleep(1000, seed=seed)
    model = xn.Sequential([Dense(3, activation="sigmoid", input_dim=2),
                           Dense(1, activation="sigmoid")], seed=seed)
    model.compile(optimizer="sgd", loss="mse", metrics=["mae", "mse"])
    model.summary()
    history = model.fit(X, y, epochs=epochs, batch_size=32, verbose=2, seed=seed)
    h = history.history
    print(f"first epoch: loss {h['loss'][0]:.4f} mae {h['mae'][0]:.4f}; "
          f"last epoch: loss {h['loss'][-1]:.4f} mae {h['mae'][-1]:.4f}")
    print(f"(always predicting the mean score would give mse {float(np.var(y)):.4f}: plain SGD "
          "with lr 0.01 and sigmoid units learns slowly, as in the notes; try "
          "optimizer='adam' or more epochs)")
    sample = np.array([[8 / 8, 8 / 8], [2 / 8, 5 / 8]], dtype=np.float32)  # after /max ~ /8
    print(f"predicted score/100 for (study, sleep) = (8 h, 8 h), (2 h, 5 h): "
          f"{model.predict(sample).ravel()} (true {(5 * 8 + 2 * 8 + 40) / 100}, "
          f"{(5 * 2 + 2 * 5 + 40) / 100})")
    plt = C.pyplot()
    if plt is None:
        C.no_plot_note()
        return h
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot(history.epoch, h["loss"], label="loss (mse)")
    ax.plot(history.epoch, h["mae"], label="mae")
    ax.set(xlabel="epoch", title="study/sleep regression, Dense(3) + Dense(1), sgd")
    ax.legend()
    C.savefig(fig, out, "08_study_sleep_curves.png")
    return h


def main(argv=None):
    p = C.parser(__doc__)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with C.session(args) as backend:
        part1(backend.xp, 2000 if args.quick else 10000)
        part2(15 if args.quick else 50, args.seed, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
