"""Lemma 3.1 along exact gradient descent, and the paper's SOSP-finding algorithms (App. B) on the population
objective -- ``population.Population`` or ``variants.Network``.

Stein's identity ∇_W L · Π⊥ = H_b W Π⊥ holds at every point, so one exact gradient step of size η maps the
perpendicular part to ``W⊥ ← (I − η(H_b + λI)) W⊥``: it contracts at the rates λ + eig(H_b). :func:`lemma_path`
measures that map step by step; :func:`run_method` runs GD, Algorithm 1's PGD, Hessian descent and Adam to an
ε-SOSP.
"""
import time
from dataclasses import dataclass

import numpy as np
import torch

from NeuralNetworks.certify import certify, lambda_min
from NeuralNetworks.model import perp_part
from NeuralNetworks.train import adam_update


def lemma_path(pop, P0, lr: float, steps: int, records: int = 100, lr_scale=None) -> dict:
    """Exact GD ``P ← P − η ∇g`` from ``P0`` for ``steps`` steps (``lr_scale``: a packed vector multiplying η
    per parameter, e.g. a trained second layer's 1/width; W's entries must be 1). At ``records`` log-and-linear
    spaced steps t: ‖W⊥(t)‖, ‖W∥(t)‖, the relative residual ‖W⊥(t+1) − (I − η(H_b + λI)) W⊥(t)‖ / ‖W⊥(t)‖,
    the spectrum of H_b (min, median, max) and the Rayleigh rate ρ(t) = ⟨W⊥, H_b W⊥⟩ / ‖W⊥‖² -- the rate at
    which H_b adds to λ on the actual W⊥. Returns arrays by name and the final point."""
    U, lam = pop.U, pop.lam
    at = set(np.unique(np.concatenate([np.geomspace(1, steps, records // 2).astype(int) - 1,
                                       np.linspace(0, steps - 1, records // 2).astype(int)])).tolist())
    scale = 1.0 if lr_scale is None else lr_scale
    rec = {k: [] for k in ("step", "perp_norm", "par_norm", "residual", "hb_min", "hb_median", "hb_max", "rate",
                           "g", "grad_norm")}
    P = P0.clone()
    for t in range(steps + 1):
        g, _, G = pop.evaluate(P)
        nxt = pop.unpack(pop.pack(P) - lr * scale * G, P) if t < steps else None
        if t in at or t == steps:
            W = pop.first_layer(P).detach()
            Wp = perp_part(W, U)
            rec["step"].append(t), rec["perp_norm"].append(float(torch.linalg.matrix_norm(Wp)))
            rec["par_norm"].append(float(torch.linalg.matrix_norm(W @ U))), rec["g"].append(g)
            rec["grad_norm"].append(float(torch.linalg.vector_norm(G)))
            Hb = pop.hessian_b(P).detach()
            ev = torch.linalg.eigvalsh(Hb)
            rec["hb_min"].append(float(ev[0])), rec["hb_median"].append(float(ev.median()))
            rec["hb_max"].append(float(ev[-1]))
            rec["rate"].append(float((Wp * (Hb @ Wp)).sum() / (Wp ** 2).sum()))
            if nxt is not None:
                pred = Wp - lr * (Hb @ Wp + lam * Wp)
                Wn = perp_part(pop.first_layer(nxt).detach(), U)
                rec["residual"].append(float(torch.linalg.matrix_norm(Wn - pred) / torch.linalg.matrix_norm(Wp)))
            else:
                rec["residual"].append(float("nan"))
        if nxt is not None:
            P = nxt
    out = {k: np.array(v) for k, v in rec.items()}
    out["regulariser_alone"] = (1 - lr * lam) ** out["step"] * out["perp_norm"][0]
    # ‖W⊥‖ as the recorded rates predict: each step multiplies it by 1 − η(λ + ρ), ρ held between records
    dt = np.diff(out["step"], prepend=0)
    factor = np.log(np.clip(1 - lr * (lam + np.concatenate([[out["rate"][0]], out["rate"][:-1]])), 1e-300, None))
    out["predicted"] = out["perp_norm"][0] * np.exp(np.cumsum(dt * factor))
    return out, P


# ---------------------------------------------------------------------------------------------------------
# App. B's algorithms to an ε-SOSP

@dataclass
class MethodSettings:
    """Constants of the runs (stated in the README): ``eps`` the ε of the ε-SOSP (‖∇g‖ ≤ ε, λ_min ≥ −ε);
    GD, PGD and Hessian descent step η = 1/ℓ, ℓ = λ_max(∇²g) at the start (halved whenever a step raises g,
    which the run counts); PGD (Algorithm 1, after Jin et al. 2017): when ‖∇g‖ ≤ ``g_thres``
    and no kick in the last ``t_thres`` steps, add ξ uniform in the ball of radius ``radius``; Hessian descent:
    where ‖∇g‖ ≤ ε and λ_min < −ε, a step along the eigenvector (sign and length by halving from
    ``curv_step`` ‖W‖ until g decreases); Adam at ``adam_lr``. ``target``: ‖W⊥‖/‖W‖ of 'collapsed'."""
    eps: float = 1e-6
    g_thres: float = 1e-6
    t_thres: int = 100
    radius: float = 1e-4
    curv_step: float = 0.1
    adam_lr: float = 1e-3
    target: float = 1e-3
    max_steps: int = 20_000
    check_every: int = 50       # λ_min is computed (exactly) at most this often, once ‖∇g‖ ≤ ε


METHODS = ("GD", "PGD", "Hessian descent", "Adam")


def run_method(pop, P0, method: str, s: MethodSettings, seed: int = 0) -> dict:
    """``method`` from ``P0`` until an ε-SOSP (‖∇g‖ ≤ ε and λ_min(∇²g) ≥ −ε, exact) or ``s.max_steps``.
    Returns the steps to the ε-SOSP and to ‖W⊥‖/‖W‖ ≤ ``s.target`` (None: not within the cap), the kicks and
    curvature steps taken, and the end point."""
    gen = torch.Generator().manual_seed(seed)
    x = pop.pack(P0).clone()
    m, v = torch.zeros_like(x), torch.zeros_like(x)
    last_kick, kicks, curv_steps, halvings = -s.t_thres - 1, 0, 0, 0
    t0 = time.perf_counter()
    lr = 1.0 / float(torch.linalg.eigvalsh(pop.hessian(P0))[-1])
    out = {"method": method, "steps_to_sosp": None, "steps_to_collapse": None,
           "lr": s.adam_lr if method == "Adam" else lr}
    prev = None
    for t in range(s.max_steps + 1):
        P = pop.unpack(x, P0)
        g, _, G = pop.evaluate(P)
        if prev is not None and method != "Adam" and g > prev[1] + 1e-13 * abs(prev[1]):
            # η too long here: back to the previous point, and halve it
            x, g, G, lr, halvings = prev[0], prev[1], prev[2], lr / 2, halvings + 1
            P = pop.unpack(x, P0)
        W = pop.first_layer(P).detach()
        ratio = float(torch.linalg.matrix_norm(perp_part(W, pop.U)) / torch.linalg.matrix_norm(W))
        if out["steps_to_collapse"] is None and ratio <= s.target:
            out["steps_to_collapse"] = t
        gn = float(torch.linalg.vector_norm(G))
        small = gn <= s.eps
        kick = method == "PGD" and gn <= s.g_thres and t - last_kick > s.t_thres
        if small and (t % s.check_every == 0 or kick or method == "Hessian descent"):
            lmin, vec = lambda_min(pop, P, vector=method == "Hessian descent")
            if lmin >= -s.eps:
                out["steps_to_sosp"] = t
                break
            if method == "Hessian descent":
                x, ok = _curvature_step(pop, P, g, vec, s.curv_step * float(torch.linalg.matrix_norm(W)))
                curv_steps, prev = curv_steps + ok, None
                continue
        if t == s.max_steps:           # the cap: end at the point just evaluated
            break
        if kick:
            xi = torch.randn(x.shape, generator=gen, dtype=x.dtype)
            u = torch.rand((), generator=gen, dtype=x.dtype) ** (1.0 / x.numel())
            x, last_kick, kicks, prev = x + s.radius * u * xi / xi.norm(), t, kicks + 1, None
            continue
        prev = (x, g, G)
        if method == "Adam":
            x = x - s.adam_lr * adam_update(m, v, G, t)
        else:
            x = x - lr * G
    P = pop.unpack(x, P0)
    out.update(steps_run=t, kicks=kicks, halvings=halvings, curvature_steps=curv_steps,
               seconds=time.perf_counter() - t0, ratio_end=ratio, grad_norm_end=gn, theta=P)
    return out


def _curvature_step(pop, P, g0, vec, length):
    """Hessian descent's negative-curvature step from ``P`` along ``vec`` (a point-shaped eigenvector): the
    first of ±length, ±length/2, … that lowers g. Returns the packed new point and whether one did."""
    for _ in range(40):
        for sign in (1.0, -1.0):
            Q = P + sign * length * vec
            if pop.evaluate(Q)[0] < g0:
                return pop.pack(Q), True
        length /= 2
    return pop.pack(P), False


PATH_NODES = (40, 160)    # the paths' rule: 160 nodes across span(U), where Stein's identity holds to ~1e-12 (40: 1e-7)
PATH_PRUNE = 1e-16        # ... nodes of tensor weight below this left out (paths and App. B runs): 1576 of 2880 nodes
                          # kept, half the time a step, Stein's residual at the init the same to 1e-16


def _row_objective(row, d, lam, width, nodes=None, seed=0):
    """``((objective, init), variant)`` of ``row``, bias trained, under ``nodes`` (default: the paths' rule;
    40 nodes per axis across span(U) for two directions, whose rule is a 3-d grid) pruned at ``PATH_PRUNE``."""
    from NeuralNetworks.variants import COARSE, objective, row_dims, row_variant
    v = row_variant(row, width)
    dd, k = row_dims(v, d)
    nodes = nodes or (PATH_NODES if k == 1 and dd == 2 else (COARSE[k][0], 40))
    pop, P0 = objective(v, seed, lam, False, dd, nodes)
    return (pop.refined(nodes, prune=PATH_PRUNE), P0), v


def path_job(row, d, lam, lr, steps, width=None):
    """:func:`lemma_path` of ``row`` (bias trained, seed 0's init; a trained second layer steps at lr/width as
    in the claims grid). Returns the record with ``row`` and ``seconds``."""
    (pop, P0), v = _row_objective(row, d, lam, width)
    scale = None
    if v.train_out:
        full = torch.ones_like(P0)
        full[pop.slices["a"]] = 1.0 / v.width
        scale = pop.pack(full)
    t = time.perf_counter()
    rec, _ = lemma_path(pop, P0, lr, steps, lr_scale=scale)
    return {"row": row, **rec, "seconds": time.perf_counter() - t}


def method_job(method, d, lam, steps, width=None):
    """:func:`run_method` on the base row (bias trained, seed 0), its end point certified (``certify.certify``)."""
    (pop, P0), _ = _row_objective("base", d, lam, width, nodes=(90, 8))
    out = run_method(pop, P0, method, MethodSettings(max_steps=steps))
    cert = certify(pop, out.pop("theta"))
    return {**out, "lam": lam, "certified_grad_norm": cert["grad_norm"],
            "certified_lam_min": cert["lam_min_hessian"], "certified_ratio": cert["perp_ratio"]}
