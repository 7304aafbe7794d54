"""Graphs and cuts for Section 5.1 (paper App. F, Fig. 5): reading G-set / edge-list files, the authors' random
graph, cut values, adjacency matrices, and :class:`Graph`, the batched cut on a torch device.

A graph is ``(n, edges, weights)``: ``edges: (m, 2)`` int64, 0-based, ``i < j``; ``weights: (m,)`` float64.
A partition is a 0/1 vector ``(n,)`` (or a batch ``(..., n)``); its cut is the total weight of the edges
whose ends lie on different sides.
"""
import math
import os

import numpy as np
import torch


GSET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "gset")
# name: (best known cut, SDP bound or None) -- see data/gset/README.md for the sources


GSET_REFERENCE = {"G1": (11624, 12083.2), "G11": (564, None), "G14": (3064, 3191.57),
                  "G22": (13359, 14135.95), "G43": (6660, 7032.22), "G48": (6000, 6000.0),
                  "G51": (3848, 4006.26)}


class GraphFormatError(ValueError):
    """A graph file that cannot be read; the message names the file and line."""


def _merge(n, edges, weights):
    """Sort each edge as ``i < j`` and add the weights of repeated edges."""
    e = np.sort(np.asarray(edges, dtype=np.int64).reshape(-1, 2), axis=1)
    key = e[:, 0] * n + e[:, 1]
    uniq, inv = np.unique(key, return_inverse=True)
    w = np.bincount(inv, weights=np.asarray(weights, dtype=np.float64), minlength=len(uniq))
    return np.stack([uniq // n, uniq % n], axis=1), w


def _parse_int(tok, path, lineno, what):
    try:
        return int(tok)
    except ValueError:
        raise GraphFormatError(f"{path}:{lineno}: {what} {tok!r} is not an integer") from None


def _parse_float(tok, path, lineno):
    try:
        v = float(tok)
    except ValueError:
        v = math.nan
    if not math.isfinite(v):
        raise GraphFormatError(f"{path}:{lineno}: weight {tok!r} is not a finite number")
    return v


def read_graph(path):
    """Read a G-set/rudy file (first line ``n m``, then ``i j w`` 1-based) or a plain edge list
    (``u v [w]`` per line, any integer labels, relabelled 0..n-1 in sorted order). A file is read as
    G-set when its first line has two fields and every later line three. Lines starting with ``#`` are
    comments. Returns ``(n, edges, weights)``; raises :class:`GraphFormatError` naming the line."""
    if not os.path.isfile(path):
        raise GraphFormatError(f"{path}: no such file")
    try:
        with open(path) as f:
            rows = [(k + 1, line.split()) for k, line in enumerate(f)]
    except (UnicodeDecodeError, OSError) as e:
        raise GraphFormatError(f"{path}: cannot be read as text ({e.__class__.__name__})") from None
    rows = [(k, t) for k, t in rows if t and not t[0].startswith("#")]
    if not rows:
        raise GraphFormatError(f"{path}: the file is empty")
    gset = len(rows[0][1]) == 2 and len(rows) > 1 and all(len(t) == 3 for _, t in rows[1:])
    return _read_gset(path, rows) if gset else _read_edge_list(path, rows)


def _read_gset(path, rows):
    (k0, head), body = rows[0], rows[1:]
    n = _parse_int(head[0], path, k0, "node count")
    m = _parse_int(head[1], path, k0, "edge count")
    if n < 2 or m < 1:
        raise GraphFormatError(f"{path}:{k0}: header 'n m' needs n >= 2 and m >= 1, got {n} {m}")
    if len(body) != m:
        raise GraphFormatError(f"{path}:{k0}: header announces {m} edges but the file has {len(body)}")
    edges, weights = np.empty((m, 2), np.int64), np.empty(m)
    for r, (k, (a, b, w)) in enumerate(body):
        i, j = _parse_int(a, path, k, "node id"), _parse_int(b, path, k, "node id")
        for v in (i, j):
            if not 1 <= v <= n:
                raise GraphFormatError(f"{path}:{k}: node id {v} is out of range 1..{n}")
        if i == j:
            raise GraphFormatError(f"{path}:{k}: self-loop on node {i}")
        edges[r], weights[r] = (i - 1, j - 1), _parse_float(w, path, k)
    return (n, *_merge(n, edges, weights))


def _read_edge_list(path, rows):
    ends, weights = [], []
    for k, t in rows:
        if len(t) not in (2, 3):
            raise GraphFormatError(f"{path}:{k}: expected 'u v' or 'u v w', got {len(t)} fields")
        i, j = _parse_int(t[0], path, k, "node id"), _parse_int(t[1], path, k, "node id")
        if i == j:
            raise GraphFormatError(f"{path}:{k}: self-loop on node {i}")
        ends.append((i, j))
        weights.append(_parse_float(t[2], path, k) if len(t) == 3 else 1.0)
    labels, idx = np.unique(np.asarray(ends), return_inverse=True)
    return (len(labels), *_merge(len(labels), idx.reshape(-1, 2), weights))


def authors_graph(n, p, seed):
    """The authors' random graph (their Fig. 5 script; 62 edges and optimum 41 for n = 15, p = 0.6, seed 42):
    torch seeded with ``seed``, ``A = (rand(n, n) < p)`` with the diagonal dropped and the upper triangle
    mirrored. Unit weights. A private ``torch.Generator`` draws the same numbers as ``torch.manual_seed``."""
    A = torch.rand(n, n, generator=torch.Generator().manual_seed(seed)) < p
    e = torch.nonzero(torch.triu(A, diagonal=1)).numpy().astype(np.int64).reshape(-1, 2)
    return (n, *_merge(n, e, np.ones(len(e))))


def random_graph(n, p, seed):
    """networkx ``gnp_random_graph(n, p, seed)`` with unit weights (``--graph-source networkx``)."""
    import networkx as nx
    g = nx.gnp_random_graph(n, p, seed=seed)
    e = np.asarray(list(g.edges()), dtype=np.int64).reshape(-1, 2)
    return (n, *_merge(n, e, np.ones(len(e))))


def to_networkx(n, edges, weights):
    import networkx as nx
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_weighted_edges_from((int(i), int(j), float(w)) for (i, j), w in zip(edges, weights))
    return g


def cut_value(edges, weights, x):
    """Cut of 0/1 (or +-1) labels ``x: (..., n)`` -> ``(...)``; numpy or torch."""
    xi, xj = x[..., edges[:, 0]], x[..., edges[:, 1]]
    return ((xi != xj) * weights).sum(-1)


def adjacency(n, edges, weights, device="cpu", dtype=torch.float64) -> torch.Tensor:
    """Symmetric weighted adjacency as a sparse CSR tensor ``(n, n)``."""
    e = torch.as_tensor(edges)
    idx = torch.cat([e, e.flip(1)]).T
    w = torch.as_tensor(weights, dtype=dtype).repeat(2)
    return torch.sparse_coo_tensor(idx, w, (n, n), check_invariants=False).coalesce().to_sparse_csr().to(device)


def dense_adjacency(n, edges, weights) -> np.ndarray:
    """Symmetric weighted adjacency ``(n, n)`` as a dense float64 numpy array."""
    A = np.zeros((n, n))
    np.add.at(A, (edges[:, 0], edges[:, 1]), weights)
    return A + A.T


class Graph:
    """A graph on one device with the cut of a batch of labels ``s`` in [-1, 1]:
    ``sum_E w (1 - s_i s_j) / 2 = (w_total - s^T A s / 2) / 2``. ``A`` is dense for small graphs
    (fewest operations) and sparse CSR otherwise (one sparse product, about 4x faster than gathering
    both ends of every edge, backward included)."""

    DENSE_UP_TO = 512

    def __init__(self, n, edges, weights, device, dtype=torch.float64):
        import warnings
        with warnings.catch_warnings():  # torch flags sparse CSR as beta; the product used here is stable
            warnings.simplefilter("ignore", UserWarning)
            A = adjacency(n, edges, weights, device=device, dtype=dtype)
        self.dense = n <= self.DENSE_UP_TO
        self.A = A.to_dense() if self.dense else A
        self.w_total = float(np.sum(weights))
        self.abs_total = float(np.sum(np.abs(weights)))

    def cut(self, s: torch.Tensor) -> torch.Tensor:
        """``s: (..., n)`` -> cut values ``(...)``."""
        if s.dim() == 2:
            return self._cut2(s)
        return self._cut2(s.reshape(-1, s.shape[-1])).reshape(s.shape[:-1])

    def _cut2(self, S):
        AS = S @ self.A if self.dense else (self.A @ S.T).T
        return (AS * S).sum(1).mul_(-0.25).add_(0.5 * self.w_total)
