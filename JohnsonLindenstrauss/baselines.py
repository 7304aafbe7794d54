"""The standard projections the learned one is compared with (Section 5.2), each at its fixed scale and at its
best scalar: Gaussian matrices (mean and best of many draws), Gaussian matrices with orthonormalised rows,
scikit-learn's sparse random projections, the top-k right singular vectors of the uncentred targets (the linear
map that keeps most of their squared norm) and scikit-learn's (centred) PCA; and the JL bound on the dimension.

A map P and a scalar c give distortions |c‖P t‖² − 1|; over the targets the best c is 2/(q_min + q_max) for
q = ‖P t‖², giving (q_max − q_min)/(q_max + q_min) (:func:`best_scale`). The learned matrix fits its own scale, so
every baseline is reported at that best scalar -- fitted on the training targets, and applied unchanged to
held-out ones -- beside its fixed scale (E‖A t‖² = k for the random ones; mean ‖P t‖² = 1 on the training targets
for PCA and SVD).
"""
import dataclasses
import math

import numpy as np
import torch

from JohnsonLindenstrauss.model import distortion
from JohnsonLindenstrauss.sampler import GaussianSampler
from JohnsonLindenstrauss.targets import Targets


def jl_min_dim(n, eps=0.1):
    """scikit-learn's conservative JL bound on the dimension that keeps ``n`` points within ``eps``."""
    from sklearn.random_projection import johnson_lindenstrauss_min_dim
    return int(johnson_lindenstrauss_min_dim(n, eps=eps))


@dataclasses.dataclass
class Points:
    """The base points ``X: (N, d)`` every baseline maps (training rows first, then held-out ones), the training
    targets with the columns of ``A Xᵀ`` they are built from, and the held-out targets (or None) with theirs."""
    X: torch.Tensor
    train: Targets
    train_cols: slice
    held: Targets | None = None
    held_cols: slice | None = None


def best_scale(q):
    """``q = ‖P t‖²: (..., m)`` -> the scalar ``s`` on ``‖P t‖²`` minimising ``max_t |s q_t − 1|`` and that
    minimum, each ``(...)``: ``s = 2/(q_min + q_max)``, value ``(q_max − q_min)/(q_max + q_min)``. A map sending
    every target to 0 keeps ``s = 1`` (distortion 1)."""
    lo, hi = q.amin(-1), q.amax(-1)
    zero = hi <= 0
    total = torch.where(zero, 1.0, lo + hi)
    return torch.where(zero, 1.0, 2 / total), torch.where(zero, 1.0, (hi - lo) / total)


def score(Y, pts: Points, k):
    """Max distortions of maps whose images of ``pts.X`` are ``Y: (c, k', N)``, with ``‖A t‖²/k`` their ratio:
    ``{"fixed", "scaled"}`` on the training targets and, with a holdout, ``{"held_fixed", "held_scaled"}`` on the
    held-out ones (``scaled``: each map's best scalar on the training targets), each ``(c,)``."""
    q = pts.train.ratios(Y[..., pts.train_cols], k)
    s, scaled = best_scale(q)
    out = {"fixed": distortion(q).amax(-1), "scaled": scaled}
    if pts.held is not None:
        qh = pts.held.ratios(Y[..., pts.held_cols], k)
        out |= {"held_fixed": distortion(qh).amax(-1), "held_scaled": distortion(s[:, None] * qh).amax(-1)}
    return out


def _chunks(total, size):
    for a in range(0, total, size):
        yield a, min(size, total - a)


def _cat(parts):
    return {key: torch.cat([p[key] for p in parts]).cpu().numpy() for key in parts[0]}


@torch.no_grad()
def gaussian_baseline(pts: Points, k, draws, generator, chunk=50):
    """:func:`score` of ``draws`` standard Gaussian matrices (one per draw), each an array ``(draws,)``."""
    sampler = GaussianSampler(pts.X)
    return _cat([score(sampler.sample(c, k, generator), pts, k) for _, c in _chunks(draws, chunk)])


@torch.no_grad()
def orthogonal_baseline(pts: Points, k, draws, generator, chunk=50):
    """Gaussian matrices with orthonormalised rows, scaled by ``sqrt(d)`` (so ``E‖A t‖² = k``): :func:`score`
    per draw."""
    d, X = pts.X.shape[1], pts.X
    out = []
    for _, c in _chunks(draws, chunk):
        G = torch.randn(c, d, k, generator=generator, dtype=X.dtype, device=X.device)
        Q = torch.linalg.qr(G).Q.transpose(1, 2) * math.sqrt(d)          # (c, k, d), orthogonal rows
        out.append(score(Q @ X.T, pts, k))
    return _cat(out)


@torch.no_grad()
def matrices_baseline(Ps, pts: Points):
    """:func:`score` of given maps ``Ps: (c, k, d)`` (already scaled: the ratio is ``‖P t‖²``)."""
    P = torch.as_tensor(np.asarray(Ps), dtype=pts.X.dtype, device=pts.X.device)
    return _cat([score(P @ pts.X.T, pts, 1)])


def _dense(P):
    """scikit-learn returns a scipy sparse matrix, or a dense array when k is close to d."""
    return np.asarray(P.todense() if hasattr(P, "todense") else P)


def sparse_projections(X_train, k, draws, seed):
    """scikit-learn ``SparseRandomProjection`` matrices fitted on the training points, as dense ``(k, d)``
    arrays scaled by scikit-learn (``E‖P x‖² = ‖x‖²``)."""
    from sklearn.random_projection import SparseRandomProjection
    X = np.asarray(X_train)
    return [_dense(SparseRandomProjection(n_components=k, random_state=seed + s).fit(X).components_)
            for s in range(draws)]


def _unit_mean_square(P, targets: Targets):
    """``P`` scaled so the mean ``‖P t‖²`` over the targets is 1 (their mean for unit vectors)."""
    Y = torch.as_tensor(P, dtype=targets.X.dtype, device=targets.X.device) @ targets.X.T
    return P / math.sqrt(float(targets.ratios(Y, 1).mean()))


def svd_projection(k, targets: Targets):
    """The top-k right singular vectors of the uncentred training targets (for pairs, of their normalised
    differences) as rows ``(k, d)``: among rank-k orthogonal projections, the one keeping the most of
    ``Σ_t ‖P t‖²``. Scaled to unit mean square (its fixed scale)."""
    w, V = torch.linalg.eigh(targets.second_moment())                 # ascending eigenvalues
    P = V[:, -k:].flip(1).T.cpu().numpy()
    return _unit_mean_square(P, targets)


def pca_projection(X_train, k, targets: Targets):
    """scikit-learn ``PCA(k)`` fitted on the training points (which it centres: the mean direction is lost), its
    components as a linear map on the uncentred targets, scaled to unit mean square."""
    from sklearn.decomposition import PCA
    import warnings
    X = np.asarray(X_train)
    with warnings.catch_warnings():     # data with no variance (e.g. d = 1): the explained-variance ratio is 0/0,
        warnings.simplefilter("ignore", RuntimeWarning)       # which the components do not use
        P = PCA(n_components=min(k, *X.shape)).fit(X).components_
    return _unit_mean_square(P, targets)
