"""The ``sosp`` experiment: Lemma 3.1 measured where it applies, at certified stationary points of the
population objective (Sec. 3-4), and how long the paper's PGD takes to get there from the same inits.

The lemma is about ε-second-order stationary points of g (``population.Population``), not about the iterates
of a finite training run: :func:`sweep` finds and certifies one point per (seed, λ, bias trained / frozen)
(``search.certified_point``), in worker processes (``jobs.run_jobs``); :func:`pgd_runs` trains the paper's
PGD (``train_fast.train``) from the same inits.
"""
import dataclasses
import time

import numpy as np
import torch

from NeuralNetworks.jobs import timed, run_jobs
from NeuralNetworks.model import SUBSPACE_SEED, Student, Teacher, make_subspace
from NeuralNetworks.population import Population, initial_point
from NeuralNetworks.quadrature import teacher_frame
from NeuralNetworks.search import certified_point
from NeuralNetworks.train_fast import train

PGD_DATA_SEED_OFFSET = 7_919      # PGD minibatches and perturbations: seed + this (the init uses the seed itself)


def _certify_job(seed, lam, frozen, d, k, width, offset, a_init, coarse):
    """One certified point from the seed's init (a job of :func:`sweep`; also run in worker processes):
    the certificate plus ``seed``, ``lam``, ``bias``, ``theta``, ``a`` (numpy arrays) and ``seconds``."""
    U = teacher_frame(d, k)
    Th0, a = initial_point(seed, d, width, a_init)
    pop = Population.build(U, a, Th0[:, -1].clone(), lam, frozen, coarse, offset)
    t = time.perf_counter()
    pt = certified_point(pop, Th0)
    pt["theta"] = pt["theta"].numpy()
    return {**pt, "seed": seed, "lam": float(lam), "bias": "frozen" if frozen else "trained", "a": a.numpy(),
            "seconds": time.perf_counter() - t}


def sweep(lams, seeds, d=2, k=1, width=1000, offset=0.0, a_init="paper", coarse=(90, 8), progress=False,
          modes=(False, True), extra_lams=(), workers=1, beside=None):
    """One certified point per (seed, λ, bias trained / frozen) -- ``modes`` lists the frozen flags -- all from
    the seed's init; ``extra_lams``: more λs for the first seed only. ``workers > 1``: in that many processes
    (:func:`run_jobs`), with ``beside = (fn, args)`` (the PGD runs) as one more job, started first.

    Returns the rows (dicts: the certificate plus ``seed``, ``lam``, ``bias``, ``theta``, ``a``, ``seconds``) in
    the order (seed, λ, mode), then the extras; ``U``; whether a Ctrl-C stopped the sweep (the rows are then
    those finished before it); and ``(beside's result, its seconds)`` (None if not run or not finished)."""
    U = teacher_frame(d, k)
    keys = [(s, lam, fb) for s in seeds for lam in lams for fb in modes]
    keys += [(seeds[0], lam, fb) for lam in extra_lams for fb in modes]
    setting = (d, k, width, offset, a_init, tuple(coarse))
    # longest first: bias trained before frozen, small λ first (they need the most evaluations)
    order = sorted(range(len(keys)), key=lambda j: (keys[j][2], keys[j][1], j))
    jobs = [(_certify_job, (*keys[j], *setting)) for j in order]
    if beside is not None and workers > 1:
        jobs.insert(0, (timed, (beside[0], *beside[1])))
        order.insert(0, None)
    rows, side, stopped = {}, None, False          # rows: by position in keys
    try:
        for i, res in run_jobs(jobs, workers, progress):
            if order[i] is None:
                side = res
            else:
                rows[order[i]] = _received(res)
    except KeyboardInterrupt:           # Ctrl-C keeps the points certified so far
        stopped = True
    return [rows[j] for j in sorted(rows)], U, stopped, side


def _received(row):
    """A finished point as the sweep keeps it: ``theta`` and ``a`` back to tensors."""
    return {**row, "theta": torch.as_tensor(row["theta"]), "a": torch.as_tensor(row["a"])}


def pgd_runs(lams, seed, d, k, width, offset, a_init, cfg, device, progress=False):
    """PGD with the settings of ``cfg`` (a ``TrainConfig``; the paper's: lr 1, batch 50, perturbation 0.005
    below gradient 1e-3) from the same init as the certified points of ``seed``, for every λ in ``lams`` with
    the bias trained and frozen, as one batch of runs.
    Returns the history (``step``, ``perp_norm (T, R)``, ``w_norm (T, R)``), ``lam (R,)`` and ``frozen (R,)``."""
    Th0, a = initial_point(seed, d, width, a_init)
    runs = [(lam, fb) for fb in (False, True) for lam in lams]
    R, f32 = len(runs), dict(dtype=torch.float32, device=device)
    student = Student([Th0[:, :-1].to(**f32).expand(R, -1, -1).clone()],
                      [Th0[:, -1].to(**f32).expand(R, -1).clone()], a.to(**f32).expand(R, -1).clone())
    U = make_subspace(d, k, torch.Generator().manual_seed(SUBSPACE_SEED), device=device)
    cfg = dataclasses.replace(cfg, lam=[lam for lam, _ in runs], freeze_bias=[fb for _, fb in runs])
    gen = torch.Generator(device=device).manual_seed(seed + PGD_DATA_SEED_OFFSET)   # one stream for the batch
    hist = train(student, Teacher(U, offset=offset), cfg, gen, progress=progress)
    return hist, np.array([lam for lam, _ in runs]), np.array([fb for _, fb in runs])


def steps_to_collapse(step, ratio, target, tol):
    """First recorded step at which ``ratio`` is within ``tol`` of ``target`` (None if never). It need not stay
    there: PGD's perturbations re-inject W⊥ whenever the gradient is small (see ``floor`` in the results).
    ``step: (T,)``, ``ratio: (T,)``."""
    inside = np.abs(ratio - target) <= tol
    return int(step[np.argmax(inside)]) if inside.any() else None


def decay_only_steps(step, perp0, w_norm, lam, lr, target, tol):
    """Steps the regulariser alone would take: the first recorded step with
    ``(1 − lr λ)^t ‖W⊥(0)‖ ≤ (target + tol) · ‖W(t)‖``, ``‖W(t)‖`` as measured in the run (None if never)."""
    ok = (1 - lr * lam) ** step * perp0 <= (target + tol) * w_norm
    return int(step[np.argmax(ok)]) if ok.any() else None
