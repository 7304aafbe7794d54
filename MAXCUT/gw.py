"""Goemans-Williamson for Section 5.1: the SDP relaxation by Burer-Monteiro (:func:`solve_sdp`), a certified
upper bound on it (:func:`sdp_upper_bound`), the expected cut of random-hyperplane rounding (:func:`gw_expectation`),
the roundings themselves (:func:`gw_round`), and the authors' spectral "GW vectors" (:func:`spectral_embedding`).
"""
import math

import numpy as np
import scipy.linalg
import torch

from MAXCUT.graphs import cut_value, dense_adjacency, weight_scale
from MAXCUT.model import hyperplane_partition


def solve_sdp(n, edges, weights, generator, rank=None, max_iter=3000, device="cpu"):
    """Goemans-Williamson relaxation ``max sum w (1 - <v_i, v_j>)/2`` over unit vectors, by the
    Burer-Monteiro factorisation ``v_i = y_i / |y_i|`` and L-BFGS (float64). Returns ``V: (n, p)``
    numpy with unit rows and the value it attains (a lower bound on the SDP optimum, equal to it at
    convergence). L-BFGS's tolerances are absolute: it solves for ``w / s`` (:func:`graphs.weight_scale`, exact)
    and the value is scaled back, so every weight scale converges as unit weights do."""
    p = rank or sdp_rank(n)
    s = weight_scale(weights)
    e = torch.as_tensor(edges, device=device)
    w = torch.as_tensor(weights, dtype=torch.float64, device=device) / s
    Y = torch.randn(n, p, generator=generator, dtype=torch.float64, device=device).requires_grad_(True)
    opt = torch.optim.LBFGS([Y], lr=1, max_iter=max_iter, history_size=20, tolerance_grad=1e-10,
                            tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        V = Y / Y.norm(dim=1, keepdim=True)
        f = (w * (V[e[:, 0]] * V[e[:, 1]]).sum(1)).sum()
        f.backward()
        return f

    opt.step(closure)
    V = (Y / Y.norm(dim=1, keepdim=True)).detach()
    value = float((w * (1 - (V[e[:, 0]] * V[e[:, 1]]).sum(1))).sum() / 2) * s
    return V.cpu().numpy(), value


def sdp_rank(n):
    """Burer-Monteiro rank: the smallest ``p`` with ``p (p + 1) / 2 > n``, above which second-order
    points of the factorised problem are generically global optima (Boumal, Voroninski, Bandeira 2016)."""
    return int(math.ceil((math.sqrt(8 * n + 1) - 1) / 2)) + 1


def sdp_bytes(n, m, p, max_iter):
    """Peak memory of :func:`solve_sdp`, roughly: about 36 copies of the ``(n, p)`` factor for autograd, the line
    search and the allocator's slack, 4.5 more per L-BFGS iteration while its 20 pairs of history fill, and the
    per-edge gathers."""
    return 8.0 * n * p * (36 + 4.5 * min(max_iter, 20)) + 64.0 * m * p


CERTIFY_UP_TO = 3000     # nodes: the dense eigenvalue check of sdp_upper_bound (an n x n float64 eigenvalue problem)


def sdp_upper_bound(n, edges, weights, V):
    """A certified upper bound on the GW SDP's optimum, hence on the maximum cut, from any unit vectors
    ``V: (n, p)`` (a Burer-Monteiro solution makes it tight), or None above :data:`CERTIFY_UP_TO` nodes.

    Weak duality: ``max {<L/4, X> : X psd, diag X = 1} <= sum(y) + n max(0, -lambda_min(Diag(y) - L/4))``
    for every ``y`` (L the weighted Laplacian). ``y`` comes from V's first-order conditions,
    ``y_i = sum_j A_ij (1 - <v_i, v_j>) / 4``, so ``sum(y)`` is V's own SDP value; lambda_min from LAPACK, less
    ``n eps ||M||_F`` for its rounding (Weyl). A V far from optimal gives a valid but loose bound. Computed on
    ``w / weight_scale(w)`` (exact), so every weight scale is certified alike. Returns ``(bound, lambda_min)``."""
    if n > CERTIFY_UP_TO:
        return None, None
    s = weight_scale(weights)
    w = np.asarray(weights, dtype=np.float64) / s
    i, j = edges[:, 0], edges[:, 1]
    half = w * (1.0 - np.einsum("er,er->e", V[i], V[j])) / 4.0
    y = np.bincount(i, half, n) + np.bincount(j, half, n)
    M = dense_adjacency(n, edges, w) / 4.0             # Diag(y) - L/4 = Diag(y - deg/4) + A/4
    M[np.diag_indices(n)] += y - (np.bincount(i, w, n) + np.bincount(j, w, n)) / 4.0
    lam = float(scipy.linalg.eigh(M, eigvals_only=True, subset_by_index=[0, 0])[0])
    lam -= n * np.finfo(np.float64).eps * float(np.linalg.norm(M))
    return (float(y.sum()) + n * max(0.0, -lam)) * s, lam * s


def gw_expectation(V, edges, weights):
    """Expected cut of Goemans-Williamson rounding of ``V: (n, p)`` (unit rows): ``sum w arccos<v_i, v_j> / pi``,
    a float. Also the limit of the exact smoothed cut at m = 0, σ = 1 as δ → 0."""
    V = torch.as_tensor(V, dtype=torch.float64)
    e, w = torch.as_tensor(edges), torch.as_tensor(weights)
    step = max(1, 2 ** 22 // V.shape[1])              # edges per pass: the gathered rows stay below 32 MB
    total = 0.0
    for i in range(0, len(e), step):
        a, b = e[i:i + step, 0], e[i:i + step, 1]
        cos = (V[a] * V[b]).sum(1).clamp(-1, 1)
        total += float((w[i:i + step] * torch.arccos(cos)).sum())
    return total / math.pi


def gw_round(V, edges, weights, k, generator):
    """``k`` independent random-hyperplane roundings of ``V: (n, p)`` at once. Returns the cuts ``(k,)``
    and the best partition."""
    V = torch.as_tensor(V, dtype=torch.float64)
    R = torch.randn(V.shape[1], k, generator=generator, dtype=torch.float64)
    X = hyperplane_partition(V, R).T                                      # (k, n)
    e, w = torch.as_tensor(edges), torch.as_tensor(weights)
    step = max(1, 2 ** 22 // max(1, len(e)))        # roundings per pass: the (rounds, m) gathers stay below 64 MB
    cuts = torch.cat([cut_value(e, w, X[i:i + step]) for i in range(0, k, step)])
    return cuts.numpy(), X[int(torch.argmax(cuts))].numpy()


def spectral_embedding(n, edges, weights):
    """The authors' "GW vectors": all ``n`` eigenvectors of the adjacency matrix as columns of an
    orthogonal matrix; row ``i`` is ``v_i``. Since the rows are orthonormal, ``<v_i, v_j> = 0`` and
    the "GW" rounding of this embedding is a uniform random cut. Returns ``V: (n, n)`` float64."""
    _, vecs = np.linalg.eigh(dense_adjacency(n, edges, weights))
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
