"""Freezing layers (``trainable = False``, as in Keras): what a training pass runs and updates."""
from __future__ import annotations

from .layers.regularization import BatchNormalization

__all__ = ["plan", "FrozenNormalization"]


def plan(model) -> int:
    """Read each layer's ``trainable`` flag; return the number of trainable arrays.

    Sets the parameters the optimizer updates (``_train_bindings``), the layers a training forward pass
    runs (a frozen BatchNormalization runs in inference mode) and where the backward pass
    stops: the layers before the first trainable one with parameters need none.
    """
    frozen = {id(l) for l in model.layers if not getattr(l, "trainable", True)}
    model._train_bindings = [s for s in model._bindings if id(s[1]) not in frozen]
    model._train_layers = [
        FrozenNormalization(l) if id(l) in frozen and isinstance(l, BatchNormalization) else l
        for l in model.layers]
    first = next((i for i, l in enumerate(model.layers) if l.params and id(l) not in frozen),
                 len(model.layers))
    for i, layer in enumerate(model.layers):
        layer.need_input_grad = i > first
    model._backward_layers = model._train_layers[first:][::-1]
    # Keras counts the penalties of trainable layers only
    model._penalized = [l for l in model.layers
                        if id(l) not in frozen and getattr(l, "regularized", False)]
    return len(model._train_bindings)


class FrozenNormalization:
    """A frozen BatchNormalization in a training pass: the inference-mode formula (running
    statistics, as Keras), and its backward pass, ``dx = gamma * dout / sqrt(var + eps)``.
    Nothing of the layer changes."""

    def __init__(self, layer):
        self.layer = layer

    def forward(self, x, training=True):
        l = self.layer
        xp = l.xp
        self.x_shape = x.shape
        if x.ndim != 2:
            x = xp.reshape(x, (x.shape[0], -1))
        self.std = xp.sqrt(l.state["running_var"] + l.epsilon)
        out = l.params["gamma"] * ((x - l.state["running_mean"]) / self.std) + l.params["beta"]
        return out if len(self.x_shape) == 2 else xp.reshape(out, self.x_shape)

    def backward(self, dout):
        xp = self.layer.xp
        if dout.ndim != 2:
            dout = xp.reshape(dout, (dout.shape[0], -1))
        dx = self.layer.params["gamma"] * dout / self.std
        return dx if len(self.x_shape) == 2 else xp.reshape(dx, self.x_shape)
