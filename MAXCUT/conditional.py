"""The classic derandomisation of Goemans-Williamson: the method of conditional expectations (Mahajan & Ramesh,
SIAM J. Comput. 1999), the baseline beside the paper's optimisation-based derandomisation (Section 5.1).

The hyperplane ``r ~ N(0, I_p)`` rounds the vectors ``v_i`` (rows of ``V: (n, p)``) to ``sign⟨v_i, r⟩``. With its
first ``t`` coordinates fixed and the rest free, ``⟨v_i, r⟩ = a_i + s_i Z_i`` is normal:

    a_i = Σ_{k<t} V_ik r_k,    s_i² = Σ_{k≥t} V_ik²,    cov(Z_i s_i, Z_j s_j) = c_ij = Σ_{k≥t} V_ik V_jk,

and the conditional expected cut is a sum over the edges of bivariate normal orthant probabilities,

    g_t = E[cut | r_1..r_t] = Σ_ij w_ij P(sign(a_i + s_i Z_i) ≠ sign(a_j + s_j Z_j))       (:func:`conditional_cut`)

``g_0`` is the GW expectation Σ w arccos⟨v_i, v_j⟩ / π and ``g_p`` the cut of sign(V r). Since
``E_{r_t ~ N(0, 1)} g_t(r_t) = g_{t-1}``, choosing each ``r_t`` to maximise ``g_t`` keeps ``g_t ≥ g_{t-1}``: the
final cut is at least the GW expectation, for any weights (GW's 0.87856 ratio needs w ≥ 0; this inequality
does not). The search per coordinate (:func:`maximise_step`): the Gauss-Hermite nodes of N(0, 1) and 0, then
zooming grids around the best; if the best still falls below ``g_{t-1}`` beyond rounding, a dense grid over
[-12, 12], tails to ±1e4 and both sides of nearly fixed-sign nodes' breakpoints (an approximate maximum: each
step's value is checked, not assumed, :func:`derandomise`); the last coordinate (every spread 0, ``g_p`` a step
function) is maximised exactly over the midpoints of its breakpoints. Sign convention of
:func:`model.hyperplane_partition`: ⟨v_i, r⟩ = 0 counts as positive.
"""
import math
import time

import numpy as np
from scipy.special import ndtr, owens_t

from MAXCUT.graphs import cut_value
from MAXCUT.model import hyperplane_partition

HERMITE = 20          # Gauss-Hermite nodes of N(0, 1) tried first for each coordinate (they reach ±7.6)
ZOOMS = 3             # zooming grids around the best candidate so far ...
ZOOM_POINTS = 9       # ... of this many points between its neighbours
DENSE = np.linspace(-12.0, 12.0, 2401)     # the fallback grid when the search falls below g_{t-1}
BLOCK = 2 ** 21       # candidates x edges per vectorised pass (a few (K, E) float64 arrays of 16 MB)
TAILS = np.r_[-np.logspace(1, 4, 25), np.logspace(1, 4, 25)]   # the fallback also looks this far out
NEAR_FIXED = 1e-2     # a node whose remaining spread is below this times |V_it| counts as nearly fixed-sign
ROUNDING = 1e-12      # relative to the total |weight|: g's rounding error, the tolerance of "non-decreasing"


def orthant(h, k, rho, q=None):
    """``P(X ≤ h, Y ≤ k)`` for standard normals of correlation ``rho`` (broadcast arrays; h, k may be ±inf, rho in
    [-1, 1]; ``q``: √(1 − ρ²) where known more accurately than from ρ, see :func:`tail_geometry`). Owen (1956):
    ``½Φ(h) + ½Φ(k) − T(h, α_h) − T(k, α_k) − β`` with Owen's T, ``α_h = (k − ρh) / (h √(1 − ρ²))`` (α_k alike)
    and β = ½ where hk < 0, or hk = 0 and h + k < 0; ρ = ±1, h = k = 0 and infinite limits apart."""
    q = np.sqrt(np.clip((1 - np.asarray(rho)) * (1 + np.asarray(rho)), 0.0, None)) if q is None else q   # √(1 − ρ²)
    h, k, rho, q = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) + 0.0 for x in (h, k, rho, q)))  # -0 -> +0
    shape = h.shape
    h, k, rho, q = h.ravel(), k.ravel(), rho.ravel(), q.ravel()
    finite = np.isfinite(h) & np.isfinite(k) & (q > 0) & ((h != 0) | (k != 0))
    if not finite.all():
        hf, kf, qf = np.where(finite, h, 1.0), np.where(finite, k, 1.0), np.where(finite, q, 1.0)
    else:
        hf, kf, qf = h, k, q
    with np.errstate(divide="ignore", invalid="ignore"):
        ah, ak = (kf - rho * hf) / (hf * qf), (hf - rho * kf) / (kf * qf)      # ±inf where h or k is 0
    hk = hf * kf
    beta = 0.5 * ((hk < 0) | ((hk == 0) & (hf + kf < 0)))
    Ph, Pk = ndtr(h), ndtr(k)
    out = 0.5 * (Ph + Pk) - owens_t(hf, ah) - owens_t(kf, ak) - beta
    if not finite.all():
        out[~finite] = _orthant_limits(h[~finite], k[~finite], rho[~finite], q[~finite])
    return np.clip(out, 0.0, np.minimum(Ph, Pk)).reshape(shape)[()]


def _orthant_limits(h, k, rho, q):
    """:func:`orthant` where Owen's formula does not apply (1-d arrays): ρ = ±1 (Y = ±X), h = k = 0 (Sheppard:
    ¼ + arcsin ρ / 2π, as atan2(ρ, q): exact to rounding near ρ = ±1 when q is) and h or k infinite."""
    Ph, Pk = ndtr(h), ndtr(k)
    out = np.where(rho > 0, ndtr(np.minimum(h, k)), np.maximum(Ph + Pk - 1, 0.0))
    out = np.where((h == 0) & (k == 0) & (q > 0), 0.25 + np.arctan2(rho, q) / (2 * math.pi), out)    # arcsin ρ
    return np.where(np.isinf(h) | np.isinf(k), np.where((h == -np.inf) | (k == -np.inf), 0.0, Ph * Pk), out)


def cut_probability(a_i, a_j, s_i, s_j, c, q=None):
    """``P(sign(X) ≠ sign(Y))`` for ``(X, Y)`` normal with means ``a_i, a_j``, standard deviations ``s_i, s_j ≥ 0``
    and covariance ``c`` (broadcast arrays; ``q``: √(1 − ρ²) if known more accurately); sign(0) = +. A spread of 0
    is a fixed sign.
    ``P(X ≥ 0) + P(Y ≥ 0) − 2 P(X ≥ 0, Y ≥ 0)``, the last ``orthant(a_i/s_i, a_j/s_j, ρ)`` with ``ρ = c/(s_i s_j)``."""
    a_i, a_j, s_i, s_j, c = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (a_i, a_j, s_i, s_j, c)))
    free_i, free_j = s_i > 0, s_j > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(free_i, a_i / np.where(free_i, s_i, 1.0), np.where(a_i >= 0, np.inf, -np.inf))
        k = np.where(free_j, a_j / np.where(free_j, s_j, 1.0), np.where(a_j >= 0, np.inf, -np.inf))
        rho = np.clip(np.where(free_i & free_j, c / (np.where(free_i, s_i, 1.0) * np.where(free_j, s_j, 1.0)), 0.0),
                      -1.0, 1.0)
    q = None if q is None else np.where(free_i & free_j, q, 1.0)
    return np.clip(ndtr(h) + ndtr(k) - 2 * orthant(h, k, rho, q), 0.0, 1.0)


def tail_geometry(tail, edges):
    """The free part's spreads ``s: (n,)``, covariances ``c: (m,)`` and ``q = √(1 − ρ²): (m,)`` for ``tail: (n, k)``
    (the coordinates not yet fixed). ``q = ½ ‖x − y‖ ‖x + y‖`` for the unit tails ``x, y``: exact to rounding as ρ → ±1,
    where ``1 − ρ²`` from ρ has no digits left (rank-one SDP vectors, G48)."""
    s = np.sqrt((tail * tail).sum(1))
    unit = tail / np.where(s > 0, s, 1.0)[:, None]
    c, q = np.empty(len(edges)), np.empty(len(edges))
    step = max(1, BLOCK // max(1, tail.shape[1]))
    for b in range(0, len(edges), step):
        i, j = edges[b:b + step, 0], edges[b:b + step, 1]
        c[b:b + step] = np.einsum("ek,ek->e", tail[i], tail[j])
        q[b:b + step] = 0.5 * np.sqrt(((unit[i] - unit[j]) ** 2).sum(1) * ((unit[i] + unit[j]) ** 2).sum(1))
    return s, c, q


def conditional_cut(V, edges, weights, r, t):
    """``g_t = E[cut | r_1..r_t]``, the plain form: ``V: (n, p)``, ``edges: (m, 2)``, ``weights: (m,)``, ``r: (≥ t,)``
    (its first ``t`` entries fixed, the rest free N(0, 1)); a float."""
    V = np.asarray(V, dtype=np.float64)
    i, j = edges[:, 0], edges[:, 1]
    a = V[:, :t] @ np.asarray(r[:t], dtype=np.float64)              # (n,): the fixed part of ⟨v_i, r⟩
    s, c, q = tail_geometry(V[:, t:], edges)        # (n,), (m,), (m,): the free part's spreads, covariances, √(1 − ρ²)
    return float(weights @ cut_probability(a[i], a[j], s[i], s[j], c, q))


def step_values(a, v, geometry, edges, weights, x):
    """``g_t(x)`` for every candidate ``x: (K,)`` of the coordinate ``r_t`` at once, edges in blocks: ``a: (n,)`` the
    fixed part so far, ``v: (n,)`` column t of V, ``geometry``: :func:`tail_geometry` of the coordinates after t.
    Returns ``(K,)``."""
    s, c, q = geometry
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros(len(x))
    step = max(1, BLOCK // max(1, len(x)))
    for b in range(0, len(edges), step):
        i, j = edges[b:b + step, 0], edges[b:b + step, 1]
        ai, aj = a[i] + np.outer(x, v[i]), a[j] + np.outer(x, v[j])                    # (K, E)
        out += cut_probability(ai, aj, s[i], s[j], c[b:b + step], q[b:b + step]) @ weights[b:b + step]
    return out


def maximise_step(g, previous, tol, breaks=()):
    """``(x, g(x), evaluations)``: the search for ``r_t``, ``g`` vectorised over candidates. The Gauss-Hermite nodes
    of N(0, 1) and 0; ``ZOOMS`` times a grid of ``ZOOM_POINTS`` between the best point's neighbours; if the best is
    below ``previous − tol`` (their mean under N(0, 1) is ``previous``, so a finer search finds better), the dense
    grid and its zooms, with ``breaks`` (where ``g`` may jump: the breakpoints of nearly fixed-sign nodes), points
    just either side of each, the midpoints between them and the tails out to ±1e4."""
    nodes = np.sqrt(2.0) * np.polynomial.hermite.hermgauss(HERMITE)[0]
    xs, vals = _zoom(g, np.sort(np.r_[nodes, 0.0]))
    if vals.max() < previous - tol:
        more = _zoom(g, np.unique(np.r_[DENSE, TAILS, _around(np.asarray(breaks, dtype=np.float64))]))
        xs, vals = np.r_[xs, more[0]], np.r_[vals, more[1]]
    best = int(np.argmax(vals))
    return float(xs[best]), float(vals[best]), len(xs)


def _around(b):
    """Points just either side of each breakpoint (relative 1e-7: not on it, where rounding decides the sign) and
    the midpoints between consecutive ones."""
    b = np.unique(b[np.isfinite(b)])
    eps = 1e-7 * np.maximum(np.abs(b), 1.0)
    return np.r_[b - eps, b + eps, 0.5 * (b[1:] + b[:-1])]


def breakpoints(a, v, spread):
    """``−a_i / v_i`` for the nodes whose spread after this coordinate is 0 or small (≤ ``NEAR_FIXED`` |v_i|): their
    sign flips there, so ``g_t`` may jump there by more than a grid's spacing resolves."""
    near = (v != 0) & (spread <= NEAR_FIXED * np.abs(v))
    return -a[near] / v[near]


def _zoom(g, grid):
    """Evaluate ``g`` on ``grid`` (sorted), then ``ZOOMS`` times on a finer grid between the best point's
    neighbours; every point tried and its value."""
    xs, vals = [grid], [g(grid)]
    for _ in range(ZOOMS):
        best = int(np.argmax(vals[-1]))
        lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
        grid = np.linspace(lo, hi, ZOOM_POINTS)
        xs.append(grid)
        vals.append(g(grid))
    return np.concatenate(xs), np.concatenate(vals)


def last_step(a, v, edges, weights):
    """The exact maximiser of ``g_p(x)``, the cut of sign(a + v x) (every spread 0): a step function, constant between
    the breakpoints ``−a_i / v_i``; tried at each gap's midpoint and beyond both ends. ``(x, g(x), evaluations)``."""
    cuts = np.unique(-a[v != 0] / v[v != 0])
    xs = np.r_[cuts[:1] - 1.0, 0.5 * (cuts[1:] + cuts[:-1]), cuts[-1:] + 1.0] if len(cuts) else np.zeros(1)
    fixed = (np.zeros(len(a)), np.zeros(len(edges)), np.ones(len(edges)))
    vals = step_values(a, v, fixed, edges, weights, xs)
    best = int(np.argmax(vals))
    return float(xs[best]), float(vals[best]), len(xs)


def derandomise(V, edges, weights, progress=None):
    """Mahajan & Ramesh: ``r_1, ..., r_p`` fixed in turn, each maximising ``g_t``. ``V: (n, p)`` unit rows. Returns
    ``{"r": (p,), "partition": (n,), "cut", "values": [g_0, ..., g_p], "non_decreasing", "evaluations",
    "seconds"}``; ``non_decreasing`` is False (and the run says so) if a value fell below the one before beyond
    rounding (``tol``: ``ROUNDING`` of the total |weight|). ``progress(t)``: called after each coordinate."""
    t0 = time.perf_counter()
    V, w = np.asarray(V, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    n, p = V.shape
    tol = ROUNDING * (float(np.abs(w).sum()) + 1.0)
    r, a, evals = np.zeros(p), np.zeros(n), 0
    values = [conditional_cut(V, edges, w, r, 0)]                   # g_0: the GW expectation
    for t in range(p):
        geometry = tail_geometry(V[:, t + 1:], edges)
        if np.any(geometry[0] > 0):
            x, gx, k = maximise_step(lambda xs: step_values(a, V[:, t], geometry, edges, w, xs), values[-1], tol,
                                     breakpoints(a, V[:, t], geometry[0]))
        else:
            x, gx, k = last_step(a, V[:, t], edges, w)
        r[t], a, evals = x, a + V[:, t] * x, evals + k
        values.append(gx)
        if progress:
            progress(t)
    partition = hyperplane_partition(V, r)
    cut = float(cut_value(edges, w, partition))
    if abs(cut - values[-1]) > tol:
        raise AssertionError(f"the partition's cut {cut!r} differs from the last conditional expectation")
    return {"r": r, "partition": partition, "cut": cut, "values": values, "tol": tol, "evaluations": evals,
            "non_decreasing": bool(np.all(np.diff(values) >= -tol)), "seconds": time.perf_counter() - t0}


SEARCH = (f"per coordinate: the {HERMITE} Gauss-Hermite nodes of N(0, 1) and 0, then {ZOOMS} zooming grids of "
          f"{ZOOM_POINTS} points between the best point's neighbours (if the best falls below the previous value, "
          f"more: a {len(DENSE)}-point grid on [-12, 12], tails to ±1e4 and both sides of the breakpoints of nearly "
          "fixed-sign nodes); the last coordinate exactly, at the midpoints of its breakpoints")


def summary_record(d, gw_expectation):
    """``results.json``'s ``conditional_expectations``: the cut, the GW expectation it must reach, whether it does,
    the values along t, their smallest increment and whether each is at least the one before (to ``tol``), the
    search and the time. ``guarantee_holds``: cut ≥ GW expectation − ``tol`` (rounding)."""
    inc = np.diff(d["values"])
    return {"cut": d["cut"], "gw_expectation": gw_expectation,
            "guarantee_holds": bool(d["cut"] >= gw_expectation - d["tol"]), "values": [float(v) for v in d["values"]],
            "min_increment": float(inc.min()) if len(inc) else 0.0, "non_decreasing": d["non_decreasing"],
            "evaluations": int(d["evaluations"]), "search": SEARCH, "time_s": d["seconds"]}
