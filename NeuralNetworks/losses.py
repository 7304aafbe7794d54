"""The smooth losses of claim (c) (paper Sec. 4): one definition for training (train.py, train_fast.py) and for
the population objectives at certified points (variants.py).

``mse``, ``huber`` (δ = 1) and ``logcosh`` are functions of the residual ``r = f − y``; ``logistic`` is the
cross-entropy of ``σ(f)`` against the probability ``y`` of the label 1. Training offers the first three
(``LOSSES``, the ``--loss`` choices).
"""
import math

import torch
import torch.nn.functional as F

LOSSES = ("mse", "huber", "logcosh")          # the training losses (``--loss``)
ALL_LOSSES = LOSSES + ("logistic",)


def _unknown(name):
    return ValueError(f"unknown loss {name!r}; choose from {', '.join(ALL_LOSSES)}")


def pointwise_loss(name: str, f, y):
    """``ℓ(f, y)`` elementwise: ``(f − y)²``; Huber ``r²/2`` for ``|r| ≤ 1``, else ``|r| − 1/2``;
    ``log cosh(f − y)`` as ``r + softplus(−2r) − log 2`` (exact for any r); logistic ``softplus(f) − y f``."""
    if name == "logistic":
        return F.softplus(f) - y * f
    r = f - y
    if name == "mse":
        return r * r
    if name == "huber":
        a = r.abs()
        return torch.where(a <= 1.0, 0.5 * r * r, a - 0.5)
    if name == "logcosh":
        return r + F.softplus(-2 * r) - math.log(2.0)
    raise _unknown(name)


def loss_slopes(name: str, f, y, second: bool = True):
    """``(∂ℓ/∂f, ∂²ℓ/∂f²)`` elementwise for :func:`pointwise_loss` (its autograd is their test reference; the
    second is None unless ``second``): mse ``2r``, ``2``; Huber ``clamp(r, −1, 1)``, ``[|r| ≤ 1]``; log-cosh
    ``tanh r``, ``1 − tanh² r``; logistic ``σ(f) − y``, ``σ(f)(1 − σ(f))``."""
    if name == "logistic":
        s = torch.sigmoid(f)
        return s - y, (s * (1 - s) if second else None)
    r = f - y
    if name == "mse":
        return 2.0 * r, (torch.full_like(r, 2.0) if second else None)
    if name == "huber":
        return r.clamp(-1.0, 1.0), ((r.abs() <= 1.0).to(r.dtype) if second else None)
    if name == "logcosh":
        t = torch.tanh(r)
        return t, (1 - t * t if second else None)
    raise _unknown(name)
