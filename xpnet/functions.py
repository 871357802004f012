"""Activation functions, losses and numerical differentiation (the book, chapters 2-4).

Every function works on any array-API array (NumPy, CuPy, torch, array-api-strict) and
returns an array of the same library, dtype and device. ``xp`` may be passed to skip
the namespace lookup on a hot path.
"""
from __future__ import annotations

import math

from array_api_compat import array_namespace, device

from .backend import native_erf as _native_erf
from .backend import native_sigmoid as _native_sigmoid

__all__ = [
    "identity",
    "step_function",
    "sigmoid",
    "erf",
    "log_sigmoid",
    "relu",
    "tanh",
    "softmax",
    "log_softmax",
    "logsumexp",
    "one_hot",
    "mean_squared_error",
    "cross_entropy_error",
    "numerical_diff",
    "numerical_gradient",
    "gradient_descent",
]

#: the book's 1e-7: the guard against ``log(0)`` and the optimizers' against division by 0
EPSILON = 1e-7


def _ns(x, xp):
    return xp if xp is not None else array_namespace(x)


def _float(x, xp):
    """``x`` itself if it is floating, else (integers, booleans) cast to the namespace's
    default float type, as NumPy's and PyTorch's own ``exp`` do: the same answer on
    every backend, where array-api-strict alone would refuse the integers."""
    if x.dtype == xp.float32 or x.dtype == xp.float64 or xp.isdtype(x.dtype, "real floating"):
        return x  # the first two tests: the common case, far cheaper than isdtype
    if not xp.isdtype(x.dtype, ("integral", "bool")):
        raise TypeError(f"expected an array of real numbers, got dtype {x.dtype}")
    default = xp.__array_namespace_info__().default_dtypes(device=device(x))["real floating"]
    return xp.astype(x, default)


def identity(x, xp=None):
    """Return ``x`` unchanged (the output activation of a regression network)."""
    return x


def step_function(x, xp=None):
    """1 where ``x > 0``, else 0, in ``x``'s dtype (int64 for Python numbers)."""
    xp = _ns(x, xp)
    if xp.isdtype(x.dtype, "real floating"):
        return xp.astype(x > 0, x.dtype)
    return xp.astype(x > 0, xp.__array_namespace_info__().default_dtypes(
        device=device(x))["integral"])


_ERF_SPLIT, _ERF_TERMS, _ERF_DEPTH = 2.5, 40, 30  # measured: 1.2e-15 of math.erf


def erf(x, xp=None):
    """The error function ``erf(x) = 2 / sqrt(pi) * integral_0^x exp(-t**2) dt``.

    The library's own where it has one (:func:`xpnet.backend.native_erf`). Elsewhere
    (array-api-strict, NumPy without SciPy) it is computed with the standard's operations,
    on ``a = |x|``: below 2.5 by the series of positive terms
    ``erf(a) = 2/sqrt(pi) * exp(-a**2) * sum(2**n a**(2n+1) / (1*3*...*(2n+1)))``, from
    2.5 by the continued fraction of ``erfc(a) = exp(-a**2)/sqrt(pi) / (a + (1/2)/(a +
    1/(a + (3/2)/(a + ...))))`` (Abramowitz & Stegun 7.1.6 and 7.1.14), within 1.2e-15 of
    ``math.erf`` in float64 (a test checks a grid); some 200 array operations.
    """
    xp = _ns(x, xp)
    x = _float(x, xp)
    native = _native_erf(xp)
    if native is not None:
        return native(x)
    a = xp.minimum(xp.abs(x), 6.0)  # erf(6) is 1 to float64's last place
    s = xp.minimum(a, _ERF_SPLIT)
    q, term = 2.0 * s * s, s
    total = s
    for n in range(1, _ERF_TERMS + 1):
        term = term * q / (2 * n + 1)
        total = total + term
    small = (2.0 / math.sqrt(math.pi)) * xp.exp(-s * s) * total
    c = xp.maximum(a, _ERF_SPLIT)
    t = c
    for k in range(_ERF_DEPTH, 0, -1):
        t = c + (k / 2.0) / t
    large = 1.0 - xp.exp(-c * c) / (math.sqrt(math.pi) * t)
    return xp.sign(x) * xp.where(a < _ERF_SPLIT, small, large)


def sigmoid(x, xp=None, *, overwrite_x=False):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, computed as ``0.5 * tanh(x / 2) + 0.5``.

    The same function in a form that never overflows and makes fewer passes over the
    data; its absolute error is under one unit in the last place of 1, but outputs below
    about 4e-8 (float32) round to 0 (the losses clip to ``[1e-7, 1 - 1e-7]`` anyway).
    ``overwrite_x=True`` lets it use ``x``'s memory (for a caller that made ``x`` and will
    not read it again). PyTorch's own sigmoid is used where present
    (:func:`xpnet.backend.native_sigmoid`). Integers are cast to the default float type.
    """
    xp = _ns(x, xp)
    x = _float(x, xp)
    native = _native_sigmoid(xp)
    if native is not None:
        return native(x, overwrite_x)
    if overwrite_x:
        x *= 0.5
    else:
        x = x * 0.5
    t = xp.tanh(x)
    t *= 0.5
    t += 0.5
    return t


def log_sigmoid(x, xp=None):
    """``log(sigmoid(x))`` as ``min(x, 0) - log1p(exp(-|x|))``: finite and accurate for
    any ``x`` (``log(sigmoid(-1000))`` is -1000, not ``log(0)``)."""
    xp = _ns(x, xp)
    x = _float(x, xp)
    zero = xp.zeros((), dtype=x.dtype, device=device(x))
    return xp.minimum(x, zero) - xp.log1p(xp.exp(-xp.abs(x)))


def relu(x, xp=None):
    """``max(0, x)`` elementwise (NaN stays NaN, as ``np.maximum(0, x)`` in the book)."""
    xp = _ns(x, xp)
    return xp.maximum(x, xp.zeros((), dtype=x.dtype, device=device(x)))  # a 0-d zero broadcasts


def tanh(x, xp=None):
    """Hyperbolic tangent (integers are cast to the default float type)."""
    xp = _ns(x, xp)
    return xp.tanh(_float(x, xp))


def logsumexp(x, axis=-1, keepdims=False, xp=None):
    """``log(sum(exp(x), axis))``, computed stably by subtracting the maximum."""
    xp = _ns(x, xp)
    x = _float(x, xp)
    m = xp.max(x, axis=axis, keepdims=True)
    out = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else xp.squeeze(out, axis=axis)


def softmax(x, axis=-1, xp=None, *, overwrite_x=False):
    """Softmax along ``axis`` (any batch shape); the maximum is subtracted first.

    ``overwrite_x=True`` subtracts the maximum in place, in ``x``'s memory (for callers
    that made ``x`` and will not read it again). Integer input is cast to the default
    float type first.
    """
    xp = _ns(x, xp)
    x = _float(x, xp)
    m = xp.max(x, axis=axis, keepdims=True)
    if overwrite_x:
        x -= m
    else:
        x = x - m
    e = xp.exp(x)
    e /= xp.sum(e, axis=axis, keepdims=True)  # in place on the array just made
    return e


def log_softmax(x, axis=-1, xp=None):
    """``log(softmax(x))`` computed without forming the softmax."""
    xp = _ns(x, xp)
    x = _float(x, xp)
    return x - logsumexp(x, axis=axis, keepdims=True, xp=xp)


def one_hot(labels, num_classes, dtype=None, xp=None):
    """Integer labels of any shape -> one-hot array with a trailing axis of ``num_classes``.

    Built by comparison with ``arange`` (no scatter), so it works on every backend.
    ``dtype`` defaults to the namespace's float32. The labels are checked first (one
    read of them on the host): a label outside ``0..num_classes-1`` would give a row of
    zeros, so it raises ValueError instead.
    """
    xp = _ns(labels, xp)
    _check_labels(labels, num_classes, "one_hot's input", f"num_classes is {num_classes}", xp)
    return _one_hot(labels, num_classes, dtype, xp)


def _one_hot(labels, num_classes, dtype, xp):
    """:func:`one_hot` without the check, for labels checked already (a training step)."""
    classes = xp.arange(num_classes, device=device(labels))
    hits = xp.astype(labels, classes.dtype)[..., None] == classes
    return xp.astype(hits, dtype if dtype is not None else xp.float32)


def _check_labels(labels, num_classes, name, classes, xp=None):
    """Raise unless ``labels`` are whole numbers in ``0..num_classes-1`` (a host read).

    ``classes`` completes the message: what says how many classes there are. Two
    reductions for int64/int32/uint8 labels (the book's networks call this every step).
    """
    xp = _ns(labels, xp)
    dtype = labels.dtype
    if not (dtype == xp.int64 or dtype == xp.int32 or dtype == xp.uint8):
        if not xp.isdtype(dtype, ("integral", "real floating", "bool")):
            raise TypeError(f"{name} must hold integer class labels, got dtype {dtype}")
        if xp.isdtype(dtype, "bool"):
            labels = xp.astype(labels, xp.int32)
        elif xp.isdtype(dtype, "real floating") and not bool(xp.all(labels == xp.round(labels))):
            raise ValueError(f"{name} holds non-integer values, but class labels are whole numbers")
    if 0 in tuple(labels.shape):  # no labels, nothing to check
        return
    lo, hi = xp.min(labels), xp.max(labels)
    if lo < 0 or hi >= num_classes:
        raise ValueError(
            f"{name} holds labels from {float(lo):g} to {float(hi):g}, but {classes} "
            f"(labels must be 0..{num_classes - 1})"
        )


def mean_squared_error(y, t, xp=None):
    """The book's ``0.5 * sum((y - t)**2)``, averaged over the batch when batched.

    A 1-D ``y`` is one sample; for ``y.ndim >= 2`` the first axis is the batch.
    """
    xp = _ns(y, xp)
    batch = y.shape[0] if y.ndim >= 2 else 1
    return 0.5 * xp.sum((y - t) ** 2) / batch


def cross_entropy_error(y, t, xp=None):
    """Cross-entropy of probabilities ``y`` against labels ``t``, mean over the batch.

    ``t`` may be one-hot (same shape as ``y``) or integer class labels (one dimension
    fewer), which are checked against the number of classes (one host read: this is the
    book's function for small arrays). A 1-D ``y`` is one sample. ``log(y + 1e-7)``
    guards against ``log(0)``, as in the book.
    """
    xp = _ns(y, xp)
    if y.ndim == 1:
        y = xp.reshape(y, (1, y.shape[0]))
        t = xp.reshape(t, (1, -1)) if t.ndim == 1 and t.shape[0] == y.shape[1] else xp.reshape(t, (1,))
    if t.shape != y.shape:  # integer labels -> one-hot
        if t.ndim == y.ndim:
            raise ValueError(
                f"t has shape {tuple(t.shape)}, y has {tuple(y.shape)}: t takes y's shape "
                "(one-hot) or one dimension fewer (integer labels)"
            )
        _check_labels(t, y.shape[-1], "t", f"y has {y.shape[-1]} classes", xp)
        t = _one_hot(t, y.shape[-1], y.dtype, xp)
    return -xp.sum(t * xp.log(y + EPSILON)) / y.shape[0]


# --- numerical differentiation (chapter 4) -------------------------------------------

def numerical_diff(f, x, h=1e-4):
    """Central difference ``(f(x + h) - f(x - h)) / (2h)``."""
    return (f(x + h) - f(x - h)) / (2 * h)


def numerical_gradient(f, x, h=1e-4):
    """Gradient of scalar ``f`` at array ``x`` (any shape) by central differences.

    ``x`` is never written into: each probe is a new array ``x + h * e_i`` built from a
    one-hot basis vector, so backends with immutable arrays work, and ``x`` is unchanged
    afterwards. ``f`` receives the probe array and must return a scalar (a 0-d array or
    a number). Cost: 2 evaluations of ``f`` per element.
    """
    xp = array_namespace(x)
    n = math.prod(x.shape)
    index = xp.reshape(xp.arange(n, device=device(x)), x.shape)
    grads = []
    for i in range(n):
        step = xp.astype(index == i, x.dtype) * h
        diff = (f(x + step) - f(x - step)) / (2 * h)
        grads.append(xp.reshape(xp.asarray(diff, dtype=x.dtype, device=device(x)), (1,)))
    return xp.reshape(xp.concat(grads), x.shape)


def gradient_descent(f, init_x, lr=0.01, step_num=100):
    """Minimise ``f`` from ``init_x`` with ``step_num`` steps of ``x -= lr * grad``.

    Returns the final ``x`` (a new array; ``init_x`` is not modified).
    """
    x = init_x
    for _ in range(step_num):
        x = x - lr * numerical_gradient(f, x)
    return x
