"""Optimising a Gaussian distribution over projections until it is deterministic (paper Sec. 5.2, App. G).

``A = M + σ ⊙ G`` with ``G`` i.i.d. N(0, 1). Two objectives:

* ``max`` -- the authors' experiment: one scalar log-variance, ``M = 0`` at start, each step samples a batch
  of matrices and minimises the largest distortion over the batch and the targets (Adam), stopping once it
  is below ``tol``.
* ``surrogate`` -- the paper's own objective (Eq. 9): the union bound ``Σ_t P(distortion_t > ε)`` with the
  indicator smoothed as a logistic ``1/(1 + exp(−(x − ε)/τ))``, estimated on the batch, plus ``λ Σ σ_ij²``
  on per-entry standard deviations. Default ``τ = sqrt(2/k)``, the spread of a sampled distortion at the
  start (``‖Gx‖²/k`` is χ²_k/k): with ``τ = ε/10`` the step saturates there, gives no gradient, and the
  run stalls with every target above ε (measured: fraction above ε stays 1.0). ``λ = 1e-2`` makes the
  penalty (``λ k d`` at the start) comparable with the union bound (at most the number of targets).
"""
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from JohnsonLindenstrauss.sampler import GaussianSampler
from JohnsonLindenstrauss.targets import Targets

class DivergenceError(RuntimeError):
    """The objective became NaN or infinite."""


class NoImprovementError(DivergenceError):
    """No iterate's mean matrix did better than the initial M = 0: the steps overshoot (``moved``) or M did not
    move; ``seconds`` the optimisation took."""

    def __init__(self, message, moved: bool, seconds: float):
        super().__init__(message)
        self.moved, self.seconds = moved, seconds


@dataclass
class JLConfig:
    k: int = 30
    batch: int = 20
    lr: float = 0.01
    steps: int = 5000
    tol: float = 0.01          # 'max': stop once the sampled max distortion is below this (the authors' rule)
    objective: str = "max"
    eps: float = 0.1           # 'surrogate': distortion threshold
    lam: float = 1e-2          # 'surrogate': weight of the variance penalty
    tau: float | None = None   # 'surrogate': width of the smoothed indicator (None: sqrt(2/k))
    snapshot_every: int = 0    # keep M every this many steps (0: never), e.g. to measure it on held-out points


def surrogate_loss(D: torch.Tensor, sigma: torch.Tensor, eps: float, lam: float, weights=None,
                   tau: float = 0.25) -> torch.Tensor:
    """Eq. 9 on a batch: ``Σ_t mean_b s((D_bt − ε)/τ) + λ Σ σ²``, ``s`` the logistic.
    ``D: (batch, m)``; ``weights: (m,)`` 0/1 selects the targets among the ``m`` entries (None: all)."""
    p = torch.sigmoid((D - eps) / tau).mean(0)
    return (p if weights is None else p * weights).sum() + lam * (sigma * sigma).sum()


def optimise(targets: Targets, cfg: JLConfig, generator, progress=True) -> dict:
    """Run the optimisation. Returns per-step history ``loss``, ``sampled_max`` (largest distortion over the
    sampled batch), ``mean_max`` (largest distortion of the mean matrix ``M`` itself), ``sigma_max``; the
    output ``M (k, d)``: the iterate whose ``M`` had the smallest max distortion on the training targets (a
    deterministic choice made on training data only -- late Adam steps make the last iterate fluctuate),
    ``M_last``, ``sigma`` (final, numpy), ``steps_run``, ``optimize_s``, ``interrupted``.

    ``generator``: one ``torch.Generator``, or (objective ``max``) a list of them: then one run per generator,
    all optimised as one batch, each drawing from its own generator only (a run's result does not depend on
    its batch-mates, tested), and every output above is a list with one entry per run; a run none of whose
    iterates beat M = 0 carries the error under ``no_improvement`` (one run alone raises it)."""
    if cfg.objective == "max":
        runs = _optimise_max(targets, cfg, list(generator) if isinstance(generator, (list, tuple)) else [generator],
                             progress)
        if isinstance(generator, (list, tuple)):
            return runs
        if "no_improvement" in runs[0]:
            raise runs[0]["no_improvement"]
        return runs[0]
    return _optimise_surrogate(targets, cfg, generator, progress)


def _no_improvement(steps: int, initial: float, largest: float, seconds: float, hint: str = ""):
    """The error for a run none of whose ``steps`` iterates beat M = 0 (max distortion ``initial``); ``largest``:
    the largest entry of the last M (above 1e-6: the steps overshoot; else M did not move)."""
    why = ("the steps overshoot" if largest > 1e-6 else f"M did not move (largest entry {largest:.2g}): try a "
           "larger --lr" + hint)
    return NoImprovementError(f"in {steps} steps no mean matrix did better than the initial M = 0 "
                              f"(max distortion {initial:.3g}): {why}", largest > 1e-6, seconds)


def _adam(p, grad, m, v, t, lr, active, betas=(0.9, 0.999), eps=1e-8):
    """One Adam step on ``p`` in place, in the order torch.optim.Adam computes it (``t``: steps taken, from 1);
    runs (leading axis) not ``active`` keep their parameters. ``active: (S,)`` bool."""
    m.lerp_(grad, 1 - betas[0])
    v.mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
    step = lr / (1 - betas[0] ** t)
    denom = (v.sqrt() / math.sqrt(1 - betas[1] ** t)).add_(eps)
    p.addcdiv_(m * active.view(-1, *[1] * (p.dim() - 1)), denom, value=-step)


def _max_step(targets: Targets, X, Y, noise, k: int):
    """The authors' objective for S runs at once and its gradient, written out: the loss of run s is the largest
    distortion ``|‖A t‖²/k − 1|`` over its B sampled matrices ``A = M_s + σ_s G`` and the targets t, whose
    gradient is that of the one term attaining it: with ``e = A t`` and ``ε = G t``,
    ``∂/∂M = 2 sign e tᵀ / k`` and ``∂/∂σ = 2 sign eᵀε / k`` (t = (x_i − x_j)/‖x_i − x_j‖ for a pair; tests check
    both against autograd). ``Y = A Xᵀ: (S, B, k, n)``, ``noise = G Xᵀ`` alike.
    Returns the losses ``(S,)`` and the gradients in M ``(S, k, d)`` and in σ ``(S,)``."""
    value, b, i, j, sign = targets.worst(Y, k)
    s = torch.arange(len(value), device=Y.device)
    if targets.pairs is None:
        e, eps_, t = Y[s, b, :, i], noise[s, b, :, i], X[i]                   # (S, k), (S, k), (S, d)
        w = sign * (2.0 / k)
    else:
        e, eps_, t = Y[s, b, :, i] - Y[s, b, :, j], noise[s, b, :, i] - noise[s, b, :, j], X[i] - X[j]
        w = sign * 2.0 * targets.inv_sq[i, j] / k
    return value, w[:, None, None] * e[:, :, None] * t[:, None, :], w * (e * eps_).sum(1)


def _optimise_max(targets: Targets, cfg: JLConfig, generators, progress) -> list:
    """The authors' objective (see :func:`optimise`) for one run per generator, batched: the runs' matrices
    ``M: (S, k, d)`` and log-variances ``(S,)`` take their Adam steps together; a run stops (keeps its
    parameters) once its sampled max distortion is below ``tol``, the others go on."""
    X, k, S = targets.X, cfg.k, len(generators)
    d = X.shape[1]
    M = torch.zeros(S, k, d, dtype=X.dtype, device=X.device)
    log_var = torch.zeros(S, dtype=X.dtype, device=X.device)
    mom = [torch.zeros_like(M), torch.zeros_like(M), torch.zeros_like(log_var), torch.zeros_like(log_var)]
    sampler = GaussianSampler(X)
    active = torch.ones(S, dtype=torch.bool, device=X.device)
    rows, stop_at, snaps = [], [None] * S, []
    best = torch.full((S,), math.inf, dtype=X.dtype, device=X.device)
    M_best = M.clone()
    t0, interrupted = time.perf_counter(), False
    bar = tqdm(total=cfg.steps, disable=None if progress else True, mininterval=0.5, desc="optimise")
    try:
        for t in range(cfg.steps):
            sigma = (0.5 * log_var).exp()
            MX = M @ X.T                                                   # (S, k, n)
            noise = torch.stack([sampler.sample(cfg.batch, k, g) for g in generators])    # (S, B, k, n)
            Y = torch.addcmul(MX[:, None], sigma.view(S, 1, 1, 1), noise)
            loss, gM, gsigma = _max_step(targets, X, Y, noise, k)
            mean_max = targets.worst(MX[:, None], k, where=False)
            row = torch.stack([loss, mean_max, sigma]).T                   # (S, 3), one sync per step
            vals = row.tolist()
            if not all(math.isfinite(v[0]) for v in vals):
                raise DivergenceError(f"the objective became {[v[0] for v in vals]} at step {t}")
            rows.append(vals)
            if cfg.snapshot_every and t % cfg.snapshot_every == 0:
                snaps.append((t + 1, M.clone()))
            better = (mean_max < best) & active                           # best mean matrix so far, per run
            best = torch.where(better, mean_max, best)
            M_best[better] = M[better]
            done = active & (loss < cfg.tol)
            if bool(done.any()):
                for r in done.nonzero()[:, 0].tolist():
                    stop_at[r] = t + 1
                active &= ~done
                if not bool(active.any()):
                    break
            _adam(M, gM, mom[0], mom[1], t + 1, cfg.lr, active)
            _adam(log_var, gsigma * sigma / 2, mom[2], mom[3], t + 1, cfg.lr, active)
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    return [_run_output(r, rows[:stop_at[r] or len(rows)], snaps, M, M_best, log_var, seconds, interrupted)
            for r in range(S)]


def _run_output(r, rows, snaps, M, M_best, log_var, seconds, interrupted) -> dict:
    """Run ``r``'s history and outputs from the batch's per-step ``rows`` (its own steps only), snapshots and
    parameters; a run none of whose iterates beat M = 0 carries the error under ``no_improvement``."""
    h = np.asarray([rw[r] for rw in rows]).reshape(-1, 3)
    best_t = int(np.argmin(h[:, 1])) if len(h) else 0
    run = {} if best_t or len(h) <= 1 or interrupted else {
        "no_improvement": _no_improvement(len(h), h[0, 1], float(M[r].abs().max()), seconds)}
    kept = [(t, Mt[r]) for t, Mt in snaps if t <= len(h)]
    return {**run, "loss": h[:, 0], "sampled_max": h[:, 0], "mean_max": h[:, 1], "sigma_max": h[:, 2],
            "snapshot_steps": np.array([t for t, _ in kept], dtype=np.int64), "snapshots": [Mt for _, Mt in kept],
            "M": M_best[r].clone(), "M_last": M[r].clone(), "sigma": np.asarray((0.5 * log_var[r]).exp().cpu().item()),
            "steps_run": len(h), "optimize_s": seconds, "interrupted": interrupted}


def reference_max(targets: Targets, cfg: JLConfig, generator) -> tuple:
    """The authors' objective by plain autograd, one step at a time: the reference that tests hold
    :func:`_optimise_max` to and that ``benchmark.py`` times. Each step samples ``A = M + σ G`` (a batch of
    ``G`` with N(0, 1) entries), takes the largest distortion over the batch and the targets, stops once it is
    below ``tol``, else takes an Adam step (torch's) on ``(M, log σ²)``. Returns the last ``M`` and the steps run.
    The fast path draws ``G Xᵀ`` instead of ``G`` when n < d (sampler.py); with n ≥ d it draws the same numbers."""
    X, k = targets.X, cfg.k
    M = torch.zeros(k, X.shape[1], dtype=X.dtype, device=X.device, requires_grad=True)
    log_var = torch.zeros((), dtype=X.dtype, device=X.device, requires_grad=True)
    opt = torch.optim.Adam([M, log_var], lr=cfg.lr)
    for t in range(cfg.steps):
        G = torch.randn(cfg.batch, k, X.shape[1], generator=generator, dtype=X.dtype, device=X.device)
        loss = targets.distortions((M + (0.5 * log_var).exp() * G) @ X.T, k).max()
        if loss.item() < cfg.tol:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return M.detach(), t + 1


def _optimise_surrogate(targets: Targets, cfg: JLConfig, generator, progress=True) -> dict:
    """The paper's Eq. 9 objective with per-entry standard deviations (see the module docstring), by autograd
    and torch's Adam; outputs as :func:`optimise`."""
    X, k = targets.X, cfg.k
    d = X.shape[1]
    M = torch.zeros(k, d, dtype=X.dtype, device=X.device, requires_grad=True)
    tau = cfg.tau or math.sqrt(2.0 / k)
    log_var = torch.zeros((k, d), dtype=X.dtype, device=X.device, requires_grad=True)
    opt = torch.optim.Adam([M, log_var], lr=cfg.lr)
    hist = {"loss": [], "sampled_max": [], "mean_max": [], "sigma_max": []}
    t0, interrupted, best, best_t, M_best = time.perf_counter(), False, math.inf, 0, M.detach().clone()
    snaps = []
    bar = tqdm(total=cfg.steps, disable=None if progress else True, mininterval=0.5, desc="optimise")
    try:
        for t in range(cfg.steps):
            sigma = (0.5 * log_var).exp()
            MX = M @ X.T                                                   # (k, n)
            G = torch.randn(cfg.batch, k, d, generator=generator, dtype=X.dtype, device=X.device)
            Y = MX + (sigma * G) @ X.T
            D = targets.distortions(Y, k)                                  # (batch, m)
            loss = surrogate_loss(D, sigma, cfg.eps, cfg.lam, targets.weights, tau)
            with torch.no_grad():                                          # one sync per step
                row = torch.stack([loss, D.max(), targets.distortions(MX, k).max(), sigma.max()]).tolist()
            if not math.isfinite(row[0]):
                raise DivergenceError(f"the objective became {row[0]} at step {t}")
            for key, v in zip(("loss", "sampled_max", "mean_max", "sigma_max"), row):
                hist[key].append(v)
            if cfg.snapshot_every and t % cfg.snapshot_every == 0:
                snaps.append((t + 1, M.detach().clone()))
            if row[2] < best:                                              # best mean matrix so far
                best, best_t, M_best = row[2], t, M.detach().clone()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    if best_t == 0 and len(hist["loss"]) > 1 and not interrupted:
        raise _no_improvement(len(hist["loss"]), best, float(M.detach().abs().max()), time.perf_counter() - t0,
                              " or --eps within reach of the distortions")
    out = {key: np.asarray(v) for key, v in hist.items()}
    out.update(snapshot_steps=np.array([t for t, _ in snaps], dtype=np.int64), snapshots=[m for _, m in snaps])
    out.update(M=M_best, M_last=M.detach(), sigma=(0.5 * log_var.detach()).exp().cpu().numpy(),
               steps_run=len(hist["loss"]), optimize_s=time.perf_counter() - t0, interrupted=interrupted)
    return out
