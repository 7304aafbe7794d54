"""Fig. 2 of the paper (Sec. 4): why the bias must be trained.

One neuron on ``x ~ N(0, 1)`` with constant target 1: ``f(w, b) = E[(s(w x + b) − 1)²] + λ w²``. With ``b``
frozen at 0 the minimiser ``w*`` stays away from 0 until ``λ`` is large; with ``b`` trained, ``b`` alone fits
the constant and ``w* = 0`` for every ``λ > 0`` -- the derandomisation lemma in its smallest form.

Expectations are exact: Gauss-Hermite quadrature (201 nodes) for the smooth ReLU ``½ log(1 + e^{2z})``, closed
forms for ReLU (``w x + b ~ N(b, w²)``). Minimisers: a grid search for the global basin, then Newton's method
on exact derivatives, vectorised over the ``λ`` grid, to a gradient below 1e-12.
"""
import math

import numpy as np
import torch

from NeuralNetworks.activations import derivatives, smooth_relu
from NeuralNetworks.quadrature import SQRT_2PI, gauss_hermite_nodes


def gauss_hermite(n=201):
    """Nodes and weights with ``Σ w_q g(x_q) = E[g(x)]`` for ``x ~ N(0, 1)`` (exact for polynomials of degree
    < 2n). Float64 tensors ``(n,)``."""
    x, w = gauss_hermite_nodes([n], torch.eye(1, dtype=torch.float64))
    return x[:, 0], w


def _relu_moments(w, b):
    """``E[relu(z)]``, ``E[relu(z)²]`` for ``z ~ N(b, w²)`` (``w = 0``: ``relu(b)``, ``relu(b)²``)."""
    s = w.abs()
    safe = torch.where(s > 0, s, torch.ones_like(s))
    a = b / safe
    Phi, phi = 0.5 * (1 + torch.erf(a / math.sqrt(2))), torch.exp(-0.5 * a * a) / SQRT_2PI
    m1 = torch.where(s > 0, b * Phi + s * phi, torch.relu(b))
    m2 = torch.where(s > 0, (b * b + s * s) * Phi + b * s * phi, torch.relu(b) ** 2)
    return m1, m2


def objective(w, b, lam, activation="smooth_relu", nodes=None):
    """``f(w, b) = E[(s(wx + b) − 1)²] + λ w²`` elementwise over broadcast tensors ``w, b, lam``."""
    if activation == "relu":
        m1, m2 = _relu_moments(w, b)
        return m2 - 2 * m1 + 1 + lam * w * w
    return fit(w, b, nodes or gauss_hermite()) + lam * w * w


def fit(w, b, nodes):
    """``E[(s(wx + b) − 1)²]`` under the quadrature ``nodes``, elementwise over broadcast ``w, b``."""
    x, q = nodes
    return ((smooth_relu(w[..., None] * x + b[..., None]) - 1) ** 2 * q).sum(-1)


def _derivatives(w, b, lam, nodes):
    """Gradient and Hessian of the smooth-ReLU objective in ``(w, b)``, exact under the quadrature."""
    x, q = nodes
    s, s1, s2 = derivatives("smooth_relu")(w[..., None] * x + b[..., None], second=True)
    g1, h = 2 * (s - 1) * s1 * q, 2 * (s1 * s1 + (s - 1) * s2) * q
    grad = torch.stack([(g1 * x).sum(-1) + 2 * lam * w, g1.sum(-1)], -1)
    hess = torch.stack([torch.stack([(h * x * x).sum(-1) + 2 * lam, (h * x).sum(-1)], -1),
                        torch.stack([(h * x).sum(-1), h.sum(-1)], -1)], -2)
    return grad, hess


def minimise(lams, train_bias, activation="smooth_relu", iters=100):
    """Global minimiser ``(w*, b*, f*)`` for every ``λ`` in ``lams`` (numpy arrays). ``w*`` is reported as
    ``|w*|`` (the objective is even in ``w`` when ``b = 0``)."""
    lam = torch.as_tensor(np.asarray(lams, dtype=np.float64))
    if activation == "relu":
        return _minimise_relu(lam, train_bias)
    nodes = gauss_hermite()
    wg = torch.linspace(0 if not train_bias else -4, 4, 401, dtype=torch.float64)
    bg = torch.linspace(-4, 4, 401, dtype=torch.float64) if train_bias else torch.zeros(1, dtype=torch.float64)
    W, B = torch.meshgrid(wg, bg, indexing="ij")
    base = torch.cat([fit(W[i:i + 16], B[i:i + 16], nodes) for i in range(0, len(wg), 16)])  # λ-free part
    k = (base + lam[:, None, None] * W * W).flatten(1).argmin(1)             # (L, |w|, |b|): the start only
    w, b = W.flatten()[k].clone(), B.flatten()[k].clone()
    for _ in range(iters):
        grad, hess = _derivatives(w, b, lam, nodes)
        if not train_bias:
            step = torch.stack([grad[:, 0] / hess[:, 0, 0], torch.zeros_like(w)], -1)
        else:
            step = torch.linalg.solve(hess, grad[..., None])[..., 0]
        w, b = w - step[:, 0], b - step[:, 1]
        if step.abs().max() < 1e-14:
            break
    grad, _ = _derivatives(w, b, lam, nodes)
    gnorm = grad[:, 0] if not train_bias else grad.norm(dim=1)
    if gnorm.abs().max() > 1e-10:
        raise RuntimeError(f"Newton did not converge: gradient {gnorm.abs().max().item():.2e}")
    return w.abs().numpy(), b.numpy(), objective(w, b, lam, nodes=nodes).numpy()


def _minimise_relu(lam, train_bias):
    """Closed forms. Frozen ``b = 0``: ``f = w²/2 − 2|w|φ(0) + 1 + λw²``, so ``|w*| = 2φ(0)/(1 + 2λ)``.
    Trained: ``f ≥ 0`` and ``f(0, 1) = 0``, and any ``w ≠ 0`` costs ``λw² > 0``: ``w* = 0, b* = 1``."""
    if train_bias:
        w, b = torch.zeros_like(lam), torch.ones_like(lam)
    else:
        w, b = 2 / SQRT_2PI / (1 + 2 * lam), torch.zeros_like(lam)
    return w.numpy(), b.numpy(), objective(w, b, lam, "relu").numpy()
