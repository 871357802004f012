"""Chapter 3: activation functions and the softmax.

A neural network is a perceptron whose step function is replaced by a smooth,
non-linear activation: sigmoid, ReLU or tanh. (A linear activation would make any
stack of layers collapse into one layer.) The output layer of a classifier uses the
softmax, which turns scores into probabilities that sum to 1; subtracting the maximum
first keeps ``exp`` from overflowing. The book's example: softmax([0.3, 2.9, 4.0]) =
[0.01821127 0.24519181 0.73659691].

    python examples/02_activations.py [--backend NAME] [--quick] [--out DIR]
"""
from __future__ import annotations

import numpy as np

import _common as C
from _common import xn
from xpnet import functions as F

ACTIVATIONS = {"step": F.step_function, "sigmoid": F.sigmoid, "relu": F.relu, "tanh": F.tanh}


def plot(xs, curves, out):
    plt = C.pyplot()
    if plt is None:
        C.no_plot_note()
        return
    fig, axes = plt.subplots(1, len(curves), figsize=(3.2 * len(curves), 3), sharex=True)
    for ax, (name, ys) in zip(axes, curves.items()):
        ax.plot(xs, ys)
        ax.axhline(0, color="0.8", lw=0.8)
        ax.axvline(0, color="0.8", lw=0.8)
        ax.set_title(name)
    fig.suptitle("activation functions", y=1.02)
    C.savefig(fig, out, "02_activations.png")


def main(argv=None):
    args = C.parser(__doc__).parse_args(argv)
    with C.session(args) as backend:
        xp = backend.xp
        x = xn.backend.asarray(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))
        print(f"\nx = {xn.to_numpy(x)}")
        for name, fn in ACTIVATIONS.items():
            print(f"  {name:<8}(x) = {np.round(xn.to_numpy(fn(x, xp=xp)), 8)}")

        a = xn.backend.asarray(np.array([0.3, 2.9, 4.0]))
        y = F.softmax(a, xp=xp)
        print(f"\nsoftmax({xn.to_numpy(a)}) = {xn.to_numpy(y)}")
        print(f"sum = {float(xp.sum(y)):.6f}")

        big = xn.backend.asarray(np.array([1010.0, 1000.0, 990.0]))
        with np.errstate(over="ignore", invalid="ignore"):
            naive = np.exp(xn.to_numpy(big)) / np.sum(np.exp(xn.to_numpy(big)))
        print(f"\nnaive exp(a) / sum(exp(a)) for a = {xn.to_numpy(big)}: {naive}  (overflow)")
        print(f"xpnet softmax (subtracts max(a) first):      {xn.to_numpy(F.softmax(big, xp=xp))}")

        n = 101 if args.quick else 401
        grid = xn.backend.asarray(np.linspace(-5.0, 5.0, n))
        curves = {name: xn.to_numpy(fn(grid, xp=xp)) for name, fn in ACTIVATIONS.items()}
        plot(xn.to_numpy(grid), curves, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
