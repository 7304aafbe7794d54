"""Points for Section 5.2 (paper Sec. 5.2, App. G; Fig. 7): the paper's uniform data, Gaussian data, scikit-learn's
digits, or a ``.npy`` file, every row normalised to unit length.
"""
import os

import numpy as np
import torch


DATASETS = ("uniform", "gaussian", "digits")


class DataError(ValueError):
    """Unusable data (file or arguments); the message says why."""


def load_points(source, n, holdout, d, seed):
    """``(X_train (n, d), X_holdout (holdout, d))`` float64 numpy, every row of unit norm.

    ``uniform``/``gaussian``: rows of U[0,1]^d / N(0, I_d) drawn with ``seed`` (the paper: uniform, d = 500).
    ``digits``: scikit-learn's bundled 8x8 handwritten digits (d = 64), shuffled with ``seed``.
    A ``.npy`` path: a 2-d array; the first ``n`` rows train (``n = None``: all but the holdout), the next
    ``holdout`` rows are held out."""
    if source in ("uniform", "gaussian"):
        rng = np.random.default_rng(seed)
        draw = rng.random if source == "uniform" else rng.standard_normal
        X = draw((n + holdout, d))
    elif source == "digits":
        from sklearn.datasets import load_digits
        X = load_digits().data.astype(np.float64)
        X = X[np.random.default_rng(seed).permutation(len(X))]
    else:
        X = _load_npy(source, None if n is None else n + holdout)
    n = len(X) - holdout if n is None else n
    if n + holdout > len(X):
        raise DataError(f"{source}: {len(X)} rows, but --n {n} and --holdout {holdout} need {n + holdout}")
    if n < 1:
        raise DataError(f"{source}: no rows left to train on")
    X = X[: n + holdout]
    scale = np.abs(X).max(axis=1, keepdims=True)       # rows scaled to max |x| = 1 first: entries of 1e300
    if np.any(scale == 0):                              # would overflow the sum of squares
        raise DataError(f"{source}: row {int(np.argmin(scale[:, 0]))} is zero and cannot be normalised")
    X = X / scale
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    return X[:n], X[n:]


def close_pair(X, tol):
    """A pair ``(i, j, distance)``, ``i < j``, of rows of ``X: (n, d)`` at most ``tol`` apart (None if there is
    none), without the n(n-1)/2 distances: rows within ``tol`` are within ``tol`` along any unit direction ``u``,
    so after sorting by ``X u`` only neighbours ``s = 1, 2, ...`` places apart whose gap is at most ``tol`` are
    measured, until no gap of ``s`` places is. ``u`` is fixed (seed 0): it sets the order of the search only."""
    u = np.random.default_rng(0).standard_normal(X.shape[1])
    z = X @ (u / np.linalg.norm(u))                                   # (n,)
    order = np.argsort(z, kind="stable")
    z = z[order]
    for s in range(1, len(X)):
        a = np.flatnonzero(z[s:] - z[:-s] <= tol)                     # sorted positions a and a + s
        if not len(a):
            return None
        dist = np.linalg.norm(X[order[a + s]] - X[order[a]], axis=1)
        hit = dist <= tol
        if hit.any():
            i, j = order[a[hit]], order[a[hit] + s]
            first = np.lexsort((np.maximum(i, j), np.minimum(i, j)))[0]
            return int(min(i[first], j[first])), int(max(i[first], j[first])), float(dist[hit][first])
    return None


def _load_npy(path, rows=None):
    """The 2-d real array of a ``.npy`` file (its first ``rows`` rows), float64; :class:`DataError` for anything
    else: a missing, empty or truncated file, an ``.npz`` archive under a ``.npy`` name, pickled objects, other
    shapes or dtypes, non-finite values, or more rows than memory holds (the shape is read first, from the
    header)."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: " + ("not a regular file (a folder, pipe or device is never opened)"
                                       if os.path.exists(path) else "no such file"))
    try:
        X = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npy array ({e.__class__.__name__}: {e})") from None
    if not isinstance(X, np.ndarray):                 # np.load opens an .npz archive whatever the file's name
        X.close()
        raise DataError(f"{path}: an .npz archive, not a .npy array (save one array with np.save)")
    if X.ndim != 2 or 0 in X.shape:
        raise DataError(f"{path}: expected a 2-d array (rows, d) with at least one row and column, got shape "
                        f"{X.shape}")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise DataError(f"{path}: expected real numbers, got dtype {X.dtype}")
    X = X[:rows] if rows is not None else X
    from JohnsonLindenstrauss.utils import memory_problem
    problem = memory_problem(2 * 8.0 * X.size, f"{path}: {X.shape[0]} x {X.shape[1]} values (as float64, twice)",
                             torch.device("cpu"))
    if problem:
        raise DataError(problem)
    X = np.array(X, dtype=np.float64)
    if not np.all(np.isfinite(X)):
        raise DataError(f"{path}: holds NaN or infinite values")
    return X
