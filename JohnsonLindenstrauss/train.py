"""Optimising the Gaussian distribution over projections (Sec. 5.2, App. G; Eq. 9): the loop.

:func:`optimise_plain` is the authors' experiment as plain autograd: sample ``A = M + σ G``, take the
largest distortion, step Adam on ``(M, log σ²)``, stop below ``tol``. :func:`optimise` runs the same
algorithm fast (train_fast.py, tested equal to the plain loop) for one run or a batch of runs, and
Eq. 9's surrogate by autograd, both through one loop (:func:`_loop`) that records the history and
keeps the best mean matrix.
"""
import math
import time

import numpy as np
import torch
from tqdm import tqdm

from JohnsonLindenstrauss.model import (DivergenceError, JLConfig, draw_G, max_distortion,
                                        no_improvement, sigma_of, surrogate_loss)
from JohnsonLindenstrauss.targets import Targets
from JohnsonLindenstrauss.train_fast import MaxSteps


def optimise_plain(targets: Targets, cfg: JLConfig, generator) -> tuple:
    """The authors' objective by plain autograd, one step at a time: the last ``M`` and the steps
    run. :func:`optimise` takes the same steps (it draws ``G Xᵀ`` as ``Z Lᵀ`` when n < d: the same
    distribution; with n ≥ d the same numbers)."""
    X, k = targets.X, cfg.k                                   # X: (n, d) base points
    d = X.shape[1]
    M = torch.zeros(k, d, dtype=X.dtype, device=X.device, requires_grad=True)       # M = 0
    log_var = torch.zeros((), dtype=X.dtype, device=X.device, requires_grad=True)   # σ = 1
    opt = torch.optim.Adam([M, log_var], lr=cfg.lr)
    for t in range(cfg.steps):
        G = draw_G(cfg.batch, k, d, generator, X)             # (B, k, d)
        A = M + sigma_of(log_var) * G                         # (B, k, d): A = M + σ G
        loss = max_distortion(targets, A, k)                  # App. G: max over batch, targets
        if loss.item() < cfg.tol:                             # the authors' stop
            break
        opt.zero_grad()
        loss.backward()
        opt.step()                                            # App. G: Adam on (M, log σ²)
    return M.detach(), t + 1


class SurrogateSteps:
    """Eq. 9 with per-entry standard deviations (model.py), by autograd and torch's Adam, as one
    run of :func:`_loop`."""

    batched, hint = False, " or --eps within reach of the distortions"

    def __init__(self, targets: Targets, cfg: JLConfig, generator):
        X, k = targets.X, cfg.k
        self.targets, self.cfg, self.generator, self.X = targets, cfg, generator, X
        self.M = torch.zeros(k, X.shape[1], dtype=X.dtype, device=X.device, requires_grad=True)
        self.tau = cfg.tau or math.sqrt(2.0 / k)
        self.log_var = torch.zeros((k, X.shape[1]), dtype=X.dtype, device=X.device, requires_grad=True)
        self.opt = torch.optim.Adam([self.M, self.log_var], lr=cfg.lr)

    def means(self):
        return self.M.detach()[None]

    def measure(self, t):
        X, k, cfg = self.X, self.cfg.k, self.cfg
        sigma = sigma_of(self.log_var)
        MX = self.M @ X.T                                     # (k, n)
        G = draw_G(cfg.batch, k, X.shape[1], self.generator, X)   # (B, k, d)
        Y = MX + (sigma * G) @ X.T                            # A Xᵀ, A = M + σ ⊙ G: (B, k, n)
        D = self.targets.distortions(Y, k)                    # (B, m)
        self.loss = surrogate_loss(D, sigma, cfg.eps, cfg.lam, self.targets.weights, self.tau)
        with torch.no_grad():                                 # one sync per step
            mean_max = self.targets.distortions(MX, k).max()
            return [torch.stack([self.loss, D.max(), mean_max, sigma.max()]).tolist()]

    def finished(self, t):
        return []

    def update(self, t):
        self.opt.zero_grad(set_to_none=True)
        self.loss.backward()
        self.opt.step()

    def sigma_out(self, r):
        return sigma_of(self.log_var.detach()).cpu().numpy()


def optimise(targets: Targets, cfg: JLConfig, generator, progress=True) -> dict:
    """Run the optimisation. Returns per-step history ``loss``, ``sampled_max`` (largest distortion
    over the sampled batch), ``mean_max`` (largest distortion of the mean matrix ``M`` itself),
    ``sigma_max``; the output ``M (k, d)``: the iterate whose ``M`` had the smallest max distortion
    on the training targets (a deterministic choice made on training data only -- late Adam steps
    make the last iterate fluctuate), ``M_last``, ``sigma`` (final, numpy), ``steps_run``,
    ``optimize_s``, ``interrupted``.

    ``generator``: one ``torch.Generator``, or (objective ``max``) a list of them: then one run per
    generator, all optimised as one batch, each drawing from its own generator only (a run's result
    does not depend on its batch-mates, tested), and the output is a list with one entry per run; a
    run none of whose iterates beat M = 0 carries the error under ``no_improvement`` (one run alone
    raises it)."""
    several = isinstance(generator, (list, tuple))
    if cfg.objective == "max":
        steps = MaxSteps(targets, cfg, list(generator) if several else [generator])
    else:
        steps = SurrogateSteps(targets, cfg, generator)
    runs = _loop(steps, cfg, progress)
    if several:
        return runs
    if "no_improvement" in runs[0]:
        raise runs[0]["no_improvement"]
    return runs[0]


def _loop(steps, cfg: JLConfig, progress) -> list:
    """The loop of both objectives: each step ``steps.measure`` samples and evaluates (one row per
    run: loss, sampled max, max distortion of M, max σ), the rows are recorded with a snapshot of M
    every ``cfg.snapshot_every`` steps, each run's best mean matrix is kept, the runs
    ``steps.finished`` stop, and ``steps.update`` steps the others. Ctrl-C ends it with the history
    so far. Returns one output per run."""
    M = steps.means()
    R = len(M)
    rows, stop_at, snaps, active = [], [None] * R, [], [True] * R
    best, M_best = [math.inf] * R, M.clone()
    t0, interrupted = time.perf_counter(), False
    bar = tqdm(total=cfg.steps, disable=None if progress else True, mininterval=0.5, desc="optimise")
    try:
        for t in range(cfg.steps):
            row = steps.measure(t)
            if not all(math.isfinite(v[0]) for v in row):
                losses = [v[0] for v in row]
                shown = losses if steps.batched else losses[0]
                raise DivergenceError(f"the objective became {shown} at step {t}")
            rows.append(row)
            M = steps.means()
            if cfg.snapshot_every and t % cfg.snapshot_every == 0:
                snaps.append((t + 1, M.clone()))
            for r in range(R):                                # best mean matrix so far, per run
                if active[r] and row[r][2] < best[r]:
                    best[r] = row[r][2]
                    M_best[r] = M[r]
            for r in steps.finished(t):
                stop_at[r], active[r] = t + 1, False
            if not any(active):
                break
            steps.update(t)
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    M = steps.means()
    return [_run_output(r, rows[:stop_at[r] or len(rows)], snaps, M, M_best, steps, seconds,
                        interrupted) for r in range(R)]


def _run_output(r, rows, snaps, M, M_best, steps, seconds, interrupted) -> dict:
    """Run ``r``'s history and outputs from the per-step ``rows`` (its own steps only), snapshots
    and parameters; a run none of whose iterates beat M = 0 carries the error under
    ``no_improvement``."""
    h = np.asarray([row[r] for row in rows]).reshape(-1, 4)
    best_t = int(np.argmin(h[:, 2])) if len(h) else 0
    run = {} if best_t or len(h) <= 1 or interrupted else {
        "no_improvement": no_improvement(len(h), h[0, 2], float(M[r].abs().max()), seconds,
                                         steps.hint)}
    kept = [(t, Mt[r]) for t, Mt in snaps if t <= len(h)]
    return {**run, "loss": h[:, 0], "sampled_max": h[:, 1], "mean_max": h[:, 2],
            "sigma_max": h[:, 3], "snapshot_steps": np.array([t for t, _ in kept], dtype=np.int64),
            "snapshots": [Mt for _, Mt in kept], "M": M_best[r].clone(), "M_last": M[r].clone(),
            "sigma": steps.sigma_out(r), "steps_run": len(h), "optimize_s": seconds,
            "interrupted": interrupted}
