"""Training: one epoch of a 784-100-10 ReLU MLP on Fashion-MNIST.

Softmax cross-entropy, SGD with learning rate 0.1 at batch 100 and 1000, and Adam
(lr 0.001) at batch 100, over the 60,000 training rows (random data of the same shape
where Fashion-MNIST is not installed: then only the timing and a finite loss are checked,
since random labels cannot be learnt). Every implementation
starts from the same He-initialised weights and shuffles every epoch.

Compared in the same process: ``xpnet.Sequential.fit``, a hand-written NumPy loop,
a ``torch.nn.Sequential`` with ``torch.optim`` and scikit-learn's ``MLPClassifier``.
"""
from __future__ import annotations

import math

import pytest

from .common import epoch_runner, set_info

CASES = [(impl, "sgd", b) for b in (100, 1000) for impl in ("xpnet", "numpy_hand", "torch", "sklearn")]
CASES += [(impl, "adam", 100) for impl in ("xpnet", "numpy_hand", "torch")]
# mean training loss over one full epoch of the real data must be below these
LOSS_BOUND = {("sgd", 100): 0.8, ("sgd", 1000): 1.3, ("adam", 100): 0.8}


@pytest.mark.parametrize("impl,optimizer,batch", CASES,
                         ids=[f"{i}-{o}-b{b}" for i, o, b in CASES])
def test_train_epoch(benchmark, impl, optimizer, batch, fashion_train, xbackend, sizes, sync,
                     hand_xp, torch_device):
    n = sizes.train_rows
    x, y = fashion_train.x[:n], fashion_train.y[:n]
    setup, run = epoch_runner(impl, optimizer, batch, x, y, xbackend, hand_xp, torch_device,
                              layer_sizes=(784, 100, 10))

    def timed(model):
        loss = run(model)
        sync()
        return loss

    benchmark.group = "training: one epoch, 784-100-10 ReLU"
    set_info(benchmark, workload="train", impl=impl, backend=xbackend.name, rows=n,
             batch=batch, optimizer=optimizer, real_data=fashion_train.real)
    loss = benchmark.pedantic(timed, setup=setup, rounds=sizes.train_rounds,
                              warmup_rounds=1 if sizes.full else 0)
    benchmark.extra_info["loss"] = float(loss)
    assert math.isfinite(loss)
    if not fashion_train.real:
        return  # random labels: the timing stands, what the loss should be does not
    assert loss < math.log(10) + 0.2  # no worse than guessing
    if n == 60_000:
        assert loss < LOSS_BOUND[(optimizer, batch)], f"mean epoch loss {loss:.3f} is too high"
