"""The book's Trainer (chapter 6): mini-batch training of a network with ``gradient``.

Differences from the book, each for a reason:

- No host sync per step: the training loss of each step stays a 0-d array of the backend
  during the epoch, and the epoch's losses are copied to the host once, at its end, as
  Python floats in ``train_loss_list``. ``verbose`` prints one line per epoch (the book
  prints every step's loss, which would sync every step).
- An epoch is ``train_size // mini_batch_size`` steps (at least 1), and the accuracies are
  measured at the *end* of each epoch, so ``train_acc_list[-1]`` is the trained network
  (the book measures after the first step of each epoch).
"""
from __future__ import annotations

import numbers

from .. import backend as B
from .._registry import resolve
from .._validate import check_seed
from ..optimizers import OPTIMIZERS, Optimizer

__all__ = ["Trainer", "make_optimizer"]


def make_optimizer(optimizer="sgd", optimizer_param=None) -> Optimizer:
    """An optimizer from a name (case-insensitive, as in the book's Trainer) and its kwargs.

    Names: "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam". An
    :class:`~xpnet.optimizers.Optimizer` instance is returned as it is (then
    ``optimizer_param`` must be empty).
    """
    params = dict(optimizer_param or {})
    if params and isinstance(optimizer, Optimizer):
        raise ValueError("optimizer_param is for an optimizer given by name, "
                         "not for an Optimizer instance")
    return resolve(optimizer, OPTIMIZERS, Optimizer, "optimizer", **params)


class Trainer:
    """Train ``network`` on mini-batches and record losses and accuracies (chapter 6).

    Parameters
    ----------
    network : TwoLayerNet, MultiLayerNet or alike
        Anything with ``params``, ``gradient(x, t)``, ``loss(x, t)`` and ``accuracy(x, t)``.
    x_train, t_train, x_test, t_test : array
        Host data (NumPy arrays, lists) or arrays of the network's backend. Host data stays
        on the host: each batch is gathered there and moved to the device. Device data is
        gathered on the device with ``xp.take``.
    epochs : int
        Number of epochs.
    mini_batch_size : int
        Rows per step, drawn at random with replacement as in the book.
    optimizer : str or Optimizer
        A name for :func:`make_optimizer` ("sgd", "momentum", "nesterov", "adagrad",
        "rmsprop", "adam"; any case), or an optimizer.
    optimizer_param : dict, optional
        Keyword arguments of the optimizer; ``None`` means ``{"lr": 0.01}`` (the book's
        default) for a name.
    evaluate_sample_num_per_epoch : int, optional
        Measure the per-epoch accuracies on the first this many rows only (the final test
        accuracy always uses the whole test set).
    verbose : bool
        Print one line per epoch.
    seed : int or numpy.random.Generator, optional
        Seed of the host generator that draws the batches.

    Attributes
    ----------
    train_loss_list : list of float
        The loss of every step (measured after the update, as in the book).
    train_acc_list, test_acc_list : list of float
        One accuracy per epoch.
    final_test_acc : float or None
        Accuracy on the whole test set after :meth:`train`.
    """

    def __init__(self, network, x_train, t_train, x_test, t_test, epochs=20,
                 mini_batch_size=100, optimizer="sgd", optimizer_param=None,
                 evaluate_sample_num_per_epoch=None, verbose=True, seed=None):
        self.network = network
        self.backend = getattr(network, "backend", None) or B.current()
        self.x_train, self.t_train = self._data(x_train), self._data(t_train)
        self.x_test, self.t_test = self._data(x_test), self._data(t_test)
        self.train_size = self.x_train.shape[0]
        for name, data in (("x_train", self.x_train), ("x_test", self.x_test)):
            if data.ndim == 0 or data.shape[0] == 0:
                raise ValueError(f"{name} has no rows: the Trainer needs at least one "
                                 f"{name.split('_')[1]}ing example")
        if self.t_train.shape[0] != self.train_size or self.t_test.shape[0] != self.x_test.shape[0]:
            raise ValueError(
                f"inputs and targets differ in length: x_train {self.train_size}, t_train "
                f"{self.t_train.shape[0]}, x_test {self.x_test.shape[0]}, t_test "
                f"{self.t_test.shape[0]}")
        counts = [("epochs", epochs), ("mini_batch_size", mini_batch_size)]
        if evaluate_sample_num_per_epoch is not None:
            counts.append(("evaluate_sample_num_per_epoch", evaluate_sample_num_per_epoch))
        for name, value in counts:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
                raise ValueError(f"{name} needs a positive int, got {value!r}"
                                 + (" (None measures on every row)" if name.startswith("eval")
                                    else ""))
        self.epochs = int(epochs)
        self.batch_size = mini_batch_size = int(mini_batch_size)
        if optimizer_param is None and isinstance(optimizer, str):
            optimizer_param = {"lr": 0.01}
        self.optimizer = make_optimizer(optimizer, optimizer_param)
        self.evaluate_sample_num_per_epoch = (None if evaluate_sample_num_per_epoch is None
                                              else int(evaluate_sample_num_per_epoch))
        self.verbose = verbose
        self.rng = B.host_rng(check_seed(seed, "Trainer(seed)", generator=True))
        self.iter_per_epoch = max(self.train_size // mini_batch_size, 1)
        self.max_iter = epochs * self.iter_per_epoch
        self.current_iter = 0
        self.current_epoch = 0
        self.train_loss_list: list = []
        self.train_acc_list: list = []
        self.test_acc_list: list = []
        self.final_test_acc = None
        self._epoch_losses: list = []

    def _data(self, data):
        """Arrays of the backend stay as they are; anything else becomes a host NumPy array."""
        host_type = B.load("numpy").array_type
        if B.is_array(data) and not isinstance(data, host_type):
            return B.asarray(data, backend=self.backend)  # raises on another library
        return B.host_asarray(data)

    def _batch(self, data, idx, idx_device):
        if isinstance(data, B.load("numpy").array_type):
            return B.asarray(data[idx], backend=self.backend)
        return self.backend.xp.take(data, idx_device, axis=0)

    def step(self):
        """One mini-batch step; at the end of an epoch, record and report the epoch."""
        idx = self.rng.choice(self.train_size, self.batch_size)
        idx_device = None
        host = B.load("numpy").array_type
        if not (isinstance(self.x_train, host) and isinstance(self.t_train, host)):
            idx_device = self.backend.xp.asarray(idx, device=self.backend.device)
        x_batch = self._batch(self.x_train, idx, idx_device)
        t_batch = self._batch(self.t_train, idx, idx_device)
        grads = self.network.gradient(x_batch, t_batch)
        self.optimizer.update(self.network.params, grads)
        self._epoch_losses.append(self.network.loss(x_batch, t_batch))  # stays on the device
        self.current_iter += 1
        if self.current_iter % self.iter_per_epoch == 0:
            self._end_epoch()

    train_step = step  # the book's name

    def _end_epoch(self):
        self.current_epoch += 1
        xp = self.backend.xp
        losses = B.to_numpy(xp.stack(self._epoch_losses)).tolist()  # one sync per epoch
        self._epoch_losses = []
        self.train_loss_list.extend(losses)
        n = self.evaluate_sample_num_per_epoch
        x_tr, t_tr, x_te, t_te = self.x_train, self.t_train, self.x_test, self.t_test
        if n is not None:
            x_tr, t_tr, x_te, t_te = (a[:n, ...] for a in (x_tr, t_tr, x_te, t_te))
        train_acc = self.network.accuracy(x_tr, t_tr)
        test_acc = self.network.accuracy(x_te, t_te)
        self.train_acc_list.append(train_acc)
        self.test_acc_list.append(test_acc)
        if self.verbose:
            mean_loss = sum(losses) / len(losses)
            print(f"=== epoch {self.current_epoch}/{self.epochs}: train loss {mean_loss:.4f}, "
                  f"train acc {train_acc:.4f}, test acc {test_acc:.4f} ===")

    def train(self):
        """Run all ``epochs``; return ``self`` (read the lists and ``final_test_acc``)."""
        while self.current_iter < self.max_iter:
            self.step()
        if self.evaluate_sample_num_per_epoch is None and self.test_acc_list:
            self.final_test_acc = self.test_acc_list[-1]
        else:
            self.final_test_acc = self.network.accuracy(self.x_test, self.t_test)
        if self.verbose:
            print(f"=== final test accuracy: {self.final_test_acc:.4f} ===")
        return self
