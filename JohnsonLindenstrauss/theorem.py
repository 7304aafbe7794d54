"""Theorem 5.5 in its own regime: the union-bound surrogate (Eq. 9) with a smooth indicator, optimised by gradient
descent from M = 0 and unit variances at a k where the premise holds, to a second-order stationary point whose mean
matrix is checked against the theorem's guarantee.

A = M + σ ⊙ G with per-entry σ; for a unit point x, u(x) = ‖A x‖²/k and its distortion |u − 1|. The indicator
1{|u − 1| > ε} is smoothed by the C¹ cubic step H((|u − 1| − ε)/τ), H(t) = (2 + 3t − t³)/4 on [−1, 1] (0 below, 1
above) — flat for distortions below ε − τ, so the kink of |u − 1| at u = 1 is never felt (τ < ε). The objective

    F(M, σ) = Σ_i E_G[H((|u_i − 1| − ε)/τ)] + λ ‖σ‖²

is evaluated with common random numbers: S draws G_1..G_S fixed for the whole run, so F is one deterministic smooth
function of (M, σ) whose gradient and Hessian-vector products autograd gives exactly. At M = 0, σ = 1 every u is
χ²_k / k, so the true initial objective is n E[H((|χ²_k/k − 1| − ε)/τ)], computed here by quadrature of the χ²
density: the theorem's premise is that it is below 1 (then some A in the distribution's support has every
distortion ≤ ε + τ).

What guarantees what. The descent minimises F with the S draws, not its expectation, so the premise that carries
over to the run is that F itself starts below 1, penalty λkd included (:func:`start_objective`; with few
draws it scatters widely around the exact value). The default k is the smallest at which both are below 1
(:func:`descended_k`). Then, if every step the descent takes keeps F at or below its start (``monotone``:
gradient steps decrease it, the perturbations are recorded), at the end F(M, σ) < 1; at σ = 0 F is
Σ_i H((|u_i(M) − 1| − ε)/τ) whatever the draws, and a sum of terms in [0, 1] below 1 has none equal to 1: every
distortion of the mean M is below ε + τ, the allowance of this smoothing. That last check and the chain are
certificate.py's. The second-order test at the end (‖∇F‖, λ_min by Lanczos on Hessian-vector products) only
says the point is ``stationary``: F is flat wherever every distortion is below ε − τ or above ε + τ, so M = 0,
σ = 0 (every distortion 1) is stationary too. (Lemma G.3's allowance for using M instead of a sample is stated in
the paper for its own smoothing; its formula was lost in the extracted text, so the allowance reported is the one
derived here.)

The method is the MAXCUT folder's: Algorithm 1's perturbation at the start (M = 0 is stationary in M: F is even in
M), then gradient steps with backtracking (Armijo, halving; the next step starts at twice the last, at most
1/(2λ)), and at ‖∇F‖ ≤ ε_g the Lanczos test λ_min ≥ −ε_H, a ball perturbation if it fails.
"""
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from JohnsonLindenstrauss.model import DivergenceError, distortion, ratios


HISTORY = ("objective", "max_distortion", "sigma_max", "grad_norm", "step_size")   # per accepted step


@dataclass
class TheoremSettings:
    eps: float = 0.5
    tau: float = 0.1
    lam: float = 1e-6              # λ k d stays below 1 − (initial objective): the descent keeps the premise
    samples: int = 32              # S, the common random numbers
    tol: float = 1e-12            # |σ| ≤ ‖∇F‖/(2λ) where F is flat: 1e-12 / 2e-6 = 5e-7
    curvature_tol: float = 1e-6
    max_steps: int = 5000
    radius: float = 1e-3
    armijo: float = 1e-4
    budget_s: float = math.inf


def smooth_indicator(t):
    """H(t): 0 for t ≤ −1, 1 for t ≥ 1, (2 + 3t − t³)/4 between (C¹); a tensor, or a float or numpy array."""
    t = t.clamp(-1.0, 1.0) if torch.is_tensor(t) else np.clip(t, -1.0, 1.0)
    return 0.5 + 0.75 * t - 0.25 * t ** 3


def initial_objective(n, k, eps, tau):
    """n E[H((|χ²_k/k − 1| − ε)/τ)]: the objective's expectation part at M = 0, σ = 1, exactly (quadrature)."""
    from scipy.integrate import quad
    from scipy.stats import chi2

    def f(u):
        return float(smooth_indicator((abs(u - 1) - eps) / tau)) * chi2.pdf(u * k, k) * k
    lo, hi = 1 - eps + tau, 1 + eps - tau
    return n * (quad(f, 0, max(lo, 0), limit=400)[0] + quad(f, hi, np.inf, limit=400)[0])


def premise_k(n, eps, tau, k_max):
    """The smallest k ≤ k_max whose initial objective is below 1 (None if none is)."""
    for k in range(1, k_max + 1):
        if initial_objective(n, k, eps, tau) < 1:
            return k
    return None


def draws(samples, k, d, seed, like):
    """The common random numbers ``G: (S, k, d)`` of a run with ``seed`` (the first draws of its generator)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(samples, k, d, generator=generator, dtype=like.dtype).to(like.device), generator


def start_objective(X, k, cfg: "TheoremSettings", seed):
    """F at M = 0, σ = 1 with the run's draws, penalty λkd included: the value the descent starts from."""
    d = X.shape[1]
    G, _ = draws(cfg.samples, k, d, seed, X)
    zero = torch.zeros(k, d, dtype=X.dtype, device=X.device)
    return float(objective(zero, zero + 1, G, X, cfg.eps, cfg.tau, cfg.lam))


def descended_k(X, cfg: "TheoremSettings", seed, k_from):
    """The smallest k ≥ ``k_from`` (and ≤ d) whose descended objective starts below 1 (None if none does), and the
    start at every k tried ``{k: F(0, 1)}``: with S draws it scatters around the exact value, not monotone in k."""
    tried = {}
    for k in range(k_from, X.shape[1] + 1):
        tried[k] = start_objective(X, k, cfg, seed)
        if tried[k] < 1:
            return k, tried
    return None, tried


def objective(M, sigma, G, X, eps, tau, lam):
    """F at (M, σ) with the fixed draws ``G: (S, k, d)``; ``M, sigma: (k, d)``; ``X: (n, d)`` unit rows."""
    Y = (M + sigma * G) @ X.T                                                # A Xᵀ: (S, k, n)
    D = distortion(ratios(Y, M.shape[0]))                                    # |u_i − 1|: (S, n)
    return smooth_indicator((D - eps) / tau).mean(0).sum() + lam * (sigma * sigma).sum()   # Eq. 9, H as Eq. 27


def distortions(M, X):
    """The distortions of the mean matrix ``M: (k, d)`` on the rows of ``X: (n, d)`` -> ``(n,)``."""
    return distortion(ratios(M @ X.T, M.shape[0]))


def _lambda_min(fun, x, tol):
    """The smallest eigenvalue of ∇²fun at x by Lanczos (scipy's eigsh) on autograd Hessian-vector products."""
    from scipy.sparse.linalg import LinearOperator, eigsh
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(fun(x), x, create_graph=True)

    def hvp(v):
        (h,) = torch.autograd.grad(g, x, torch.as_tensor(v.ravel(), dtype=x.dtype, device=x.device),
                                   retain_graph=True)
        return h.detach().cpu().numpy()
    op = LinearOperator((x.numel(), x.numel()), matvec=hvp, dtype=np.float64)
    return float(eigsh(op, k=1, which="SA", tol=tol, maxiter=5000, return_eigenvectors=False)[0])


def _value_grad(fun, x):
    x = x.detach().requires_grad_(True)
    f = fun(x)
    (g,) = torch.autograd.grad(f, x)
    return f.detach(), g


def _armijo(fun, x, f, g, eta, armijo):
    """Backtracking from step ``eta``: halve until ``F(x − η g) ≤ F(x) − armijo η ‖g‖²`` (or η < 1e-300, where the
    step is taken as it is -- ``monotone`` then records whether F went up). Returns the point, F, ∇F and η."""
    gn2 = float(g.norm()) ** 2
    while True:
        y = x - eta * g
        fy, gy = _value_grad(fun, y)
        if float(fy) <= float(f) - armijo * eta * gn2 or eta < 1e-300:
            return y, fy, gy, eta
        eta *= 0.5


def _ball(dim, radius, generator, like):
    u = torch.randn(dim, generator=generator, dtype=like.dtype).to(like.device)
    rho = torch.rand(1, generator=generator, dtype=like.dtype).item() ** (1 / dim)
    return radius * rho * u / u.norm()


def descend(X, k, cfg: TheoremSettings, seed, progress=True):
    """One run from M = 0, σ = 1 (the method of the module docstring) with the draws of ``seed``. Returns the end
    point, its second-order test, the guarantee chain (F at the start and the end, ``monotone``: no gradient step
    raised F, ``perturbation_rise``: what the ball perturbations added) and the history per accepted step (F, max
    distortion of M, max σ, ‖∇F‖, step size)."""
    n, d = X.shape
    G, generator = draws(cfg.samples, k, d, seed, X)

    def fun(x):
        return objective(x[:k * d].view(k, d), x[k * d:].view(k, d), G, X, cfg.eps, cfg.tau, cfg.lam)

    def kick(x, f):
        y = x + _ball(2 * k * d, cfg.radius, generator, x)
        fy, gy = _value_grad(fun, y)
        return y, fy, gy, max(float(fy) - float(f), 0.0)

    x = torch.cat([torch.zeros(k * d, dtype=X.dtype, device=X.device), torch.ones(k * d, dtype=X.dtype,
                                                                                   device=X.device)])
    start = fun(x).detach()
    x, f, g, rise = kick(x, start)
    eta, hist, kicks, status, lam_min, monotone = 1.0, [], [0], "max_steps", None, True
    eta_max = 1 / (2 * cfg.lam) if cfg.lam > 0 else 1e6     # the penalty's own exact step
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.max_steps, disable=None if progress else True, desc="JL theorem")
    try:
        for step in range(cfg.max_steps):
            gn = float(g.norm())
            if gn <= cfg.tol:
                lam_min = _lambda_min(fun, x, 1e-10)
                if lam_min >= -cfg.curvature_tol:
                    status = "stationary"
                    break
                x, f, g, up = kick(x, f)
                rise += up
                kicks.append(step)
                continue
            y, fy, gy, eta = _armijo(fun, x, f, g, eta, cfg.armijo)
            if not (math.isfinite(float(fy)) and bool(torch.isfinite(gy).all())):
                raise DivergenceError(f"the objective or its gradient became non-finite at step {step}")
            monotone &= float(fy) <= float(f)
            x, f, g = y, fy, gy
            hist.append((float(f), float(distortions(x[:k * d].view(k, d), X).max()), float(x[k * d:].abs().max()),
                         gn, eta))
            eta = min(2 * eta, eta_max)
            bar.update(1)
            if time.perf_counter() - t0 > cfg.budget_s:
                status = "budget"
                break
    except KeyboardInterrupt:
        status = "interrupted"
    bar.close()
    if status != "stationary":
        lam_min = _lambda_min(fun, x, 1e-10) if status != "interrupted" else math.nan
    h = np.array(hist).reshape(-1, 5)
    return {"M": x[:k * d].view(k, d), "sigma": x[k * d:].view(k, d), "status": status, "steps": len(hist),
            "kicks": kicks, "objective_start": float(start), "objective_end": float(f), "monotone": bool(monotone),
            "perturbation_rise": rise, "grad_norm": float(g.norm()), "lam_min_hessian": lam_min,
            "seconds": time.perf_counter() - t0, "history": {q: h[:, a] for a, q in enumerate(HISTORY)}}
