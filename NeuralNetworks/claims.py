"""A measured check of each claim of Section 4 (Theorem 4.x, claims (a)-(e)) on a multi-index teacher.

Claim: at ε-SOSPs of the regularised risk, the first-layer weights have a small component ``W⊥`` outside the
teacher's subspace span(U), for (a) any size and depth, (b) all parameters trained, (c) any smooth loss,
(d) arbitrarily small λ, (e) any SOSP-reaching method -- and the bias must be trained.

Each row changes one thing from a base setting (two-layer, width 256, smooth ReLU, MSE, PGD, λ = 1e-4, bias
trained, second layer fixed as in Fig. 3); every row runs over several seeds. Rows of the same architecture
and all their seeds train as one batched computation. Reported per row (mean ± sd over seeds): the ratio
``‖W⊥‖_F/‖W‖_F`` at init and end, ``‖W⊥‖_F`` at the end against its null -- the same optimiser from the same
state and data with the first layer's loss gradient projected onto span(U), trained in the same batch
(for plain GD ``(1 − lr λ)^T ‖W⊥(0)‖_F``; simulated for PGD, whose kicks fire in the null, and Adam) --, the stable rank
``‖W‖_F²/‖W‖_2²`` against k, and the test MSE.
"""
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from NeuralNetworks.model import (SUBSPACE_SEED, Teacher, concat_students, init_student, make_subspace, perp_norm,
                                  stable_rank)
from NeuralNetworks.train import TrainConfig
from NeuralNetworks.train_fast import test_mse, train

BASE = dict(width=256, depth=1, train_out=False, loss="mse", lam=1e-4, optimizer="pgd", freeze_bias=False)
ADAM_LR = 1e-3   # Adam's step size (the GD/PGD rows use lr 1 for W and b, as in Fig. 3)
# A trained second layer takes lr / width: with lr 1 a step changes the output by O(width) and diverges.

# the run of seed s draws its training data from SEED_STRIDE*s + TRAIN_SEED_OFFSET, its test set from
# SEED_STRIDE*s + CLAIMS_TEST_SEED_OFFSET
SEED_STRIDE = 1000
TRAIN_SEED_OFFSET = 17
CLAIMS_TEST_SEED_OFFSET = 99


@dataclass
class Row:
    name: str
    claim: str
    statement: str
    change: dict = field(default_factory=dict)

    @property
    def setting(self):
        return {**BASE, **self.change}


ROWS = [
    Row("base", "–", "base setting: two-layer, width 256, smooth ReLU, MSE, PGD, λ = 1e-4"),
    Row("width 64", "(a)", "networks of any size", {"width": 64}),
    Row("width 1024", "(a)", "networks of any size", {"width": 1024}),
    Row("3 hidden layers", "(a)", "networks of any depth", {"depth": 3}),
    Row("all layers trained", "(b)", "all parameters trainable", {"train_out": True}),
    Row("Huber loss", "(c)", "any smooth loss", {"loss": "huber"}),
    Row("log-cosh loss", "(c)", "any smooth loss", {"loss": "logcosh"}),
    Row("λ = 0", "(d)", "arbitrarily small λ > 0 (λ = 0 is outside the theorem)", {"lam": 0.0}),
    Row("λ = 1e-5", "(d)", "arbitrarily small λ", {"lam": 1e-5}),
    Row("λ = 1e-3", "(d)", "arbitrarily small λ", {"lam": 1e-3}),
    Row("plain GD", "(e)", "any method that reaches SOSPs (GD: not guaranteed to)", {"optimizer": "gd"}),
    Row("Adam", "(e)", "any method that reaches SOSPs", {"optimizer": "adam"}),
    Row("bias frozen", "bias", "the bias must be trained (Lemma 3.1 needs it)", {"freeze_bias": True}),
]


def run_group(rows, seeds, d, k, steps, lr, device, progress=False, simulate="needed"):
    """Train every (row, seed) of rows that share one architecture as one batch, with the runs' nulls (the same
    run with the loss's gradient on W⊥ removed, :func:`null_config`) in the same batch: every null but plain
    GD's (``simulate='needed'``) -- Adam's has no closed form, and PGD's kicks fire in the null, whose gradient
    lacks the loss's part on W⊥, though not in the run (10 000 steps of the base row: ~100 kicks per null);
    ``simulate='all'`` also trains GD's. A GD null not simulated is :func:`gd_null`, exact (GD never kicks;
    tested). Returns one dict per row with per-seed arrays and the ‖W⊥‖ histories of the runs and their nulls."""
    s0 = rows[0].setting
    runs = [(r, s) for r in rows for s in seeds]
    n = len(runs)
    sim = [i for i, (r, _) in enumerate(runs) if simulate == "all" or r.setting["optimizer"] != "gd"]
    # a null draws from a generator of its run's seed: the same init and the same minibatches
    gens = [torch.Generator(device=device).manual_seed(SEED_STRIDE * runs[i][1] + TRAIN_SEED_OFFSET)
            for i in list(range(n)) + sim]
    U = make_subspace(d, k, torch.Generator(device=device).manual_seed(SUBSPACE_SEED), device)
    teacher = Teacher(U)
    parts = [init_student(1, d, s0["width"], s0["depth"], g, device=device) for g in gens]
    student = concat_students(parts)
    cfg = run_config([r.setting for r, _ in runs], steps, lr)
    hist = train(student, teacher, null_config(cfg, sim), gens, progress=progress)
    test_gens = [torch.Generator(device=device).manual_seed(SEED_STRIDE * s + CLAIMS_TEST_SEED_OFFSET) for _, s in runs]
    mse = test_mse(_runs(student, slice(0, n)), teacher, 10_000, test_gens)
    perp_end, srank = perp_norm(student.W, U).cpu().numpy(), stable_rank(student.W).cpu().numpy()
    perp = hist["perp_norm"]
    null_hist = gd_null(perp[0, :n], np.array(cfg.lr), np.array(cfg.lam), hist["step"][:, None])
    null_hist[:, sim] = perp[:, n:]
    ratio = perp / hist["w_norm"]
    out = []
    for i, row in enumerate(rows):
        sl = slice(i * len(seeds), (i + 1) * len(seeds))
        out.append({"row": row, "ratio_init": ratio[0, sl], "ratio_final": ratio[-1, sl], "perp_final": perp_end[sl],
                    "perp_init": perp[0, sl], "null": null_hist[-1, sl], "stable_rank": srank[sl],
                    "test_mse": mse[sl], "step": hist["step"], "perp_history": perp[:, sl],
                    "null_history": null_hist[:, sl], "null_simulated": np.isin(np.arange(n)[sl], sim),
                    "null_kicks": _null_kicks(hist["perturbations"], n, sim)[sl], "interrupted": hist["interrupted"]})
    return out


def _null_kicks(perturbations, n, sim):
    """PGD kicks of each run's null ``(n,)``: counted where simulated, 0 for a closed-form one (GD's: none)."""
    out = np.zeros(n, dtype=np.int64)
    out[sim] = perturbations[n:]
    return out


def run_config(settings, steps, lr):
    """The ``TrainConfig`` of a batch of runs, one row setting each (Adam at ``ADAM_LR``; a trained second layer
    at ``lr / width``)."""
    adam = [x["optimizer"] == "adam" for x in settings]
    return TrainConfig(steps=steps, lr=[ADAM_LR if a else lr for a in adam],
                       lr_bias=[ADAM_LR if a else lr for a in adam],
                       lr_out=[ADAM_LR if a else lr / x["width"] for a, x in zip(adam, settings)],
                       lam=[x["lam"] for x in settings], optimizer=[x["optimizer"] for x in settings],
                       loss=[x["loss"] for x in settings], freeze_bias=[x["freeze_bias"] for x in settings],
                       train_out=[x["train_out"] for x in settings])


def null_config(cfg: TrainConfig, which) -> TrainConfig:
    """``cfg``'s R runs followed by the nulls of the runs ``which``: the same optimiser, settings and data, with
    the first layer's loss gradient projected onto span(U) (``span_only``), so that only the optimiser's own
    terms -- the regulariser, Adam's normalisation, PGD's kicks -- act on W⊥. For GD, and PGD while no kick
    fires, the null is ``(1 − lr λ)^t ‖W⊥(0)‖`` (:func:`gd_null`); for Adam there is no closed form."""
    per_run = {f: getattr(cfg, f) for f in ("lr", "lr_bias", "lr_out", "lam", "optimizer", "loss", "freeze_bias",
                                            "train_out")}
    R = len(cfg.lam)
    return replace(cfg, **{f: list(v) + [v[i] for i in which] for f, v in per_run.items()},
                   span_only=[False] * R + [True] * len(which))


def _runs(student, sl):
    """The runs ``sl`` of a batched student (views)."""
    return type(student)([w[sl] for w in student.weights], [b[sl] for b in student.biases], student.a[sl],
                         student.activation)


def gd_null(perp0, lr, lam, steps):
    """The null of GD (or of PGD while no kick fires) in closed form: ``(1 − lr λ)^t ‖W⊥(0)‖`` (arrays
    broadcast)."""
    return (1 - np.asarray(lr) * np.asarray(lam)) ** steps * np.asarray(perp0)


def run_claims(seeds, d, k, steps, lr, device, progress=False, rows=ROWS, simulate="needed"):
    """Every row, grouped by architecture; results in the order of ``rows`` (``simulate``: see :func:`run_group`)."""
    groups = {}
    for r in rows:
        groups.setdefault((r.setting["width"], r.setting["depth"]), []).append(r)
    results = {}
    for grp in groups.values():
        for res in run_group(grp, seeds, d, k, steps, lr, device, progress, simulate):
            results[res["row"].name] = res
    return [results[r.name] for r in rows]


def verdict(res):
    """What drives the collapse of ``W⊥``, by a stated rule on the means over seeds of the final ``‖W⊥‖`` against
    its null (the same optimiser from the same state without the loss's gradient on W⊥, :func:`null_config`):

    * 'loss' -- the final ``‖W⊥‖`` is below half of the null;
    * 'loss opposes' -- it is above the null: the loss holds W⊥ back from where the optimiser alone takes it;
    * 'regulariser' -- otherwise (between half the null and the null), when the null itself shrinks ``‖W⊥‖`` by
      more than 5%: the optimiser's own terms do the collapse, the loss adds less than half;
    * 'no' -- neither: the null does not shrink and the loss does not halve it (e.g. λ = 0 under GD)."""
    final, null, init = (float(np.mean(res[key])) for key in ("perp_final", "null", "perp_init"))
    if final < 0.5 * null:
        return "loss"
    if final > null:
        return "loss opposes"
    return "regulariser" if null < 0.95 * init else "no"
