"""One training step as a pure function of (parameters, optimizer state, batch).

:meth:`xpnet.Sequential.fit` is a loop over :func:`train_step`. The step reads nothing
global and writes nothing but its return values (and the layers' scratch space), so it
can be mapped over devices: a data-parallel trainer calls :func:`forward_backward` on
each shard, all-reduces (averages) the ``grads`` dicts, and calls
``optimizer.apply(params, grads, opt_state)`` everywhere.

No function here reads a value back to the host: the loss comes back as a 0-d array on
the device.
"""
from __future__ import annotations

__all__ = ["forward_backward", "train_step"]


def forward_backward(model, params: dict, x, y):
    """Loss, predictions and gradients of ``model`` with ``params`` on one batch.

    Parameters
    ----------
    model : xpnet.Sequential
        A built, compiled model (its layers do the computing).
    params : dict
        ``{"<layer>/<name>": array}`` as ``model.get_params(trainable_only=True)`` gives
        (the parameters of frozen layers stay as they are in the model).
    x, y : arrays of the model's backend
        One batch of inputs and targets.

    Returns
    -------
    loss : 0-d array
        Mean loss over the batch, on the device.
    y_pred : array
        The model's output for ``x`` (training mode).
    grads : dict
        ``{"<layer>/<name>": d loss / d param}`` for the trainable parameters.
    """
    model.set_params(params)
    y_pred = model.forward(x, training=True)
    loss = model.backward_from_loss(y_pred, y)
    return loss, y_pred, model.get_grads()


def train_step(model, optimizer, params: dict, opt_state: dict, x, y):
    """One optimizer step: ``(new params, new optimizer state, loss, y_pred)``."""
    loss, y_pred, grads = forward_backward(model, params, x, y)
    params, opt_state = optimizer.apply(params, grads, opt_state)
    return params, opt_state, loss, y_pred

