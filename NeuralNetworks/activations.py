"""Activations of Section 4 (paper Sec. 4.3, App. E).

The paper covers ReLU through the smooth approximation ``(1/beta) log(1 + exp(beta z))``;
with ``beta = 2`` this is the ``1/2 log(1 + e^{2z})`` used for Fig. 2 and Fig. 3. It tends
to ReLU as ``beta`` grows (the gap is at most ``log(2)/beta``, attained at ``z = 0``).
"""
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

ACTIVATIONS = ("smooth_relu", "relu")
BETA = 2.0


def smooth_relu(z: torch.Tensor, beta: float = BETA) -> torch.Tensor:
    """``(1/beta) * log(1 + exp(beta * z))``, computed stably for any ``z``: the definition the fast forms below
    (:func:`derivatives`, :func:`step_form`) are tested against."""
    return F.softplus(z, beta=beta, threshold=40.0)  # exact to double precision


def derivatives(name: str, beta: float = BETA):
    """``(z, second) -> (s(z), s'(z), s''(z) or None)`` for ``smooth_relu`` (:func:`smooth_relu`, the paper's
    with β = 2) or ``tanh``; computed stably for any z, in float64 for the exact objectives (toy.py, population.py).

    The smooth ReLU comes from one logistic value u = σ(−βz): s = −log(u)/β, s' = 1 − u, s'' = β u (1 − u)
    (exact identities; absolute error ~1e-16; one exp instead of softplus's and the logistic's). Where βz > 700,
    u would underflow: there z is cut at 700/β and the rest added back, s = z to working precision."""
    if name == "smooth_relu":
        def fn(z, second=False):
            t = z * -beta
            if float(t.detach().min()) < -700.0:  # only for very large z
                v = t.clamp(min=-700.0)
                u = torch.sigmoid(v)
                s = u.log().neg_().sub_(t - v).mul_(1.0 / beta)
            else:
                u = torch.sigmoid(t)
                s = u.log().neg_().mul_(1.0 / beta)
            s1 = 1.0 - u
            return s, s1, (u.mul_(s1).mul_(beta) if second else None)
        return fn
    if name == "tanh":
        def fn(z, second=False):
            t = torch.tanh(z)
            d1 = 1 - t * t
            return t, d1, (-2 * t * d1 if second else None)
        return fn
    raise ValueError(f"unknown activation {name!r}; choose from smooth_relu, tanh")


def get_activation(name: str):
    """Map a name from :data:`ACTIVATIONS` to its function ``Tensor -> Tensor`` (the training step evaluates
    derivatives through :func:`step_form`)."""
    if name == "smooth_relu":
        return smooth_relu
    if name == "relu":
        return torch.relu
    raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")


@dataclass(frozen=True)
class StepForm:
    """How the one-hidden-layer training step evaluates an activation ``s`` and its derivative on a whole
    ``(R, n, h)`` array in a few elementwise passes. The step computes ``u = in_scale * z`` (the factor folded
    into the product that forms ``z``); ``fill(u, V)`` then writes ``V = s(z) / v_scale`` and overwrites ``u``
    with ``s'(z)``. The factor ``v_scale`` is applied to the second layer, never to the big array."""
    in_scale: float
    fill: Callable
    v_scale: float


def _smooth_relu_fill(u, V):
    # u = beta z log2(e), so 2^u = E = e^{beta z}:  V = log2(1 + E) = beta s(z) / ln 2,  u = E / (1 + E) = s'(z)
    torch.add(u.exp2_(), _one(u), out=V)
    u.div_(V)
    V.log2_()


_ONES = {}


def _one(like):
    """A 0-dimensional 1 of ``like``'s dtype and device: adding a Python number costs torch a conversion of
    the number to a tensor at every call (half the time of the addition itself on a 50 x 1000 array)."""
    key = (like.dtype, like.device)
    if key not in _ONES:
        _ONES[key] = torch.ones((), dtype=like.dtype, device=like.device)
    return _ONES[key]


def _relu_fill(u, V):
    torch.clamp(u, min=0.0, out=V)      # relu(z)
    torch.sign(V, out=u)                # 1 where z > 0, else 0


def step_form(name: str, beta: float = BETA) -> StepForm:
    """The :class:`StepForm` of an activation. The smooth ReLU takes one power of two and one base-2 logarithm: with
    ``E = e^{beta z}`` (the factor ``log2 e`` folded into the product that forms ``z``), ``s(z) = ln 2 * log2(1 + E)
    / beta`` and ``s'(z) = E / (1 + E)`` — two transcendental passes instead of softplus's exp and log1p plus the
    logistic's exp. In float32, ``1 + E`` rounds to 1 for ``beta z`` below about -17, which gives ``s`` an absolute
    error of at most ``2^-24 / beta`` (3e-8 at beta = 2), the size of the rounding of the values it is summed with;
    ``s'`` keeps its relative accuracy. For ``beta z`` above about 88, ``E`` overflows and ``s`` becomes infinite,
    which the training step detects (a non-finite gradient) and answers by computing that step with autograd on the
    exact activation."""
    if name == "smooth_relu":
        return StepForm(beta / math.log(2.0), _smooth_relu_fill, math.log(2.0) / beta)
    if name == "relu":
        return StepForm(1.0, _relu_fill, 1.0)
    raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")
