"""Small synthetic data sets from the study notes and classic toy problems."""

from __future__ import annotations

import numpy as np

__all__ = ["STUDY_SLEEP_3ROWS", "make_study_sleep", "make_spirals", "make_xor"]


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _study_sleep_3rows():
    raw = np.array([[8.0, 8.0], [2.0, 5.0], [7.0, 6.0]])  # study hours, sleep hours
    score = 5.0 * raw[:, :1] + 2.0 * raw[:, 1:]            # [[56], [20], [47]]
    return _frozen(raw / raw.max(axis=0)), _frozen(score / score.max(axis=0))


#: The study notes' 3-row regression data, ``(X, y)``, float64, read-only.
#: Study and sleep hours ``[[8, 8], [2, 5], [7, 6]]`` divided by their column
#: maxima ``[8, 8]``; scores ``5*study + 2*sleep`` = ``[[56], [20], [47]]``
#: divided by their maximum 56, i.e. ``X = [[1, 1], [0.25, 0.625],
#: [0.875, 0.75]]`` and ``y = [[1], [0.35714286], [0.83928571]]``, exactly
#: what the notes print. Use ``X.copy()`` for a writable array.
STUDY_SLEEP_3ROWS = _study_sleep_3rows()


def _rng(seed):
    return np.random.default_rng(seed)


def _check_count(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_noise(noise):
    noise = float(noise)
    if not noise >= 0.0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    return noise


def make_study_sleep(n=1000, seed=None):
    """Study/sleep hours vs exam score: the study notes' 1000-row regression data.

    Study and sleep hours are drawn uniformly from [1, 8) (as in the notes),
    the score is ``5*study + 2*sleep + 40``; each feature column is divided by
    its maximum and the score by 100.

    Parameters
    ----------
    n : int, default 1000
        Number of rows.
    seed : int or numpy.random.Generator, optional
        Seed for ``numpy.random.default_rng``; None for fresh randomness.

    Returns
    -------
    X : numpy.ndarray
        float32 (n, 2), columns study and sleep, each with maximum 1.
    y : numpy.ndarray
        float32 (n, 1), the score / 100 (between 0.47 and 0.96).
    """
    n = _check_count(n, "n")
    rng = _rng(seed)
    study = rng.uniform(1.0, 8.0, (n, 1))
    sleep = rng.uniform(1.0, 8.0, (n, 1))
    y = 5.0 * study + 2.0 * sleep + 40.0
    X = np.concatenate([study, sleep], axis=1)
    X /= X.max(axis=0)
    return X.astype(np.float32), (y / 100.0).astype(np.float32)


def make_spirals(n_per_class=100, n_classes=3, noise=0.2, seed=None):
    """The classic (CS231n / book) spiral data: ``n_classes`` interleaved arms.

    Arm ``j`` has points at radius ``r = i / n_per_class`` (i = 0..n-1) and
    angle ``4*j + 4*r`` radians plus Gaussian noise of std `noise` on the
    angle, at ``(r*sin(angle), r*cos(angle))``. Rows are ordered by class.

    Parameters
    ----------
    n_per_class : int, default 100
        Points per arm.
    n_classes : int, default 3
        Number of arms (classes).
    noise : float, default 0.2
        Standard deviation of the angle noise, in radians.
    seed : int or numpy.random.Generator, optional
        Seed for ``numpy.random.default_rng``.

    Returns
    -------
    X : numpy.ndarray
        float32 (n_per_class * n_classes, 2), inside the unit disc.
    y : numpy.ndarray
        int64 (n_per_class * n_classes,), class indices 0..n_classes-1.
    """
    n = _check_count(n_per_class, "n_per_class")
    k = _check_count(n_classes, "n_classes")
    noise = _check_noise(noise)
    rng = _rng(seed)
    r = np.tile(np.arange(n) / n, k)
    y = np.repeat(np.arange(k, dtype=np.int64), n)
    theta = 4.0 * y + 4.0 * r + noise * rng.standard_normal(n * k)
    X = np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1)
    return X.astype(np.float32), y


def make_xor(n=200, noise=0.1, seed=None):
    """XOR data: noisy copies of the four corners of the unit square.

    Point ``(a, b) + noise*N(0, I)`` with ``a, b`` in {0, 1} has label
    ``a XOR b``. The corners are used equally often (n % 4 extra points go to
    the first corners) and the rows are shuffled.

    Parameters
    ----------
    n : int, default 200
        Number of points.
    noise : float, default 0.1
        Standard deviation of the Gaussian noise around each corner.
    seed : int or numpy.random.Generator, optional
        Seed for ``numpy.random.default_rng``.

    Returns
    -------
    X : numpy.ndarray
        float32 (n, 2).
    y : numpy.ndarray
        int64 (n,), 0 or 1.
    """
    n = _check_count(n, "n")
    noise = _check_noise(noise)
    rng = _rng(seed)
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.int64)
    bits = corners[rng.permutation(np.arange(n) % 4)]
    X = bits + noise * rng.standard_normal((n, 2))
    y = bits[:, 0] ^ bits[:, 1]
    return X.astype(np.float32), y.astype(np.int64)
