"""What the ends of Section 5.1's optimisations certify: Theorem 5.2's chain at the end of a descent
(:func:`guarantee`), second-order stationarity of the exact objective (:func:`stationarity`), and the certified
upper bound on the SDP (:func:`sdp_certificate`).

- *stationary* (‖∇F‖ ≤ ε, λ_min(∇²F) ≥ −ε_H) certifies nothing about the cut. F is flat wherever every projection
  ⟨v_i, m⟩ is more than δ from 0 and σ = 0: ∇F = 0 and λ_min = 0 there, at every such hyperplane, whatever it cuts.
  The lemma's identity (Stein's lemma for r = m + σ ⊙ z) holds at every point: ∂F/∂σ_k = σ_k (2λ + ∂²F/∂m_k²), so
  where the gradient is small and the Hessian has no direction below −ε_H, |σ_k| ≤ |∂F/∂σ_k| / (2λ + ∂²F/∂m_k²).
- *certified* is the theorem's chain, which a bad point fails: F(0, 1) (``objective_start``, i.e. C_δ(0, 1)), every
  accepted step non-increasing in F (``monotone``, recorded during the descent), F at the end ≤ F(0, 1)
  (perturbations included), so C_δ(m, σ) ≥ C_δ(0, 1) − λ W (p − ‖σ‖²); the end deterministic (every projection's
  spread ≤ 1e-6: the point is the hyperplane sign(Vm), not a distribution); and the cut of sign(Vm), computed
  exactly, at least ``bound`` = C_δ(0, 1) − λ W p, i.e. the GW expectation minus the smoothing loss (GW − C_δ(0, 1),
  measured exactly) minus the regulariser's allowance λ W p — a bound only counted when it is above W/2 (below it,
  one flip of local search does better and a bad hyperplane could pass).
"""
import math

import torch

from MAXCUT.gw import sdp_upper_bound
from MAXCUT.model import objective, sign, smooth_step

TOL = 1e-10           # ε: the gradient norm of a second-order stationary point
CURVATURE_TOL = 1e-6  # ε_H: λ_min(∇²F) ≥ −ε_H
CERT_NODES = 16       # Gauss-Legendre points per piece of the stationarity check (the descent's: model.NODES)
SPREAD_EXACT = 1e-8   # below this spread the check is made at σ = 0 in closed form
DETERMINISTIC = 1e-6  # the largest spread σ-weighted projection at which the end point counts as the plane sign(Vm)


def deterministic_derivatives(V, edges, weights, m, delta, lam, total):
    """``F``, ``∇F``, ``∇²F`` at ``(m, σ = 0)``, in closed form. There ``C(m, σ) = C₀(m) + ½ Σ_k σ_k² ∂²C₀/∂m_k² +
    O(σ⁴)`` (C₀ the smoothed cut of the hyperplane m itself, smooth wherever no ⟨v_i, m⟩ is exactly ±δ), so
    ``∇_σ F = 0``, the m-block is ``−∇²C₀/W``, the σ-block ``diag(2λ − ∂²C₀/∂m_k²/W)`` and the cross block 0."""
    p = V.shape[1]
    i, j = edges[:, 0], edges[:, 1]
    t = (V @ m / delta).clamp(-1.0, 1.0)
    inside = (t.abs() < 1).to(V.dtype)
    s, s1, s2 = smooth_step(V @ m, delta), 1.5 * (1 - t * t) / delta * inside, -3 * t / delta ** 2 * inside
    c = 0.5 * (weights * (1 - s[i] * s[j])).sum()
    w = -0.5 * weights
    g_m = ((w * s1[i] * s[j])[:, None] * V[i] + (w * s[i] * s1[j])[:, None] * V[j]).sum(0)
    cross = (w * s1[i] * s1[j])[:, None, None] * V[i][:, :, None] * V[j][:, None, :]
    h_m = (torch.einsum("e,ek,el->kl", w * s2[i] * s[j], V[i], V[i])
           + torch.einsum("e,ek,el->kl", w * s[i] * s2[j], V[j], V[j]) + cross.sum(0) + cross.sum(0).T)
    g = torch.zeros(2 * p, dtype=V.dtype, device=V.device)
    h = torch.zeros(2 * p, 2 * p, dtype=V.dtype, device=V.device)
    g[:p], h[:p, :p] = -g_m / total, -h_m / total
    h[p:, p:] = torch.diag(2 * lam - torch.diagonal(h_m) / total)
    return -c / total, g, h, c


def stationarity(V, edges, weights, x, delta, lam, total, tol=TOL, curvature_tol=CURVATURE_TOL, nodes=CERT_NODES):
    """Second-order stationarity at ``x`` — not a certificate of the cut (module docstring): ‖∇F‖, λ_min of the
    exact Hessian (and of its m-block, the lemma's H_b), ``stationary`` (‖∇F‖ ≤ ``tol`` and λ_min ≥
    −``curvature_tol``), the residual of the identity ∂F/∂σ = σ ⊙ (2λ + diag ∂²F/∂m²), and the lemma's bound on σ.

    Computed by the quadrature with ``nodes`` points a piece while every projection's spread is above
    ``SPREAD_EXACT``. Below it the quadrature's derivatives in the variances lose their digits (∂p/∂a² is an O(a)
    sum divided by a): the numbers are then those of the deterministic hyperplane (m, σ = 0), in closed form
    (:func:`deterministic_derivatives`), ``stationarity_at`` says which, and ``sigma_distance`` = ‖σ‖ how far."""
    p = V.shape[1]
    spread = float(((V * V) @ (x[p:] * x[p:])).max().sqrt())
    if spread <= SPREAD_EXACT:
        _, g, h, _ = deterministic_derivatives(V, edges, weights, x[:p], delta, lam, total)
        g_sigma = objective(V, edges, weights, x, delta, lam, total, nodes=nodes)[1][p:]   # first order: accurate
        at = "sigma = 0"
    else:
        _, g, h, _ = objective(V, edges, weights, x, delta, lam, total, hessian=True, nodes=nodes)
        g_sigma, at = g[p:], "point"
    hmm = h[:p, :p]
    rate = 2 * lam + torch.diagonal(hmm)     # the identity and the bound at the point itself, σ and ∂F/∂σ there
    ident = g_sigma - x[p:] * rate
    bound = torch.where(rate > 0, g_sigma.abs() / rate.clamp_min(1e-300), torch.full_like(rate, math.inf))
    grad_norm, lam_min = float(g.norm()), float(torch.linalg.eigvalsh(h)[0])
    return {"grad_norm": grad_norm, "lam_min_hessian": lam_min, "lam_min_hmm": float(torch.linalg.eigvalsh(hmm)[0]),
            "stationary": bool(grad_norm <= tol and lam_min >= -curvature_tol),
            "stein_residual": float(ident.abs().max()), "sigma_bound": float(bound.max()), "stationarity_at": at,
            "sigma_distance": float(x[p:].norm()), "max_spread": spread}


def guarantee(V, graph, m, lam, start_cut, objective_start, objective_end, monotone, spread=0.0):
    """Theorem 5.2's chain at the end ``(m, σ)`` of a descent from (0, 1) (module docstring), and ``certified``:
    every link holds. ``start_cut`` = C_δ(0, 1) in the units of ``graph``'s weights, ``objective_start`` = F(0, 1),
    ``objective_end`` = F at the end, ``monotone``: every accepted step had F(after) ≤ F(before) (as the descent
    recorded it), ``spread`` = max_i (Σ_k v_ik² σ_k²)^½ at the end. Certified also needs the end to be the
    deterministic hyperplane the theorem is about (``deterministic``: spread ≤ :data:`DETERMINISTIC`) and the bound
    to say something (``informative``: above W/2, which one-flip local search already guarantees; with a large λ
    the bound falls below it, even below 0, and any hyperplane would pass). A hyperplane whose cut of sign(Vm) is
    below the bound is never certified, however flat F is there."""
    bound = start_cut - lam * graph.abs_total * V.shape[1]
    cut = float(graph.cut(sign(V @ m)))
    descended = bool(objective_end <= objective_start)
    deterministic, informative = bool(spread <= DETERMINISTIC), bool(bound > graph.abs_total / 2)
    return {"objective_start": objective_start, "objective_end": objective_end, "monotone": bool(monotone),
            "descended": descended, "cut": cut, "bound": bound, "cut_at_least_bound": bool(cut >= bound),
            "deterministic": deterministic, "informative": informative,
            "certified": bool(monotone and descended and cut >= bound and deterministic and informative)}


def sdp_certificate(graph, V, value):
    """results.json's SDP keys: the Burer-Monteiro value of ``V`` (a lower bound on the SDP optimum) and the
    certified upper bound of :func:`gw.sdp_upper_bound` with their relative gap (None above its limit)."""
    bound, lam = sdp_upper_bound(*graph, V)
    return {"sdp_value": value, "sdp_upper_bound": bound,
            "sdp_gap": None if bound is None else (bound - value) / abs(bound), "sdp_dual_lambda_min": lam}
