"""Derandomised Goemans-Williamson rounding (paper Sec. 5.1, Eq. 7, Theorem 5.2, App. F; Fig. 5).

The random hyperplane ``r = m + sigma * z``, ``z ~ N(0, I_r)``, starts as plain GW (``m = 0``,
``sigma = 1``); gradient ascent on its expected cut with a penalty ``lam ||sigma||^2`` drives ``sigma``
to 0 and leaves the deterministic hyperplane ``m``, whose cut is ``cut(sign(V m))``.

Two gradient estimators, both vectorised over the Monte-Carlo samples:

* ``score`` -- the authors' rule, step for step as their script runs it: score-function (REINFORCE)
  estimates of ``grad E[cut(sign(V r))]`` without a baseline, a per-coordinate ``log sigma`` but one draw scale
  ``s_eff = max_i(exp(log sigma_i) + 0.5)``, the sigma-gradient added to ``log sigma`` as it is, their step
  sizes, clipping and decay schedule (:func:`optimise_score`).
* ``pathwise`` -- the reparameterisation gradient of the *smoothed* objective the theory analyses: the
  sign is replaced by the C^1 smooth step ``h(u) = 3/2 (u/delta) - 1/2 (u/delta)^3`` on ``[-delta, delta]``
  (``+-1`` outside), and the smoothed cut ``sum w (1 - h_i h_j) / 2`` is differentiated through the sample.
  ``sigma`` is per coordinate; Adam on ``(m, log sigma)``.
"""
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from MAXCUT.graphs import Graph


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


def sign(u: torch.Tensor) -> torch.Tensor:
    """+-1 labels, 0 mapped to +1 (a measure-zero event for Gaussian hyperplanes, but ``m = 0`` at start)."""
    return torch.where(u >= 0, 1.0, -1.0).to(u.dtype)


def smooth_step(u: torch.Tensor, delta: float) -> torch.Tensor:
    """C^1 step: ``3/2 t - 1/2 t^3`` for ``t = u/delta`` in [-1, 1], ``sign(u)`` outside."""
    t = (u / delta).clamp(-1.0, 1.0)
    return 1.5 * t - 0.5 * t ** 3


def authors_gradients(V, graph: Graph, m, s_eff: float, z, lam: float, zV=None, zsq=None):
    """One step's estimates of the authors' rule (their script's step 3), vectorised over the draws.
    ``V: (n, r)``, ``m: (r,)``, ``z: (S, r)``; the draws are ``r_s = m + s_eff z_s`` and ``c_s`` the cut of
    ``sign(V r_s)``. Returns ``g_m = mean(c (r - m)) / s_eff²`` ``(r,)``,
    ``g_i = mean(c ((r_i - m_i)² / s_eff³ - 1 / s_eff)) - 2 lam s_eff`` ``(r,)`` and the cuts ``(S,)``.
    ``zV = z Vᵀ`` and ``zsq = z² - 1`` may be passed precomputed (a block of steps at a time)."""
    zV = z @ V.T if zV is None else zV
    zsq = z * z - 1 if zsq is None else zsq
    c = graph.cut(sign(torch.add(V @ m, zV, alpha=s_eff)))
    scale = 1.0 / (z.shape[0] * s_eff)
    return (c @ z).mul_(scale), (c @ zsq).mul_(scale).sub_(2 * lam * s_eff), c


def authors_gradients_per_draw(V, graph: Graph, m, s_eff: float, z, lam: float):
    """:func:`authors_gradients` with a Python loop over the draws, written as the rule reads: the reference
    that tests hold the vectorised step to and that ``benchmark.py`` times
    (``optimise_score(..., gradients=authors_gradients_per_draw)``). Returns ``(g_m, g_i)``."""
    g_m, g_i = torch.zeros_like(m), torch.zeros_like(m)
    for k in range(z.shape[0]):
        r = m + s_eff * z[k]
        c = graph.cut(sign(V @ r))
        g_m = g_m + c * (r - m) / s_eff ** 2
        g_i = g_i + c * ((r - m) ** 2 / s_eff ** 3 - 1 / s_eff)
    return g_m / z.shape[0], g_i / z.shape[0] - 2 * lam * s_eff


def _noise_blocks(shape, generator, like, block=256):
    """Gaussian draws for ``block`` steps at a time: one RNG call per block, not per step."""
    while True:
        yield from torch.randn((block, *shape), generator=generator, dtype=like.dtype, device=like.device)


def _score_blocks(V, log_samples, samples, generator, block=256):
    """Per step ``(z_log (L, r), z (S, r), z Vᵀ (S, n), z² - 1 (S, r))``: one RNG call and one product for a
    block of steps. The L logging draws come first in each step's draws, then the S of the step."""
    r = V.shape[1]
    while True:
        Z = torch.randn((block, log_samples + samples, r), generator=generator, dtype=V.dtype, device=V.device)
        Zs = Z[:, log_samples:]
        yield from zip(Z[:, :log_samples], Zs, Zs @ V.T, Zs * Zs - 1)


def optimise_score(V, graph: Graph, cfg: ScoreConfig, generator, progress=True, gradients=None):
    """The authors' optimisation step for step (their Fig. 5 script): ``m`` and a per-coordinate ``log sigma``
    from 0; each step (1) logs the mean cut of ``log_samples`` draws ``m + exp(log sigma) * z`` (before the
    update), (2) takes one draw scale ``s_eff = max_i(exp(log sigma_i) + 0.5)``, (3) forms the score-function
    estimates of :func:`authors_gradients` from ``samples`` draws, (4) adds ``lr_m g_m`` to ``m`` and
    ``lr_sigma g_i`` to ``log sigma`` (clipped), (5) divides both step sizes at every ``decay_every``-th step,
    step 0 included; (6) the history's max sigma is ``max_i exp(log sigma_i)`` after the update.
    The logged cuts (1) are computed after the loop, for all steps at once, from the same draws.
    ``gradients(V, graph, m, s_eff, z, lam) -> (g_m, g_i)`` replaces the vectorised estimates (the benchmark's
    per-draw reference loop runs the same rule on the same draws that way).
    Returns the history (see :func:`_finish`), with ``sigma_step`` (s_eff per step)."""
    r, L = V.shape[1], cfg.log_samples
    m = torch.zeros(r, dtype=V.dtype, device=V.device)
    log_sigma = torch.zeros(r, dtype=V.dtype, device=V.device)
    lr_m, lr_s = cfg.lr_mean, cfg.lr_sigma
    M, sig_before, z_log, sig_step = [], [], [], []
    blocks = _score_blocks(V, L, cfg.samples, generator)
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
    """Mean cut of the draws ``m_t + sigma_t * z_t`` per step, for lists of ``(r,)``, ``(r,)``, ``(L, r)``."""
    if not m:
        return np.zeros(0)
    out = []
    for a in range(0, len(m), chunk):
        Mc, Sc, Zc = (torch.stack(x[a:a + chunk]) for x in (m, sigma, z))
        out.append(graph.cut(sign((Mc[:, None] + Sc[:, None] * Zc) @ V.T)).mean(1))
    return torch.cat(out).cpu().numpy()


def smoothed_objective(V, graph: Graph, m, log_sigma, z, delta, lam, scale):
    """Pathwise-differentiable objective to *minimise*, summed over independent chains:
    ``sum_k [-(E_z smoothcut(m_k + sigma_k z)) / scale + lam ||sigma_k||^2]``. ``m, log_sigma: (K, r)``
    (or ``(r,)``), ``z: (K, S, r)`` (or ``(S, r)``) -- the expectation is estimated on the samples."""
    m, log_sigma = torch.atleast_2d(m), torch.atleast_2d(log_sigma)
    z = z if z.dim() == 3 else z[None]
    sigma = log_sigma.exp()
    h = smooth_step((m[:, None] + sigma[:, None] * z) @ V.T, delta)    # (K, S, n)
    return -graph.cut(h).mean(1).sum() / scale + lam * (sigma * sigma).sum()


TRIM_EVERY = 20       # steps between heap trims (see _trim_heap)


def _trim_heap():
    """Hand freed heap memory back to the system (glibc's ``malloc_trim``; nothing elsewhere). A step's large
    temporaries, freed every step, otherwise stay resident: G-set graphs of 7000-9000 nodes peaked at 5-6 GB,
    G32 (2000 nodes) at 1.8 GB after 200 steps, 0.5 GB when trimmed."""
    import ctypes
    import ctypes.util
    try:
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass


def optimise_pathwise(V, graph: Graph, cfg: PathwiseConfig, generator, progress=True):
    """Adam on ``(m, log sigma)`` with the pathwise gradient of :func:`smoothed_objective`, for
    ``cfg.chains`` independent chains at once; the objective is divided by the total |weight| so one
    ``lam`` and one ``delta`` serve every graph. The chain whose final hyperplane ``m`` cuts most is
    the output (a deterministic choice). Returns the history (see :func:`_finish`)."""
    K, r = cfg.chains, V.shape[1]
    m = torch.zeros(K, r, dtype=V.dtype, device=V.device, requires_grad=True)
    log_sigma = torch.zeros(K, r, dtype=V.dtype, device=V.device, requires_grad=True)
    opt = torch.optim.Adam([{"params": [m], "lr": cfg.lr_mean}, {"params": [log_sigma], "lr": cfg.lr_sigma}])
    M, sig = [], []
    noise = _noise_blocks((K, cfg.samples, r), generator, V, block=32)
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
            if t % TRIM_EVERY == 0:
                _trim_heap()
    except KeyboardInterrupt:
        interrupted = True
    seconds = time.perf_counter() - t0
    sig_t = torch.stack(sig) if sig else torch.zeros(0, K, r, dtype=V.dtype, device=V.device)
    return _finish(V, graph, M, sig_t.amax(2).cpu().numpy(), sig_t, cfg.log_samples, generator, seconds,
                   interrupted)


@torch.no_grad()
def _finish(V, graph, M, sigma_max, sigma_noise, log_samples, generator, seconds, interrupted, chunk=32,
            cut_sampled=None):
    """History from the per-step means ``M`` (list of ``(K, r)``) and sampling scales
    ``sigma_noise: (T, K, 1 or r)``, computed after the loop in batches. The output chain ``k`` is the one
    whose final ``m`` cuts most; for it: ``cut_mean`` (deterministic cut of ``m_t``), ``cut_sampled``
    (mean cut of ``log_samples`` fresh hyperplanes ``m_t + sigma_t z``), ``sigma_max``, ``sigma_relative``
    (``max sigma / |m_t|``: the cut depends on ``r`` only through its direction, so this scale-free ratio
    is what measures how random the hyperplane still is), the final ``m``.
    ``chain_final_cuts``: every chain's final deterministic cut. ``cut_sampled`` given (the score rule logs its
    own, one chain): used as it is, and ``sigma_noise`` is not needed."""
    T, r = len(M), V.shape[1]
    if T == 0:
        z0 = np.zeros(0)
        return {"step": z0.astype(int), "cut_mean": z0, "cut_sampled": z0, "sigma_max": z0, "sigma_relative": z0,
                "m": np.zeros(r),
                "chain_final_cuts": z0, "chain_m": np.zeros((0, r)), "optimize_s": seconds,
                "interrupted": interrupted}
    Mt = torch.stack(M)                                                   # (T, K, r)
    cut_all = torch.cat([graph.cut(sign(Mt[a:a + chunk] @ V.T)) for a in range(0, T, chunk)])  # (T, K)
    k = int(torch.argmax(cut_all[-1]))
    if cut_sampled is None:
        parts = []
        for a in range(0, T, chunk):
            Mc, Sc = Mt[a:a + chunk, k], sigma_noise[a:a + chunk, k]
            z = torch.randn(len(Mc), log_samples, r, generator=generator, dtype=V.dtype, device=V.device)
            parts.append(graph.cut(sign((Mc[:, None] + Sc[:, None] * z) @ V.T)).mean(1))
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
