"""Chapters 4-5: the book's TwoLayerNet -- a gradient check, then mini-batch SGD.

``xpnet.models.TwoLayerNet`` is Affine -> ReLU -> Affine -> SoftmaxWithLoss. Its
gradient can be computed two ways: numerically (two forward passes per weight; slow
but simple, chapter 4) and by backpropagation (one backward pass through the layers,
chapter 5). The gradient check compares them on 3 images in float64; the mean absolute
differences should be tiny (the book reports about 1e-10 to 1e-13). The images are the first
three whose hidden pre-activations keep clear of ReLU's kink at 0, where the numerical
derivative is wrong by construction (a pre-activation of 7.5e-5 once made b1 differ by 4e-4).

Then the book's training loop: draw 100 random training images, compute the gradient
by backpropagation, step against it with learning rate 0.1, and after each epoch
measure the accuracy on the whole training and test sets. Train and test accuracy
rising together means the network is not overfitting.

Data: the MNIST training files are often not on the machine; Fashion-MNIST is used
when installed (``apt-get install dataset-fashion-mnist``), else the MNIST test set is
split 8,000 / 2,000. The output says which.

    python examples/06_two_layer_net.py [--backend NAME] [--quick] [--out DIR]
"""
from __future__ import annotations

import numpy as np

import _common as C
from _common import xn
from xpnet.models import TwoLayerNet
from xpnet.optimizers import SGD


def away_from_kinks(net, x, n=3, margin=1e-3):
    """Indices of the first ``n`` images whose hidden pre-activations are all farther than
    ``margin`` from 0. At ReLU's kink the central difference ``(f(w+h) - f(w-h)) / 2h`` is
    not the derivative (one side is flat), so a check there would report a difference that
    is no error of backpropagation."""
    xp = net.xp
    z = xp.asarray(x, dtype=xp.float64) @ net.params["W1"] + net.params["b1"]
    far = xn.to_numpy(xp.min(xp.abs(z), axis=1)) > margin
    return np.flatnonzero(far)[:n]


def gradient_check(x, t, hidden, seed):
    print(f"\ngradient check: TwoLayerNet(784, {hidden}, 10), float64, 3 images")
    net = TwoLayerNet(784, hidden, 10, seed=seed, dtype="float64")
    pick = away_from_kinks(net, x)
    print(f"  images {', '.join(map(str, pick))}: no hidden pre-activation within 1e-3 of "
          "ReLU's kink")
    x, t = x[pick], t[pick]
    with C.Timer() as t_num:
        numerical = net.numerical_gradient(x, t)
    with C.Timer() as t_bp:
        backprop = net.gradient(x, t)
    xp = net.xp
    diffs = {}
    for key in ("W1", "b1", "W2", "b2"):
        diffs[key] = float(xp.mean(xp.abs(backprop[key] - numerical[key])))
        print(f"  {key}: mean |backprop - numerical| = {diffs[key]:.3e}")
    print(f"  numerical: {t_num.seconds:.2f} s, backprop: {t_bp.seconds * 1e3:.2f} ms "
          f"({t_num.seconds / max(t_bp.seconds, 1e-9):,.0f}x faster)")
    return diffs


def train(x_train, t_train, x_test, t_test, iters, batch_size, lr, seed):
    net = TwoLayerNet(784, 50, 10, seed=seed)
    optimizer = SGD(lr=lr)
    rng = xn.backend.host_rng(seed)
    train_size = x_train.shape[0]
    iter_per_epoch = max(train_size // batch_size, 1)
    print(f"\ntraining TwoLayerNet(784, 50, 10): {iters} steps of {batch_size} images, "
          f"lr {lr}, {iter_per_epoch} steps per epoch")
    losses, train_acc, test_acc = [], [], []
    for i in range(iters):
        mask = rng.choice(train_size, batch_size)
        x_batch, t_batch = x_train[mask], t_train[mask]
        grads = net.gradient(x_batch, t_batch)
        optimizer.update(net.params, grads)
        losses.append(net.loss(x_batch, t_batch))    # kept on the device
        if (i + 1) % iter_per_epoch == 0:
            train_acc.append(net.accuracy(x_train, t_train))
            test_acc.append(net.accuracy(x_test, t_test))
            print(f"  epoch {len(train_acc):>2}: train acc {train_acc[-1]:.4f}, "
                  f"test acc {test_acc[-1]:.4f}")
    xp = net.xp
    return xn.to_numpy(xp.stack(losses)), train_acc, test_acc   # one host read


def plot(losses, train_acc, test_acc, what, out):
    plt = C.pyplot()
    if plt is None:
        C.no_plot_note()
        return
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    a1.plot(losses, lw=0.6)
    a1.set(xlabel="iteration", ylabel="loss", title="mini-batch loss")
    epochs = np.arange(1, len(train_acc) + 1)
    a2.plot(epochs, train_acc, "o-", label="train acc")
    a2.plot(epochs, test_acc, "s--", label="test acc")
    a2.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1), title=what.split(" (")[0])
    a2.legend(loc="lower right")
    C.savefig(fig, out, "06_two_layer_net.png")


def main(argv=None):
    p = C.parser(__doc__)
    p.add_argument("--iters", type=int, default=None,
                   help="training steps (default 10000 as in the book; 300 with --quick)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with C.session(args):
        if args.quick:
            x_tr, t_tr, x_te, t_te, what = C.load_training_data(3000, 1000)
        else:
            x_tr, t_tr, x_te, t_te, what = C.load_training_data()
        print(f"data: {what}")
        gradient_check(x_tr, t_tr, 10 if args.quick else 50, args.seed)
        iters = args.iters or (300 if args.quick else 10000)
        losses, train_acc, test_acc = train(x_tr, t_tr, x_te, t_te, iters, 100, 0.1, args.seed)
        print(f"loss: first step {losses[0]:.4f}, last step {losses[-1]:.4f}")
        if test_acc:
            print(f"final: train acc {train_acc[-1]:.4f}, test acc {test_acc[-1]:.4f}")
        plot(losses, train_acc, test_acc, what, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
