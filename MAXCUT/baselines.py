"""Baselines for Section 5.1: the exact optimum (brute force), Goemans-Williamson's SDP (Burer-Monteiro) and its
random-hyperplane roundings, the authors' spectral vectors, and a one-flip local search.
"""
import math

import numpy as np
import torch

from MAXCUT.graphs import adjacency, cut_value, dense_adjacency, weight_scale


def brute_force(n, edges, weights, chunk=1 << 18):
    """Exact maximum cut by enumerating all ``2^(n-1)`` partitions (node ``n-1`` fixed on side 0),
    vectorised in chunks: ``cut(x) = x . deg - x^T A x`` for 0/1 ``x``. Returns ``(value, x)``."""
    A = torch.as_tensor(dense_adjacency(n, edges, weights))
    deg = A.sum(1)
    bits = torch.arange(n - 1, dtype=torch.int64)
    best, best_code = -math.inf, 0
    total = 1 << (n - 1)
    for start in range(0, total, chunk):
        codes = torch.arange(start, min(start + chunk, total), dtype=torch.int64)
        X = ((codes[:, None] >> bits) & 1).to(torch.float64)
        X = torch.cat([X, torch.zeros(len(codes), 1, dtype=torch.float64)], 1)
        cuts = X @ deg - ((X @ A) * X).sum(1)
        k = int(torch.argmax(cuts))
        if cuts[k] > best:
            best, best_code = float(cuts[k]), int(codes[k])
    x = np.array([(best_code >> i) & 1 for i in range(n - 1)] + [0], dtype=np.int64)
    return best, x


def local_search(n, edges, weights, x):
    """Greedy one-flip local search from the 0/1 partition ``x``: flip the vertex of largest positive
    gain until none is left. Gains ``g_i = s_i (A s)_i`` with ``s = 1 - 2x``; a flip of ``i`` updates ``A s``
    on i's neighbours only (sparse rows: memory O(n + m), so G-set graphs of 20 000 nodes polish in
    seconds). A gain counts above ``1e-9`` times the weights' scale (:func:`graphs.weight_scale`). Returns the
    improved 0/1 partition (numpy)."""
    A = _sparse_adjacency(n, edges, weights)
    tol = 1e-9 * weight_scale(weights)
    s = 1.0 - 2.0 * np.asarray(x, dtype=np.float64)
    As = A @ s
    for _ in range(100 * n):  # every flip raises the cut by > 0; this bound is never reached in practice
        gain = s * As
        i = int(np.argmax(gain))
        if gain[i] <= tol:
            break
        lo, hi = A.indptr[i], A.indptr[i + 1]
        As[A.indices[lo:hi]] -= 2.0 * s[i] * A.data[lo:hi]
        s[i] = -s[i]
    return ((1 - s) / 2).astype(np.int64)


def _sparse_adjacency(n, edges, weights):
    """:func:`graphs.adjacency` as a SciPy CSR matrix: numpy rows for the flip loops."""
    import warnings
    import scipy.sparse as sp
    with warnings.catch_warnings():  # torch flags sparse CSR as beta (as in graphs.Graph)
        warnings.simplefilter("ignore", UserWarning)
        A = adjacency(n, edges, weights)
    return sp.csr_matrix((A.values().numpy(), A.col_indices().numpy(), A.crow_indices().numpy()), shape=(n, n))


def tabu_search(n, edges, weights, x, flips, seed=0):
    """A stronger local search than :func:`local_search`, reported apart from it: tabu search from the 0/1
    partition ``x`` for ``flips`` single flips. Each flips the vertex of largest gain (negative gains too)
    that was not flipped in the last ``tenure`` flips -- unless a tabu flip would beat the best cut so far --
    with ``tenure = max(10, n/10) + U{0..9}`` flips (n/10: on G11, 560 of 564 from a random start; n/20 or n/100
    cycle near 500). Gains are kept, and compared, as in :func:`local_search`. Returns
    the best partition visited (numpy 0/1) -- never a worse cut than ``x``'s."""
    A = _sparse_adjacency(n, edges, weights)
    tol = 1e-9 * weight_scale(weights)
    rng = np.random.default_rng(seed)
    s = 1.0 - 2.0 * np.asarray(x, dtype=np.float64)
    gain = s * (A @ s)
    free_at = np.zeros(n, dtype=np.int64)
    cut = best = 0.0                   # relative to x's cut
    best_s = s.copy()
    tenure = max(10, n // 10)
    for t in range(flips):
        i = int(np.argmax(np.where(free_at <= t, gain, -np.inf)))
        j = int(np.argmax(gain))
        if cut + gain[j] > best + tol:                    # aspiration: a tabu flip to a new best is allowed
            i = j
        cut += gain[i]
        lo, hi = A.indptr[i], A.indptr[i + 1]
        nb = A.indices[lo:hi]
        gain[nb] -= 2.0 * s[nb] * s[i] * A.data[lo:hi]
        s[i], gain[i] = -s[i], -gain[i]
        free_at[i] = t + 1 + tenure + int(rng.integers(10))
        if cut > best + tol:
            best, best_s = cut, s.copy()
    return ((1 - best_s) / 2).astype(np.int64)


def gw_expected(V, edges, weights):
    """Expected cut of Goemans-Williamson rounding: ``sum w arccos<v_i, v_j> / pi``. ``V: (n, r)``."""
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
    """``k`` independent random-hyperplane roundings of ``V: (n, r)`` at once. Returns the cuts ``(k,)``
    and the best partition."""
    V = torch.as_tensor(V, dtype=torch.float64)
    R = torch.randn(V.shape[1], k, generator=generator, dtype=torch.float64)
    X = (V @ R < 0).T.to(torch.int64)                                    # (k, n)
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


def sdp_rank(n):
    """Burer-Monteiro rank: the smallest ``r`` with ``r (r + 1) / 2 > n``, above which second-order
    points of the factorised problem are generically global optima (Boumal, Voroninski, Bandeira 2016)."""
    return int(math.ceil((math.sqrt(8 * n + 1) - 1) / 2)) + 1


CERTIFY_UP_TO = 3000     # nodes: the dense eigenvalue check of sdp_upper_bound (n x n float64, seconds at 3000)


def sdp_upper_bound(n, edges, weights, V):
    """A certified upper bound on the GW SDP's optimum, hence on the maximum cut, from any unit vectors
    ``V: (n, r)`` (a Burer-Monteiro solution makes it tight), or None above :data:`CERTIFY_UP_TO` nodes.

    Weak duality: ``max {<L/4, X> : X psd, diag X = 1} <= sum(y) + n max(0, -lambda_min(Diag(y) - L/4))``
    for every ``y`` (L the weighted Laplacian). ``y`` comes from V's first-order conditions,
    ``y_i = sum_j A_ij (1 - <v_i, v_j>) / 4``, so ``sum(y)`` is V's own SDP value; lambda_min from LAPACK, less
    ``n eps ||M||_F`` for its rounding (Weyl). A V far from optimal gives a valid but loose bound. Computed on
    ``w / weight_scale(w)`` (exact), so every weight scale is certified alike. Returns ``(bound, lambda_min)``."""
    import scipy.linalg
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


def sdp_bytes(n, m, r, max_iter):
    """Peak memory of :func:`solve_sdp`, roughly, as measured (20 000 nodes, r = 201: 1.1 GB above the
    interpreter's after 10 iterations, 3.9 GB after 200 with 40 000 edges): about 36 copies of the ``(n, r)``
    factor for autograd, the line search and the allocator's slack, 4.5 more per L-BFGS iteration while its 20
    pairs of history fill, and the per-edge gathers."""
    return 8.0 * n * r * (36 + 4.5 * min(max_iter, 20)) + 64.0 * m * r


def solve_sdp(n, edges, weights, generator, rank=None, max_iter=3000, device="cpu"):
    """Goemans-Williamson relaxation ``max sum w (1 - <v_i, v_j>)/2`` over unit vectors, by the
    Burer-Monteiro factorisation ``v_i = y_i / |y_i|`` and L-BFGS (float64). Returns ``V: (n, r)``
    numpy with unit rows and the value it attains (a lower bound on the SDP optimum, equal to it at
    convergence). L-BFGS's tolerances are absolute: it solves for ``w / s`` (:func:`graphs.weight_scale`, exact)
    and the value is scaled back, so every weight scale converges as unit weights do."""
    r = rank or sdp_rank(n)
    s = weight_scale(weights)
    e = torch.as_tensor(edges, device=device)
    w = torch.as_tensor(weights, dtype=torch.float64, device=device) / s
    Y = torch.randn(n, r, generator=generator, dtype=torch.float64, device=device).requires_grad_(True)
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
