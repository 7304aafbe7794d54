"""What Section 5.1 optimises (Eq. 7, Theorem 5.2): the expected cut of the random hyperplane
``r = m + σ ⊙ z``, ``z ~ N(0, I_p)``, applied to the vectors ``v_i`` (the rows of ``V: (n, p)``, ``p`` the rank
of the SDP factor).

The partition of a hyperplane ``r`` puts node ``i`` on side ``sign⟨v_i, r⟩``; ``m = 0``, ``σ = 1`` is plain
Goemans-Williamson rounding, ``σ = 0`` the deterministic hyperplane ``m``. For the theory the sign is replaced by
the C¹ step ``s(u) = h(u/δ)``, ``h(t) = 3t/2 − t³/2`` on [−1, 1] and ``sign t`` outside, and the objective is

    F(m, σ) = −C_δ(m, σ) / W + λ ‖σ‖²,    C_δ(m, σ) = E_z Σ_ij w_ij (1 − s(⟨v_i, r⟩) s(⟨v_j, r⟩)) / 2,

(W the total |weight|, so that one λ serves every graph), computed two ways:

* sampled (:func:`smoothed_objective`): C_δ estimated on draws ``z`` and differentiated through them (the
  pathwise gradient), for independent chains at once;
* exact (:func:`smoothed_cut`, :func:`cut_derivatives`, :func:`objective`): per edge a two-dimensional Gaussian
  integral, closed form in one variable and split Gauss-Legendre in the other, with its gradient and Hessian
  in ``x = (m, σ)``.
"""
import math

import numpy as np
import torch

from MAXCUT.graphs import Graph


def sign(u: torch.Tensor) -> torch.Tensor:
    """±1 labels, 0 mapped to +1 (a measure-zero event for Gaussian hyperplanes, but ``m = 0`` at start)."""
    return torch.where(u >= 0, 1.0, -1.0).to(u.dtype)


def hyperplane_partition(V, r):
    """The 0/1 partition cut by the hyperplane ``r: (p,)`` (or hyperplanes ``(p, k)``): 1 where ⟨v_i, r⟩ < 0.
    ``V: (n, p)``; returns ``(n,)`` (or ``(n, k)``) int64, numpy or torch as ``V``."""
    side = V @ r < 0
    return side.to(torch.int64) if torch.is_tensor(side) else side.astype(np.int64)


def smooth_step(u: torch.Tensor, delta: float) -> torch.Tensor:
    """The C¹ step ``s(u)``: ``3/2 t - 1/2 t^3`` for ``t = u/delta`` in [-1, 1], ``sign(u)`` outside."""
    t = (u / delta).clamp(-1.0, 1.0)
    return 1.5 * t - 0.5 * t ** 3


def smoothed_objective(V, graph: Graph, m, log_sigma, z, delta, lam, scale):
    """Eq. 7 with the smooth step of Eq. 27, to *minimise*, estimated on the draws ``z`` and summed over chains ``k``:
    ``sum_k [-(mean_z smoothcut(m_k + sigma_k z)) / scale + lam ||sigma_k||^2]``, ``sigma = exp(log_sigma)``.
    ``m, log_sigma: (K, p)`` (or ``(p,)``), ``z: (K, S, p)`` (or ``(S, p)``). Differentiable in ``m`` and
    ``log_sigma`` through the draws (the pathwise gradient)."""
    m, log_sigma = torch.atleast_2d(m), torch.atleast_2d(log_sigma)
    z = z if z.dim() == 3 else z[None]
    sigma = log_sigma.exp()                                             # (K, p)
    h = smooth_step((m[:, None] + sigma[:, None] * z) @ V.T, delta)     # (K, S, n): s(⟨v_i, r⟩) per draw
    return -graph.cut(h).mean(1).sum() / scale + lam * (sigma * sigma).sum()     # Eq. 7, smoothed as Eq. 27


# The exact C_δ. An edge's pair (X, Y) = (⟨v_i, r⟩, ⟨v_j, r⟩) is bivariate normal: means (⟨v_i, m⟩, ⟨v_j, m⟩),
# variances a² = Σ_k v_ik² σ_k², b² alike, covariance c = Σ_k v_ik v_jk σ_k². Its smoothed cut is
# w (1 − E[s(X) s(Y)]) / 2, and E[s(X) s(Y)] = E[s(X) g(X)] with g(x) = E[s(Y) | X = x] = S(μ_j + (c/a²)(x − μ_i),
# √(b² − c²/a²)), where S(μ, τ) = E[s(μ + τZ)] has a closed form (:func:`step_expectation`). The remaining
# integral over x is split where its integrand is not smooth -- at ±δ (where s bends), where the conditional mean
# crosses ±δ (where g bends), at 4 and 16 times the width over which g turns there, and at fixed multiples of the
# standard deviation -- and each piece, within WINDOW standard deviations of μ_i, is integrated by Gauss-Legendre
# with ``nodes`` points (8: 22 pieces, 176 evaluations an edge). Derivatives come from autograd, exact for the
# quadrature objective (the integrand is continuous across the pieces' moving ends).

WINDOW = 10.0      # the integral runs over μ_i ± WINDOW a (the normal's mass outside: 1.5e-23)
GRID = (-6.0, -4.0, -2.5, -1.25, 0.0, 1.25, 2.5, 4.0, 6.0)   # fixed splits of the window, in standard deviations
NODES = 8          # Gauss-Legendre points per piece
CHUNK = 1024       # edges per block in cut_derivatives
MOVES = 1e-150
TINY = 1e-80       # spreads are clamped here: σ = 0 exactly is the deterministic limit, reached continuously;
#                    variances at TINY², so that sqrt's derivatives (up to y^-3/2 = 1e240) stay finite: a
#                    variance rounded to 0 or below (τ² of a near-perfectly correlated pair) gets gradient 0, not NaN


def _phi(z):
    return torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def step_expectation(mu, tau, delta):
    """``E[s(μ + τZ)]``, ``Z ~ N(0, 1)``, elementwise over broadcast tensors (``τ ≥ 0``; exact, closed form).

    ``−P(U < −δ) + P(U > δ) + E[(3U/(2δ) − U³/(2δ³)) 1{|U| ≤ δ}]`` with ``U = μ + τZ``, the last term from the
    moments ``E[Z^j 1{α ≤ Z ≤ β}]``, j ≤ 3, of the standard normal on the interval."""
    tau = tau.clamp_min(TINY)
    za, zb = (-delta - mu) / tau, (delta - mu) / tau
    pa, pb, fa, fb = torch.special.ndtr(za), torch.special.ndtr(zb), _phi(za), _phi(zb)
    m0 = pb - pa                                     # E[Z^j 1{za <= Z <= zb}]
    m1 = fa - fb
    m2 = m0 + za * fa - zb * fb
    m3 = (za * za + 2) * fa - (zb * zb + 2) * fb
    u1 = mu * m0 + tau * m1                          # E[U^j 1{...}], U = mu + tau Z
    u3 = mu ** 3 * m0 + 3 * mu ** 2 * tau * m1 + 3 * mu * tau ** 2 * m2 + tau ** 3 * m3
    return -pa + torch.special.ndtr(-zb) + 1.5 * u1 / delta - 0.5 * u3 / delta ** 3


def _legendre(nodes, like):
    x, w = np.polynomial.legendre.leggauss(nodes)
    return torch.as_tensor(x, dtype=like.dtype, device=like.device), torch.as_tensor(w, dtype=like.dtype,
                                                                                   device=like.device)


def edge_products(mu_i, mu_j, a2, b2, c, delta, nodes=NODES):
    """``E[s(X) s(Y)]`` per edge for the bivariate normal above; 1-d tensors ``(E,)``.

    Integrated over the standardised ``ξ = (x − μ_i)/a`` (so that a tiny spread loses no digits to the means):
    ``∫ s(μ_i + aξ) S(μ_j + κξ, τ) φ(ξ) dξ`` with ``κ = c/a`` and ``τ² = b² − κ²``."""
    a = a2.clamp_min(TINY * TINY).sqrt()
    kappa = c / a
    tau = (b2 - kappa * kappa).clamp_min(TINY * TINY).sqrt()
    lo, hi = torch.full_like(mu_i, -WINDOW), torch.full_like(mu_i, WINDOW)
    moves = kappa.abs() > MOVES     # below, g varies by < 1e-149 over the window: no split needed (and none
    #                                  that would overflow: a bend at (±δ − μ_j)/κ, a width τ/κ)
    safe = torch.where(moves, kappa, torch.ones_like(kappa))
    bends = [(-delta - mu_i) / a, (delta - mu_i) / a]                    # where s bends
    turns = [torch.where(moves, (d - mu_j) / safe, lo) for d in (-delta, delta)]   # where g bends
    width = tau / safe.abs()                         # g turns over within this of its bends: pieces that resolve it
    pts = bends + turns + [p + k * width for p in turns for k in (-16, -4, 4, 16)]
    fixed = [torch.full_like(mu_i, v) for v in GRID]                  # the normal's own scale, resolved
    cuts = torch.sort(torch.stack([lo, hi] + fixed + [p.clamp(-WINDOW, WINDOW) for p in pts], 1), 1).values
    t, wq = _legendre(nodes, mu_i)
    left, right = cuts[:, :-1, None], cuts[:, 1:, None]                 # (E, P, 1): the pieces
    xi = 0.5 * (left + right) + 0.5 * (right - left) * t                # (E, P, n)
    col = (lambda v: v[:, None, None])
    f = smooth_step(col(mu_i) + col(a) * xi, delta) * step_expectation(col(mu_j) + col(kappa) * xi, col(tau),
                                                                       delta) * _phi(xi)
    return (0.5 * (right - left) * (f * wq)).sum((1, 2))


def smoothed_cut(V, edges, weights, m, sigma, delta, nodes=NODES):
    """The exact δ-smoothed expected cut ``C_δ(m, σ) = Σ w_ij (1 − E[s(⟨v_i, r⟩) s(⟨v_j, r⟩)]) / 2`` of the
    hyperplane ``r = m + σ ⊙ z``. ``V: (n, p)``, ``edges: (E, 2)``, ``weights: (E,)``, ``m, sigma: (p,)``; float64
    tensors (differentiable in ``m`` and ``sigma``)."""
    i, j = edges[:, 0], edges[:, 1]
    mu = V @ m
    s2 = sigma * sigma
    var = (V * V) @ s2
    cov = ((V[i] * V[j]) @ s2)
    prod = edge_products(mu[i], mu[j], var[i], var[j], cov, delta, nodes)
    return 0.5 * (weights * (1 - prod)).sum()


def _edge_derivatives(q, delta, nodes, hessian):
    """Per edge ``p = E[s(X) s(Y)]`` of ``q = (μ_i, μ_j, a², b², c)``, ``(E, 5)``; its gradient ``(E, 5)`` and,
    with ``hessian``, its Hessian ``(E, 5, 5)`` (each edge's p depends on its own row only, so the derivatives of
    the sum are the per-edge ones)."""
    q = q.detach().requires_grad_(True)
    with torch.enable_grad():
        p = edge_products(*q.unbind(1), delta, nodes)
        (G,) = torch.autograd.grad(p.sum(), q, create_graph=hessian)
        H = (torch.stack([torch.autograd.grad(G[:, k].sum(), q, retain_graph=k < 4)[0] for k in range(5)], 1)
             if hessian else None)
    return p.detach(), G.detach(), H


def cut_derivatives(V, edges, weights, m, sigma, delta, nodes=NODES, hessian=False, chunk=CHUNK):
    """The smoothed cut ``C(m, σ)`` of :func:`smoothed_cut`, its gradient in ``x = (m, σ)`` ``(2p,)`` and, with
    ``hessian``, its Hessian ``(2p, 2p)`` (else None); float64, no autograd graph kept. Per edge the chain rule
    through ``q = (⟨v_i, m⟩, ⟨v_j, m⟩, Σ v_i² σ², Σ v_j² σ², Σ v_i v_j σ²)``: ``∂q/∂m`` is ``(v_i, v_j, 0, 0, 0)``,
    ``∂q/∂σ`` is ``(0, 0, 2 v_i² σ, 2 v_j² σ, 2 v_i v_j σ)`` and the second derivatives of q are ``2 v²`` on the
    σ diagonal. An edge whose two projections both lie more than ``WINDOW`` standard deviations beyond ±δ is
    settled: its product is ``sign μ_i sign μ_j`` to within the normal's tail (1e-23), with no derivative."""
    V, m, sigma = V.detach(), m.detach(), sigma.detach()
    p = V.shape[1]
    i, j = edges[:, 0], edges[:, 1]
    mu, s2, var = V @ m, sigma * sigma, (V * V) @ (sigma * sigma)
    spread = var.sqrt()
    margin = (mu.abs() - delta) / spread.clamp_min(TINY)
    settled = (margin[i] >= WINDOW) & (margin[j] >= WINDOW)
    prod = torch.sign(mu[i]) * torch.sign(mu[j])
    grad = torch.zeros(2 * p, dtype=V.dtype, device=V.device)
    hess = torch.zeros(2 * p, 2 * p, dtype=V.dtype, device=V.device) if hessian else None
    active = torch.nonzero(~settled).flatten()
    for a in range(0, len(active), chunk):
        e = active[a:a + chunk]
        vi, vj, w = V[i[e]], V[j[e]], -0.5 * weights[e]           # C = Σ w/2 - Σ (w/2) p
        vv = vi * vj
        q = torch.stack([mu[i[e]], mu[j[e]], var[i[e]], var[j[e]], vv @ s2], 1)
        pe, G, H = _edge_derivatives(q, delta, nodes, hessian)
        prod[e] = pe
        J = torch.zeros(len(e), 5, 2 * p, dtype=V.dtype, device=V.device)
        J[:, 0, :p], J[:, 1, :p] = vi, vj
        J[:, 2, p:], J[:, 3, p:], J[:, 4, p:] = 2 * vi * vi * sigma, 2 * vj * vj * sigma, 2 * vv * sigma
        grad += torch.einsum("e,ek,ekp->p", w, G, J)
        if hessian:
            hess += torch.einsum("ekp,ekl,elq->pq", w[:, None, None] * J, H, J)
            curv = G[:, 2:3] * vi * vi + G[:, 3:4] * vj * vj + G[:, 4:5] * vv       # Σ_k G_k ∂²q_k/∂σ²
            hess[p:, p:] += torch.diag(2 * (w[:, None] * curv).sum(0))
    value = 0.5 * (weights * (1 - prod)).sum()
    return value, grad, hess


def objective(V, edges, weights, x, delta, lam, total, hessian=False, nodes=NODES):
    """Theorem 5.2's ``F = −C_δ / total + λ ‖σ‖²`` at ``x = (m, σ)``: ``F``, ``∇F``, ``∇²F`` (with ``hessian``,
    else None) and the smoothed cut ``C_δ``."""
    p = V.shape[1]
    c, g, h = cut_derivatives(V, edges, weights, x[:p], x[p:], delta, nodes=nodes, hessian=hessian)
    sig = x[p:]
    f = -c / total + lam * (sig * sig).sum()                      # Theorem 5.2: F = −C_δ/W + λ‖σ‖²
    g = -g / total
    g[p:] += 2 * lam * sig
    if hessian:
        h = -h / total
        h[p:, p:] += 2 * lam * torch.eye(p, dtype=x.dtype, device=x.device)
    return f, g, h, c


def smoothing_loss_rate(V, edges, weights):
    """``K`` in the smoothing's cost at plain GW rounding, ``GW expectation − C_δ(0, 1) = K δ² + O(δ⁴)``, for unit
    rows ``V``: ``K = Σ w_ij (−ρ_ij) / √(1 − ρ_ij²) / (5π)``, ``ρ_ij = ⟨v_i, v_j⟩`` (inf where some ρ = ±1).

    At m = 0, σ = 1 an edge's pair (X, Y) is standard bivariate normal with correlation ρ. With ``e = s − sign``
    (odd, zero outside [−δ, δ]), ``E[s(X) s(Y)] − E[sign X sign Y] = 2 E[e(X) sign Y] + E[e(X) e(Y)]``; the last
    term is O(δ⁴) (``∫ e = 0``) and ``E[sign Y | X = x] = 2Φ(ρx/√(1 − ρ²)) − 1 ≈ 2φ(0) ρx/√(1 − ρ²)`` in the band,
    so ``E[e(X) sign Y] ≈ (2φ(0)² ρ/√(1 − ρ²)) δ² ∫_{−1}^{1} (h(t) − sign t) t dt``, the integral −1/5."""
    V = torch.as_tensor(V, dtype=torch.float64)
    edges, weights = torch.as_tensor(edges), torch.as_tensor(weights, dtype=torch.float64)
    rho = (V[edges[:, 0]] * V[edges[:, 1]]).sum(1).clamp(-1.0, 1.0)
    return float((weights * -rho / (1 - rho * rho).sqrt()).sum()) / (5 * math.pi)
