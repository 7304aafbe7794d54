"""Graphs and cuts for Section 5.1 (paper App. F, Fig. 5): reading G-set / edge-list files, the authors' random
graph, cut values, adjacency matrices, and :class:`Graph`, the batched cut on a torch device.

A graph is ``(n, edges, weights)``: ``edges: (m, 2)`` int64, 0-based, ``i < j``; ``weights: (m,)`` float64.
A partition is a 0/1 vector ``(n,)`` (or a batch ``(..., n)``); its cut is the total weight of the edges
whose ends lie on different sides.
"""
import ast
import csv
import functools
import hashlib
import math
import os
import re
import warnings

import numpy as np
import torch


GSET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "gset")
# name: (best known cut, SDP bound or None) -- see data/gset/README.md for the sources; a graph is matched to its
# name by content (gset_reference), never by its file's name
GSET_REFERENCE = {"G1": (11624, 12083.2), "G11": (564, None), "G14": (3064, 3191.57),
                  "G22": (13359, 14135.95), "G43": (6660, 7032.22), "G48": (6000, 6000.0),
                  "G51": (3848, 4006.26)}


class GraphFormatError(ValueError):
    """A graph file that cannot be read; the message names the file and line."""


class DuplicateEdgeError(GraphFormatError):
    """An edge listed twice, other than every edge both ways with equal weights; the message names both lines."""


def _merge(n, edges, weights):
    """Sort each edge as ``i < j`` and add the weights of repeated edges (the random graphs have none)."""
    e = np.sort(np.asarray(edges, dtype=np.int64).reshape(-1, 2), axis=1)
    key = e[:, 0] * n + e[:, 1]
    uniq, inv = np.unique(key, return_inverse=True)
    w = np.bincount(inv, weights=np.asarray(weights, dtype=np.float64), minlength=len(uniq))
    return np.stack([uniq // n, uniq % n], axis=1), w


def _once(path, n, edges, weights, lines, labels=None):
    """The edges of a file, each once, ``i < j``, and what was read of them. Rule: an unordered pair may appear
    once; or every pair exactly twice, once each way, with equal weights (an undirected list written both ways),
    which is read once and said so. Anything else that repeats a pair is refused, naming both lines.
    ``edges: (m, 2)`` 0-based, ``lines: (m,)`` their line numbers; ``labels`` maps ids back for the message."""
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    w, lines = np.asarray(weights, dtype=np.float64), np.asarray(lines)
    lo, hi = e.min(1), e.max(1)
    key = lo * n + hi
    order = np.argsort(key, kind="stable")
    key, e, w, lines = key[order], e[order], w[order], lines[order]
    first = np.r_[True, key[1:] != key[:-1]]
    if first.all():
        return np.stack([lo[order], hi[order]], 1), w, []
    counts = np.diff(np.r_[np.nonzero(first)[0], len(key)])
    starts = np.nonzero(first)[0]
    both_ways = (counts == 2).all() and (e[starts, 0] != e[starts + 1, 0]).all() and (w[starts] == w[starts + 1]).all()
    if not both_ways:
        row = int(np.nonzero(~first)[0][0])
        name = (lambda v: labels[v]) if labels is not None else (lambda v: v + 1)
        a, b = sorted(e[row])
        raise DuplicateEdgeError(f"{path}:{lines[row - 1]} and line {lines[row]}: the edge {name(a)}-{name(b)} "
                               f"is listed twice (weights {w[row - 1]:g}, {w[row]:g}); list each edge once, or every "
                               "edge both ways with equal weights")
    return np.stack([lo[order][starts], hi[order][starts]], 1), w[starts], ["every edge listed both ways: read once"]


INTEGER = re.compile(r"[+-]?[0-9]+")                                  # ids and counts: decimal digits
NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")   # weights: 1, -2.5, 3e-2, .5, 1.


def _is_int(tok):
    """A plain decimal integer of int64's range: ASCII digits and an optional sign (not ``1_0``, ``٣``, ``0x1``)."""
    return bool(INTEGER.fullmatch(tok)) and len(tok) <= 20 and abs(int(tok)) < 2 ** 63


def _parse_int(tok, path, lineno, what):
    if not _is_int(tok):
        raise GraphFormatError(f"{path}:{lineno}: {what} {tok!r} " + (
            "is out of range (beyond 2^63)" if INTEGER.fullmatch(tok) else
            "is not an integer (decimal digits, optional sign)"))
    return int(tok)


def _parse_float(tok, path, lineno):
    """A plain decimal or scientific number (not ``inf``, ``nan``, ``1_0``, ``0x1p3``) that is finite in float64."""
    v = float(tok) if NUMBER.fullmatch(tok) else math.nan
    if not math.isfinite(v):
        raise GraphFormatError(f"{path}:{lineno}: weight {tok!r} is not a finite decimal number")
    return v


GRAPH_FORMATS = ("auto", "gset", "edges")


def read_graph_file(path, fmt="auto", with_labels=False):
    """Read a graph file in one of two formats, decided once for the whole file:

    * ``gset`` (G-set / rudy): first line ``n m``, then exactly ``m`` lines ``i j w`` (1-based ids in 1..n);
    * ``edges``: every line ``u v`` (unit weights), every line ``u v w``, or every line ``u v {...}`` (networkx's
      ``write_edgelist``: the dict's ``'weight'``, 1 where absent), any integer labels, relabelled 0..n-1 in
      sorted order.

    ``fmt='auto'`` chooses ``gset`` when the first line has two fields and the second three, ``edges``
    otherwise; a file that could be either (a lone two-field line, or two-field lines whose first line
    announces exactly the other lines, as a G-set header of unweighted edges would) is refused as ambiguous.
    In ``auto``, two-field lines under a first line ``n m`` that announces exactly them (ids in 1..n, or in 0..n-1
    with an id 0) are read as that header and unit-weight edges (``gset``; 0-based ids are said in ``notes``).
    Ids and counts are decimal integers, weights decimal or scientific numbers (``.5``, ``3e-2``): ``inf``,
    ``nan``, ``1_0`` or ``0x10`` are errors. Each edge must appear once, or every edge both ways with
    equal weights (read once; :func:`_once`). A UTF-8 byte-order mark is skipped; lines starting with ``#`` are
    comments. Any line that does not fit is an error naming the file and the line (:class:`GraphFormatError`).
    Returns ``((n, edges, weights), format, notes)``: ``notes`` says what was read beyond the plain format; with
    ``with_labels`` also ``labels: (n,)``, the file's own label of each node 0..n-1."""
    if fmt not in GRAPH_FORMATS:
        raise GraphFormatError(f"graph format {fmt!r}: choose from {', '.join(GRAPH_FORMATS)}")
    if not os.path.isfile(path):
        raise GraphFormatError(f"{path}: " + ("not a regular file" if os.path.exists(path) else "no such file"))
    try:
        with open(path, encoding="utf-8-sig") as f:            # a byte-order mark is skipped
            rows = [(k + 1, line.split()) for k, line in enumerate(f)]
    except (UnicodeDecodeError, OSError) as e:
        raise GraphFormatError(f"{path}: cannot be read as text ({e.__class__.__name__})") from None
    rows = [(k, t) for k, t in rows if t and not t[0].startswith("#")]
    if not rows:
        raise GraphFormatError(f"{path}: the file is empty")
    auto = fmt == "auto"
    if auto:
        fmt = _detect_format(path, rows)
    try:
        n, edges, weights, notes, labels = (_read_gset if fmt == "gset" else _read_edge_list)(path, rows)
        return ((n, edges, weights), fmt, notes) + ((labels,) if with_labels else ())
    except GraphFormatError as e:
        if not auto or isinstance(e, DuplicateEdgeError):
            raise
        why = ("its first line has two fields and its second three; --graph-format edges reads it as an edge list"
               if fmt == "gset" else "its first two lines are not a G-set header and edge line")
        raise GraphFormatError(f"{e} (read as {fmt}: {why})") from None


def _detect_format(path, rows):
    (k0, first), rest = rows[0], rows[1:]
    if len(first) == 2 and rest and len(rest[0][1]) == 3:
        return "gset"
    hint = "; --graph-format gset or --graph-format edges says which it is"
    if len(first) == 2 and not rest:
        raise GraphFormatError(f"{path}:{k0}: a lone line 'u v' is either a G-set header without edges or a "
                               f"one-edge list{hint}")
    if len(first) == 2 and all(len(t) == 2 for _, t in rest):
        if not all(_is_int(x) for x in first + [x for _, t in rest for x in t]):
            return "edges"                # the edge list's reader names the line that is not an integer
        n, m = int(first[0]), int(first[1])
        labels = [int(x) for _, t in rest for x in t]
        if m == len(rest) and (1 <= min(labels) and max(labels) <= n or min(labels) == 0 and max(labels) < n):
            return "gset"                 # a header 'n m' over exactly m unweighted edges, 1- or 0-based
    return "edges"


def _read_gset(path, rows):
    (k0, head), body = rows[0], rows[1:]
    if len(head) != 2:
        raise GraphFormatError(f"{path}:{k0}: a G-set file starts with the header 'n m', got {len(head)} fields")
    n = _parse_int(head[0], path, k0, "node count")
    m = _parse_int(head[1], path, k0, "edge count")
    if n < 2 or m < 1:
        raise GraphFormatError(f"{path}:{k0}: header 'n m' needs n >= 2 and m >= 1, got {n} {m}")
    unweighted = bool(body) and all(len(t) == 2 for _, t in body)     # a header over 'i j' lines: unit weights
    for k, t in body:
        if len(t) != 3 and not unweighted:
            raise GraphFormatError(f"{path}:{k}: a G-set edge line is 'i j w', got {len(t)} fields")
    if len(body) > m:
        raise GraphFormatError(f"{path}:{body[m][0]}: edge line {m + 1}, but the header (line {k0}) announces {m} "
                               "edges")
    if len(body) < m:
        raise GraphFormatError(f"{path}:{k0}: the header announces {m} edges but the file has {len(body)} edge lines")
    ids = np.array([[_parse_int(x, path, k, "node id") for x in t[:2]] for k, t in body], np.int64)
    base = 0 if unweighted and ids.min() == 0 and ids.max() < n else 1     # unweighted lines may count from 0
    edges, weights = ids - base, np.empty(m)
    for r, (k, t) in enumerate(body):
        i, j = ids[r]
        for v in (i, j):
            if not base <= v < n + base:
                raise GraphFormatError(f"{path}:{k}: node id {v} is out of range {base}..{n - 1 + base}")
        if i == j:
            raise GraphFormatError(f"{path}:{k}: self-loop on node {i}")
        weights[r] = _parse_float(t[2], path, k) if len(t) == 3 else 1.0
    e, w, notes = _once(path, n, edges, weights, [k for k, _ in body], None if base else np.arange(n))
    said = "header 'n m' over unweighted lines: unit weights" + (", ids 0..n-1 (0-based)" if base == 0 else "")
    return n, e, w, ([said] if unweighted else []) + notes, np.arange(n) + base


def _networkx_weight(t, path, k):
    """The weight of a networkx ``write_edgelist`` line ``u v {...}``: its dict's ``'weight'``, 1 where absent."""
    try:
        data = ast.literal_eval(" ".join(t[2:]))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise GraphFormatError(f"{path}:{k}: a networkx edge line is 'u v {{...}}' with a Python dict, got "
                               f"{' '.join(t[2:])!r}")
    w = data.get("weight", 1.0)
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
        raise GraphFormatError(f"{path}:{k}: weight {w!r} is not a finite number")
    return float(w)


def _read_edge_list(path, rows):
    (k0, first) = rows[0]
    nx_dicts = len(first) >= 3 and first[2].startswith("{")          # networkx's write_edgelist, with data
    if len(first) not in (2, 3) and not nx_dicts:
        raise GraphFormatError(f"{path}:{k0}: an edge list has lines 'u v', 'u v w' or 'u v {{...}}', got "
                               f"{len(first)} fields")
    ends, weights = [], []
    for k, t in rows:
        if nx_dicts and not (len(t) >= 3 and t[2].startswith("{")):
            raise GraphFormatError(f"{path}:{k}: this edge list's lines are 'u v {{...}}' (networkx's write_edgelist,"
                                   f" from line {k0}), got '{' '.join(t)}'")
        if len(t) != len(first) and not nx_dicts:
            raise GraphFormatError(f"{path}:{k}: {len(t)} fields, but this edge list's lines have {len(first)} "
                                   f"(from line {k0}: '{' '.join(first)}')")
        i, j = _parse_int(t[0], path, k, "node id"), _parse_int(t[1], path, k, "node id")
        if i == j:
            raise GraphFormatError(f"{path}:{k}: self-loop on node {i}")
        ends.append((i, j))
        weights.append(_networkx_weight(t, path, k) if nx_dicts else _parse_float(t[2], path, k) if len(t) == 3
                       else 1.0)
    labels, idx = np.unique(np.asarray(ends), return_inverse=True)
    e, w, notes = _once(path, len(labels), idx.reshape(-1, 2), weights, [k for k, _ in rows], labels)
    said = ["networkx edge data: each line's 'weight' (1 where absent)"] if nx_dicts else []
    return len(labels), e, w, said + notes, labels


def graph_digest(n, edges, weights):
    """SHA-256 (hex) of a graph's content: ``n`` as a little-endian int64, then its edges ``i < j`` (0-based) in
    sorted order as little-endian int64 pairs, then their weights in that order as little-endian float64. The
    same graph has the same digest whatever its file's name, line order, edge directions, comments or id base.

    >>> graph_digest(3, [[1, 0], [1, 2]], [1.0, 2.0]) == graph_digest(3, [[1, 2], [0, 1]], [2.0, 1.0])
    True"""
    e = np.sort(np.asarray(edges, dtype=np.int64).reshape(-1, 2), axis=1)
    order = np.lexsort((e[:, 1], e[:, 0]))
    w = np.asarray(weights, dtype=np.float64)[order] + 0.0           # -0.0 and 0.0 alike
    h = hashlib.sha256(np.asarray(n, dtype="<i8").tobytes())
    h.update(e[order].astype("<i8").tobytes())
    h.update(w.astype("<f8").tobytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def gset_table():
    """The rows of ``data/gset/best_known.csv`` (all 71 G-set graphs; README there), read once."""
    with open(os.path.join(GSET_DIR, "best_known.csv"), newline="") as f:
        return tuple(csv.DictReader(f))


def gset_name(digest):
    """The G-set graph whose content has this :func:`graph_digest` (the ``digest`` column of
    :func:`gset_table`: 64 of the 71 graphs), and its best known cut; ``(None, None)`` if none."""
    row = next((r for r in gset_table() if digest and r["digest"] == digest), None)
    return (row["graph"], int(row["best_known_bls2013"])) if row else (None, None)


def gset_reference(digest):
    """``(best known cut, SDP bound or None)`` of the G-set graph with this content (the csv's best known; the
    SDP bound of :data:`GSET_REFERENCE` where one is vendored), else ``(None, None)``: a file named ``G14.txt``
    that holds another graph has no best known cut."""
    name, best = gset_name(digest)
    return best, GSET_REFERENCE.get(name, (None, None))[1]


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


def weight_scale(weights):
    """``s = 2^round(log2 max|w|)`` (1 without non-zero weights): a power of two, so ``w / s`` is exact and
    ``max |w / s|`` lies in [0.7, 1.42]; 1 for unit and ±1 weights. What has an absolute tolerance or runs in
    float32 (the SDP solver, :class:`Graph` in float32, the local searches) works on ``w / s``: a graph and the
    same graph times ``2^k`` give the same partitions, and cuts ``2^k`` times larger."""
    top = float(abs(weights).max()) if len(weights) else 0.0         # numpy or torch
    return 2.0 ** round(math.log2(top)) if top > 0 else 1.0


class Graph:
    """A graph on one device with the cut of a batch of labels ``s`` in [-1, 1]:
    ``sum_E w (1 - s_i s_j) / 2 = (w_total - s^T A s / 2) / 2``. In float32, give it ``w / weight_scale(w)``
    (float32 holds weights of 1e-38 to 3e38 only). ``A`` is dense for small graphs (fewest operations) and
    sparse CSR otherwise (one sparse product rather than gathering both ends of every edge)."""

    DENSE_UP_TO = 512

    def __init__(self, n, edges, weights, device, dtype=torch.float64):
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
        if S.requires_grad:
            quad = _QuadraticForm.apply(S, self)
        else:
            quad = (self._product(S) * S).sum(1)
        return quad.mul_(-0.25).add_(0.5 * self.w_total)

    def _product(self, S):
        """``S A: (B, n)`` for ``S: (B, n)``."""
        return S @ self.A if self.dense else (self.A @ S.T).T


class _QuadraticForm(torch.autograd.Function):
    """``q_b = s_b^T A s_b`` for the rows of ``S: (B, n)`` and a graph's symmetric ``A``. Its gradient ``2 S A`` is the
    forward's own product, so the backward pass costs one elementwise product where autograd would form a
    second sparse product (``Aᵀ`` times the incoming gradient)."""

    @staticmethod
    def forward(ctx, S, graph):
        ctx.SA = graph._product(S)
        return (ctx.SA * S).sum(1)

    @staticmethod
    def backward(ctx, g):
        return 2.0 * ctx.SA * g[:, None], None
