"""A measured check of each claim of Section 4 (Theorem 4.x, claims (a)-(e)) on a multi-index teacher.

Claim: at ε-SOSPs of the regularised risk, the first-layer weights have a small component ``W⊥`` outside the
teacher's subspace span(U), for (a) any size and depth, (b) all parameters trained, (c) any smooth loss,
(d) arbitrarily small λ, (e) any SOSP-reaching method -- and the bias must be trained.

Each row changes one thing from a base setting (two-layer, width 256, smooth ReLU, MSE, PGD, λ = 1e-4, bias
trained, second layer fixed as in Fig. 3); every row runs over several seeds. Rows of the same architecture
and all their seeds train as one batched computation. Reported per row (mean ± sd over seeds): the ratio
``‖W⊥‖_F/‖W‖_F`` at init and end, ``‖W⊥‖_F`` at the end against what the regulariser alone would leave
with the same optimiser (``(1 − lr λ)^T ‖W⊥(0)‖_F`` for GD/PGD), the stable rank ``‖W‖_F²/‖W‖_2²``
against k, and the test MSE.
"""
from dataclasses import dataclass, field

import numpy as np
import torch

from NeuralNetworks.model import SUBSPACE_SEED, Teacher, init_student, make_subspace, perp_norm, stable_rank
from NeuralNetworks.train import TrainConfig, test_mse, train

BASE = dict(width=256, depth=1, train_out=False, loss="mse", lam=1e-4, optimizer="pgd", freeze_bias=False)
ADAM_LR = 1e-3   # Adam's step size (the GD/PGD rows use lr 1 for W and b, as in Fig. 3)
# A trained second layer takes lr / width: with lr 1 a step changes the output by O(width) and diverges.

# the run of seed s draws its training data from SEED_STRIDE*s + TRAIN_SEED_OFFSET, its test set from ... + TEST_SEED_OFFSET
SEED_STRIDE = 1000
TRAIN_SEED_OFFSET = 17
TEST_SEED_OFFSET = 99


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


def run_group(rows, seeds, d, k, steps, lr, device, progress=False):
    """Train every (row, seed) of rows that share one architecture as one batch. Returns one dict per row
    with per-seed arrays and the ‖W⊥‖ history."""
    s0 = rows[0].setting
    runs = [(r, s) for r in rows for s in seeds]
    gens = [torch.Generator(device=device).manual_seed(SEED_STRIDE * s + TRAIN_SEED_OFFSET) for _, s in runs]
    U = make_subspace(d, k, torch.Generator(device=device).manual_seed(SUBSPACE_SEED), device)
    teacher = Teacher(U)
    parts = [init_student(1, d, s0["width"], s0["depth"], g, device=device) for g in gens]
    student = type(parts[0])([torch.cat(ws) for ws in zip(*[p.weights for p in parts])],
                             [torch.cat(bs) for bs in zip(*[p.biases for p in parts])],
                             torch.cat([p.a for p in parts]))
    st = [r.setting for r, _ in runs]
    cfg = TrainConfig(steps=steps, lr=[ADAM_LR if x["optimizer"] == "adam" else lr for x in st],
                      lr_bias=[ADAM_LR if x["optimizer"] == "adam" else lr for x in st],
                      lr_out=[ADAM_LR if x["optimizer"] == "adam" else lr / x["width"] for x in st],
                      lam=[x["lam"] for x in st], optimizer=[x["optimizer"] for x in st],
                      loss=[x["loss"] for x in st], freeze_bias=[x["freeze_bias"] for x in st],
                      train_out=[x["train_out"] for x in st])
    W0 = student.W.clone()
    hist = train(student, teacher, cfg, gens, progress=progress)
    test_gens = [torch.Generator(device=device).manual_seed(SEED_STRIDE * s + TEST_SEED_OFFSET) for _, s in runs]
    mse = test_mse(student, teacher, 10_000, test_gens)
    W = student.W
    decay = decay_only(W0, U, cfg, steps)
    perp_end = perp_norm(W, U).cpu().numpy()
    ratio = hist["perp_norm"] / hist["w_norm"]
    srank = stable_rank(W).cpu().numpy()
    out = []
    for i, row in enumerate(rows):
        sl = slice(i * len(seeds), (i + 1) * len(seeds))
        out.append({"row": row, "ratio_init": ratio[0, sl], "ratio_final": ratio[-1, sl], "perp_final": perp_end[sl],
                    "perp_init": hist["perp_norm"][0, sl], "decay_only": decay[sl], "stable_rank": srank[sl],
                    "test_mse": mse[sl], "step": hist["step"], "perp_history": hist["perp_norm"][:, sl],
                    "interrupted": hist["interrupted"]})
    return out


@torch.no_grad()
def decay_only(W0, U, cfg: TrainConfig, steps):
    """``‖W⊥‖_F`` that the regulariser alone would leave after ``steps``: the same optimiser run on
    ``λ/2 ‖W‖²`` with the loss switched off, from the same initial ``W0: (R, h, d)``. For (P)GD this is
    ``(1 − lr λ)^T ‖W⊥(0)‖``; for Adam it is simulated (its normalised steps shrink every entry by about
    ``lr`` per step, far faster than ``lr λ`` -- so Adam's coupled weight decay is not 'tiny λ')."""
    R = W0.shape[0]
    lam = torch.tensor(cfg.lam, dtype=W0.dtype, device=W0.device).view(-1, 1, 1)
    lr = torch.tensor(cfg.lr, dtype=W0.dtype, device=W0.device).view(-1, 1, 1)
    adam = torch.tensor([o == "adam" for o in cfg.optimizer], device=W0.device)
    out = (1 - lr * lam).view(-1) ** steps * perp_norm(W0, U)
    if adam.any():
        W, m, v = W0[adam].clone(), torch.zeros_like(W0[adam]), torch.zeros_like(W0[adam])
        la, ra = lam[adam], lr[adam]
        for t in range(steps):
            g = la * W
            m.mul_(0.9).add_(g, alpha=0.1)
            v.mul_(0.999).addcmul_(g, g, value=0.001)
            W -= ra * (m / (1 - 0.9 ** (t + 1))) / ((v / (1 - 0.999 ** (t + 1))).sqrt() + 1e-8)
        out[adam] = perp_norm(W, U)
    return out.cpu().numpy() if R else out


def run_claims(seeds, d, k, steps, lr, device, progress=False, rows=ROWS):
    """Every row, grouped by architecture; results in the order of ``rows``."""
    groups = {}
    for r in rows:
        groups.setdefault((r.setting["width"], r.setting["depth"]), []).append(r)
    results = {}
    for grp in groups.values():
        for res in run_group(grp, seeds, d, k, steps, lr, device, progress):
            results[res["row"].name] = res
    return [results[r.name] for r in rows]


def verdict(res):
    """What drives the collapse of ``W⊥``, by a stated rule on the means over seeds, against what the
    regulariser alone would leave with the same optimiser (:func:`decay_only`):

    * 'loss' -- the final ``‖W⊥‖`` is below half of the regulariser-alone value;
    * 'regulariser' -- otherwise, when the regulariser alone shrinks ``‖W⊥‖`` by more than 5% and the final
      value is at most 1.05x its prediction, or has halved (the loss adds little, or holds some of ``W⊥``
      back from where decay alone would take it);
    * 'no' -- neither: no collapse at this budget (e.g. λ = 0 and the loss does not shrink ``W⊥``)."""
    final, alone, init = (float(np.mean(res[key])) for key in ("perp_final", "decay_only", "perp_init"))
    q = final / max(alone, 1e-300)
    shrink = alone / init
    if q < 0.5:
        return "loss"
    return "regulariser" if shrink < 0.95 and (q <= 1.05 or final < 0.5 * init) else "no"


def _ms(a, fmt="{:.3f}"):
    return f"{fmt.format(np.mean(a))} ± {fmt.format(np.std(a))}"


def table_rows(results, k):
    """Rows for claims.csv / claims.md: strings keyed by column."""
    out = []
    for res in results:
        r = res["row"]
        out.append({"row": r.name, "claim": r.claim, "paper": r.statement,
                    "ratio_init": _ms(res["ratio_init"]), "ratio_final": _ms(res["ratio_final"]),
                    "perp_final": _ms(res["perp_final"], "{:.2f}"), "decay_only": _ms(res["decay_only"], "{:.2f}"),
                    "stable_rank": _ms(res["stable_rank"], "{:.2f}") + f" (k = {k})",
                    "test_mse": _ms(res["test_mse"], "{:.4f}"), "verdict": verdict(res)})
    return out


COLUMNS = [("row", "row"), ("claim", "claim"), ("paper", "paper's statement"),
           ("ratio_init", "‖W⊥‖/‖W‖ init"), ("ratio_final", "‖W⊥‖/‖W‖ end"), ("perp_final", "‖W⊥‖_F end"),
           ("decay_only", "regulariser alone (same optimiser)"), ("stable_rank", "stable rank"), ("test_mse", "test MSE"),
           ("verdict", "what drives the collapse")]


def to_markdown(rows):
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r[c] for c, _ in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(results):
    import csv
    import io
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["row", "claim", "seed_index", "ratio_init", "ratio_final", "perp_init", "perp_final",
                "decay_only", "stable_rank", "test_mse", "verdict"])
    for res in results:
        for i in range(len(res["ratio_init"])):
            dec = f"{res['decay_only'][i]:.6g}"
            w.writerow([res["row"].name, res["row"].claim, i, f"{res['ratio_init'][i]:.6g}",
                        f"{res['ratio_final'][i]:.6g}", f"{res['perp_init'][i]:.6g}", f"{res['perp_final'][i]:.6g}",
                        dec, f"{res['stable_rank'][i]:.6g}", f"{res['test_mse'][i]:.6g}", verdict(res)])
    return buf.getvalue()
