"""Chapter 3: MNIST inference with the book's pretrained weights, one image at a time
and in batches.

The book's network 784 -> 50 -> 100 -> 10 (sigmoid hidden layers, softmax output) with
the weights of its ``sample_weight.pkl`` classifies the 10,000 MNIST test images with
accuracy 0.9352. Feeding 100 images at a time gives the same answer much faster: each
layer becomes one large matrix product instead of 100 small ones, which is what array
libraries (and GPUs) are built for.

The weights file is a pickle, and a pickle can run code when it is loaded:
``xpnet.io.load_book_weights(path, trusted=True)`` loads it only because you say the file
is trusted. xpnet's own weight files are ``.npz`` and never unpickled.

    python examples/04_mnist_inference.py [WEIGHTS.pkl] [--data DIR] [--backend NAME]
"""
from __future__ import annotations

import sys
from pathlib import Path

import _common as C
from _common import xn
from xpnet.layers import Dense


def build_model(weights):
    """The book's network as a Sequential of Dense layers holding the given weights."""
    model = xn.Sequential([Dense(50, activation="sigmoid", input_dim=784),
                           Dense(100, activation="sigmoid"),
                           Dense(10, activation="softmax")], dtype="float32")
    model.set_weights([weights[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3")])
    return model


def accuracy_one_by_one(model, x, t, xp):
    """The book's first loop: predict each image alone, compare on the host."""
    hits = 0
    for i in range(len(x)):
        y = model(x[i:i + 1])                    # a batch of one row
        if int(xp.argmax(y[0, :])) == int(t[i]):  # one host read per image, as in the book
            hits += 1
    return hits


def accuracy_batched(model, x, t, xp, batch_size=100):
    """The book's second loop: 100 images per forward pass; hits summed on the device."""
    total = None
    for i in range(0, len(x), batch_size):
        y = model(x[i:i + batch_size])
        labels = xn.backend.asarray(t[i:i + batch_size], dtype="int64")
        hits = xp.count_nonzero(xp.argmax(y, axis=1) == labels)
        total = hits if total is None else total + hits
    return int(total)                               # one host read at the end


def main(argv=None):
    p = C.parser(__doc__)
    p.add_argument("weights", nargs="?", type=Path, default=None,
                   help="the book's sample_weight.pkl (default: the first one in the --data "
                        "folder, $XPNET_DATA/mnist, ~/.cache/xpnet/mnist, then the shared folder)")
    p.add_argument("--data", type=Path, default=None,
                   help="folder with t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] "
                        "(default: $XPNET_DATA/mnist, ~/.cache/xpnet/mnist, then the shared folder)")
    p.add_argument("--batch-size", type=int, default=100)
    args = p.parse_args(argv)
    if args.weights is None:
        args.weights = C.find_mnist_file("sample_weight.pkl", args.data)
        if args.weights is None:
            print("error: no sample_weight.pkl in " + ", ".join(map(str, C.mnist_dirs(args.data)))
                  + "; put the book's file (it ships with the book's code, in ch03/) in one of "
                  "them or pass its path", file=sys.stderr)
            return 2
    if not args.weights.is_file():
        print(f"error: no weights file at {args.weights}; pass the path of the book's "
              "sample_weight.pkl (it ships with the book's code, in ch03/)", file=sys.stderr)
        return 2
    try:
        x, t = C.load_mnist_test_anywhere(args.data)
    except C.DatasetNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with C.session(args) as backend:
        xp = backend.xp
        weights = xn.io.load_book_weights(args.weights, trusted=True)
        print(f"weights: {args.weights} " + ", ".join(f"{k}{tuple(v.shape)}" for k, v in sorted(weights.items())))
        print(f"data: MNIST test set, {len(x):,} images of {x.shape[1]} pixels")
        model = build_model(weights)
        model.summary()
        if args.quick:
            print("(--quick changes nothing here: the accuracy needs all 10,000 images)")

        print("\none image at a time:")
        with C.Timer() as t1:
            hits = accuracy_one_by_one(model, x, t, xp)
        print("Accuracy:" + str(float(hits) / len(x)))
        print(f"time: {t1.seconds:.3f} s ({len(x) / t1.seconds:,.0f} images/s)")

        print(f"\nin batches of {args.batch_size}:")
        accuracy_batched(model, x[:args.batch_size], t[:args.batch_size], xp, args.batch_size)  # warm-up
        with C.Timer() as t2:
            hits = accuracy_batched(model, x, t, xp, args.batch_size)
        print("Accuracy:" + str(float(hits) / len(x)))
        print(f"time: {t2.seconds:.3f} s ({len(x) / t2.seconds:,.0f} images/s)")
        print(f"\nbatching is {t1.seconds / t2.seconds:.1f}x faster on {backend.name}")
        print("(no figure for this example)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
