"""Chapter 6: SGD, Momentum, AdaGrad, RMSprop and Adam on the same network and data.

The book's comparison: a 5-layer fully connected network (4 hidden layers of 100 ReLU
units, He initialisation; ``xpnet.models.MultiLayerNet``), mini-batches of 128 images,
2,000 steps, one fresh copy of the network per optimizer -- the same initial weights
and the same batches for all of them, so only the update rule differs. Plain SGD
creeps; the methods with momentum or per-weight step sizes get the loss down much
faster. Learning rates are the book's defaults (Adam 0.001, the others 0.01), except
RMSprop, which is not in the book's comparison and gets Keras' default 0.001 (with 0.01
its first steps throw the weights far off).

Data: Fashion-MNIST when installed, else the MNIST test set split 8,000 / 2,000 (the
output says which).

    python examples/10_optimizers.py [--backend NAME] [--quick] [--iters N] [--out DIR]
"""
from __future__ import annotations

import numpy as np

import _common as C
from _common import xn
from xpnet.models import MultiLayerNet
from xpnet.optimizers import SGD, AdaGrad, Adam, Momentum, RMSprop


def make_optimizers():
    return {"SGD": SGD(lr=0.01), "Momentum": Momentum(lr=0.01), "AdaGrad": AdaGrad(lr=0.01),
            "RMSprop": RMSprop(lr=0.001), "Adam": Adam(lr=0.001)}


def compare(x_tr, t_tr, iters, batch_size, seed, report_every):
    optimizers = make_optimizers()
    nets = {name: MultiLayerNet(784, [100, 100, 100, 100], 10, seed=seed) for name in optimizers}
    losses = {name: [] for name in optimizers}
    rng = xn.backend.host_rng(seed)
    for i in range(iters):
        mask = rng.choice(x_tr.shape[0], batch_size)
        x_batch = xn.backend.asarray(x_tr[mask])      # moved once, shared by all five
        t_batch = xn.backend.asarray(t_tr[mask])
        for name, opt in optimizers.items():
            grads = nets[name].gradient(x_batch, t_batch)
            # the batch's loss from the forward pass gradient() just made (before the
            # update; the book runs a second forward pass after it): a device array
            losses[name].append(nets[name].last_layer.loss)
            opt.update(nets[name].params, grads)
        if i % report_every == 0 or i == iters - 1:
            print(f"=========== iteration {i} ===========")
            for name in optimizers:
                print(f"  {name:<8} loss {float(losses[name][-1]):.4f}")
    xp = xn.get_namespace()
    host = {name: xn.to_numpy(xp.stack(v)) for name, v in losses.items()}
    return nets, host


def smooth(y, window=19):
    """Moving average (shorter at the ends), to see the trend through batch noise."""
    if len(y) < window:
        return y
    kernel = np.ones(window) / window
    padded = np.pad(y, window // 2, mode="edge")
    return np.convolve(padded, kernel, mode="valid")


def plot(losses, what, out):
    plt = C.pyplot()
    if plt is None:
        C.no_plot_note()
        return
    fig, ax = plt.subplots(figsize=(6.5, 4))
    markers = {"SGD": "o", "Momentum": "x", "AdaGrad": "s", "RMSprop": "^", "Adam": "D"}
    for name, y in losses.items():
        ax.plot(smooth(y), marker=markers[name], markevery=max(len(y) // 10, 1), ms=4, label=name)
    ax.set(xlabel="iteration", ylabel="loss (smoothed)", ylim=(0, None),
           title="optimizers, 5-layer net: " + what.split(" (")[0].split(",")[0])
    ax.legend()
    C.savefig(fig, out, "10_optimizers.png")


def main(argv=None):
    p = C.parser(__doc__)
    p.add_argument("--iters", type=int, default=None, help="steps (default 2000; 40 with --quick)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    iters = args.iters or (40 if args.quick else 2000)
    with C.session(args):
        x_tr, t_tr, x_te, t_te, what = C.load_training_data(*((6000, 2000) if args.quick else (None, None)))
        print(f"data: {what}")
        print(f"network: MultiLayerNet(784, [100, 100, 100, 100], 10), {iters} steps of 128 images")
        with C.Timer() as t:
            nets, losses = compare(x_tr, t_tr, iters, 128, args.seed, max(iters // 10, 1))
        tail = max(iters // 10, 1)
        print(f"\nmean loss over the last {tail} steps, and test accuracy ({t.seconds:.1f} s in all):")
        ranked = sorted(losses, key=lambda n: float(np.mean(losses[n][-tail:])))
        for name in ranked:
            acc = nets[name].accuracy(x_te, t_te)
            print(f"  {name:<8} loss {np.mean(losses[name][-tail:]):.4f}   test acc {acc:.4f}")
        plot(losses, what, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
