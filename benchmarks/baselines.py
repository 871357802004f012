"""The baselines xpnet is measured against, in the same process, on the same data.

- :class:`HandMLP`: a multi-layer perceptron written by hand with NumPy (or CuPy, which
  takes the same calls): ``x @ W + b``, a ReLU mask, the softmax-cross-entropy gradient
  ``(p - t) / n`` and the SGD or Adam update, with every trick an honest hand-written loop
  would use: preallocated buffers, in-place ufuncs (``out=``), in-place parameter updates.
- :class:`TorchMLP`: the same network as a ``torch.nn.Sequential`` on the CPU (or CUDA),
  run under ``torch.inference_mode`` for inference and trained with a plain loop and
  ``torch.optim.SGD``.
- :func:`sklearn_epoch`: one epoch of scikit-learn's ``MLPClassifier(solver="sgd")``.
- :func:`training_gemms`, :func:`training_flops`: the matrix products (and FLOPs) of a
  training step, for the GEMM-rate comparison in ``test_scaling.py``.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = ["HandMLP", "TorchMLP", "sklearn_epoch", "training_gemms", "training_flops",
           "make_weights"]


SMALL_BATCH = 32  # below this many rows the out-of-place forward pass is the faster one


def make_weights(sizes, seed=0, dtype=np.float32):
    """He-initialised ``[(W, b), ...]`` on the host for layer ``sizes`` (784, 100, 10 ...)."""
    rng = np.random.default_rng(seed)
    return [((rng.standard_normal((m, n)) * np.sqrt(2.0 / m)).astype(dtype), np.zeros(n, dtype))
            for m, n in zip(sizes[:-1], sizes[1:])]


def training_gemms(sizes, batch):
    """The ``(m, k, n)`` of every matrix product one training step makes.

    Forward ``x @ W``; backward ``x.T @ dout`` (dW) and, except for the first layer,
    ``dout @ W.T`` (dx), as both xpnet and the hand-written baseline compute them.
    """
    shapes = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes.append((batch, fan_in, fan_out))      # forward
        shapes.append((fan_in, batch, fan_out))      # dW = x.T @ dout
        if i > 0:
            shapes.append((batch, fan_out, fan_in))  # dx = dout @ W.T
    return shapes


def training_flops(sizes, rows):
    """Multiply-add FLOPs (2 per multiply-add) of one epoch over ``rows`` rows."""
    return sum(2 * m * k * n for m, k, n in training_gemms(sizes, 1)) * rows


class HandMLP:
    """A hand-written MLP: hidden ``activation`` ("relu" or "sigmoid"), softmax output.

    Parameters
    ----------
    weights : list of (W, b)
        Host arrays; copied to ``xp`` (NumPy or CuPy).
    activation : str
        The hidden layers' activation.
    xp : module
        ``numpy`` or ``cupy``.
    """

    def __init__(self, weights, activation="relu", xp=np):
        self.xp = xp
        self.W = [xp.array(W, dtype=xp.float32) for W, _ in weights]
        self.b = [xp.array(b, dtype=xp.float32) for _, b in weights]
        self.activation = activation
        self._hidden = list(zip(self.W[:-1], self.b[:-1]))
        self._buffers = {}
        self._moments = {}  # Adam's (m, v, scratch) per parameter
        self._t = 0         # Adam's step count
        self._update = self._sgd

    # -- inference ----------------------------------------------------------------------
    def _buffer(self, key, shape):
        buf = self._buffers.get(key)
        if buf is None or buf.shape != shape:
            buf = self._buffers[key] = self.xp.empty(shape, dtype=self.xp.float32)
        return buf

    def _act(self, h):
        xp = self.xp
        if self.activation == "relu":
            xp.maximum(h, 0, out=h)
        else:  # sigmoid as 0.5 * tanh(x / 2) + 0.5: no overflow, the fastest form in NumPy
            h *= 0.5
            xp.tanh(h, out=h)
            h *= 0.5
            h += 0.5
        return h

    def forward(self, x):
        """Softmax probabilities for one small batch (one row, say), as a new array.

        Plain out-of-place NumPy: for a handful of rows, preallocated buffers cost more
        in bookkeeping than the allocations they save.
        """
        xp = self.xp
        h = x
        relu = self.activation == "relu"
        for W, b in self._hidden:
            z = h @ W + b
            h = xp.maximum(z, 0) if relu else 0.5 * xp.tanh(0.5 * z) + 0.5
        z = h @ self.W[-1] + self.b[-1]
        e = xp.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def forward_into(self, x, out):
        """Softmax probabilities of a batch written into ``out``; the hidden layers reuse
        preallocated buffers and every step is an in-place ufunc."""
        xp = self.xp
        h = x
        for i, (W, b) in enumerate(self._hidden):
            dest = self._buffer(i, (x.shape[0], W.shape[1]))
            xp.matmul(h, W, out=dest)
            dest += b
            h = self._act(dest)
        xp.matmul(h, self.W[-1], out=out)
        out += self.b[-1]
        out -= out.max(axis=1, keepdims=True)
        xp.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
        return out

    def predict(self, x, batch_size):
        """Probabilities for every row of ``x``, ``batch_size`` rows at a time, written into
        one preallocated output (the faster of the two forward paths for the batch size)."""
        xp = self.xp
        n = x.shape[0]
        out = xp.empty((n, self.W[-1].shape[1]), dtype=xp.float32)
        if batch_size < SMALL_BATCH:
            for i in range(0, n, batch_size):
                out[i:i + batch_size] = self.forward(x[i:i + batch_size])
        else:
            for i in range(0, n, batch_size):
                self.forward_into(x[i:i + batch_size], out[i:i + batch_size])
        return out

    # -- training -----------------------------------------------------------------------
    def train_epoch(self, x, y, batch_size, lr, seed=0, optimizer="sgd"):
        """One epoch of mini-batch SGD or Adam on softmax cross-entropy; return the mean
        loss. Adam's moments persist across calls, as an optimizer's state does."""
        xp = self.xp
        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
        self._update = self._sgd if optimizer == "sgd" else self._adam
        n = x.shape[0]
        order = xp.asarray(np.random.default_rng(seed).permutation(n))
        total = xp.zeros((), dtype=xp.float32)
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            total += self._step(x[idx], y[idx], lr) * idx.shape[0]
        return float(total) / n

    def _sgd(self, p, g, lr):
        g *= lr
        p -= g

    def _adam(self, p, g, lr, b1=0.9, b2=0.999, eps=1e-7):
        """Adam as xpnet's (and the book's): bias correction folded into the step size,
        ``m += (1 - b1)(g - m)``, ``v += (1 - b2)(g^2 - v)``, ``p -= lr_t m / (sqrt(v) + eps)``,
        every step in place on persistent moment buffers and one scratch buffer."""
        xp = self.xp
        state = self._moments.get(id(p))
        if state is None:
            state = self._moments[id(p)] = [xp.zeros_like(p), xp.zeros_like(p), xp.empty_like(p)]
        m, v, tmp = state
        t = self._t  # advanced once per batch, in _step
        lr_t = lr * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
        xp.subtract(g, m, out=tmp)
        tmp *= 1.0 - b1
        m += tmp
        xp.multiply(g, g, out=tmp)
        tmp -= v
        tmp *= 1.0 - b2
        v += tmp
        xp.sqrt(v, out=tmp)
        tmp += eps
        xp.divide(m, tmp, out=tmp)
        tmp *= lr_t
        p -= tmp

    def _step(self, xb, yb, lr):
        xp = self.xp
        self._t += 1
        m = xb.shape[0]
        acts = [xb]
        h = xb
        for W, b in zip(self.W[:-1], self.b[:-1]):
            h = h @ W
            h += b
            xp.maximum(h, 0, out=h)  # relu (the training baseline is a ReLU net)
            acts.append(h)
        z = h @ self.W[-1]
        z += self.b[-1]
        z -= z.max(axis=1, keepdims=True)
        xp.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)                       # probabilities
        rows = xp.arange(m)
        loss = -xp.log(xp.maximum(z[rows, yb], 1e-7)).mean()
        z[rows, yb] -= 1.0
        z *= 1.0 / m                                              # d loss / d logits
        dout = z
        for k in range(len(self.W) - 1, -1, -1):
            a = acts[k]
            gW = a.T @ dout
            gb = dout.sum(axis=0)
            if k > 0:
                dx = dout @ self.W[k].T
                dx *= a > 0                                      # relu mask
            self._update(self.W[k], gW, lr)
            self._update(self.b[k], gb, lr)
            if k > 0:
                dout = dx
        return loss


class TorchMLP:
    """The same network as ``torch.nn.Sequential`` (Linear + activation ..., softmax).

    ``device``: "cpu" or "cuda". Inference runs under ``torch.inference_mode``.
    """

    def __init__(self, weights, activation="relu", device="cpu"):
        import torch
        from torch import nn

        self.torch = torch
        self.device = torch.device(device)
        mods = []
        for i, (W, b) in enumerate(weights):
            lin = nn.Linear(W.shape[0], W.shape[1])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                lin.bias.copy_(torch.from_numpy(np.asarray(b)))
            mods.append(lin)
            if i < len(weights) - 1:
                mods.append(nn.ReLU() if activation == "relu" else nn.Sigmoid())
        self.body = nn.Sequential(*mods).to(self.device)
        self.softmax = nn.Softmax(dim=1)

    def tensor(self, a, dtype=None):
        """A host NumPy array as a tensor on the model's device (no copy on the CPU)."""
        t = self.torch.from_numpy(np.ascontiguousarray(a))
        return t.to(self.device, dtype=dtype) if dtype is not None else t.to(self.device)

    def __call__(self, x):
        with self.torch.inference_mode():
            return self.softmax(self.body(x))

    def predict(self, x, batch_size):
        """Probabilities for every row of tensor ``x``, as a NumPy array."""
        torch = self.torch
        with torch.inference_mode():
            outs = [self.softmax(self.body(x[i:i + batch_size]))
                    for i in range(0, x.shape[0], batch_size)]
            out = outs[0] if len(outs) == 1 else torch.cat(outs)
            return out.cpu().numpy()

    def train_epoch(self, x, y, batch_size, lr, seed=0, optimizer="sgd"):
        """One epoch with ``torch.optim.SGD`` (or Adam); return the mean loss."""
        torch = self.torch
        n = x.shape[0]
        if not hasattr(self, "_opt") or self._opt_name != optimizer:
            params = self.body.parameters()
            self._opt = (torch.optim.SGD(params, lr=lr) if optimizer == "sgd"
                         else torch.optim.Adam(params, lr=lr, eps=1e-7))
            self._opt_name = optimizer
        opt, loss_fn = self._opt, torch.nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(n, generator=gen).to(self.device)
        total = torch.zeros((), device=self.device)
        self.body.train()
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(self.body(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.detach() * idx.shape[0]
        return float(total) / n


def sklearn_epoch(x, y, hidden=(100,), batch_size=100, lr=0.1, seed=0):
    """One epoch of ``MLPClassifier(solver="sgd")`` (plain SGD: no momentum, no L2).

    Returns the fitted classifier. scikit-learn keeps float32 input in float32.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=hidden, activation="relu", solver="sgd",
                        batch_size=batch_size, learning_rate_init=lr, momentum=0.0,
                        nesterovs_momentum=False, alpha=0.0, max_iter=1, shuffle=True,
                        random_state=seed, early_stopping=False, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)
    return clf
