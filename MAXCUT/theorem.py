"""Theorem 5.2 at the points it is about: gradient descent on the exact δ-smoothed objective (exact.py) from plain
GW rounding, to a second-order stationary point, with the theorem's guarantee checked along the way.

The objective, divided by the total weight W so that one λ serves every graph, is

    F(m, σ) = −C_δ(m, σ) / W + λ ‖σ‖²,     x = (m, σ) ∈ R^{2r},

started at m = 0, σ = 1 (r = m + σ ⊙ z is then the GW hyperplane). The lemma's identity holds at *every* point
(Stein's lemma for r = m + σ ⊙ z): ∂C/∂σ_k = σ_k ∂²C/∂m_k², so ∂F/∂σ_k = σ_k (2λ + ∂²F/∂m_k²). Where the gradient
is small and the Hessian has no direction below −ε_H, this forces |σ_k| ≤ |∂F/∂σ_k| / (2λ + ∂²F/∂m_k²): σ is
optimised away and the mean hyperplane m is what remains.

The method is Algorithm 1's perturbed gradient descent with the exact Hessian as its stopping test. At m = 0 the
m-gradient vanishes exactly (the cut is the same for r and −r, so C is even in m): the start is a stationary point
in m, and Algorithm 1's perturbation is made there, before the first step. Then gradient steps whose size is found
by backtracking (Armijo's condition, halving; the next step starts at twice the last accepted size, at most
1/(2λ): near the end the decrease Armijo asks for falls below F's rounding, and longer steps, accepted by rounding,
would only overshoot on the regulariser). When ‖∇F‖ ≤ ε the exact Hessian is computed: the run ends there if
λ_min ≥ −ε_H (status ``stationary``), otherwise x moves by a draw uniform in the ball of radius ``radius``
(Algorithm 1's perturbation) and descent goes on.

What guarantees what (:func:`stationarity`, :func:`guarantee`):

- *stationary* (‖∇F‖ ≤ ε, λ_min(∇²F) ≥ −ε_H) certifies nothing about the cut. F is flat wherever every projection
  ⟨v_i, m⟩ is more than δ from 0 and σ = 0: ∇F = 0 and λ_min = 0 there, at every such hyperplane, whatever it cuts.
- *certified* is the theorem's chain, which a bad point fails: F(0, 1) (``objective_start``, i.e. C_δ(0, 1)), every
  accepted step non-increasing in F (``monotone``, recorded during the descent), F at the end ≤ F(0, 1) (perturbations
  included), so C_δ(m, σ) ≥ C_δ(0, 1) − λ W (r − ‖σ‖²); the end deterministic (every projection's spread ≤ 1e-6:
  the point is the hyperplane sign(Vm), not a distribution); and the cut of sign(Vm), computed exactly, at least
  ``bound`` = C_δ(0, 1) − λ W r, i.e. the GW expectation minus the smoothing loss (GW − C_δ(0, 1), measured
  exactly) minus the regulariser's allowance λ W r — a bound only counted when it is above W/2 (below it, one
  flip of local search does better and a bad hyperplane could pass).
"""
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from MAXCUT.derandomise import DivergenceError, sign, smooth_step
from MAXCUT.exact import NODES, cut_derivatives
from MAXCUT.graphs import weight_scale

CERT_NODES = 16
SPREAD_EXACT = 1e-8   # below this spread the certificate is taken at σ = 0 in closed form (certificate)


@dataclass
class DescentSettings:
    tol: float = 1e-10             # ε: gradient norm at which the Hessian test is made
    curvature_tol: float = 1e-6    # ε_H: the point is second-order when λ_min(∇²F) ≥ −ε_H
    max_steps: int = 3000
    radius: float = 1e-3           # Algorithm 1's perturbation ball
    armijo: float = 1e-4           # sufficient decrease: F(x − η g) ≤ F(x) − armijo η ‖g‖²
    first_step: float = 1.0
    budget_s: float = math.inf     # wall-clock limit of one descent



def objective(V, edges, weights, x, delta, lam, total, hessian=False, nodes=NODES):
    """``F``, ``∇F`` and (with ``hessian``) ``∇²F`` at ``x = (m, σ)``; also the smoothed cut C."""
    r = V.shape[1]
    c, g, h = cut_derivatives(V, edges, weights, x[:r], x[r:], delta, nodes=nodes, hessian=hessian)
    sig = x[r:]
    f = -c / total + lam * (sig * sig).sum()
    g = -g / total
    g[r:] += 2 * lam * sig
    if hessian:
        h = -h / total
        h[r:, r:] += 2 * lam * torch.eye(r, dtype=x.dtype, device=x.device)
    return f, g, h, c


def deterministic_derivatives(V, edges, weights, m, delta, lam, total):
    """``F``, ``∇F``, ``∇²F`` at ``(m, σ = 0)``, in closed form. There ``C(m, σ) = C₀(m) + ½ Σ_k σ_k² ∂²C₀/∂m_k² +
    O(σ⁴)`` (C₀ the smoothed cut of the hyperplane m itself, smooth wherever no ⟨v_i, m⟩ is exactly ±δ), so
    ``∇_σ F = 0``, the m-block is ``−∇²C₀/W``, the σ-block ``diag(2λ − ∂²C₀/∂m_k²/W)`` and the cross block 0."""
    r = V.shape[1]
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
    g = torch.zeros(2 * r, dtype=V.dtype, device=V.device)
    h = torch.zeros(2 * r, 2 * r, dtype=V.dtype, device=V.device)
    g[:r], h[:r, :r] = -g_m / total, -h_m / total
    h[r:, r:] = torch.diag(2 * lam - torch.diagonal(h_m) / total)
    return -c / total, g, h, c


def stationarity(V, edges, weights, x, delta, lam, total, cfg=DescentSettings(), nodes=CERT_NODES):
    """Second-order stationarity at ``x`` — not a certificate of the cut (module docstring): ‖∇F‖, λ_min of the
    exact Hessian (and of its m-block, the lemma's H_b), ``stationary`` (‖∇F‖ ≤ ``cfg.tol`` and λ_min ≥
    −``cfg.curvature_tol``), the residual of the identity ∂F/∂σ = σ ⊙ (2λ + diag ∂²F/∂m²) (0 up to rounding
    everywhere), and the lemma's bound on σ.

    Computed by the quadrature with ``nodes`` = 16 points a piece (the descent's 8 give the Hessian to ~1e-8
    relative, 16 to ~1e-12) — while every projection's spread is above ``SPREAD_EXACT``. Below it the quadrature's
    derivatives in the variances lose their digits (∂p/∂a² is an O(a) sum divided by a, and the sum cancels only to
    the rule's accuracy, 1e-16 at best: at a = 1e-17 it is noise of order 10): the numbers are then those of the
    deterministic hyperplane (m, σ = 0) the run has reached, in closed form (:func:`deterministic_derivatives`),
    ``stationarity_at`` says which, and ``sigma_distance`` = ‖σ‖ how far that is."""
    r = V.shape[1]
    spread = float(((V * V) @ (x[r:] * x[r:])).max().sqrt())
    if spread <= SPREAD_EXACT:
        _, g, h, _ = deterministic_derivatives(V, edges, weights, x[:r], delta, lam, total)
        g_sigma = objective(V, edges, weights, x, delta, lam, total, nodes=nodes)[1][r:]   # first order: accurate
        at = "sigma = 0"
    else:
        _, g, h, _ = objective(V, edges, weights, x, delta, lam, total, hessian=True, nodes=nodes)
        g_sigma, at = g[r:], "point"
    hmm = h[:r, :r]
    rate = 2 * lam + torch.diagonal(hmm)     # the identity and the bound at the point itself, σ and ∂F/∂σ there
    ident = g_sigma - x[r:] * rate
    bound = torch.where(rate > 0, g_sigma.abs() / rate.clamp_min(1e-300), torch.full_like(rate, math.inf))
    grad_norm, lam_min = float(g.norm()), float(torch.linalg.eigvalsh(h)[0])
    return {"grad_norm": grad_norm, "lam_min_hessian": lam_min, "lam_min_hmm": float(torch.linalg.eigvalsh(hmm)[0]),
            "stationary": bool(grad_norm <= cfg.tol and lam_min >= -cfg.curvature_tol),
            "stein_residual": float(ident.abs().max()), "sigma_bound": float(bound.max()), "stationarity_at": at,
            "sigma_distance": float(x[r:].norm()), "max_spread": spread}


DETERMINISTIC = 1e-6   # the largest spread σ-weighted projection at which the end point counts as the plane sign(Vm)


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


def _ball(dim, radius, generator, like):
    u = torch.randn(dim, generator=generator, dtype=like.dtype).to(like.device)
    rho = torch.rand(1, generator=generator, dtype=like.dtype).item() ** (1 / dim)
    return radius * rho * u / u.norm()


def descend(V, graph, edges, weights, delta, lam, cfg: DescentSettings, generator, progress=True):
    """One run of the method of the module docstring from m = 0, σ = 1. Returns the end point and its history
    (per accepted step: F, smoothed cut, the cut of sign(V m), max |σ|, ‖σ‖/‖m‖, ‖∇F‖, step size), the
    perturbations made, the end's :func:`stationarity` and the theorem's chain (:func:`guarantee`, ``monotone``
    recorded step by step); ``status`` says how it ended. F is the same for ``w`` and ``w / scale``; its parts are
    computed on ``w / scale`` (:func:`graphs.weight_scale`: exact, and no weight scale overflows the Hessian) and
    the smoothed cuts reported in the units of ``w``."""
    scale = weight_scale(weights)
    weights, total = weights / scale, graph.abs_total / scale
    r = V.shape[1]
    x = torch.cat([torch.zeros(r, dtype=V.dtype, device=V.device), torch.ones(r, dtype=V.dtype, device=V.device)])
    f_start, _, _, start_cut = objective(V, edges, weights, x, delta, lam, total)     # the theorem's C_δ(0, 1)
    x = x + _ball(2 * r, cfg.radius, generator, x)        # the m-gradient is 0 at m = 0 exactly (C is even in m)
    f, g, _, c = objective(V, edges, weights, x, delta, lam, total)
    eta, hist, kicks, st, status, monotone = cfg.first_step, [], [0], None, "max_steps", True
    eta_max = 1 / (2 * lam) if lam > 0 else 1e6     # the regulariser's own exact step; longer ones only overshoot
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.max_steps, disable=None if progress else True, desc=f"theorem δ={delta:g} λ={lam:g}")
    try:
        for step in range(cfg.max_steps):
            gn = float(g.norm())
            if gn <= cfg.tol:
                st = stationarity(V, edges, weights, x, delta, lam, total, cfg)
                if st["lam_min_hessian"] >= -cfg.curvature_tol:
                    status = "stationary"
                    break
                x = x + _ball(2 * r, cfg.radius, generator, x)
                kicks.append(step)
                f, g, _, c = objective(V, edges, weights, x, delta, lam, total)
                continue
            y, fy, gy, cy, eta = _armijo(V, edges, weights, x, f, g, eta, delta, lam, total, cfg.armijo)
            if not (math.isfinite(float(fy)) and bool(torch.isfinite(gy).all())):
                raise DivergenceError(f"the objective or its gradient became non-finite at step {step}")
            monotone = monotone and float(fy) <= float(f)            # the chain's link, as the step is accepted
            x, f, g, c = y, fy, gy, cy
            m, s = x[:r], x[r:]
            hist.append((float(f), float(c) * scale, float(graph.cut(sign(V @ m))), float(s.abs().max()),
                         float(s.norm() / m.norm()) if float(m.norm()) > 0 else math.nan, gn, eta))
            eta = min(2 * eta, eta_max)
            bar.update(1)
            if time.perf_counter() - t0 > cfg.budget_s:
                status = "budget"
                break
    except KeyboardInterrupt:
        status = "interrupted"
    bar.close()
    if st is None or status != "stationary":
        st = stationarity(V, edges, weights, x, delta, lam, total, cfg)
    chain = guarantee(V, graph, x[:r], lam, float(start_cut) * scale, float(f_start), float(f), monotone,
                      st["max_spread"])
    h = np.array(hist).reshape(-1, 7)
    names = ("objective", "smoothed_cut", "cut", "sigma_max", "sigma_over_m", "grad_norm", "step_size")
    return {"x": x, "start_smoothed_cut": float(start_cut) * scale, "smoothed_cut": float(c) * scale,
            "status": status, "steps": len(hist), "kicks": kicks, "seconds": time.perf_counter() - t0,
            "history": {k: h[:, a] for a, k in enumerate(names)}, **st, **chain}


def _armijo(V, edges, weights, x, f, g, eta, delta, lam, total, armijo):
    """Backtracking from step ``eta``: halve until ``F(x − η g) ≤ F(x) − armijo η ‖g‖²`` (or η < 1e-300, where the
    step is taken as it is — ``monotone`` then records whether F went up). Returns the new point, its F, ∇F, C and
    the step size."""
    gn2 = float(g.norm()) ** 2
    while True:
        y = x - eta * g
        fy, gy, _, cy = objective(V, edges, weights, y, delta, lam, total)
        if float(fy) <= float(f) - armijo * eta * gn2 or eta < 1e-300:
            return y, fy, gy, cy, eta
        eta *= 0.5
