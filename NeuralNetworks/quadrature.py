"""Exact Gaussian expectations for the population objectives (Sec. 3-4): tensor Gauss–Hermite rules laid on the
teacher's frame [U, U⊥], and the refinement that decides when a rule is fine enough.

N(0, I) is rotation invariant, so nodes on the orthonormal frame [U, U⊥] integrate as well as on the standard
axes, and the teacher is then a function of the first k node coordinates only: the rule takes ``n_par`` nodes
along each direction of span(U) and ``n_perp`` across it.
"""
import math

import numpy as np
import torch

from NeuralNetworks.model import SUBSPACE_SEED, Teacher, make_subspace

SQRT_2PI = math.sqrt(2 * math.pi)
CHUNK = 200            # quadrature nodes per pass (see population.Population._chunks)


def gauss_hermite_nodes(counts, frame: torch.Tensor, prune: float = 0.0):
    """Tensor Gauss–Hermite rule for ``x ~ N(0, I_d)`` with ``counts[j]`` nodes along the j-th column of the
    orthonormal ``frame: (d, d)``. Returns ``X: (N, d)``, ``N ≤ Π counts``, and weights ``(N,)`` summing to 1;
    exact for polynomials of degree < 2 counts[j] in the j-th coordinate.

    ``prune > 0`` drops the nodes whose tensor weight is below it (their weights are left out, not moved): most
    of a many-node rule sits where the Gaussian weight is below 1e-30 (454 nodes along an axis reach |x| = 42;
    154 of them carry weight above 1e-30), and an integrand growing like a polynomial of low degree loses
    less than ``prune`` times its size there."""
    from scipy.special import roots_hermitenorm          # stable for any n (numpy's overflows past ~1000)
    rules = [roots_hermitenorm(n) for n in counts]
    xi = np.stack([g.ravel() for g in np.meshgrid(*[t for t, _ in rules], indexing="ij")], 1)
    q = np.prod(np.stack([g.ravel() for g in np.meshgrid(*[w for _, w in rules], indexing="ij")], 1), 1)
    q = q / SQRT_2PI ** len(counts)
    if prune > 0:
        keep = q >= prune
        xi, q = xi[keep], q[keep]
    xi = torch.as_tensor(xi, dtype=frame.dtype, device=frame.device)
    return xi @ frame.T, torch.as_tensor(q, dtype=frame.dtype, device=frame.device)


def complete_frame(U: torch.Tensor) -> torch.Tensor:
    """``[U, U⊥]``: ``U: (d, k)`` orthonormal completed to an orthonormal ``(d, d)`` basis."""
    d, k = U.shape
    q, _ = torch.linalg.qr(torch.cat([U, torch.eye(d, dtype=U.dtype, device=U.device)], 1))
    q = q[:, :d]
    q[:, :k] = U                                   # QR may flip signs; keep U itself
    return q


def teacher_frame(d: int, k: int):
    """The teacher's directions ``U: (d, k)`` in float64 (the project's fixed draw)."""
    return make_subspace(d, k, torch.Generator().manual_seed(SUBSPACE_SEED), dtype=torch.float64)


PRUNE = 1e-30              # working rules leave out the nodes of tensor weight below this (see gauss_hermite_nodes)


def rule(U, nodes, offset, prune=PRUNE):
    """Nodes ``X: (N, d)``, weights ``q: (N,)`` and teacher values ``y = offset + mean_j tanh(<x, u_j>)`` of the
    rule with ``nodes = (n_par, n_perp)`` per axis of [U, U⊥], nodes of weight below ``prune`` left out."""
    d, k = U.shape
    X, q = gauss_hermite_nodes([nodes[0]] * k + [nodes[1]] * (d - k), complete_frame(U), prune)
    return X, q, Teacher(U, offset=offset)(X)


QUAD_TOL = 1e-10           # a rule is fine enough when doubling its nodes along an axis moves g by less
MAX_NODES = 640            # per axis
MAX_GRID = 40_000          # nodes in all (one teacher direction) ...
MAX_GRID_K2 = 70_000       # ... and with two (in d = 3 the rule needs 90² × 8 to converge to QUAD_TOL)


def nodes_for(pop, Th, start=None) -> tuple[tuple[int, int], bool]:
    """The rule ``(n_par, n_perp)`` under which g at ``Th`` is converged, and whether a cap stopped the search
    first (the rule is then *not* converged): starting from ``start`` (default: ``pop``'s own rule, or (40, 8)
    if it has none), the count along span(U), then across it, grows by half until doubling it moves g by less
    than ``QUAD_TOL`` (or a cap is reached: ``MAX_NODES`` per axis, ``MAX_GRID`` in all, ``MAX_GRID_K2`` with two
    teacher directions)."""
    d, k = pop.U.shape
    n, capped = list(start or pop.nodes or (40, 8)), False
    cap = MAX_GRID if k == 1 else MAX_GRID_K2

    def g(m):
        return pop.refined(m).evaluate(Th)[0]

    for axis in (0, 1) if d > k else (0,):
        while True:
            twice = list(n)
            twice[axis] *= 2
            if abs(g(twice) - g(n)) < QUAD_TOL:
                break
            size = n[0] ** k * n[1] ** (d - k)
            if n[axis] >= MAX_NODES or size * 1.5 ** (k if axis == 0 else d - k) > cap:
                capped = True
                break
            n[axis] = int(n[axis] * 1.5)
    return (n[0], n[1]), capped
