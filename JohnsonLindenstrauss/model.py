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

OBJECTIVES = ("max", "surrogate")


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
    ``M_last``, ``sigma`` (final, numpy), ``steps_run``, ``optimize_s``, ``interrupted``."""
    X, k = targets.X, cfg.k
    d = X.shape[1]
    M = torch.zeros(k, d, dtype=X.dtype, device=X.device, requires_grad=True)
    per_entry = cfg.objective == "surrogate"
    tau = cfg.tau or math.sqrt(2.0 / k)
    log_var = torch.zeros((k, d) if per_entry else (), dtype=X.dtype, device=X.device, requires_grad=True)
    opt = torch.optim.Adam([M, log_var], lr=cfg.lr)
    sampler = None if per_entry else GaussianSampler(X)
    hist = {"loss": [], "sampled_max": [], "mean_max": [], "sigma_max": []}
    t0, interrupted, best, best_t, M_best = time.perf_counter(), False, math.inf, 0, M.detach().clone()
    bar = tqdm(total=cfg.steps, disable=None if progress else True, mininterval=0.5, desc="optimise")
    try:
        for t in range(cfg.steps):
            sigma = (0.5 * log_var).exp()
            MX = M @ X.T                                                   # (k, n)
            if per_entry:
                G = torch.randn(cfg.batch, k, d, generator=generator, dtype=X.dtype, device=X.device)
                Y = MX + (sigma * G) @ X.T
            else:
                Y = MX + sigma * sampler.sample(cfg.batch, k, generator)
            D = targets.distortions(Y, k)                                  # (batch, m)
            loss = surrogate_loss(D, sigma, cfg.eps, cfg.lam, targets.weights, tau) if per_entry else D.max()
            with torch.no_grad():                                          # one sync per step
                row = torch.stack([loss, D.max(), targets.distortions(MX, k).max(), sigma.max()]).tolist()
            if not math.isfinite(row[0]):
                raise DivergenceError(f"the objective became {row[0]} at step {t}")
            for key, v in zip(("loss", "sampled_max", "mean_max", "sigma_max"), row):
                hist[key].append(v)
            if row[2] < best:                                              # best mean matrix so far
                best, best_t, M_best = row[2], t, M.detach().clone()
            if not per_entry and row[0] < cfg.tol:
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    if best_t == 0 and len(hist["loss"]) > 1 and not interrupted:
        largest = float(M.detach().abs().max())
        why = ("the steps overshoot" if largest > 1e-6 else f"M did not move (largest entry {largest:.2g}): try a "
               "larger --lr" + (" or --eps within reach of the distortions" if per_entry else ""))
        raise NoImprovementError(f"in {len(hist['loss'])} steps no mean matrix did better than the initial M = 0 "
                                 f"(max distortion {best:.3g}): {why}", largest > 1e-6, time.perf_counter() - t0)
    out = {key: np.asarray(v) for key, v in hist.items()}
    out.update(M=M_best, M_last=M.detach(), sigma=(0.5 * log_var.detach()).exp().cpu().numpy(),
               steps_run=len(hist["loss"]),
               optimize_s=time.perf_counter() - t0, interrupted=interrupted)
    return out
