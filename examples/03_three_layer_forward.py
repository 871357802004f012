"""Chapter 3: the forward pass of a 3-layer network with fixed weights.

The book's network 2 -> 3 -> 2 -> 2: each layer is ``a = x @ W + b``, the hidden layers
apply the sigmoid, the output layer the identity. With the book's weights and input
``x = [1.0, 0.5]`` the output is [0.31682708 0.69627909].

The pass is done twice: step by step with xpnet's functions, as the book writes it,
and as a stack of xpnet layers (``Affine`` and ``Sigmoid``), which is how the library
composes it. A batch of inputs goes through in one matrix product per layer.

    python examples/03_three_layer_forward.py [--backend NAME] [--quick] [--out DIR]
"""
from __future__ import annotations

import numpy as np

import _common as C
from _common import xn
from xpnet import functions as F
from xpnet.layers import Affine, Sigmoid

BOOK_WEIGHTS = {
    "W1": [[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]], "b1": [0.1, 0.2, 0.3],
    "W2": [[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]], "b2": [0.1, 0.2],
    "W3": [[0.1, 0.3], [0.2, 0.4]], "b3": [0.1, 0.2],
}


def init_network():
    """The book's weights as float64 arrays of the active backend."""
    return {k: xn.backend.asarray(np.asarray(v, dtype=np.float64)) for k, v in BOOK_WEIGHTS.items()}


def forward_by_hand(net, x, xp):
    a1 = x @ net["W1"] + net["b1"]
    z1 = F.sigmoid(a1, xp=xp)
    a2 = z1 @ net["W2"] + net["b2"]
    z2 = F.sigmoid(a2, xp=xp)
    a3 = z2 @ net["W3"] + net["b3"]
    return F.identity(a3), {"a1": a1, "z1": z1, "a2": a2, "z2": z2}


def as_layers(net):
    return [Affine(net["W1"], net["b1"]), Sigmoid(),
            Affine(net["W2"], net["b2"]), Sigmoid(),
            Affine(net["W3"], net["b3"])]


def plot(columns, out):
    """The network as columns of nodes, each labelled with its value for x = [1.0, 0.5]."""
    plt = C.pyplot()
    if plt is None:
        C.no_plot_note()
        return
    fig, ax = plt.subplots(figsize=(7, 3.5))
    pos = []
    for i, (title, values) in enumerate(columns):
        ys = np.linspace(1, -1, len(values)) * (len(values) - 1) / 2
        pos.append([(i, y) for y in ys])
        ax.text(i, 1.6, title, ha="center")
        for y, v in zip(ys, values):
            ax.add_patch(plt.Circle((i, y), 0.3, fill=False))
            ax.text(i, y, f"{v:.4f}", ha="center", va="center", fontsize=8)
    for left, right in zip(pos, pos[1:]):
        for (x0, y0) in left:
            for (x1, y1) in right:
                ax.plot([x0 + 0.3, x1 - 0.3], [y0, y1], color="0.75", lw=0.8)
    ax.set(xlim=(-0.6, len(columns) - 0.4), ylim=(-1.6, 1.9), aspect="equal")
    ax.axis("off")
    C.savefig(fig, out, "03_three_layer_forward.png")


def main(argv=None):
    args = C.parser(__doc__).parse_args(argv)
    with C.session(args) as backend:
        xp = backend.xp
        net = init_network()
        x = xn.backend.asarray(np.array([1.0, 0.5]))
        y, steps = forward_by_hand(net, x, xp)
        print(f"\nx = {xn.to_numpy(x)}")
        for name, value in steps.items():
            print(f"  {name} = {xn.to_numpy(value)}")
        print(f"y (step by step) = {xn.to_numpy(y)}")

        layers = as_layers(net)
        out = xp.reshape(x, (1, 2))  # layers take a batch: one row
        for layer in layers:
            out = layer.forward(out, training=False)
        print(f"y (Affine/Sigmoid layers) = {xn.to_numpy(out)[0]}")

        batch = xn.backend.asarray(np.array([[1.0, 0.5], [0.0, 0.0], [-1.0, 2.0]]))
        out = batch
        for layer in layers:
            out = layer.forward(out, training=False)
        print(f"\na batch of 3 inputs, one matrix product per layer:\n{xn.to_numpy(out)}")
        plot([("x", xn.to_numpy(x)), ("z1", xn.to_numpy(steps["z1"])),
              ("z2", xn.to_numpy(steps["z2"])), ("y", xn.to_numpy(y))], args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
