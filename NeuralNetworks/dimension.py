"""Structure discovery beyond d = 2 (issue 39): Fig. 3's protocol at growing input dimension d.

Teacher ``y = mean_j f(<x, u_j>)``, ``x ~ N(0, I_d)``, ``U = [u_1 .. u_k]`` orthonormal, with the link ``f``:
tanh (the paper's; information exponent 1) or a normalised Hermite polynomial He₂(z)/√2, He₄(z)/√24
(information exponents 2 and 4: online SGD from a random start needs ~d log d, ~d³ samples to leave the
equator). Student and PGD as Fig. 3 (App. E: lr 1, λ = 1e-4, fresh batches of 50, kicks of 0.005 below
‖∇_W‖ = 1e-3); each run beside its null (``claims.null_config``: the same optimiser, init and minibatches, the
loss's gradient on W projected onto span(U)).

Measured per run (at the end, and at a few checkpoints along it):
  ``‖W⊥‖_F/‖W‖_F``, ``‖W∥‖_F = ‖W U‖_F``, the largest principal angle between span(U) and the top-k right
  singular subspace of W (:func:`principal_angles`), and the test MSE against the best constant predictor's
  (the teacher's variance, :func:`teacher_moments`).

Theory level of ‖W⊥‖ (:func:`stationary_perp_norm`). Per step, the perp part of the first layer obeys
    W⊥ ← ρ W⊥ − η G⊥ (+ a PGD kick σ_k N(0, 1) on every entry),   ρ = 1 − ηλ,
G⊥ the minibatch gradient's perp part. Write ``G⊥ = ḡ⊥ + ξ``: ξ is the mean of ``B`` independent zero-mean
per-sample deviations, so ``E‖ξ‖_F² = V/B`` with ``V = E‖g⊥(x) − ḡ⊥‖_F²`` (the per-sample gradient's total
variance on W⊥, :func:`gradient_noise`). Where ḡ⊥ ≈ 0, each of the ``N = h (d − k)`` entries is an AR(1)
process; its stationary second moment ``m`` solves ``m = ρ² m + η² s² + ρ² p σ_k²`` (``s²``: the entry's share
of V/B; p: kicks per step, each landing before the step's decay), so, summed over the entries,
    E‖W⊥‖_F² = (η² V/B + ρ² p σ_k² N) / (1 − ρ²)  ≈  η V / (2 λ B)  (+ p σ_k² N / (2 η λ)).
After T steps from ‖W⊥(0)‖ (the same recursion with the level's sources constant):
    E‖W⊥(T)‖_F² = ρ^{2T} ‖W⊥(0)‖_F² + (1 − ρ^{2T}) E‖W⊥‖_∞²     (:func:`perp_norm_after`).
V is estimated at the run's end point, so the level is what the end point's noise would hold ‖W⊥‖ at; the
null has V = 0 exactly (its gradient has no perp part), and without kicks is ρ^T ‖W⊥(0)‖.
"""
import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from NeuralNetworks.activations import derivatives
from NeuralNetworks.claims import SEED_STRIDE, TRAIN_SEED_OFFSET, _runs, null_config
from NeuralNetworks.model import SUBSPACE_SEED, Student, concat_students, init_student, make_subspace, perp_part
from NeuralNetworks.train import TrainConfig
from NeuralNetworks.train_fast import train

LINKS = {"tanh": torch.tanh,                                            # the paper's
         "he2": lambda z: (z * z - 1) / math.sqrt(2),                  # He₂/√2: E f = 0, E f² = 1
         "he4": lambda z: (z ** 4 - 6 * z * z + 3) / math.sqrt(24)}    # He₄/√24: E f = 0, E f² = 1
INFORMATION_EXPONENT = {"tanh": 1, "he2": 2, "he4": 4}
TEST_SEED_OFFSET = 77      # run of seed s: test samples from SEED_STRIDE*s + this
NOISE_SEED_OFFSET = 55     # ... and the end point's gradient-noise samples from SEED_STRIDE*s + this


@dataclass
class IndexTeacher:
    """``y = mean_j f(<x, u_j>)`` with ``f = LINKS[link]``; ``U: (d, k)`` orthonormal; noiseless."""
    U: torch.Tensor
    link: str = "tanh"

    def __call__(self, x, generator=None):
        """``x: (..., n, d)`` -> ``y: (..., n)`` (``generator``: unused; the trainer's signature)."""
        return LINKS[self.link](x @ self.U).mean(-1)


def teacher_moments(link, k, nodes=120):
    """``(E y, Var y)`` of :class:`IndexTeacher` by Gauss–Hermite quadrature in float64: the ``z_j = <x, u_j>``
    are independent N(0, 1), so ``Var y = Var f(z)/k``. ``Var y`` is the best constant predictor's test MSE."""
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    f = LINKS[link](torch.from_numpy(z)).numpy()
    mean = float(w @ f)
    return mean, float(w @ (f - mean) ** 2) / k


def principal_angles(U, V):
    """The principal angles (degrees, ascending) between span(U) and span(V); ``U: (..., d, k)``,
    ``V: (..., d, k)`` orthonormal columns. cos θ are the singular values of UᵀV, sin θ those of (I − UUᵀ)V;
    θ = atan2(sin, cos) pairs them (accurate for small and for right angles alike)."""
    cos = torch.linalg.svdvals(U.mT @ V)                                # descending: θ ascending
    sin = torch.linalg.svdvals(V - U @ (U.mT @ V)).flip(-1)             # descending -> ascending
    return torch.rad2deg(torch.atan2(sin, cos))


def top_right_subspace(W, k):
    """The top-k right singular vectors of ``W: (..., h, d)`` as ``(..., d, k)`` orthonormal columns."""
    return torch.linalg.svd(W, full_matrices=False).Vh[..., :k, :].mT


def metrics(W, U):
    """Per run of ``W: (..., h, d)`` against ``U: (d, k)``: ``perp_norm`` ‖W⊥‖_F, ``par_norm`` ‖W U‖_F,
    ``w_norm`` ‖W‖_F, ``perp_ratio`` ‖W⊥‖_F/‖W‖_F, ``max_angle`` and ``min_angle``, the largest and smallest
    principal angles (degrees) between span(U) and W's top-k right singular subspace (k = 1: the same; a small
    smallest and a large largest angle: only part of span(U) found); numpy arrays of shape ``(...)``."""
    W = W.double()
    U = U.to(W)
    perp, par, wn = (torch.linalg.matrix_norm(A) for A in (perp_part(W, U), W @ U, W))
    angles = principal_angles(U.expand(*W.shape[:-2], *U.shape), top_right_subspace(W, U.shape[1]))
    return {k: v.cpu().numpy() for k, v in (("perp_norm", perp), ("par_norm", par), ("w_norm", wn),
                                             ("perp_ratio", perp / wn), ("max_angle", angles[..., -1]),
                                             ("min_angle", angles[..., 0]))}


@torch.no_grad()
def gradient_noise(student, teacher, x):
    """The per-sample gradient of the squared error on W⊥ at the student's point, per run, from samples
    ``x: (R, n, d)``: ``g_n = 2 r_n (a ⊙ s'(z_n)) (P⊥ x_n)ᵀ`` (``r_n = F(x_n) − y_n``, ``z_n = W x_n + b``).
    Returns ``V = E‖g⊥ − ḡ⊥‖_F²`` (unbiased over the n samples) and ``‖ḡ⊥‖_F``, numpy ``(R,)`` each. Computed
    in float64 (the smooth ReLU's fast derivative form overflows float32 above z ≈ 44)."""
    student = Student([student.W.double()], [student.biases[0].double()], student.a.double(), student.activation)
    x = x.double()
    U = teacher.U.to(x)
    teacher = IndexTeacher(U, teacher.link)
    z = torch.baddbmm(student.biases[0].unsqueeze(1), x, student.W.mT)       # (R, n, h)
    s, s1, _ = derivatives(student.activation)(z)
    r = torch.bmm(s, student.a.unsqueeze(2)).squeeze(2) - teacher(x)        # (R, n)
    c = 2 * r.unsqueeze(2) * s1 * student.a.unsqueeze(1)                    # (R, n, h)
    y = perp_part(x, U)                                                     # P⊥ x: (R, n, d)
    n = x.shape[1]
    g_bar = c.mT @ y / n                                                    # ḡ⊥: (R, h, d)
    second = ((c * c).sum(2) * (y * y).sum(2)).mean(1)                      # E‖g_n‖² = E ‖c_n‖² ‖y_n‖²
    mean_sq = torch.linalg.matrix_norm(g_bar) ** 2
    return ((second - mean_sq) * n / (n - 1)).cpu().numpy(), mean_sq.sqrt().cpu().numpy()


def stationary_perp_norm(V, lr, lam, batch, kick_rate=0.0, radius=0.0, entries=0):
    """The level at which weight decay balances the minibatch noise (and PGD's kicks) on W⊥ (module docstring):
    ``sqrt((lr² V / batch + ρ² kick_rate radius² entries) / (1 − ρ²))``, ρ = 1 − lr λ (a kick lands before the
    step's decay, as in ``train.pgd``); arrays broadcast."""
    rho = 1 - lr * lam
    return np.sqrt((lr ** 2 * np.asarray(V) / batch + rho ** 2 * np.asarray(kick_rate) * radius ** 2 * entries)
                   / (1 - rho ** 2))


def perp_norm_after(perp0, steps, lr, lam, level):
    """``sqrt(ρ^{2T} ‖W⊥(0)‖² + (1 − ρ^{2T}) level²)``: the init decayed by weight decay plus the noise level
    reached over ``T = steps`` (ρ = 1 − lr λ)."""
    decay = (1 - lr * lam) ** (2 * np.asarray(steps))
    return np.sqrt(decay * np.asarray(perp0) ** 2 + (1 - decay) * np.asarray(level) ** 2)


def checkpoints(steps):
    """The steps measured along a run: 0, T/64, T/16, T/4, T/2, T (rounded, unique)."""
    return np.unique(np.round(steps * np.array([0, 1 / 64, 1 / 16, 1 / 4, 1 / 2, 1])).astype(int))


def online_mse(step, loss, at):
    """The test MSE along a run from its fresh minibatches: the mean of the recorded batch losses (each taken
    before its step, on samples the run has not seen) in ``[0.9 t, t]`` for each ``t`` of ``at``; ``loss: (T, R)``
    -> ``(len(at), R)``."""
    return np.stack([loss[(step >= 0.9 * t) & (step <= t)].mean(0) for t in at])


def subspace(d, k, device):
    """The teacher's ``U: (d, k)``: (1, ..., 1)/√d for k = 1 (Fig. 3's), else the claims grid's fixed random frame."""
    return make_subspace(d, k, torch.Generator(device=device).manual_seed(SUBSPACE_SEED), device)


def _generators(seeds, offset, device):
    return [torch.Generator(device=device).manual_seed(SEED_STRIDE * s + offset) for s in seeds]


def run_cell(d, k, link, seeds, width, cfg: TrainConfig, device, test_samples=10_000, noise_samples=4096,
             progress=False):
    """PGD (``cfg``, Fig. 3's) on the ``link`` teacher at ``(d, k)`` for every seed, with the seeds' nulls in the
    same batch (``claims.null_config``; a null starts from its run's init and sees its run's minibatches).
    Returns per-run arrays ``(2S,)`` (runs, then nulls) of the end point's :func:`metrics`, test MSE, PGD
    kicks, the gradient noise V and ‖ḡ⊥‖; the checkpoints' metrics ``(C, 2S)`` and the loss history."""
    S = len(seeds)
    U = subspace(d, k, device)
    teacher = IndexTeacher(U, link)
    gens = _generators(seeds, TRAIN_SEED_OFFSET, device) * 2
    student = concat_students([init_student(1, d, width, 1, g, device=device) for g in gens])
    per_run = ("lr", "lr_bias", "lr_out", "lam", "optimizer", "loss", "freeze_bias", "train_out")
    cfg = null_config(replace(cfg, **{f: [getattr(cfg, f)] * S for f in per_run}), list(range(S)))
    at = checkpoints(cfg.steps)
    hist = train(student, teacher, cfg, gens, snapshot_steps=at, progress=progress)
    mse = np.empty(2 * S)
    for i, g in enumerate(_generators(seeds, TEST_SEED_OFFSET, device) * 2):    # runs and nulls: the same test set
        x = torch.randn(1, test_samples, d, generator=g, device=device)
        mse[i] = ((_runs(student, slice(i, i + 1)).forward(x) - teacher(x)) ** 2).mean().item()
    x = torch.stack([torch.randn(noise_samples, d, generator=g, device=device)
                     for g in _generators(seeds, NOISE_SEED_OFFSET, device) * 2])
    V, mean_grad = gradient_noise(student, teacher, x)
    snaps = torch.from_numpy(hist["snapshots"])                                     # (C, 2S, h, d)
    return {"end": metrics(student.W, U), "test_mse": mse, "kicks": hist["perturbations"], "V": V,
            "mean_grad_perp": mean_grad, "at": hist["snapshot_steps"], "along": metrics(snaps, U),
            "online_mse": online_mse(hist["step"], hist["loss"], hist["snapshot_steps"]), "step": hist["step"],
            "loss": hist["loss"], "perp_history": hist["perp_norm"], "w_norm_history": hist["w_norm"],
            "interrupted": hist["interrupted"]}


COLUMNS = ["d", "k", "teacher", "seed", "width", "steps", "perp_ratio_init", "perp_ratio_final", "perp_norm_init",
           "perp_norm_final", "par_norm_init", "par_norm_final", "w_norm_final", "max_angle_init", "max_angle_final",
           "min_angle_final", "test_mse", "constant_mse", "mse_ratio", "kicks", "grad_noise", "mean_grad_perp",
           "stationary_perp_norm",
           "predicted_perp_norm", "decay_only_perp_norm", "null_perp_norm_final", "null_perp_ratio_final",
           "null_par_norm_final", "null_max_angle_final", "null_test_mse", "null_kicks", "null_predicted_perp_norm"]


def cell_rows(out, d, k, link, seeds, width, cfg: TrainConfig):
    """One row per seed of a :func:`run_cell` (``COLUMNS``), with the theory levels beside the measurements:
    the run's :func:`perp_norm_after` from its end point's noise V and its kick rate, the null's from its kicks
    alone (V = 0), and weight decay alone ``ρ^T ‖W⊥(0)‖``."""
    S, T = len(seeds), int(out["step"][-1])         # the steps run (fewer than cfg.steps only if interrupted)
    run, null = slice(0, S), slice(S, 2 * S)
    e, a0 = out["end"], {key: v[0] for key, v in out["along"].items()}
    const = teacher_moments(link, k)[1]
    kw = dict(lr=cfg.lr, lam=cfg.lam)
    level = stationary_perp_norm(out["V"][run], batch=cfg.batch, kick_rate=out["kicks"][run] / max(T, 1),
                                 radius=cfg.pgd_radius, entries=width * (d - k), **kw)
    null_level = stationary_perp_norm(0.0, batch=cfg.batch, kick_rate=out["kicks"][null] / max(T, 1),
                                      radius=cfg.pgd_radius, entries=width * (d - k), **kw)
    cols = {"perp_ratio_init": a0["perp_ratio"][run], "perp_ratio_final": e["perp_ratio"][run],
            "perp_norm_init": a0["perp_norm"][run], "perp_norm_final": e["perp_norm"][run],
            "par_norm_init": a0["par_norm"][run], "par_norm_final": e["par_norm"][run],
            "w_norm_final": e["w_norm"][run], "max_angle_init": a0["max_angle"][run],
            "max_angle_final": e["max_angle"][run], "min_angle_final": e["min_angle"][run],
            "test_mse": out["test_mse"][run], "constant_mse": [const] * S,
            "mse_ratio": out["test_mse"][run] / const, "kicks": out["kicks"][run], "grad_noise": out["V"][run],
            "mean_grad_perp": out["mean_grad_perp"][run], "stationary_perp_norm": level,
            "predicted_perp_norm": perp_norm_after(a0["perp_norm"][run], T, level=level, **kw),
            "decay_only_perp_norm": (1 - cfg.lr * cfg.lam) ** T * a0["perp_norm"][run],
            "null_perp_norm_final": e["perp_norm"][null], "null_perp_ratio_final": e["perp_ratio"][null],
            "null_par_norm_final": e["par_norm"][null], "null_max_angle_final": e["max_angle"][null],
            "null_test_mse": out["test_mse"][null], "null_kicks": out["kicks"][null],
            "null_predicted_perp_norm": perp_norm_after(a0["perp_norm"][null], T, level=null_level, **kw)}
    fixed = {"d": d, "k": k, "teacher": link, "width": width, "steps": T}
    return [{**fixed, "seed": s, **{c: _num(v[i]) for c, v in cols.items()}} for i, s in enumerate(seeds)]


def _num(v):
    v = np.asarray(v).item()
    return int(v) if isinstance(v, (int, np.integer)) else float(v)


RECOVERY_ANGLE = 15.0     # degrees: the largest principal angle below which span(U) counts as found
RECOVERY_MSE = 0.5        # test MSE below this fraction of the constant predictor's
KEPT_PAR = 0.5            # ‖W∥‖ at the end at least this fraction of its init's: not collapsed


def cell_summary(rows):
    """Median, min and max over seeds of every number of one (d, k, teacher) cell's rows, and the verdicts by
    stated rules on the medians: ``recovered`` (largest angle < RECOVERY_ANGLE°, test MSE < RECOVERY_MSE × the
    constant's, ‖W∥‖_end ≥ KEPT_PAR × ‖W∥‖_init); ``perp_collapse`` (``claims.verdict``: 'loss' where the run's
    ‖W⊥‖ ends below half its null's, 'regulariser' where the null shrinks it about as much, ...); ``category``:
    'structure discovered' (recovered), 'span found, no fit' (angle and ‖W∥‖ pass, the test MSE does not),
    'W_perp shrinks without recovery' (the angle fails, ‖W⊥‖ at most half its init's) or 'neither'."""
    from NeuralNetworks.claims import verdict
    out = {key: rows[0][key] for key in ("d", "k", "teacher", "width", "steps")}
    out["seeds"] = [r["seed"] for r in rows]
    for c in COLUMNS[6:]:
        v = np.array([r[c] for r in rows], dtype=float)
        out[c] = {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())}
    med = {c: out[c]["median"] for c in COLUMNS[6:]}
    out["recovered"] = bool(med["max_angle_final"] < RECOVERY_ANGLE and med["mse_ratio"] < RECOVERY_MSE
                            and med["par_norm_final"] >= KEPT_PAR * med["par_norm_init"])
    out["perp_collapse"] = verdict({"perp_final": [r["perp_norm_final"] for r in rows],
                                    "null": [r["null_perp_norm_final"] for r in rows],
                                    "perp_init": [r["perp_norm_init"] for r in rows]})
    span = med["max_angle_final"] < RECOVERY_ANGLE and med["par_norm_final"] >= KEPT_PAR * med["par_norm_init"]
    out["category"] = ("structure discovered" if out["recovered"] else "span found, no fit" if span
                       else "W_perp shrinks without recovery" if med["perp_norm_final"] <= 0.5 * med["perp_norm_init"]
                       else "neither")
    return out


def write_csv(path, rows):
    """``dimension.csv``: one line per (d, k, teacher, seed), the ``COLUMNS``."""
    with open(path, "w") as f:
        f.write(",".join(COLUMNS) + "\n")
        for r in rows:
            f.write(",".join(f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c]) for c in COLUMNS) + "\n")


def history_arrays(out):
    """The arrays of a :func:`run_cell` kept in ``dimension_history.npz`` (runs then nulls along the last axis):
    the recorded steps' ``step``, ``loss``, ``perp_norm``, ``w_norm``; the checkpoints ``at`` with their
    metrics (``along_<metric>``) and the online test MSE."""
    return {"step": out["step"], "loss": out["loss"], "perp_norm": out["perp_history"],
            "w_norm": out["w_norm_history"], "at": out["at"], "online_mse": out["online_mse"],
            **{f"along_{key}": v for key, v in out["along"].items()}}
