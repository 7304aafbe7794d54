"""The authors' objective (App. G) for R runs at once, fast: the steps of
:func:`train.optimise_plain`.

Three things make it fast, none changes the algorithm: ``G Xᵀ`` is drawn directly (sampler.py:
``Z Lᵀ`` when n < d, the same distribution), the gradient of the max is written out (that of the one
term attaining it) instead of autograd through every distortion, and Adam is written in place for a
batch of runs that stop at different steps. ``tests/test_jl.py`` holds it equal to the plain loop in
float64; ``benchmark.py`` times both.
"""
import math

import numpy as np
import torch

from JohnsonLindenstrauss.model import sigma_of
from JohnsonLindenstrauss.sampler import GaussianSampler
from JohnsonLindenstrauss.targets import Targets


def _max_step(targets: Targets, X, Y, noise, k: int):
    """The authors' objective for R runs at once and its gradient, written out: the loss of run r
    is the largest distortion ``|‖A t‖²/k − 1|`` over its B sampled matrices ``A = M_r + σ_r G``
    and the targets t, whose gradient is that of the one term attaining it: with ``e = A t`` and
    ``z = G t``, ``∂/∂M = 2 sign e tᵀ / k`` and ``∂/∂σ = 2 sign eᵀz / k`` (t = (x_i − x_j)/‖x_i − x_j‖
    for a pair; tests check both against autograd). ``Y = A Xᵀ: (R, B, k, n)``, ``noise = G Xᵀ``
    alike. Returns the losses ``(R,)`` and the gradients in M ``(R, k, d)`` and in σ ``(R,)``."""
    value, b, i, j, sign = targets.worst(Y, k)
    r = torch.arange(len(value), device=Y.device)
    if targets.pairs is None:
        e, z, t = Y[r, b, :, i], noise[r, b, :, i], X[i]      # (R, k), (R, k), (R, d)
        w = sign * (2.0 / k)
    else:
        e, z = Y[r, b, :, i] - Y[r, b, :, j], noise[r, b, :, i] - noise[r, b, :, j]
        t = X[i] - X[j]
        w = sign * 2.0 * targets.inv_sq[i, j] / k
    return value, w[:, None, None] * e[:, :, None] * t[:, None, :], w * (e * z).sum(1)


def _adam(param, grad, m, v, t, lr, active, betas=(0.9, 0.999), eps=1e-8):
    """One Adam step on ``param`` in place, in the order torch.optim.Adam computes it (``t``: steps
    taken, from 1); runs (leading axis) not ``active`` keep their parameters. ``active: (R,)``."""
    m.lerp_(grad, 1 - betas[0])
    v.mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
    step = lr / (1 - betas[0] ** t)
    denom = (v.sqrt() / math.sqrt(1 - betas[1] ** t)).add_(eps)
    param.addcdiv_(m * active.view(-1, *[1] * (param.dim() - 1)), denom, value=-step)


class MaxSteps:
    """The authors' objective for one run per generator, batched, as train.py's loop steps it: the
    runs' matrices ``M: (R, k, d)`` and log-variances ``(R,)`` take their Adam steps together; a run
    that reaches ``tol`` keeps its parameters while the others go on."""

    batched, hint = True, ""

    def __init__(self, targets: Targets, cfg, generators):
        X, R = targets.X, len(generators)
        self.targets, self.cfg, self.generators, self.X = targets, cfg, generators, X
        self.M = torch.zeros(R, cfg.k, X.shape[1], dtype=X.dtype, device=X.device)
        self.log_var = torch.zeros(R, dtype=X.dtype, device=X.device)
        self.moments = [torch.zeros_like(self.M), torch.zeros_like(self.M),
                        torch.zeros_like(self.log_var), torch.zeros_like(self.log_var)]
        self.sampler = GaussianSampler(X)
        self.active = torch.ones(R, dtype=torch.bool, device=X.device)

    def means(self):
        return self.M

    def measure(self, t):
        """Per run ``[loss, sampled max, max distortion of M, σ]`` (the loss is the sampled max)."""
        X, k, R = self.X, self.cfg.k, len(self.generators)
        self.sigma = sigma_of(self.log_var)
        MX = self.M @ X.T                                                    # (R, k, n)
        noise = torch.stack([self.sampler.sample(self.cfg.batch, k, g)      # G Xᵀ: (R, B, k, n)
                             for g in self.generators])
        Y = torch.addcmul(MX[:, None], self.sigma.view(R, 1, 1, 1), noise)   # A Xᵀ, A = M + σ G
        self.loss, self.gM, self.gsigma = _max_step(self.targets, X, Y, noise, k)
        mean_max = self.targets.worst(MX[:, None], k, where=False)
        return torch.stack([self.loss, self.loss, mean_max, self.sigma]).T.tolist()   # one sync

    def finished(self, t):
        """The runs whose sampled max fell below ``tol`` at this step (they stop here)."""
        done = self.active & (self.loss < self.cfg.tol)
        if not bool(done.any()):
            return []
        self.active &= ~done
        return done.nonzero()[:, 0].tolist()

    def update(self, t):
        lr, mom = self.cfg.lr, self.moments
        _adam(self.M, self.gM, mom[0], mom[1], t + 1, lr, self.active)
        _adam(self.log_var, self.gsigma * self.sigma / 2, mom[2], mom[3], t + 1, lr, self.active)

    def sigma_out(self, r):
        return np.asarray((0.5 * self.log_var[r]).exp().cpu().item())
