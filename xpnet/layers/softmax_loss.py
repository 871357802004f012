"""SoftmaxWithLoss: the book's output layer for classification (chapter 5), and
:func:`fused_gradient`, its backward, which :mod:`xpnet.losses` shares."""
from __future__ import annotations

from .. import functions as F
from .base import Layer

__all__ = ["SoftmaxWithLoss", "fused_gradient"]


def fused_gradient(y, t, n):
    """``(y - t) / n``: the gradient of a mean cross-entropy with respect to the scores
    ``z`` when ``y = softmax(z)`` (or ``sigmoid(z)`` with binary cross-entropy).

    The activation's backward and the loss's cancel into this form (the book, chapter 5
    and appendix A). ``t`` has ``y``'s shape (one-hot rows for class labels); ``n`` is the
    number of terms the loss averages: the batch size for softmax.
    """
    return (y - t) / n


class SoftmaxWithLoss(Layer):
    """Softmax of the scores ``x`` followed by cross-entropy against ``t``.

    ``forward(x, t)`` returns the mean loss over the batch; ``t`` is one-hot or integer
    labels. ``backward(dout=1)`` returns ``dout * (y - t) / batch``. The loss is computed
    with ``log_softmax`` (exact, no ``log(0)``), which differs from the book's
    ``log(y + 1e-7)`` by at most ``1e-7 / y``. Labels are not read back here (this is
    a training step); the book's networks check them as they come in.
    """

    scratch = ("t", "y")

    def forward(self, x, t, training=True):
        xp = self._ns(x)
        if x.ndim == 1:
            x = xp.reshape(x, (1, -1))
            t = xp.reshape(t, (1, -1)) if t.ndim == 1 else xp.reshape(t, (1,))
        if t.shape != x.shape:  # labels: the book's dx[arange(batch), t] -= 1 is y - one_hot(t)
            t = F._one_hot(t, x.shape[-1], x.dtype, xp)  # a step: no host read
        self.t = t
        self.y = F.softmax(x, xp=xp)
        self.loss = -xp.sum(t * F.log_softmax(x, xp=xp)) / x.shape[0]
        return self.loss

    def backward(self, dout=1):
        batch_size = self.t.shape[0]
        dx = fused_gradient(self.y, self.t, batch_size)  # (self.y - self.t) / batch_size
        return dx * dout
