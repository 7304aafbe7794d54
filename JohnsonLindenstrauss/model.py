"""Data, targets, distortions and Gaussian matrix sampling for Section 5.2 (paper Sec. 5.2, App. G; Fig. 7).

A projection ``A: (k, d)`` distorts a unit vector ``t`` by ``|‖A t‖² / k − 1|``. Targets are unit vectors
built from base points ``X: (n, d)``: the points themselves (``norms``, the authors' experiment) or all
normalised differences ``(x_i − x_j)/‖x_i − x_j‖`` (``pairwise``, the JL lemma's use). Every distortion is
computed from ``A Xᵀ: (k, n)`` alone, never from a product with all ``n(n−1)/2`` differences in ``d``
dimensions.
"""
import math
import os
from dataclasses import dataclass

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
        P = draw((n + holdout, d))
    elif source == "digits":
        from sklearn.datasets import load_digits
        P = load_digits().data.astype(np.float64)
        P = P[np.random.default_rng(seed).permutation(len(P))]
    else:
        P = _load_npy(source)
    n = len(P) - holdout if n is None else n
    if n + holdout > len(P):
        raise DataError(f"{source}: {len(P)} rows, but --n {n} and --holdout {holdout} need {n + holdout}")
    if n < 1:
        raise DataError(f"{source}: no rows left to train on")
    P = P[: n + holdout]
    norms = np.linalg.norm(P, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise DataError(f"{source}: row {int(np.argmin(norms[:, 0]))} is zero and cannot be normalised")
    P = P / norms
    return P[:n], P[n:]


def _load_npy(path):
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    try:
        P = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: not a readable .npy array ({e.__class__.__name__})") from None
    if P.ndim != 2:
        raise DataError(f"{path}: expected a 2-d array (rows, d), got shape {P.shape}")
    if not np.issubdtype(P.dtype, np.number) or np.issubdtype(P.dtype, np.complexfloating):
        raise DataError(f"{path}: expected real numbers, got dtype {P.dtype}")
    P = P.astype(np.float64)
    if not np.all(np.isfinite(P)):
        raise DataError(f"{path}: holds NaN or infinite values")
    return P


@dataclass
class Targets:
    """Unit targets built from base points ``X: (n, d)``: the points (``pairs is None``) or the normalised
    differences ``(x_i − x_j)/‖x_i − x_j‖`` of the given ``pairs: (p, 2)``.

    Pairwise distortions come from the Gram matrix of ``Y = A Xᵀ``: ``‖A(x_i − x_j)‖² = G_ii + G_jj − 2 G_ij``,
    so one ``(n, n)`` product replaces gathering ``(k, p)`` differences (whose backward pass is a slow
    scatter); pairs not in the set are masked to distortion 0."""

    X: torch.Tensor
    pairs: torch.Tensor | None = None

    def __post_init__(self):
        if self.pairs is None:
            return
        n = len(self.X)
        i, j = self.pairs[:, 0], self.pairs[:, 1]
        self.mask = torch.zeros(n, n, dtype=self.X.dtype, device=self.X.device)
        self.mask[i, j] = 1.0
        self.inv_sq = torch.zeros_like(self.mask)
        self.inv_sq[i, j] = 1.0 / ((self.X[i] - self.X[j]) ** 2).sum(1)
        self.flat = (self.mask.flatten() > 0).nonzero()[:, 0]

    def __len__(self):
        return len(self.X) if self.pairs is None else len(self.pairs)

    @property
    def weights(self):
        """``(m,)`` 1 for a target, 0 for a masked entry of :meth:`distortions` (``None``: all are targets)."""
        return None if self.pairs is None else self.mask.flatten()

    def distortions(self, Y: torch.Tensor, k: int) -> torch.Tensor:
        """``|‖A t‖²/k − 1|`` for every target from ``Y = A Xᵀ: (..., k, n)``: ``(..., n)`` for norms,
        ``(..., n*n)`` for pairs (entries outside the pair set are 0)."""
        if self.pairs is None:
            return distortion(Y, k)
        G = Y.transpose(-1, -2) @ Y
        g = torch.diagonal(G, dim1=-2, dim2=-1)
        sq = g[..., :, None] + g[..., None, :] - 2 * G
        return ((sq * self.inv_sq / k - 1).abs() * self.mask).flatten(-2)

    def values(self, Y: torch.Tensor, k: int) -> torch.Tensor:
        """Distortions of the targets only: ``(..., len(self))``."""
        D = self.distortions(Y, k)
        return D if self.pairs is None else D[..., self.flat]

    def dense(self) -> torch.Tensor:
        """The targets themselves ``(len, d)`` (tests)."""
        if self.pairs is None:
            return self.X
        diff = self.X[self.pairs[:, 0]] - self.X[self.pairs[:, 1]]
        return diff / diff.norm(dim=1, keepdim=True)

    def to(self, dtype):
        return Targets(self.X.to(dtype), self.pairs)


def make_targets(X, kind, pairs=None) -> Targets:
    """``norms``: every row. ``pairwise``: every pair ``i < j`` (or the given ``pairs: (p, 2)``).
    Pairs of identical points have no direction and raise :class:`DataError`."""
    X = torch.as_tensor(X)
    if kind == "norms":
        return Targets(X)
    if pairs is None:
        pairs = torch.triu_indices(len(X), len(X), offset=1, device=X.device).T
    pairs = torch.as_tensor(pairs, device=X.device)
    if len(pairs) and (X[pairs[:, 0]] - X[pairs[:, 1]]).norm(dim=1).min() == 0:
        raise DataError("two points coincide, so their normalised difference is undefined")
    return Targets(X, pairs)


def holdout_pairs(n_train, n_holdout):
    """Pairs of the stacked ``[train; holdout]`` points that involve at least one held-out point."""
    idx = torch.triu_indices(n_train + n_holdout, n_train + n_holdout, offset=1).T
    return idx[idx[:, 1] >= n_train]


def distortion(AT: torch.Tensor, k: int) -> torch.Tensor:
    """``|‖A t‖² / k − 1|`` from ``AT = A tᵀ: (..., k, m)`` for unit ``t`` -> ``(..., m)``."""
    return ((AT * AT).sum(-2) / k - 1.0).abs()


class GaussianSampler:
    """Draws ``G Xᵀ`` for ``G`` with i.i.d. N(0, 1) entries, ``(batch, k, n)``.

    Each row of ``G Xᵀ`` is ``N(0, X Xᵀ)``, so when ``n < d`` it is sampled exactly as ``Z Lᵀ`` with
    ``L Lᵀ = X Xᵀ`` (Cholesky, or a symmetric square root when ``X Xᵀ`` is singular): ``n²`` work per row
    instead of ``n d``, and ``n`` normals instead of ``d``. Otherwise ``G`` is drawn and multiplied."""

    def __init__(self, X: torch.Tensor, mode="auto"):
        n, d = X.shape
        self.X, self.n, self.d = X, n, d
        self.shortcut = (n < d) if mode == "auto" else (mode == "shortcut")
        if self.shortcut:
            C = X @ X.T
            L, info = torch.linalg.cholesky_ex(C)
            if info.item() != 0:  # rank-deficient: symmetric square root of the PSD matrix
                w, Q = torch.linalg.eigh(C)
                L = Q * w.clamp_min(0).sqrt()
            self.L = L

    def sample(self, batch, k, generator) -> torch.Tensor:
        if self.shortcut:
            Z = torch.randn(batch, k, self.n, generator=generator, dtype=self.X.dtype, device=self.X.device)
            return Z @ self.L.T
        G = torch.randn(batch, k, self.d, generator=generator, dtype=self.X.dtype, device=self.X.device)
        return G @ self.X.T


def _sq_norms(targets: Targets, Y):
    """``‖P t‖²`` of every target from ``Y = P Xᵀ``."""
    if targets.pairs is None:
        return (Y * Y).sum(0)
    i, j = targets.pairs[:, 0], targets.pairs[:, 1]
    return ((Y[:, i] - Y[:, j]) ** 2).sum(0) * targets.inv_sq[i, j]


def jl_min_dim(n, eps=0.1):
    """scikit-learn's conservative JL bound on the dimension that keeps ``n`` points within ``eps``."""
    from sklearn.random_projection import johnson_lindenstrauss_min_dim
    return int(johnson_lindenstrauss_min_dim(n, eps=eps))


def _chunks(total, size):
    for a in range(0, total, size):
        yield a, min(size, total - a)


@torch.no_grad()
def gaussian_baseline(targets: Targets, k, draws, generator, chunk=50):
    """Max distortion over the targets of ``draws`` standard Gaussian matrices, one per draw: ``(draws,)``."""
    sampler = GaussianSampler(targets.X)
    out = [targets.distortions(sampler.sample(c, k, generator), k).amax(-1) for _, c in _chunks(draws, chunk)]
    return torch.cat(out).cpu().numpy()


@torch.no_grad()
def orthogonal_baseline(targets: Targets, k, draws, generator, chunk=50):
    """Gaussian matrices with orthonormalised rows, scaled by ``sqrt(d)`` (so ``E‖A t‖² = k``): max distortion
    per draw ``(draws,)``."""
    d, X = targets.X.shape[1], targets.X
    out = []
    for _, c in _chunks(draws, chunk):
        G = torch.randn(c, d, k, generator=generator, dtype=X.dtype, device=X.device)
        Q = torch.linalg.qr(G).Q.transpose(1, 2) * math.sqrt(d)          # (c, k, d), orthogonal rows
        out.append(targets.distortions(Q @ X.T, k).amax(-1))
    return torch.cat(out).cpu().numpy()


def matrix_distortion(P: np.ndarray, targets: Targets) -> float:
    """Max over the targets of ``|‖P t‖² − 1|`` for a projection ``P: (k, d)`` already scaled."""
    Y = torch.as_tensor(P, dtype=targets.X.dtype, device=targets.X.device) @ targets.X.T
    return float(targets.distortions(Y, 1).max())


def sparse_projections(X_train, k, draws, seed):
    """scikit-learn ``SparseRandomProjection`` matrices fitted on the training points, as dense ``(k, d)``
    arrays scaled by scikit-learn (``E‖P x‖² = ‖x‖²``)."""
    from sklearn.random_projection import SparseRandomProjection
    X = np.asarray(X_train)
    return [np.asarray(SparseRandomProjection(n_components=k, random_state=seed + s).fit(X).components_.todense())
            for s in range(draws)]


def pca_projection(X_train, k, targets: Targets):
    """scikit-learn ``PCA(k)`` fitted on the training points; its components as a linear map, scaled so the
    mean squared norm of the training targets is kept (1, as they are unit vectors)."""
    from sklearn.decomposition import PCA
    X = np.asarray(X_train)
    P = PCA(n_components=min(k, *X.shape)).fit(X).components_
    Y = torch.as_tensor(P, dtype=targets.X.dtype, device=targets.X.device) @ targets.X.T
    msq = float(_sq_norms(targets, Y).mean())
    return P / math.sqrt(msq)
