"""How the estimators of :mod:`xpnet.sklearn` train: scikit-learn's MLP recipe, step for
step, on an :class:`xpnet.Sequential`.

The same initial weights (Glorot-uniform weights *and* biases drawn from the estimator's
``RandomState`` in scikit-learn's order), the same shuffles and early-stopping split,
the same losses (``0.5 * mean((y - t)**2)``; log loss summed over the outputs and averaged
over the rows), the L2 term ``0.5 * alpha * ||W||**2 / n_batch`` and its gradient
``alpha * W / n_batch``, the same optimizer steps and learning-rate schedules and the same
stopping rule (``tol``, ``n_iter_no_change``). With float64 data the loss curve is
scikit-learn's to rounding (that is a test).

Inside an epoch nothing is read back to the host; the epoch's loss (and, with early
stopping, the validation score) is read once at its end.
"""
from __future__ import annotations

import math
import warnings

import array_api_compat
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import shuffle as _shuffle

from .. import backend as B
from .. import data as D
from ..layers import Dense
from ..sequential import Sequential
from ..training import forward_backward
from ._params import HIDDEN, LOSSES, OUTPUT

__all__ = ["initial_weights", "build_model", "run_epochs"]

def initial_weights(activation, n_features, units, rs) -> list:
    """scikit-learn's initial weights: for each layer, ``W`` then ``b`` drawn from ``rs``,
    uniform in ``+-sqrt(f / (fan_in + fan_out))`` (Glorot & Bengio 2010; ``f`` = 2 for
    'logistic', 6 otherwise), https://proceedings.mlr.press/v9/glorot10a.html."""
    factor = 2.0 if activation == "logistic" else 6.0
    weights, fan_in = [], n_features
    for fan_out in units:
        bound = math.sqrt(factor / (fan_in + fan_out))
        weights.append(rs.uniform(-bound, bound, (fan_in, fan_out)))
        weights.append(rs.uniform(-bound, bound, fan_out))
        fan_in = fan_out
    return weights


def build_model(activation, out_activation, n_features, units, dtype, backend, weights):
    """A compiled :class:`Sequential` of Dense layers of ``units`` on ``backend`` (its
    device included) holding ``weights`` (host arrays in :meth:`get_weights` order)."""
    last = len(units) - 1
    layers = [Dense(u, activation=OUTPUT[out_activation] if k == last else HIDDEN[activation])
              for k, u in enumerate(units)]
    model = Sequential(layers, seed=0, dtype=dtype)
    with B.use_backend(backend.name):
        model.compile(optimizer="sgd", loss=LOSSES[out_activation]())
        model.build((n_features,))
    model.backend = backend  # the input's device, which may not be the library's default
    model.set_weights(weights)  # cast to dtype and moved to backend's device
    return model


# -- the epochs ------------------------------------------------------------------------

def _step(model, optimizer, params, state, xb, yb, alpha, wb=None):
    """One step with scikit-learn's L2 term; ``(params, state, batch loss)``. With row
    weights ``wb``, scikit-learn's weighted mean: loss and gradients are
    ``sum(w * row) / sum(w)``, and the L2 term is divided by ``sum(w)``, not the rows."""
    xp = model.backend.xp
    if wb is None:
        loss, _, grads = forward_backward(model, params, xb, yb)
        total = xb.shape[0]
    else:  # xpnet divides the weighted sum by the rows: weights scaled to sum to the rows
        total = xp.sum(wb)
        loss, _, grads = forward_backward(model, params, xb, yb, wb * (xb.shape[0] / total))
    if alpha:
        c = alpha / total
        squares = 0.0
        for key, p in params.items():
            if p.ndim >= 2:
                g = grads[key]  # made by this step's backward, read by nothing else
                g += c * p
                flat = xp.reshape(p, (-1,))
                squares = squares + xp.vecdot(flat, flat)  # one pass, no temporary
        loss = loss + (0.5 * c) * squares
    params, state = optimizer.apply(params, grads, state)
    return params, state, loss


def _batch_size(est, n):
    if est.batch_size == "auto":
        return min(200, n)
    if est.batch_size > n:
        warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going "
                      "to be clipped", UserWarning, stacklevel=4)
    return min(int(est.batch_size), n)


def _split(est, n, Y_host, rs):
    """scikit-learn's early-stopping split as row indices (train, validation), host."""
    rows = B.load("numpy").xp.arange(n)
    if not est.early_stopping:
        return rows, None
    stratify = Y_host if est._is_classifier and Y_host.shape[1] == 1 else None
    train, val = train_test_split(rows, random_state=rs, test_size=est.validation_fraction,
                                  stratify=stratify)
    if val.shape[0] < 2:
        raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                         "or the size of your dataset.")
    return train, val


def _rows(data, index, backend, dtype=None):
    """Rows ``index`` (host ints) of host or device ``data``, where ``data`` lives."""
    if B.library_of(data) == "numpy":
        return data[index]
    return D.take_rows(data, backend.xp.asarray(index, device=backend.device), backend, dtype)


def run_epochs(est, X, Y, Y_host, rs, incremental, sample_weight=None):
    """scikit-learn's ``_fit_stochastic``: epochs until ``max_iter`` or the stopping rule
    (one epoch for ``partial_fit``). ``X``, ``Y`` (and ``sample_weight``) where the data
    lives; ``Y_host`` the encoded targets on the host (for the stratified split)."""
    model, opt = est._model, est._optimizer
    backend, dtype = model.backend, model.dtype_name
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    train, val = _split(est, D.num_rows(X), Y_host, rs)
    if val is not None:
        val = (_rows(X, val, backend), _rows(Y, val, backend),
               None if sample_weight is None else _rows(sample_weight, val, backend))
    n = int(train.shape[0])
    slices = D.batch_slices(n, _batch_size(est, n))
    on_device = B.library_of(X) != "numpy"
    whole = not est.shuffle and not est.early_stopping  # batches are plain slices of X
    xp = backend.xp
    sample_idx = B.load("numpy").xp.arange(n)
    params, state = model.get_params(trainable_only=True), model.opt_state
    if state is None:
        state = opt.init_state(params)
    est.n_iter_ = 0
    try:
        for _ in range(est.max_iter):
            if est.shuffle:
                sample_idx = _shuffle(sample_idx, random_state=rs)
            order = None if whole else train[sample_idx]
            if order is not None and on_device:
                order = xp.asarray(order, device=backend.device)
            losses = []
            for i, j in slices:
                index = slice(i, j) if order is None else order[i:j]
                xb = D.take_rows(X, index, backend, dtype)
                yb = D.take_rows(Y, index, backend, dtype)
                wb = None if sample_weight is None else D.take_rows(sample_weight, index,
                                                                    backend, dtype)
                params, state, loss = _step(model, opt, params, state, xb, yb, est.alpha, wb)
                losses.append(loss)
            model.set_params(params)
            model.opt_state = state
            sizes = xp.asarray([j - i for i, j in slices], dtype=losses[0].dtype,
                               device=array_api_compat.device(losses[0]))
            est.loss_ = float(xp.sum(xp.stack(losses) * sizes)) / n  # the epoch's one read
            est.n_iter_ += 1
            est.t_ += n
            est.loss_curve_.append(est.loss_)
            if est.verbose:
                print("Iteration %d, loss = %.8f" % (est.n_iter_, est.loss_))
            if not math.isfinite(est.loss_):
                break
            _no_improvement(est, val, params)
            if est.solver == "sgd" and est.learning_rate == "invscaling":
                opt.lr = float(est.learning_rate_init) / (est.t_ + 1) ** est.power_t
            if est._no_improvement_count > est.n_iter_no_change:
                what = "Validation score" if est.early_stopping else "Training loss"
                msg = (f"{what} did not improve more than tol={est.tol:f} for "
                       f"{est.n_iter_no_change} consecutive epochs.")
                if _stop(est, opt, msg):
                    break
                est._no_improvement_count = 0
            if incremental:
                break
            if est.n_iter_ == est.max_iter:
                warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                              "optimization hasn't converged yet." % est.max_iter,
                              ConvergenceWarning, stacklevel=4)
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.", stacklevel=4)
        model.set_params(params)
        model.opt_state = state
    if est.early_stopping and est._best_params is not None:
        model.set_params(est._best_params)  # scikit-learn restores the best weights
    est._best_params = None
    _check_weights(model)


def _no_improvement(est, val, params) -> None:
    """scikit-learn's ``_update_no_improvement_count`` (and its keeping of the best
    weights, by reference: the arrays are never written in place)."""
    if est.early_stopping:
        score = est._validation_score(*val)
        est.validation_scores_.append(score)
        if est.verbose:
            print("Validation score: %f" % score)
        est._no_improvement_count = (est._no_improvement_count + 1
                                     if score < est.best_validation_score_ + est.tol else 0)
        if score > est.best_validation_score_:
            est.best_validation_score_ = score
            est._best_params = dict(params)
        return
    loss = est.loss_curve_[-1]
    est._no_improvement_count = (est._no_improvement_count + 1
                                 if loss > est.best_loss_ - est.tol else 0)
    if loss < est.best_loss_:
        est.best_loss_ = loss


def _stop(est, opt, msg) -> bool:
    """scikit-learn's ``trigger_stopping``: 'adaptive' SGD divides the learning rate by 5
    until it is 1e-6; everything else stops."""
    if est.solver != "sgd" or est.learning_rate != "adaptive":
        if est.verbose:
            print(msg + " Stopping.")
        return True
    if opt.lr <= 1e-6:
        if est.verbose:
            print(msg + " Learning rate too small. Stopping.")
        return True
    opt.lr /= 5.0
    if est.verbose:
        print(msg + " Setting learning rate to %f" % opt.lr)
    return False


def _check_weights(model):
    xp = model.backend.xp
    if not all(bool(xp.all(xp.isfinite(p))) for p in model.get_params().values()):
        raise ValueError("Solver produced non-finite parameter weights. The input data may "
                         "contain large values and need to be preprocessed.")
