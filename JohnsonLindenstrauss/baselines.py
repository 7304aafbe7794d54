"""The standard projections the learned one is compared with (Section 5.2): Gaussian matrices (mean and best of
many draws), Gaussian matrices with orthonormalised rows, scikit-learn's sparse random projections and PCA,
and the JL bound on the dimension.
"""
import math

import numpy as np
import torch

from JohnsonLindenstrauss.sampler import GaussianSampler
from JohnsonLindenstrauss.targets import Targets, _sq_norms


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


def pca_projection(X_train, k, targets: Targets):
    """scikit-learn ``PCA(k)`` fitted on the training points; its components as a linear map, scaled so the
    mean squared norm of the training targets is kept (1, as they are unit vectors)."""
    from sklearn.decomposition import PCA
    import warnings
    X = np.asarray(X_train)
    with warnings.catch_warnings():     # data with no variance (e.g. d = 1): the explained-variance ratio is 0/0,
        warnings.simplefilter("ignore", RuntimeWarning)       # which the components do not use
        P = PCA(n_components=min(k, *X.shape)).fit(X).components_
    Y = torch.as_tensor(P, dtype=targets.X.dtype, device=targets.X.device) @ targets.X.T
    msq = float(_sq_norms(targets, Y).mean())
    return P / math.sqrt(msq)
