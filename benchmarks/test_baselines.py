"""The hand-written NumPy baseline computes what xpnet computes.

A baseline that skipped work would make every ratio against it look worse than it is (or
better, if it did extra): its predictions, epoch losses and trained weights are held to
xpnet's, on the same weights and the same shuffle. Not timed; runs in every test session.
"""
from __future__ import annotations

import numpy as np
import pytest

from xpnet import backend as B

from .baselines import HandMLP
from .common import book_layers, book_model, epoch_runner, make_weights


def test_hand_predict_matches_xpnet(mnist_book):
    x = mnist_book.x[:500]
    model = book_model(mnist_book.weights)
    hand = HandMLP(book_layers(mnist_book.weights), activation="sigmoid")
    expected = model.predict(x, batch_size=100)
    for batch in (1, 10, 100, 500):  # both of the hand-written forward paths
        np.testing.assert_allclose(hand.predict(x, batch), expected, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_hand_training_matches_xpnet(optimizer, fashion_train):
    x, y = fashion_train.x[:600], fashion_train.y[:600]
    sizes, numpy_backend = (784, 32, 10), B.load("numpy")
    results = {}
    for impl in ("xpnet", "numpy_hand"):
        setup, run = epoch_runner(impl, optimizer, 50, x, y, numpy_backend, np, "cpu",
                                  layer_sizes=sizes)
        (model,), _ = setup()
        losses = [run(model) for _ in range(2)]  # the second epoch uses Adam's moments
        if impl == "xpnet":
            weights = [B.to_numpy(w) for w in model.get_weights()]
        else:
            weights = [a for pair in zip(model.W, model.b) for a in pair]
        results[impl] = losses, weights
    (losses, weights), (hand_losses, hand_weights) = results["xpnet"], results["numpy_hand"]
    np.testing.assert_allclose(hand_losses, losses, rtol=1e-4)
    for w, hw in zip(weights, hand_weights):
        np.testing.assert_allclose(hw, w, rtol=1e-3, atol=1e-5)
    # and training did move the weights (the comparison is not of two untouched copies)
    start = [a for pair in make_weights(sizes) for a in pair]
    assert max(np.abs(w - s).max() for w, s in zip(weights, start)) > 1e-3
