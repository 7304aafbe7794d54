"""Points for Section 5.2 (paper Sec. 5.2, App. G; Fig. 7): the paper's uniform data, Gaussian data, scikit-learn's
digits, or a ``.npy`` / ``.csv`` file, every row normalised to unit length.
"""
import os
import warnings

import numpy as np
import torch


DATASETS = ("uniform", "gaussian", "digits")
FILES = (".npy", ".csv")


class DataError(ValueError):
    """Unusable data (file or arguments); the message says why."""


def is_file(source):
    """Whether ``--data source`` names a file (``.npy`` or ``.csv``) rather than a built-in dataset."""
    return source not in DATASETS and source.endswith(FILES)


def load_points(source, n, holdout, d, seed, shuffle=False, with_rows=False):
    """``(X_train (n, d), X_holdout (holdout, d))`` float64 numpy, every row of unit norm (with ``with_rows``,
    also the file's row numbers of the ``n + holdout`` rows, from 0).

    ``uniform``/``gaussian``: rows of U[0,1]^d / N(0, I_d) drawn with ``seed`` (the paper: uniform, d = 500).
    ``digits``: scikit-learn's bundled 8x8 handwritten digits (d = 64), shuffled with ``seed``.
    A ``.npy`` or ``.csv`` path (rows are points): the first ``n`` rows train (``n = None``: all but the
    holdout), the next ``holdout`` rows are held out; with ``shuffle`` the rows are first put in the order of
    ``np.random.default_rng(seed).permutation`` (as the digits always are)."""
    rows = None
    if source in ("uniform", "gaussian"):
        rng = np.random.default_rng(seed)
        draw = rng.random if source == "uniform" else rng.standard_normal
        X = draw((n + holdout, d))
    elif source == "digits":
        from sklearn.datasets import load_digits
        X = load_digits().data.astype(np.float64)
        rows = np.random.default_rng(seed).permutation(len(X))
        X = X[rows]
    else:
        X, rows = _load_file(source, None if n is None else n + holdout, seed if shuffle else None)
    n = len(X) - holdout if n is None else n
    if n + holdout > len(X):
        raise DataError(f"{source}: {len(X)} rows, but --n {n} and --holdout {holdout} need {n + holdout}")
    if n < 1:
        raise DataError(f"{source}: no rows left to train on")
    X = X[: n + holdout]
    rows = np.arange(n + holdout) if rows is None else rows[: n + holdout]
    scale = np.abs(X).max(axis=1, keepdims=True)       # rows scaled to max |x| = 1 first: entries of 1e300
    if np.any(scale == 0):                              # would overflow the sum of squares
        raise DataError(f"{source}: row {int(rows[np.argmin(scale[:, 0])])} is zero and cannot be normalised")
    X = X / scale
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    return (X[:n], X[n:], rows) if with_rows else (X[:n], X[n:])


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


def _load_file(path, rows=None, seed=None):
    """``(X, order)``: the rows of a ``.npy`` or ``.csv`` file as float64, in the order of
    ``default_rng(seed).permutation`` when ``seed`` is given, else as in the file; only the first ``rows`` of
    that order are read from a ``.npy`` (its shape is read first, from the header). :class:`DataError` for a
    missing or unusable file."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: " + ("not a regular file (a folder, pipe or device is never opened)"
                                       if os.path.exists(path) else "no such file"))
    X = _open_npy(path) if path.endswith(".npy") else _read_csv(path)
    order = np.arange(len(X)) if seed is None else np.random.default_rng(seed).permutation(len(X))
    order = order[:rows] if rows is not None else order
    from JohnsonLindenstrauss.utils import memory_problem
    problem = memory_problem(2 * 8.0 * len(order) * X.shape[1], f"{path}: {len(order)} x {X.shape[1]} values (as "
                             "float64, twice)", torch.device("cpu"))
    if problem:
        raise DataError(problem + "; read fewer rows with --n")
    X = np.array(X[order] if seed is not None else X[: len(order)], dtype=np.float64)
    if not np.all(np.isfinite(X)):
        raise DataError(f"{path}: holds NaN or infinite values")
    return X, order


def _open_npy(path):
    """The 2-d real array of a ``.npy`` file, memory-mapped; :class:`DataError` for anything else: an empty or
    truncated file, an ``.npz`` archive under a ``.npy`` name, pickled objects, other shapes or dtypes."""
    try:
        X = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npy array ({e.__class__.__name__}: {e})") from None
    if not isinstance(X, np.ndarray):                 # np.load opens an .npz archive whatever the file's name
        X.close()
        raise DataError(f"{path}: an .npz archive, not a .npy array (save one array with np.save)")
    return _check_shape(path, X)


def _read_csv(path):
    """The numbers of a comma-separated file, one point per line: an optional header line (its first field not a
    number), blank lines and ``#`` comments skipped. A bad value is named by its line."""
    from JohnsonLindenstrauss.utils import memory_problem
    problem = memory_problem(8.0 * os.path.getsize(path), f"{path}: {os.path.getsize(path)} bytes of text",
                             torch.device("cpu"))
    if problem:
        raise DataError(problem)
    with open(path, encoding="utf-8", errors="replace") as f:
        first = next((line for line in f if line.strip() and not line.lstrip().startswith("#")), "")
    try:
        float(first.split(",")[0])
        header = 0
    except ValueError:
        header = 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)             # an empty file: refused below, by its shape
            X = np.loadtxt(path, delimiter=",", comments="#", skiprows=_line_of(path, first) if header else 0,
                           ndmin=2, dtype=np.float64)
    except ValueError as e:
        raise DataError(f"{path}: {_bad_line(path, header) or e}") from None
    return _check_shape(path, X)


def _bad_line(path, header):
    """Where a ``.csv`` stops being a table of numbers: ``line L (from 1): why``, or None."""
    width = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, text in enumerate(f, 1):
            fields = text.split("#")[0].strip()
            if not fields:
                continue
            if header:                                  # the header line: skipped once
                header = 0
                continue
            fields = fields.split(",")
            try:
                [float(v) for v in fields]
            except ValueError:
                bad = next(v for v in fields if not _number(v))
                return f"line {i} (from 1): {bad.strip()!r} is not a number"
            if width is not None and len(fields) != width:
                return f"line {i} (from 1): {len(fields)} values, but the lines before have {width}"
            width = len(fields)
    return None


def _number(v):
    try:
        float(v)
        return True
    except ValueError:
        return False


def _line_of(path, line):
    """Lines up to and including the first occurrence of ``line`` (the header): the rows ``loadtxt`` skips."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, text in enumerate(f, 1):
            if text == line:
                return i
    return 0


def _check_shape(path, X):
    if X.ndim != 2 or 0 in X.shape:
        raise DataError(f"{path}: expected a 2-d array (rows, d) with at least one row and column, got shape "
                        f"{X.shape}")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise DataError(f"{path}: expected real numbers, got dtype {X.dtype}")
    return X
