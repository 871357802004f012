"""Gradient checks: backprop gradients against central-difference numerical gradients.

Run them in float64: with ``h = 1e-4`` the numerical gradient is accurate to about
``1e-8`` relative, so a correct backward gives a relative error far below ``1e-6``.
"""
from __future__ import annotations

from array_api_compat import array_namespace, device

from .backend import host_rng
from .functions import numerical_gradient
from .layers.regularization import Dropout
from .training import forward_backward  # the step fit runs

__all__ = ["relative_error", "check_layer", "check_loss", "check_model", "check_function"]


def relative_error(a, b) -> float:
    """``max |a - b| / max(|a| + |b|)``: a scale-free distance between two gradients."""
    xp = array_namespace(a, b)
    num = float(xp.max(xp.abs(a - b)))
    den = float(xp.max(xp.abs(a) + xp.abs(b)))
    return 0.0 if den == 0.0 else num / den


def _reset_rng(layer):
    if isinstance(layer, Dropout) and layer.rng is not None:
        layer.rng.reset()  # the same mask again: numerical and analytic see one network


def check_layer(layer, x, *, training=True, seed=0, h=1e-4) -> dict:
    """Check ``layer.backward`` against numerical gradients.

    The scalar checked is ``sum(forward(x) * R)`` for a fixed random ``R`` (so every
    output element matters), whose gradient with respect to the output is ``R``.

    Returns
    -------
    dict
        ``{"x": err, "<param name>": err, ...}``: the relative error (see
        :func:`relative_error`) of the input gradient and of each parameter's gradient.
        Layers with a ``rng`` that can ``reset()`` (Dropout) draw the same mask each time.
    """
    xp = array_namespace(x)
    _reset_rng(layer)
    out = layer.forward(x, training=training)
    r = host_rng(seed).standard_normal(tuple(out.shape))
    R = xp.asarray(r, dtype=out.dtype, device=device(out))
    dx = layer.backward(R)
    analytic = dict(layer.grads)

    def scalar_of(x_probe):
        _reset_rng(layer)
        return xp.sum(layer.forward(x_probe, training=training) * R)

    errors = {}
    if dx is not None:
        errors["x"] = relative_error(dx, numerical_gradient(scalar_of, x, h))
    for name in list(layer.params):
        original = layer.params[name]

        def scalar_of_param(p_probe, name=name):
            layer.params[name] = p_probe
            try:
                return scalar_of(x)
            finally:
                layer.params[name] = original

        errors[name] = relative_error(analytic[name], numerical_gradient(scalar_of_param, original, h))
    return errors


def check_loss(loss, y, t, h=1e-4) -> float:
    """Relative error of ``loss.value_and_grad(y, t)[1]`` against the numerical gradient."""
    _, grad = loss.value_and_grad(y, t)
    return relative_error(grad, numerical_gradient(lambda yy: loss(yy, t), y, h))


def check_model(model, x, y, h=1e-4) -> dict:
    """Check a compiled :class:`~xpnet.Sequential`'s backprop against numerical gradients.

    ``x`` and ``y`` are one batch as arrays of the model's backend (build the model in
    float64: ``Sequential(..., dtype="float64")``). The loss is the model's compiled loss
    in training mode, through the same path ``fit`` takes (fused softmax/sigmoid
    gradients included). Layers with a resettable ``rng`` (Dropout) draw the same mask
    for every evaluation.

    Returns
    -------
    dict
        ``{"<layer>/<param>": relative error}`` for every trainable parameter. The model's
        parameters and running statistics are restored afterwards.
    """
    model.loss.check_targets(y, model.output_shape[-1], "y")  # once, not per probe
    params = dict(model.get_params())
    saved_state = [(layer, dict(layer.state)) for layer in model.layers]
    for layer in model.layers:
        _reset_rng(layer)
    _, _, grads = forward_backward(model, params, x, y)
    grads = dict(grads)

    def loss_with(key, probe):
        for layer in model.layers:
            _reset_rng(layer)
        model.set_params({**params, key: probe})
        return model.loss.value(model.forward(x, training=True), y) + model.regularization_loss()

    errors = {}
    try:
        for key, value in params.items():
            numeric = numerical_gradient(lambda p, key=key: loss_with(key, p), value, h)
            errors[key] = relative_error(grads[key], numeric)
    finally:  # the model is left as it was: parameters and running statistics
        model.set_params(params)
        for layer, state in saved_state:
            layer.state.update(state)
    return errors


def check_function(f, grad_f, x, h=1e-4) -> float:
    """Relative error of ``grad_f(x)`` against the numerical gradient of scalar ``f``."""
    return relative_error(grad_f(x), numerical_gradient(f, x, h))
