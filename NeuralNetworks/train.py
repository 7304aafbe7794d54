"""Perturbed gradient descent as the paper's experiments run it (Sec. 4.3, App. E; Fig. 3).

Each step draws a fresh Gaussian minibatch, takes the gradient of the minibatch loss, adds the weight decay
λW of the regulariser (λ/2)‖W‖_F², and, whenever the first-layer loss gradient is small (‖∇_W‖ < 1e-3), first
kicks every trained parameter by 0.005·N(0, 1). :func:`pgd` is that algorithm written plainly; the runs of
the experiments use ``train_fast.train``, the same algorithm with the step written out and many runs batched
(tested equal to :func:`pgd`, timed against it by ``benchmark.py``), which also runs GD, Adam
(:func:`adam_update`), deeper students and the claims grid's nulls.
"""
from dataclasses import dataclass

import numpy as np
import torch

from NeuralNetworks.losses import pointwise_loss
from NeuralNetworks.model import Student, Teacher

BLOCK = 256         # minibatches are drawn this many steps at a time (one randn call), labels after them


def pgd(student: Student, teacher: Teacher, cfg: "TrainConfig", generator: torch.Generator) -> tuple:
    """App. E's PGD on a one-hidden-layer ``student`` (``a`` fixed) for ``cfg.steps`` steps; returns the final
    ``(W, b)``, ``(R, h, d)`` and ``(R, h)``. ``R`` runs share one loss and one kick test (tests use R = 1)."""
    W, b, a = (p.detach().clone() for p in (student.W, student.biases[0], student.a))   # (R, h, d) (R, h) (R, h)
    R, h, d = W.shape
    for t in range(cfg.steps):
        if t % BLOCK == 0:                              # fresh x ~ N(0, I_d) and the teacher's labels
            xs = torch.randn(BLOCK, R, cfg.batch, d, generator=generator, dtype=W.dtype)   # (BLOCK, R, n, d)
            ys = teacher(xs, generator)                                                     # (BLOCK, R, n)
        x, y = xs[t % BLOCK], ys[t % BLOCK]
        W.requires_grad_(True), b.requires_grad_(True)
        f = Student([W], [b], a, student.activation).forward(x)          # aᵀ s(W x + b): (R, n)
        loss = pointwise_loss(cfg.loss, f, y).mean(1).sum()              # App. E: the minibatch loss
        gW, gb = torch.autograd.grad(loss, [W, b])                       # (R, h, d), (R, h)
        W, b = W.detach(), b.detach()
        if torch.linalg.vector_norm(gW) < cfg.pgd_threshold:            # App. E: ‖∇_W loss‖ < 1e-3: perturb
            W = W + cfg.pgd_radius * torch.randn(W.shape, generator=generator, dtype=W.dtype)
            if not cfg.freeze_bias:
                b = b + cfg.pgd_radius * torch.randn(b.shape, generator=generator, dtype=b.dtype)
        W = (1 - cfg.lr * cfg.lam) * W - cfg.lr * gW                     # App. E: step with weight decay λ
        b = b if cfg.freeze_bias else b - cfg.lr_bias * gb
    return W, b


def adam_update(m: torch.Tensor, v: torch.Tensor, g: torch.Tensor, t: int) -> torch.Tensor:
    """Adam (β₁ = 0.9, β₂ = 0.999, ε = 1e-8) at step ``t`` (from 0): the moments ``m``, ``v`` updated in place
    with the gradient ``g``; returns the direction ``m̂ / (√v̂ + ε)`` (the step is ``−lr`` times it)."""
    m.mul_(0.9).add_(g, alpha=0.1)
    v.mul_(0.999).addcmul_(g, g, value=0.001)
    return (m / (1 - 0.9 ** (t + 1))) / ((v / (1 - 0.999 ** (t + 1))).sqrt() + 1e-8)


@dataclass
class TrainConfig:
    """Hyperparameters (the paper's by default). For ``train_fast.train`` every field but ``steps``, ``batch``
    and ``pgd_radius`` may also be a list with one value per run, so that runs with different settings (and
    the same architecture) train as one batch."""
    steps: int = 20_000
    batch: int = 50
    lr: float = 1.0            # weight matrices
    lr_bias: float = 1.0       # biases
    lr_out: float = 1.0        # second layer a, when trained
    lam: float = 1e-4          # weight decay on the weight matrices
    pgd_threshold: float = 1e-3
    pgd_radius: float = 5e-3
    optimizer: str = "pgd"     # or "gd", "adam"
    loss: str = "mse"          # one of losses.LOSSES
    freeze_bias: bool = False
    train_out: bool = False    # the paper's Fig. 3 keeps a fixed
    span_only: bool = False    # the claims grid's null: the optimiser sees the first layer's loss gradient
                               # projected onto span(U), G_W U Uᵀ -- the loss never acts on W⊥


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite."""


def log_spaced_steps(steps: int, count: int) -> np.ndarray:
    """Sorted unique integers in ``[0, steps]``, log-spaced, always containing 0 and ``steps``."""
    s = np.unique(np.round(np.geomspace(1, steps + 1, count) - 1).astype(int))
    return np.union1d(s, [0, steps])


def record_steps(steps: int) -> np.ndarray:
    """Steps at which norms are logged: log-spaced (for the early phase) and linear."""
    return np.union1d(log_spaced_steps(steps, 200), np.linspace(0, steps, 501).round().astype(int))
