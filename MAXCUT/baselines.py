"""Baselines for Section 5.1 beside Goemans-Williamson (gw.py): the exact optimum (brute force), a one-flip local
search and a tabu search (the polish step), and networkx's approximation algorithms.
"""
import math
import warnings

import numpy as np
import scipy.sparse as sp
import torch

from MAXCUT.graphs import adjacency, dense_adjacency, to_networkx, weight_scale


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
    on i's neighbours only (sparse rows: memory O(n + m)). A gain counts above ``1e-9`` times the weights' scale
    (:func:`graphs.weight_scale`). Returns the improved 0/1 partition (numpy)."""
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
    with warnings.catch_warnings():  # torch flags sparse CSR as beta (as in graphs.Graph)
        warnings.simplefilter("ignore", UserWarning)
        A = adjacency(n, edges, weights)
    return sp.csr_matrix((A.values().numpy(), A.col_indices().numpy(), A.crow_indices().numpy()), shape=(n, n))


def tabu_search(n, edges, weights, x, flips, seed=0):
    """A stronger local search than :func:`local_search`, reported apart from it: tabu search from the 0/1
    partition ``x`` for ``flips`` single flips. Each flips the vertex of largest gain (negative gains too)
    that was not flipped in the last ``tenure`` flips -- unless a tabu flip would beat the best cut so far --
    with ``tenure = max(10, n/10) + U{0..9}`` flips. Gains are kept, and compared, as in :func:`local_search`.
    Returns the best partition visited (numpy 0/1) -- never a worse cut than ``x``'s."""
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


def nx_baselines(graph, seed):
    """networkx's ``randomized_partitioning`` and ``one_exchange`` cuts of ``graph = (n, edges, weights)``."""
    from networkx.algorithms.approximation import one_exchange, randomized_partitioning   # slow to load: on use
    g = to_networkx(*graph)
    return (float(randomized_partitioning(g, seed=seed, weight="weight")[0]),
            float(one_exchange(g, seed=seed, weight="weight")[0]))
