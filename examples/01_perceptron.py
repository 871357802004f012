"""Chapter 2: the perceptron, logic gates, and why XOR needs two layers.

A perceptron outputs 1 when ``w1*x1 + w2*x2 + b > 0``. AND, NAND and OR are the same
perceptron with different weights. XOR is not: its 1s cannot be cut off from its 0s by
one straight line. This example shows that by brute force (no weight on a grid
computes it) and then builds XOR from two layers, ``XOR = AND(NAND, OR)``.

    python examples/01_perceptron.py [--backend NAME] [--quick] [--out DIR]
"""
from __future__ import annotations

import numpy as np

import _common as C
from _common import xn
from xpnet import functions as F
from xpnet import perceptron as P

INPUTS = [(0, 0), (1, 0), (0, 1), (1, 1)]
# the book's weights (w1, w2, b)
WEIGHTS = {"AND": (0.5, 0.5, -0.7), "NAND": (-0.5, -0.5, 0.7), "OR": (0.5, 0.5, -0.2)}


def gate_on_backend(xp, X, w1, w2, b):
    """All four inputs through one perceptron at once: ``step(X @ w + b)``."""
    w = xp.asarray([w1, w2], dtype=xp.float64, device=X.device)
    return F.step_function(X @ w + b, xp=xp)


def count_single_layer_solutions(xp, X, target, steps):
    """How many (w1, w2, b) on a grid over [-1, 1] make one perceptron output ``target``."""
    grid = np.linspace(-1.0, 1.0, steps)
    w1, w2, b = (a.ravel() for a in np.meshgrid(grid, grid, grid, indexing="ij"))
    W = xn.backend.asarray(np.stack([w1, w2]))             # (2, steps**3)
    B = xn.backend.asarray(b)                               # (steps**3,)
    out = F.step_function(X @ W + B, xp=xp)                 # (4, steps**3)
    t = xn.backend.asarray(np.asarray(target, dtype=np.float64)[:, None])
    hits = xp.all(out == t, axis=0)
    return int(xp.count_nonzero(hits)), steps ** 3


def plot(out):
    plt = C.pyplot()
    if plt is None:
        C.no_plot_note()
        return
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    xs = np.linspace(-0.5, 1.5, 50)
    for name, style in (("NAND", "--"), ("OR", ":")):
        w1, w2, b = WEIGHTS[name]
        ax.plot(xs, -(w1 * xs + b) / w2, style, label=f"{name}: {w1}x1 + {w2}x2 + {b} = 0")
    for (x1, x2) in INPUTS:
        y = P.XOR(x1, x2)
        ax.scatter([x1], [x2], s=120, marker="o" if y else "x", c="C3" if y else "k")
    ax.set(xlim=(-0.5, 1.5), ylim=(-0.5, 1.5), xlabel="x1", ylabel="x2",
           title="XOR: 1 (o) only between the two lines")
    ax.legend(loc="upper right", fontsize=7)
    C.savefig(fig, out, "01_xor.png")


def main(argv=None):
    args = C.parser(__doc__).parse_args(argv)
    with C.session(args) as backend:
        xp = backend.xp
        print("\nOne perceptron per gate (xpnet.perceptron, Python numbers):")
        for name in ("AND", "NAND", "OR", "XOR"):
            fn = getattr(P, name)
            rows = "  ".join(f"{name}({a}, {b}) = {fn(a, b)}" for a, b in INPUTS)
            print(f"  {rows}")

        X = xn.backend.asarray(np.asarray(INPUTS, dtype=np.float64))
        print("\nThe same gates on the backend, four inputs at once (step(X @ w + b)):")
        for name, (w1, w2, b) in WEIGHTS.items():
            y = xn.to_numpy(gate_on_backend(xp, X, w1, w2, b)).astype(int)
            print(f"  {name:<4} w=({w1:+.1f}, {w2:+.1f}) b={b:+.1f} -> {y.tolist()}")

        steps = 11 if args.quick else 41
        print(f"\nSearching one-perceptron weights on a {steps}x{steps}x{steps} grid:")
        targets = {name: [getattr(P, name)(a, b) for a, b in INPUTS]
                   for name in ("AND", "NAND", "OR", "XOR")}
        for name, target in targets.items():
            found, total = count_single_layer_solutions(xp, X, target, steps)
            print(f"  {name:<4} {target}: {found} of {total} weight settings work")
        print("  -> no single straight line separates XOR's 1s from its 0s.")

        print("\nXOR as two layers: s1 = NAND(x1, x2), s2 = OR(x1, x2), y = AND(s1, s2)")
        print("  x1 x2 | s1 s2 | y")
        s1 = gate_on_backend(xp, X, *WEIGHTS["NAND"])
        s2 = gate_on_backend(xp, X, *WEIGHTS["OR"])
        y = gate_on_backend(xp, xp.stack([s1, s2], axis=1), *WEIGHTS["AND"])
        for (a, b), u, v, r in zip(INPUTS, *(xn.to_numpy(z).astype(int) for z in (s1, s2, y))):
            print(f"   {a}  {b} |  {u}  {v} | {r}")
        plot(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
