"""The optimisers of Section 5.1: gradient steps on the hyperplane ``r = m + σ ⊙ z`` (model.py), from plain GW
rounding (``m = 0``, ``σ = 1``) to a deterministic hyperplane ``m`` whose cut is that of ``sign(V m)``.

1. The authors' update (Eq. 7, App. F; Fig. 5), as their script runs it: score-function (REINFORCE) estimates of
   the gradient of ``E[cut(sign(V r))] - λ ||σ||²`` without a baseline, ascended with their step sizes, clipping
   and decay schedule (:func:`authors_gradients_per_draw`, :func:`optimise_score`; the same rule for all draws at
   once in optimizer_fast.py).
2. The pathwise descent: Adam on ``(m, log σ)`` with the reparameterisation gradient of the sampled smoothed
   objective, for independent chains at once (:func:`optimise_pathwise`).
3. Theorem 5.2's descent: Algorithm 1 (perturbed gradient descent) on the exact smoothed objective, to a
   second-order stationary point, with the theorem's chain checked at the end (:func:`descend`).
"""
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from MAXCUT.certificates import CURVATURE_TOL, TOL, guarantee, stationarity
from MAXCUT.graphs import Graph, weight_scale
from MAXCUT.model import objective, sign, smoothed_objective
from MAXCUT.optimizer_fast import authors_gradients, noise_blocks, score_blocks


class DivergenceError(RuntimeError):
    """The objective became NaN or infinite."""


@dataclass
class ScoreConfig:
    """The authors' settings (their Fig. 5 script)."""
    steps: int = 5000
    samples: int = 100
    lr_mean: float = 0.01
    lr_sigma: float = 0.001
    lam: float = 1.0
    sigma_offset: float = 0.5          # sigma used in the step = exp(log sigma) + 0.5
    log_sigma_min: float = math.log(1e-3)
    log_sigma_max: float = math.log(1.5)
    decay_every: int = 100
    decay_mean: float = 1.02
    decay_sigma: float = 1.03
    log_samples: int = 10              # the logged cut is the mean over this many samples


def authors_gradients_per_draw(V, graph: Graph, m, s_eff: float, z, lam: float):
    """The authors' estimates of Eq. 7's gradients for one step, one draw at a time. ``V: (n, p)``, ``m: (p,)``,
    ``z: (S, p)``; each draw ``r = m + s_eff z`` cuts ``c = cut(sign(V r))``. Returns the ascent directions
    ``g_m = mean(c (r - m)) / s_eff²`` and ``g_i = mean(c ((r_i - m_i)² / s_eff³ - 1 / s_eff)) - 2 lam s_eff``."""
    g_m, g_i = torch.zeros_like(m), torch.zeros_like(m)                    # (p,), (p,)
    for k in range(z.shape[0]):
        r = m + s_eff * z[k]                                               # (p,): one random hyperplane
        c = graph.cut(sign(V @ r))                                         # its cut
        g_m = g_m + c * (r - m) / s_eff ** 2                               # ∂/∂m of Eq. 7 (App. F's estimate)
        g_i = g_i + c * ((r - m) ** 2 / s_eff ** 3 - 1 / s_eff)            # ∂/∂σ_i of Eq. 7 (App. F's)
    return g_m / z.shape[0], g_i / z.shape[0] - 2 * lam * s_eff            # Eq. 7's penalty λσ², differentiated


def optimise_score(V, graph: Graph, cfg: ScoreConfig, generator, progress=True, gradients=None):
    """The authors' optimisation (App. F): ``m`` and a per-coordinate ``log sigma`` from 0; each step (1) logs the
    mean cut of ``log_samples`` draws ``m + exp(log sigma) * z`` (before the update), (2) takes one draw scale
    ``s_eff = max_i(exp(log sigma_i) + 0.5)``, (3) forms the estimates of :func:`authors_gradients_per_draw` from
    ``samples`` draws, (4) adds ``lr_m g_m`` to ``m`` and ``lr_sigma g_i`` to ``log sigma`` (clipped), (5) divides
    both step sizes at every ``decay_every``-th step, step 0 included; (6) the history's max sigma is
    ``max_i exp(log sigma_i)`` after the update. The logged cuts (1) are computed after the loop, for all steps at
    once, from the same draws. ``gradients(V, graph, m, s_eff, z, lam) -> (g_m, g_i)``: the estimates of (3)
    (default: :func:`optimizer_fast.authors_gradients`, all draws at once).
    Returns the history (see :func:`_finish`), with ``sigma_step`` (s_eff per step)."""
    p, L = V.shape[1], cfg.log_samples
    m = torch.zeros(p, dtype=V.dtype, device=V.device)
    log_sigma = torch.zeros(p, dtype=V.dtype, device=V.device)
    lr_m, lr_s = cfg.lr_mean, cfg.lr_sigma
    M, sig_before, z_log, sig_step = [], [], [], []
    blocks = score_blocks(V, L, cfg.samples, generator)
    t0 = time.perf_counter()
    interrupted = False
    try:
        for t in tqdm(range(cfg.steps), disable=None if progress else True, desc="derandomise"):
            zl, z, zV, zsq = next(blocks)
            sigma = log_sigma.exp()
            sig_before.append(sigma)
            z_log.append(zl)
            s_eff = float(sigma.max()) + cfg.sigma_offset
            if gradients is not None:
                g_m, g_i = gradients(V, graph, m, s_eff, z, cfg.lam)
            else:
                g_m, g_i, _ = authors_gradients(V, graph, m, s_eff, z, cfg.lam, zV, zsq)
            m = torch.add(m, g_m, alpha=lr_m)
            log_sigma = torch.add(log_sigma, g_i, alpha=lr_s).clamp_(cfg.log_sigma_min, cfg.log_sigma_max)
            if t % cfg.decay_every == 0:
                lr_m, lr_s = lr_m / cfg.decay_mean, lr_s / cfg.decay_sigma
            M.append(m[None])
            sig_step.append(s_eff)
    except KeyboardInterrupt:
        interrupted = True
    seconds = time.perf_counter() - t0
    T = len(M)
    m_before = [torch.zeros_like(log_sigma)] + [x[0] for x in M[:T - 1]]     # m at the start of each step
    logged = _logged_cuts(V, graph, m_before[:T], sig_before[:T], z_log[:T])
    sigma_max = torch.stack(sig_before[1:T] + [log_sigma.exp()]).amax(1, keepdim=True) if T else torch.zeros(0, 1)
    hist = _finish(V, graph, M, sigma_max.cpu().numpy(), None, L, generator, seconds, interrupted, cut_sampled=logged)
    hist["sigma_step"] = np.asarray(sig_step)
    return hist


@torch.no_grad()
def _logged_cuts(V, graph, m, sigma, z, chunk=256):
    """Mean cut of the draws ``m_t + sigma_t * z_t`` per step, for lists of ``(p,)``, ``(p,)``, ``(L, p)``."""
    if not m:
        return np.zeros(0)
    out = []
    for a in range(0, len(m), chunk):
        m_t, sigma_t, z_t = (torch.stack(x[a:a + chunk]) for x in (m, sigma, z))
        out.append(graph.cut(sign((m_t[:, None] + sigma_t[:, None] * z_t) @ V.T)).mean(1))
    return torch.cat(out).cpu().numpy()


@dataclass
class PathwiseConfig:
    steps: int = 400
    samples: int = 64
    lr_mean: float = 0.05
    lr_sigma: float = 0.05
    lam: float = 1e-3                  # penalty lam * ||sigma||^2, relative to the total |weight|
    delta: float = 0.1                 # width of the smooth step (projections start with rms 1)
    chains: int = 32                   # independent (m, sigma) chains optimised together
    log_samples: int = 10


def optimise_pathwise(V, graph: Graph, cfg: PathwiseConfig, generator, progress=True, after_step=None):
    """Adam on ``(m, log sigma)`` with the pathwise gradient of :func:`model.smoothed_objective`, for
    ``cfg.chains`` independent chains at once; the objective is divided by the total |weight| so one
    ``lam`` and one ``delta`` serve every graph. The chain whose final hyperplane ``m`` cuts most is
    the output (a deterministic choice). ``after_step(t)``, if given, is called after step ``t`` (the experiments
    hand freed memory back there). Returns the history (see :func:`_finish`)."""
    K, p = cfg.chains, V.shape[1]
    m = torch.zeros(K, p, dtype=V.dtype, device=V.device, requires_grad=True)
    log_sigma = torch.zeros(K, p, dtype=V.dtype, device=V.device, requires_grad=True)
    opt = torch.optim.Adam([{"params": [m], "lr": cfg.lr_mean}, {"params": [log_sigma], "lr": cfg.lr_sigma}])
    M, sig = [], []
    noise = noise_blocks((K, cfg.samples, p), generator, V, block=32)
    t0 = time.perf_counter()
    interrupted = False
    try:
        for t in tqdm(range(cfg.steps), disable=None if progress else True, desc="derandomise"):
            opt.zero_grad()
            loss = smoothed_objective(V, graph, m, log_sigma, next(noise), cfg.delta, cfg.lam, graph.abs_total)
            loss.backward()
            opt.step()
            M.append(m.detach().clone())
            sig.append(log_sigma.detach().exp())
            if t % 50 == 0 and not math.isfinite(loss.item()):
                raise DivergenceError(f"the objective became {loss.item()} at step {t}")
            if after_step is not None:
                after_step(t)
    except KeyboardInterrupt:
        interrupted = True
    seconds = time.perf_counter() - t0
    sig_t = torch.stack(sig) if sig else torch.zeros(0, K, p, dtype=V.dtype, device=V.device)
    return _finish(V, graph, M, sig_t.amax(2).cpu().numpy(), sig_t, cfg.log_samples, generator, seconds,
                   interrupted)


@torch.no_grad()
def _finish(V, graph, M, sigma_max, sigma_noise, log_samples, generator, seconds, interrupted, chunk=32,
            cut_sampled=None):
    """History from the per-step means ``M`` (list of ``(K, p)``) and sampling scales
    ``sigma_noise: (T, K, 1 or p)``, computed after the loop in batches. The output chain ``k`` is the one
    whose final ``m`` cuts most; for it: ``cut_mean`` (deterministic cut of ``m_t``), ``cut_sampled``
    (mean cut of ``log_samples`` fresh hyperplanes ``m_t + sigma_t z``), ``sigma_max``, ``sigma_relative``
    (``max sigma / |m_t|``: the cut depends on ``r`` only through its direction, so this scale-free ratio
    is what measures how random the hyperplane still is), the final ``m``.
    ``chain_final_cuts``: every chain's final deterministic cut. ``cut_sampled`` given (the score rule logs its
    own, one chain): used as it is, and ``sigma_noise`` is not needed."""
    T, p = len(M), V.shape[1]
    if T == 0:
        z0 = np.zeros(0)
        return {"step": z0.astype(int), "cut_mean": z0, "cut_sampled": z0, "sigma_max": z0, "sigma_relative": z0,
                "m": np.zeros(p), "chain_final_cuts": z0, "chain_m": np.zeros((0, p)), "optimize_s": seconds,
                "interrupted": interrupted}
    Mt = torch.stack(M)                                                   # (T, K, p)
    cut_all = torch.cat([graph.cut(sign(Mt[a:a + chunk] @ V.T)) for a in range(0, T, chunk)])  # (T, K)
    k = int(torch.argmax(cut_all[-1]))
    if cut_sampled is None:
        parts = []
        for a in range(0, T, chunk):
            m_t, sigma_t = Mt[a:a + chunk, k], sigma_noise[a:a + chunk, k]
            z = torch.randn(len(m_t), log_samples, p, generator=generator, dtype=V.dtype, device=V.device)
            parts.append(graph.cut(sign((m_t[:, None] + sigma_t[:, None] * z) @ V.T)).mean(1))
        cut_sampled = torch.cat(parts).cpu().numpy()
    return {"step": np.arange(1, T + 1), "cut_mean": cut_all[:, k].cpu().numpy(),
            "cut_sampled": np.asarray(cut_sampled), "sigma_max": np.asarray(sigma_max)[:, k],
            "sigma_relative": _ratio(np.asarray(sigma_max)[:, k], Mt[:, k].norm(dim=1).double().cpu().numpy()),
            "m": Mt[-1, k].cpu().numpy(), "chain_final_cuts": cut_all[-1].cpu().numpy(),
            "chain_m": Mt[-1].cpu().numpy(),
            "optimize_s": seconds, "interrupted": interrupted}


def _ratio(a, b):
    """``a / b`` elementwise, NaN where ``b = 0`` (σ/‖m‖ means nothing at m = 0, the start)."""
    return np.divide(a, b, out=np.full(len(a), np.nan), where=b > 0)


@dataclass
class DescentSettings:
    tol: float = TOL                         # ε: gradient norm at which the Hessian test is made
    curvature_tol: float = CURVATURE_TOL     # ε_H: the point is second-order when λ_min(∇²F) ≥ −ε_H
    max_steps: int = 3000
    radius: float = 1e-3           # Algorithm 1's perturbation ball
    armijo: float = 1e-4           # sufficient decrease: F(x − η g) ≤ F(x) − armijo η ‖g‖²
    first_step: float = 1.0
    budget_s: float = math.inf     # wall-clock limit of one descent
    step_rule: str = "joint"       # "joint": one backtracking step for (m, σ); "blocks": m, then σ, each its own


STEP_RULES = {"joint": ("joint",), "blocks": ("m", "sigma")}    # the parts of x = (m, σ) stepped in turn


def _ball(dim, radius, generator, like):
    """Algorithm 1's perturbation: a draw uniform in the ball of ``radius`` in R^dim."""
    u = torch.randn(dim, generator=generator, dtype=like.dtype).to(like.device)
    rho = torch.rand(1, generator=generator, dtype=like.dtype).item() ** (1 / dim)
    return radius * rho * u / u.norm()


def descend(V, graph, edges, weights, delta, lam, cfg: DescentSettings, generator, progress=True):
    """Algorithm 1 on Theorem 5.2's objective ``F(m, σ) = −C_δ(m, σ) / W + λ ‖σ‖²`` (:func:`model.objective`) from
    m = 0, σ = 1. At m = 0 the m-gradient vanishes exactly (C is even in m), so the ball perturbation is made there,
    before the first step. Then gradient steps sized by backtracking (:func:`_armijo`), by ``cfg.step_rule``:
    ``joint`` (default) takes one step for (m, σ) (the next starts at twice the last accepted size, at most 1/(2λ),
    the regulariser's own exact step); its size is capped by the m-curvature of the nodes near the plane, so that
    σ shrinks by only η(2λ + ∂²F/∂m_k²) a step (0.4–0.8% in the stalls: docs/MAXCUT.md); ``blocks`` steps m along
    −∂F/∂m, then σ along −∂F/∂σ, each block with its own step size, sized alike. Every accepted step lowers F
    either way; ``max_steps`` counts loop turns (a step, a pair of block steps, or a perturbation).
    When ‖∇F‖ ≤ ε the exact Hessian is computed: the run ends if λ_min ≥ −ε_H (status
    ``stationary``), else x moves by a draw in the ball of ``radius`` and descent goes on. Returns the end point and
    its history (per accepted step: F, smoothed cut, the cut of sign(V m), max |σ|, ‖σ‖/‖m‖, ‖∇F‖, step size, the
    block stepped (0 m, 1 σ, 2 both), nodes with |⟨v_i, m⟩| < δ), the perturbations made, the end's
    :func:`certificates.stationarity` and the theorem's chain (:func:`certificates.guarantee`, ``monotone``
    recorded step by step); ``status`` says how it ended. F is the same for ``w`` and ``w / scale``; its parts are
    computed on ``w / scale`` (:func:`graphs.weight_scale`: exact, and no weight scale overflows the Hessian) and
    the smoothed cuts reported in the units of ``w``."""
    scale = weight_scale(weights)
    weights, total = weights / scale, graph.abs_total / scale
    p = V.shape[1]
    x = torch.cat([torch.zeros(p, dtype=V.dtype, device=V.device), torch.ones(p, dtype=V.dtype, device=V.device)])
    f_start, _, _, start_cut = objective(V, edges, weights, x, delta, lam, total)     # the theorem's C_δ(0, 1)
    x = x + _ball(2 * p, cfg.radius, generator, x)        # the m-gradient is 0 at m = 0 exactly (C is even in m)
    f, g, _, c = objective(V, edges, weights, x, delta, lam, total)
    blocks = STEP_RULES[cfg.step_rule]
    parts = {"m": slice(0, p), "sigma": slice(p, 2 * p), "joint": slice(0, 2 * p)}
    eta = dict.fromkeys(blocks, cfg.first_step)
    hist, kicks, st, status, monotone = [], [0], None, "max_steps", True
    eta_max = 1 / (2 * lam) if lam > 0 else 1e6     # the regulariser's own exact step; longer ones only overshoot
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.max_steps, disable=None if progress else True, desc=f"theorem δ={delta:g} λ={lam:g}")
    try:
        for _ in range(cfg.max_steps):        # a step or a perturbation each, as Algorithm 1 counts
            gn = float(g.norm())
            if gn <= cfg.tol:
                st = stationarity(V, edges, weights, x, delta, lam, total, cfg.tol, cfg.curvature_tol)
                if st["lam_min_hessian"] >= -cfg.curvature_tol:
                    status = "stationary"
                    break
                x = x + _ball(2 * p, cfg.radius, generator, x)                  # Algorithm 1's perturbation
                kicks.append(len(hist))
                f, g, _, c = objective(V, edges, weights, x, delta, lam, total)
                continue
            for b in blocks[:cfg.max_steps - len(hist)]:
                d = torch.zeros_like(g)
                d[parts[b]] = g[parts[b]]                  # this block's part of −∇F; the other block stays put
                if not bool(d.any()):
                    continue
                y, fy, gy, cy, eta[b] = _armijo(V, edges, weights, x, f, d, eta[b], delta, lam, total, cfg.armijo)
                if not (math.isfinite(float(fy)) and bool(torch.isfinite(gy).all())):
                    raise DivergenceError(f"the objective or its gradient became non-finite at step {len(hist)}")
                monotone = monotone and float(fy) <= float(f)        # the chain's link, as the step is accepted
                x, f, g, c = y, fy, gy, cy
                hist.append(_record(V, graph, x, f, c * scale, gn, eta[b], list(parts).index(b), delta))
                eta[b] = min(2 * eta[b], eta_max)
                bar.update(1)
            if time.perf_counter() - t0 > cfg.budget_s:
                status = "budget"
                break
            if len(hist) >= cfg.max_steps:
                break
    except KeyboardInterrupt:
        status = "interrupted"
    bar.close()
    if st is None or status != "stationary":
        st = stationarity(V, edges, weights, x, delta, lam, total, cfg.tol, cfg.curvature_tol)
    chain = guarantee(V, graph, x[:p], lam, float(start_cut) * scale, float(f_start), float(f), monotone,
                      st["max_spread"])
    h = np.array(hist).reshape(-1, len(HISTORY))
    return {"x": x, "start_smoothed_cut": float(start_cut) * scale, "smoothed_cut": float(c) * scale,
            "status": status, "steps": len(hist), "kicks": kicks, "seconds": time.perf_counter() - t0,
            "history": {k: h[:, a] for a, k in enumerate(HISTORY)}, **st, **chain}


HISTORY = ("objective", "smoothed_cut", "cut", "sigma_max", "sigma_over_m", "grad_norm", "step_size", "block",
           "near_hyperplane")


def _record(V, graph, x, f, c, gn, eta, block, delta):
    """One accepted step's row of :data:`HISTORY` (``gn``: ‖∇F‖ where the step started)."""
    p = V.shape[1]
    m, s = x[:p], x[p:]
    mu = V @ m
    return (float(f), float(c), float(graph.cut(sign(mu))), float(s.abs().max()),
            float(s.norm() / m.norm()) if float(m.norm()) > 0 else math.nan, gn, eta, block,
            int((mu.abs() < delta).sum()))


def _armijo(V, edges, weights, x, f, g, eta, delta, lam, total, armijo):
    """Backtracking from step ``eta``: halve until ``F(x − η g) ≤ F(x) − armijo η ‖g‖²`` (or η < 1e-300, where the
    step is taken as it is — ``monotone`` then records whether F went up). ``g`` is ∇F or one block of it (the rest
    0): ⟨∇F, g⟩ = ‖g‖² either way. Returns the new point, its F, ∇F, C and the step size."""
    gn2 = float(g.norm()) ** 2
    while True:
        y = x - eta * g
        fy, gy, _, cy = objective(V, edges, weights, y, delta, lam, total)
        if float(fy) <= float(f) - armijo * eta * gn2 or eta < 1e-300:
            return y, fy, gy, cy, eta
        eta *= 0.5
