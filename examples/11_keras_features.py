"""Keras' training features on Fashion-MNIST: a schedule, AdamW, clipping, class weights,
and a whole model saved and loaded again.

    python examples/11_keras_features.py [--backend NAME] [--quick] [--epochs N] [--out DIR]

A 784-256-10 MLP trained with AdamW (decoupled weight decay) whose rate follows a cosine
decay after a linear warm-up (``xn.schedules.CosineDecay``), gradients clipped to a
global norm of 1, and ``class_weight`` doubling the weight of the class the model
confuses most (6, "Shirt"). The model is then saved with ``model.save`` (architecture as
JSON, weights and optimizer state, no pickle), loaded with ``xn.load_model`` and checked
to predict the same; its training continues from the saved optimizer state and schedule
step. Needs Fashion-MNIST (``apt-get install dataset-fashion-mnist``, or ``XPNET_DATA``).
"""
from __future__ import annotations

import os
import sys

import numpy as np

import _common as C
from _common import xn
from xpnet.layers import Dense

SHIRT = 6


def load(quick):
    (x_tr, t_tr), (x_te, t_te) = C.load_fashion(flatten=True)
    if quick:
        return x_tr[:6000], t_tr[:6000], x_te[:2000], t_te[:2000]
    return x_tr, t_tr, x_te, t_te


def recall(model, x, t, cls):
    """Share of the rows of class ``cls`` predicted as ``cls``."""
    pred = np.argmax(model.predict(x, batch_size=1000), axis=1)
    rows = t == cls
    return float(np.mean(pred[rows] == cls))


def main(argv=None):
    p = C.parser(__doc__)
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 8; 2 with --quick)")
    args = p.parse_args(argv)
    try:
        x_tr, t_tr, x_te, t_te = load(args.quick)
    except C.DatasetNotFoundError as exc:
        print(f"error: {exc}\n\n{C.FASHION_HELP}", file=sys.stderr)
        return 2
    epochs = args.epochs or (2 if args.quick else 8)
    batch_size = 100
    per_epoch = len(x_tr) // batch_size
    steps = (epochs + 1) * per_epoch  # the schedule spans the epoch trained after loading
    with C.session(args) as backend:
        print(f"data: Fashion-MNIST, {len(x_tr):,} training and {len(x_te):,} test rows"
              + (" (--quick: a subset)" if args.quick else ""))
        schedule = xn.schedules.CosineDecay(0.0, decay_steps=steps - steps // 10,
                                            warmup_target=2e-3, warmup_steps=steps // 10)
        model = xn.Sequential([Dense(256, activation="relu", input_dim=784,
                                     kernel_initializer="he_uniform"),
                               Dense(10, activation="softmax")], seed=0)
        model.compile(xn.optimizers.AdamW(learning_rate=schedule, weight_decay=0.004,
                                          global_clipnorm=1.0),
                      loss="sparse_categorical_crossentropy",
                      metrics=["accuracy", "sparse_top_k_categorical_accuracy"])
        history = model.fit(x_tr, t_tr, epochs=epochs, batch_size=batch_size, seed=0,
                            validation_data=(x_te, t_te), class_weight={SHIRT: 2.0}, verbose=2)
        rates = ", ".join(f"{float(schedule(k * per_epoch)):.2e}" for k in range(epochs + 2))
        print(f"learning rate at the start of each epoch, then at the end: {rates} "
              "(a linear warm-up, then the cosine)")
        print(f"shirt recall (class_weight 2.0 on class {SHIRT}): "
              f"{recall(model, x_te, t_te, SHIRT):.3f}")

        args.out.mkdir(parents=True, exist_ok=True)
        path = os.path.join(args.out, "11_keras_features.xpnet")
        model.save(path)
        again = xn.load_model(path)
        same = np.max(np.abs(model.predict(x_te[:500]) - again.predict(x_te[:500])))
        print(f"saved {path} ({os.path.getsize(path):,} bytes); loaded on {backend.name}: "
              f"largest difference in predictions {same:.1e}")
        print(f"optimizer state carried over: step {again.opt_state['step']} "
              f"(= {len(history.epoch)} epochs x {per_epoch} batches)")
        again.fit(x_tr, t_tr, epochs=epochs + 1, initial_epoch=epochs, batch_size=batch_size,
                  seed=0, class_weight={SHIRT: 2.0}, verbose=0)
        loss, acc, top5 = again.evaluate(x_te, t_te, batch_size=1000, verbose=0)
        print(f"one more epoch after loading: test loss {loss:.4f}, accuracy {acc:.4f}, "
              f"top-5 accuracy {top5:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
