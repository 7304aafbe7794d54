"""The experiments of Section 4, each a config (its command-line options and defaults, declared once), a
``run`` that computes and writes its outputs into a folder, and a ``draw`` that makes its figures from them
(``main.EXPERIMENTS`` lists them).

fig3    Fig. 3: the width-1000 student of App. E trained by PGD on tanh(<x, u>), u = (1, 1)/sqrt(2).
fig2    Fig. 2: the one-neuron toy, minimisers against lambda with the bias frozen and trained (toy.py).
claims  claims (a)-(e) along PGD runs on a multi-index teacher (claims.py).
sosp    Lemma 3.1 at certified stationary points of the population objective, and PGD from the same inits (sosp.py).
sosp-claims  claims (a)-(c) at certified points (variants.py), the lemma along exact GD and App. B (descent.py).
dimension  Fig. 3's PGD at d up to 512 with tanh and Hermite teachers, recovery of span(U) (dimension.py).
"""
import dataclasses
import os
import time

import numpy as np
import torch

from NeuralNetworks.activations import ACTIVATIONS
from NeuralNetworks.losses import LOSSES
from NeuralNetworks.train import DivergenceError, TrainConfig
from NeuralNetworks.utils import available_cores, save_figure

def option(default, help, **check):
    """A config field that is also a command-line option (main.py builds it): ``check`` holds ``lo``/``hi`` (with
    ``open``: strict bounds), ``choices``, ``nargs``."""
    return dataclasses.field(default=default, metadata={"help": help, **check})


def seed_option(help):
    """The ``seed`` field of a config: ``--seed``, default 0, ``help`` saying what it seeds."""
    return dataclasses.field(default=0, metadata={"seed": help})


FLOAT_MAX = 1e30           # training runs in float32 (largest 3.4e38)
POS, NONNEG = dict(lo=0.0, hi=FLOAT_MAX, open=True), dict(lo=0.0, hi=FLOAT_MAX)
TEST_SEED_OFFSET = 1_000_003   # fig3's test samples: seed + this
SOSP_PGD_LAMS = (1e-3, 3e-3, 1e-2, 3e-2)   # sosp: PGD runs (and certified points) beside every λ of the grid
SOSP_PERP_NODES = 8        # sosp: Gauss–Hermite nodes across span(U) of the first rule
THREADS_MIN_SOSP_WIDTH = 128   # sosp from this width: one worker process per core by default


def _lam_grid(grid):
    lo, hi, count = grid
    if not (0 < lo < hi and count >= 2 and count == int(count)):
        raise ValueError(f"--lam-grid {lo:g} {hi:g} {count:g}: needs 0 < MIN < MAX and an integer COUNT >= 2")
    return [float(x) for x in np.geomspace(lo, hi, int(count))]


def _teacher_dims(d, k):
    if k >= d:
        raise ValueError(f"--k {k} with --d {d}: W_perp lives in the orthogonal complement of the teacher's k "
                         "directions in R^d, so k must be smaller than d")


def _training(runs, d, width, batch, depth):
    """Bytes of a batch of float32 training runs: a 256-step data block, activations, weights and snapshots."""
    return 4.0 * runs * (256 * batch * (5 * d + 8) + 12 * batch * width * depth + 48 * width * d
                         + width * width * (depth - 1))


@dataclasses.dataclass
class Fig3Config:
    SHRINK = "--width (or --batch, --depth)"     # what the memory refusal suggests (not an option)
    d: int = option(2, "input dimension (paper: 2)", lo=1, hi=10**6)
    k: int = option(1, "teacher directions (paper: 1)", lo=1, hi=10**6)
    width: int = option(1000, "hidden width h (paper App. E: 1000)", lo=1, hi=10**7)
    depth: int = option(1, "hidden layers (paper: 1)", lo=1, hi=100)
    activation: str = option("smooth_relu", "1/2 log(1+e^{2z}) (paper) or relu", choices=ACTIVATIONS)
    loss: str = option("mse", "training loss (paper: mse)", choices=LOSSES)
    steps: int = option(20_000, "training steps (paper: 20 000)", lo=1, hi=10**9)
    batch: int = option(TrainConfig.batch, "fresh Gaussian samples per step (paper: 50)", lo=1, hi=10**7)
    lr: float = option(TrainConfig.lr, "learning rate of W (paper: 1)", **POS)
    lr_bias: float = option(TrainConfig.lr_bias, "learning rate of b (paper: 1)", **POS)
    lam: float = option(TrainConfig.lam, "weight decay on W (paper: 1e-4)", **NONNEG)
    pgd_threshold: float = option(TrainConfig.pgd_threshold, "perturb when ||loss gradient in W|| is below this "
                                  "(paper: 1e-3)", **NONNEG)
    pgd_radius: float = option(TrainConfig.pgd_radius, "std of the PGD perturbation (paper: 0.005)", **NONNEG)
    noise: float = option(0.0, "std of the teacher's label noise (paper: 0)", **NONNEG)
    freeze_bias: bool = option(False, "keep b at its initial value (paper: b trained)")
    seed: int = seed_option("the teacher's directions (k > 1), the init, every minibatch and PGD kick; the test "
                            "samples: seed + 1 000 003")

    def __post_init__(self):
        _teacher_dims(self.d, self.k)

    def quick(self, given):
        return dataclasses.replace(self, steps=min(self.steps, 2000))

    def memory(self):
        return _training(1, self.d, self.width, self.batch, self.depth) + 4.0 * 10_000 * (6 * self.width + self.d)

    def train_config(self):
        return TrainConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig)
                              if hasattr(self, f.name)})


def run_fig3(cfg: Fig3Config, folder, device, progress=True) -> dict:
    """Train the Fig. 3 student; writes ``history.npz``, the figures and returns the results."""
    from NeuralNetworks.model import Teacher, init_student, make_subspace, perp_norm, stable_rank
    from NeuralNetworks.train import log_spaced_steps
    from NeuralNetworks.train_fast import test_mse, train
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    U = make_subspace(cfg.d, cfg.k, gen, device)
    teacher = Teacher(U, cfg.noise)
    student = init_student(1, cfg.d, cfg.width, cfg.depth, gen, cfg.activation, device=device)
    t1 = time.perf_counter()
    hist = train(student, teacher, cfg.train_config(), gen, snapshot_steps=log_spaced_steps(cfg.steps, 40),
                 progress=progress)
    optimize_s = time.perf_counter() - t1
    test_gen = torch.Generator(device=device).manual_seed(cfg.seed + TEST_SEED_OFFSET)
    perp, wn = hist["perp_norm"][:, 0], hist["w_norm"][:, 0]
    decay = (1 - cfg.lr * cfg.lam) ** hist["step"] * perp[0]
    np.savez_compressed(os.path.join(folder, "history.npz"), u=U[:, 0].cpu().numpy(), U=U.cpu().numpy(),
                        snapshot_steps=hist["snapshot_steps"], snapshots=hist["snapshots"][:, 0], step=hist["step"],
                        perp_norm=perp, w_norm=wn, loss=hist["loss"][:, 0], grad_norm=hist["grad_norm"][:, 0],
                        decay_only_perp_norm=decay)
    draw_fig3(folder, {})
    return {"perp_ratio_init": float(perp[0] / wn[0]), "perp_ratio_final": float(perp[-1] / wn[-1]),
            "perp_norm_init": float(perp[0]), "perp_norm_final": float(perp_norm(student.W, U).item()),
            "decay_only_perp_norm_final": float(decay[-1]), "w_norm_init": float(wn[0]), "w_norm_final": float(wn[-1]),
            "stable_rank_final": float(stable_rank(student.W).item()),
            "test_mse": float(test_mse(student, teacher, 10_000, test_gen)[0]),
            "steps_run": int(hist["step"][-1]), "perturbations": int(hist["perturbations"][0]),
            "interrupted": bool(hist["interrupted"]), "optimize_s": optimize_s}


def draw_fig3(folder, res):
    from NeuralNetworks.plot import fig3_setting, plot_perp, plot_weights
    with np.load(os.path.join(folder, "history.npz")) as h:
        U = h["U"] if "U" in h else h["u"][:, None]
        save_figure(plot_weights(h["snapshots"], U, h["snapshot_steps"]), os.path.join(folder, "fig3_weights"))
        setting = fig3_setting(U, h["snapshots"].shape[1], h["step"][-1])
        save_figure(plot_perp(h["step"], h["perp_norm"], h["w_norm"], h["decay_only_perp_norm"], setting),
                    os.path.join(folder, "fig3_perp"))


def summary_fig3(res):
    return (f"fig3 (last iterate, step {res['steps_run']}): ||W_perp||/||W|| {res['perp_ratio_init']:.3f} -> "
            f"{res['perp_ratio_final']:.3f}, ||W_perp||_F {res['perp_norm_init']:.2f} -> {res['perp_norm_final']:.2f} "
            f"(weight decay alone: {res['decay_only_perp_norm_final']:.2f}), test MSE {res['test_mse']:.2e}")


@dataclasses.dataclass
class Fig2Config:
    activation: str = option("smooth_relu", "1/2 log(1+e^{2z}) (paper) or relu", choices=ACTIVATIONS)
    lam_grid: tuple = option((1e-4, 10.0, 41), "log-spaced lambda grid MIN MAX COUNT", nargs=3,
                            metavar=("MIN", "MAX", "COUNT"), **NONNEG)

    def __post_init__(self):
        _lam_grid(self.lam_grid)

    def quick(self, given):
        return dataclasses.replace(self, lam_grid=(*self.lam_grid[:2], min(self.lam_grid[2], 9)))

    def memory(self):
        return 0.0


def run_fig2(cfg: Fig2Config, folder, device, progress=True) -> dict:
    """Minimisers of the one-neuron toy over the λ grid, bias frozen and trained (exact expectations)."""
    from NeuralNetworks.toy import minimise
    lams = np.array(_lam_grid(cfg.lam_grid))
    wf, _, ff = minimise(lams, False, cfg.activation)
    wt, bt, ft = minimise(lams, True, cfg.activation)
    res = {"activation": cfg.activation, "lambda": lams, "w_frozen": wf, "objective_frozen": ff,
           "w_trained": wt, "b_trained": bt, "objective_trained": ft, "max_abs_w_trained": float(np.max(np.abs(wt))),
           "smallest_lambda_with_w_frozen_zero": float(lams[np.argmax(wf < 1e-8)]) if np.any(wf < 1e-8) else None,
           "interrupted": False}
    draw_fig2(folder, res)
    return res


def draw_fig2(folder, res):
    from NeuralNetworks.plot import plot_fig2
    save_figure(plot_fig2(np.asarray(res["lambda"]), np.asarray(res["w_frozen"]), np.asarray(res["w_trained"]),
                          res["activation"]), os.path.join(folder, "fig2_bias"))


def summary_fig2(res):
    return (f"fig2 ({res['activation']}): |w*| with bias frozen {res['w_frozen'][0]:.4f} at lambda "
            f"{res['lambda'][0]:.0e}, reaches 0 at lambda {res['smallest_lambda_with_w_frozen_zero']}; with bias "
            f"trained max |w*| = {res['max_abs_w_trained']:.1e}")


@dataclasses.dataclass
class ClaimsConfig:
    SHRINK = "--seeds (or --d)"     # what the memory refusal suggests (not an option)
    d: int = option(20, "input dimension (multi-index teacher)", lo=1, hi=10**5)
    k: int = option(2, "teacher directions", lo=1, hi=10**5)
    steps: int = option(10_000, "training steps of every run (fits the grid in about 3 minutes on 2 cores)",
                        lo=1, hi=10**9)
    seeds: int = option(3, "seeds per row", lo=1, hi=1000)
    lr: float = option(1.0, "learning rate of W and b in the GD/PGD rows (Fig. 3's)", **POS)
    seed: int = seed_option("the first of the --seeds seeds SEED, SEED+1, ...: each run's init, minibatches and "
                            "test set (the teacher's directions are fixed: model.SUBSPACE_SEED)")

    def __post_init__(self):
        _teacher_dims(self.d, self.k)

    def quick(self, given):
        return dataclasses.replace(self, steps=min(self.steps, 1000))

    def memory(self):
        from NeuralNetworks.claims import ROWS
        return (_training(len(ROWS) * self.seeds, self.d, 1024, TrainConfig.batch, 3)
                + 4.0 * 10_000 * (6 * 1024 + self.d) * self.seeds)


def run_claims(cfg: ClaimsConfig, folder, device, progress=True) -> dict:
    """Every row of the claims grid over the seeds; writes the table, CSV, history and figure."""
    from NeuralNetworks import claims, report
    results = claims.run_claims(list(range(cfg.seed, cfg.seed + cfg.seeds)), cfg.d, cfg.k, cfg.steps, cfg.lr,
                                device, progress=progress)
    head = (f"Claims grid: d = {cfg.d}, k = {cfg.k}, {cfg.steps} steps, lr {cfg.lr} (Adam 1e-3), batch "
            f"{TrainConfig.batch}, {cfg.seeds} seeds; mean ± sd over seeds.\n\n")
    with open(os.path.join(folder, "claims.md"), "w") as f:
        f.write(head + report.claims_table(report.claims_rows(results, cfg.k)))
    with open(os.path.join(folder, "claims.csv"), "w") as f:
        f.write(report.claims_csv(results))
    np.savez_compressed(os.path.join(folder, "claims_history.npz"),
                        **{f"{key}_{i}": r[name] for i, r in enumerate(results)
                           for key, name in (("step", "step"), ("perp", "perp_history"), ("null", "null_history"))})
    res = {"d": cfg.d, "k": cfg.k, "steps": cfg.steps, "seeds": cfg.seeds, "lr": cfg.lr,
           "rows": [{"row": r["row"].name, "claim": r["row"].claim, "setting": r["row"].setting,
                     "ratio_init": r["ratio_init"], "ratio_final": r["ratio_final"], "perp_init": r["perp_init"],
                     "perp_final": r["perp_final"], "null": r["null"], "stable_rank": r["stable_rank"],
                     "test_mse": r["test_mse"], "verdict": claims.verdict(r)} for r in results],
           "interrupted": any(r["interrupted"] for r in results)}
    draw_claims(folder, res)
    return res


def draw_claims(folder, res):
    from NeuralNetworks.claims import ROWS
    from NeuralNetworks.plot import plot_claims, plot_claims_end
    setting = (f"teacher: mean of tanh over k = {res['k']} directions in d = {res['d']}; {res['steps']} steps, "
               f"{res['seeds']} seeds")
    save_figure(plot_claims_end(res["rows"], setting), os.path.join(folder, "claims_end"))
    rows = {r.name: r for r in ROWS}
    with np.load(os.path.join(folder, "claims_history.npz")) as h:
        results = [{"row": rows[r["row"]], "step": h[f"step_{i}"], "perp_history": h[f"perp_{i}"],
                    "null_history": h[f"null_{i}"]} for i, r in enumerate(res["rows"])]
    save_figure(plot_claims(results, setting), os.path.join(folder, "claims_perp"))


def summary_claims(res):
    return (f"claims: {len(res['rows'])} rows x {res['seeds']} seeds, {res['steps']} steps; last iterate's "
            "||W_perp||/||W|| (mean over seeds) per row: "
            + "; ".join(f"{r['row']}: {np.mean(r['ratio_final']):.2f} ({r['verdict']})" for r in res["rows"]))


@dataclasses.dataclass
class SospConfig:
    SHRINK = "--width (or the COUNT of --lam-grid, --batch)"     # what the memory refusal suggests (not an option)
    d: int = option(2, "input dimension (the quadrature is a tensor grid: d <= 3)", lo=2, hi=3)
    k: int = option(1, "teacher directions", lo=1, hi=2)
    width: int = option(1000, "hidden width h (paper App. E: 1000)", lo=1, hi=10**5)
    seeds: int = option(3, "seeds (inits) per point", lo=1, hi=1000)
    lam_grid: tuple = option((1e-5, 1e-1, 9), "log-spaced lambda grid MIN MAX COUNT", nargs=3,
                            metavar=("MIN", "MAX", "COUNT"), **NONNEG)
    offset: float = option(0.0, "constant added to the teacher, y = c + tanh(<x, u>) (paper: 0)", lo=-1e6, hi=1e6)
    a_init: str = option("paper", "second layer a ~ N(0, 1/h^2) (paper) or a = 1/h for every neuron",
                         choices=("paper", "constant"))
    nodes: int = option(None, "Gauss-Hermite nodes along each axis of span(U) of the first rule (default 90, 40 "
                        "for k = 2; 8 across it), refined until doubling it moves g by < 1e-10", lo=4, hi=640)
    collapse_tol: float = option(0.01, "PGD has collapsed when ||W_perp||/||W|| is within this of the certified "
                                 "point's", **POS)
    steps: int = option(20_000, "PGD steps (paper: 20 000)", lo=1, hi=10**9)
    batch: int = option(TrainConfig.batch, "PGD: fresh Gaussian samples per step (paper: 50)", lo=1, hi=10**7)
    lr: float = option(TrainConfig.lr, "PGD: learning rate of W (paper: 1)", **POS)
    lr_bias: float = option(TrainConfig.lr_bias, "PGD: learning rate of b (paper: 1)", **POS)
    pgd_threshold: float = option(TrainConfig.pgd_threshold, "PGD: perturbation threshold (paper: 1e-3)", **NONNEG)
    pgd_radius: float = option(TrainConfig.pgd_radius, "PGD: perturbation std (paper: 0.005)", **NONNEG)
    seed: int = seed_option("the first of the --seeds inits SEED, SEED+1, ...; PGD starts from SEED's init, its "
                            "minibatches and kicks from SEED + 7 919 (the teacher's directions are fixed: "
                            "model.SUBSPACE_SEED)")

    def __post_init__(self):
        from NeuralNetworks.quadrature import MAX_GRID
        _teacher_dims(self.d, self.k)
        _lam_grid(self.lam_grid)
        self.nodes = self.nodes or {1: 90, 2: 40}[self.k]
        if self.nodes ** self.k * SOSP_PERP_NODES ** (self.d - self.k) > MAX_GRID:
            raise ValueError(f"--nodes {self.nodes}: the first rule may have at most {MAX_GRID} nodes")

    def quick(self, given):
        grid = (*self.lam_grid[:2], min(self.lam_grid[2], 3)) if "lam_grid" in given else (1e-3, 1e-1, 3)
        return dataclasses.replace(self, width=min(self.width, 64), seeds=1, lam_grid=grid, steps=min(self.steps, 2000))

    def default_threads(self):
        return available_cores() if self.width >= THREADS_MIN_SOSP_WIDTH else 1

    def memory(self):
        from NeuralNetworks.quadrature import CHUNK, MAX_GRID
        p = self.width * (self.d + 1)
        runs = 2 * (self.lam_grid[2] + len(SOSP_PGD_LAMS))
        return (_training(runs, self.d, self.width, self.batch, 1) + 8.0 * 6 * CHUNK * self.width
                + 8.0 * MAX_GRID * (self.d + 2) + 8.0 * (3 * p * p if p <= 4500 else 70 * p)
                + 8.0 * 3 * self.width ** 2 * self.default_threads())     # H_b (h, h) and eigvalsh, per worker


def run_sosp(cfg: SospConfig, folder, device, progress=True, workers=1) -> dict:
    """Certified points over the λ grid x seeds x bias trained / frozen, and PGD from the first seed's init
    (``workers`` > 1: in that many single-threaded processes, PGD one of their jobs; see ``jobs.run_jobs``)."""
    from NeuralNetworks import report, sosp
    grid, seeds = _lam_grid(cfg.lam_grid), list(range(cfg.seed, cfg.seed + cfg.seeds))
    extra = [lam for lam in SOSP_PGD_LAMS if grid[0] <= lam <= grid[-1] and not np.isclose(grid, lam).any()]
    pgd_lams = sorted(set(grid) | set(extra))
    pgd_cfg = TrainConfig(steps=cfg.steps, batch=cfg.batch, lr=cfg.lr, lr_bias=cfg.lr_bias,
                          pgd_threshold=cfg.pgd_threshold, pgd_radius=cfg.pgd_radius)
    pgd_args = (pgd_lams, cfg.seed, cfg.d, cfg.k, cfg.width, cfg.offset, cfg.a_init, pgd_cfg, device)
    t0 = time.perf_counter()
    rows, U, stopped, side = sosp.sweep(grid, seeds, d=cfg.d, k=cfg.k, width=cfg.width, offset=cfg.offset,
                                        a_init=cfg.a_init, coarse=(cfg.nodes, SOSP_PERP_NODES), extra_lams=extra,
                                        workers=workers, beside=(sosp.pgd_runs, pgd_args), progress=progress)
    res = {"width": cfg.width, "d": cfg.d, "k": cfg.k, "offset": cfg.offset, "a_init": cfg.a_init,
           "lambda_grid": grid, "seeds": seeds, "collapse_tol": cfg.collapse_tol, "workers": workers,
           "points_planned": 2 * (len(grid) * len(seeds) + len(extra)), "sweep_s": time.perf_counter() - t0}
    if not stopped and side is None:        # one process: PGD after the points (a Ctrl-C keeps what was trained)
        try:
            t1 = time.perf_counter()
            side = sosp.pgd_runs(*pgd_args, progress=progress), time.perf_counter() - t1
        except KeyboardInterrupt:           # before PGD's first step: keep the certified points
            stopped = True
    res["points"] = _write_points(folder, rows, U, cfg.offset)
    if stopped:                              # no PGD, table or figure: they compare whole λ columns
        return {**res, "pgd": [], "interrupted": True}
    (hist, lam_r, frozen_r), res["pgd_s"] = side
    res["pgd"] = _pgd_rows(cfg, hist, lam_r, frozen_r, rows)
    np.savez_compressed(os.path.join(folder, "sosp_pgd.npz"), step=hist["step"], perp_norm=hist["perp_norm"],
                        w_norm=hist["w_norm"], lam=lam_r, frozen=frozen_r)
    with open(os.path.join(folder, "sosp.md"), "w") as f:
        f.write(report.sosp_table(res["points"], res["pgd"], grid))
    draw_sosp(folder, res)
    return {**res, **_certified_summary(res["points"]), "interrupted": bool(hist["interrupted"])}


def _certified_summary(points):
    """The headline numbers of ``sosp``, over the certified points only (``certify.point_type``: minimum), and the
    count of each type; maxima are None where no point of that kind is certified."""
    cert = [p for p in points if p["type"] == "minimum"]
    by = {b: [p["perp_ratio"] for p in cert if p["bias"] == b] for b in ("trained", "frozen")}
    def big(key, pts=cert):
        return max((p[key] for p in pts), default=None)
    return {"certified": len(cert), "types": {t: sum(p["type"] == t for p in points) for t in
                                             ("minimum", "saddle", "uncertified")},
            "trained_max_perp_ratio": max(by["trained"], default=None),
            "frozen_max_perp_ratio": max(by["frozen"], default=None), "max_grad_norm": big("grad_norm"),
            "max_grad_norm_fine": big("grad_norm_fine"), "max_quad_change": big("quad_change"),
            "saddles": sum(p["type"] == "saddle" for p in points)}


def _pgd_rows(cfg, hist, lam_r, frozen_r, rows):
    """Per PGD run: its end and floor ratio against the certified point's, and the steps to collapse."""
    from NeuralNetworks.sosp import decay_only_steps, steps_to_collapse
    ratio = hist["perp_norm"] / hist["w_norm"]
    tail = hist["step"] >= 0.8 * hist["step"][-1]
    target = {(r["lam"], r["bias"]): r["perp_ratio"] for r in rows if r["seed"] == cfg.seed}
    out = []
    for i, (lam, fb) in enumerate(zip(lam_r, frozen_r)):
        bias = "frozen" if fb else "trained"
        tgt = target[(float(lam), bias)]
        out.append({"lam": float(lam), "bias": bias, "ratio_certified": tgt, "ratio_end": float(ratio[-1, i]),
                    "ratio_floor": float(np.median(ratio[tail, i])), "one_over_lr_lam": 1.0 / (cfg.lr * lam),
                    "steps_to_collapse": steps_to_collapse(hist["step"], ratio[:, i], tgt, cfg.collapse_tol),
                    "decay_only_steps": decay_only_steps(hist["step"], hist["perp_norm"][0, i], hist["w_norm"][:, i],
                                                         lam, cfg.lr, tgt, cfg.collapse_tol)})
    return out


def _cell(v):
    """A CSV cell: empty for None, 6 significant digits for a float."""
    return "" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)


POINT_COLUMNS = ["seed", "lam", "bias", "type", "reason", "perp_ratio", "perp_norm", "par_norm", "aposteriori_bound",
                 "lemma_bound", "grad_norm", "grad_norm_fine", "grad_w_norm", "lam_min_hessian", "lam_min_hb",
                 "stein_residual", "g", "loss", "nodes_par", "nodes_perp", "quad_capped", "quad_change", "nfev",
                 "escapes", "seconds"]


def _write_points(folder, rows, U, offset):
    """``sosp.csv`` and ``sosp_points.npz`` of the certified points; returns them as plain dicts."""
    from NeuralNetworks.certify import point_type
    points = [{k: v for k, v in r.items() if k not in ("theta", "a")} for r in rows]
    for p in points:
        p["type"], p["reason"] = point_type(p)
    if not rows:
        return points
    with open(os.path.join(folder, "sosp.csv"), "w") as f:
        f.write("\n".join([",".join(POINT_COLUMNS)] + [",".join(_cell(p[c]) for c in POINT_COLUMNS)
                                                       for p in points]) + "\n")
    np.savez_compressed(os.path.join(folder, "sosp_points.npz"),
                        W=np.stack([r["theta"][:, :-1].numpy() for r in rows]),
                        b=np.stack([r["theta"][:, -1].numpy() for r in rows]),
                        a=np.stack([r["a"].numpy() for r in rows]), lam=np.array([r["lam"] for r in rows]),
                        bias_trained=np.array([r["bias"] == "trained" for r in rows]),
                        seed=np.array([r["seed"] for r in rows]), U=U.numpy(), offset=offset)
    return points


def draw_sosp(folder, res):
    """``sosp``: the certified points and PGD; ``sosp_bias``: frozen against trained bias (the network-scale
    Fig. 2, drawn like the paper's Fig. 2)."""
    from NeuralNetworks.plot import plot_sosp, plot_sosp_bias
    if res["pgd"]:
        grid = [p for p in res["points"] if p["lam"] in res["lambda_grid"]]
        teacher = f"{res['offset']:g} + tanh<x, u>" if res["offset"] else "tanh<x, u>"
        setting = f"width {res['width']}, d = {res['d']}, k = {res['k']}, teacher {teacher}"
        save_figure(plot_sosp(grid, res["pgd"], res["collapse_tol"], setting), os.path.join(folder, "sosp"))
        title = f"certified points, {setting}, a {'= 1/h' if res['a_init'] == 'constant' else '~ N(0, 1/h^2)'}"
        save_figure(plot_sosp_bias(grid, title), os.path.join(folder, "sosp_bias"))


def summary_sosp(res):
    if not res["pgd"]:
        done = res["points"]
        return (f"sosp: {len(done)} of {res['points_planned']} points ({sum(p['type'] == 'minimum' for p in done)} "
                "certified minima; sosp.csv, sosp_points.npz), without PGD, table or figure")
    col = {p["lam"]: p for p in res["pgd"] if p["bias"] == "trained"}
    def f(v, spec):
        return "-" if v is None else format(v, spec)
    return (f"sosp: width {res['width']}, {res['certified']} of {len(res['points'])} points certified minima "
            f"({res['types']['saddle']} saddles, {res['types']['uncertified']} uncertified: see sosp.csv 'reason'); "
            f"at the certified: max ||grad g|| {f(res['max_grad_norm'], '.1e')}, quadrature change "
            f"{f(res['max_quad_change'], '.1e')}; max ||W_perp||/||W||: bias trained "
            f"{f(res['trained_max_perp_ratio'], '.1e')}, frozen {f(res['frozen_max_perp_ratio'], '.2g')}; "
            "PGD steps to collapse (trained): "
            + ", ".join(f"{lam:g}: {p['steps_to_collapse']}" for lam, p in sorted(col.items()) if lam >= 1e-3))


@dataclasses.dataclass
class SospClaimsConfig:
    rows: str = option("all", "comma-separated rows (variants.VARIANTS: base, width-64, width-1000, depth-2, "
                       "second-layer, depth-2-all, log-cosh, logistic, two-directions) or all")
    d: int = option(2, "input dimension (the quadrature is a tensor grid: d <= 3; two-directions: at least 3)",
                    lo=2, hi=3)
    seeds: int = option(3, "seeds (inits) per point", lo=1, hi=1000)
    lams: tuple = option((1e-4, 1e-3, 1e-2), "lambdas of the certified points", nargs="+", **POS)
    max_iter: int = option(3000, "L-BFGS iterations per search", lo=1, hi=10**7)
    newton_steps: int = option(15, "damped Newton steps after an L-BFGS search that ends above ||grad g|| 1e-8 "
                               "(0: none; a point not converged after them is reported so)", lo=0, hi=10**6)
    path_rows: str = option("base,depth-2,second-layer,log-cosh", "rows of the exact-GD paths (lemma per step)")
    path_lam: float = option(1e-4, "lambda of the paths (the claims grid's)", **POS)
    path_steps: int = option(10_000, "exact GD steps of each path (the claims grid's)", lo=1, hi=10**7)
    path_lr: float = option(1.0, "step size of the paths (the claims grid's)", **POS)
    algo_lam: float = option(1e-2, "lambda of the App. B algorithm runs (base row)", **POS)
    algo_steps: int = option(20_000, "step cap of each algorithm run", lo=1, hi=10**7)
    width: int = None          # caps every row's width (quick runs); none given: the widest row's, no cap
    seed: int = seed_option("the first of the --seeds inits SEED, SEED+1, ... of the certified points; the "
                            "exact-GD paths and App. B runs always start from seed 0's init")

    def __post_init__(self):
        from NeuralNetworks.variants import VARIANTS
        self.width = self.width or max(v.width for v in VARIANTS.values())
        for name in ("rows", "path_rows"):
            value = getattr(self, name)
            rows = list(VARIANTS) if value == "all" else [r for r in value.split(",") if r]
            bad = [r for r in rows if r not in VARIANTS]
            if bad or not rows:
                raise ValueError(f"--{name.replace('_', '-')} {value}: unknown row {bad[0] if bad else '(none)'}; "
                                 f"choose from {', '.join(VARIANTS)} or all")
            setattr(self, name, ",".join(rows))

    def quick(self, given):
        return dataclasses.replace(self, width=16, seeds=1, lams=(1e-2,), path_steps=min(self.path_steps, 300),
                                   algo_steps=min(self.algo_steps, 300), max_iter=min(self.max_iter, 1000))

    def default_threads(self):
        return available_cores()

    def memory(self):
        from NeuralNetworks.quadrature import MAX_GRID
        return 8.0 * (3 * 4500 ** 2 + 6 * MAX_GRID * 1000)


def run_sosp_claims(cfg: SospClaimsConfig, folder, device, progress=True, workers=1) -> dict:
    """Certified points per row x seed x λ x bias trained / frozen, the exact-GD paths and the App. B
    algorithms, as one pool of jobs (longest first); writes the CSV, points, table, paths and figures."""
    from NeuralNetworks import descent, report, variants
    from NeuralNetworks.jobs import run_jobs
    keys = [(r, s, lam, fb) for r in cfg.rows.split(",") for s in range(cfg.seed, cfg.seed + cfg.seeds)
            for lam in cfg.lams for fb in (False, True)]
    order = sorted(range(len(keys)), key=lambda j: variants.job_cost(keys[j][0], keys[j][2], keys[j][3]))
    jobs = [(descent.path_job, (r, cfg.d, cfg.path_lam, cfg.path_lr, cfg.path_steps, cfg.width))
            for r in cfg.path_rows.split(",")]
    jobs += [(descent.method_job, (m, cfg.d, cfg.algo_lam, cfg.algo_steps, cfg.width)) for m in descent.METHODS]
    jobs += [(variants.certify_job, (*keys[j], cfg.d, cfg.max_iter, cfg.width, cfg.newton_steps)) for j in order]
    done = dict(run_jobs(jobs, workers, progress, desc="sosp-claims"))
    out = [done[i] for i in range(len(jobs))]
    n_paths, n_methods = len(cfg.path_rows.split(",")), len(descent.METHODS)
    paths, methods = out[:n_paths], out[n_paths:n_paths + n_methods]
    points = [None] * len(keys)            # back in the order of the rows (the jobs ran longest first)
    for j, p in zip(order, out[n_paths + n_methods:]):
        points[j] = p
    rows = variants.summary_rows(points)
    _write_claim_points(folder, points)
    with open(os.path.join(folder, "sosp_claims.md"), "w") as f:
        f.write(report.sosp_claims_table(rows))
    np.savez_compressed(os.path.join(folder, "sosp_claims_paths.npz"),
                        **{f"{k}_{i}": p[k] for i, p in enumerate(paths) for k in p if k not in ("row", "seconds")},
                        rows=np.array([p["row"] for p in paths]))
    res = {"rows": rows, "paths": [_path_summary(p, cfg) for p in paths], "methods": methods,
           "points": [{k: v for k, v in p.items() if k not in ("W", "U")} for p in points],
           "settings": dataclasses.asdict(descent.MethodSettings()), "workers": workers, "interrupted": False}
    draw_sosp_claims(folder, res)
    return res


CLAIM_COLUMNS = ["row", "claim", "lam", "seed", "bias_trained", "type", "reason", "perp_ratio", "grad_norm",
                 "grad_norm_fine", "lam_min_hessian", "lam_min_hb", "stein_residual", "aposteriori_bound", "tightness",
                 "lemma_bound", "perp_norm", "par_norm", "grad_w_norm", "g", "loss", "width", "d", "k", "nodes_par",
                 "nodes_perp", "quad_capped", "quad_change", "prune_change", "nfev", "newton_steps", "escapes",
                 "seconds"]


def _write_claim_points(folder, points):
    """``sosp_claims.csv`` and ``sosp_claims_points.npz`` (W as (points, h, d) and U as (points, d, k), padded
    with NaN to the largest width, d and k; ``width``, ``d``, ``k`` say how much of each is real)."""
    with open(os.path.join(folder, "sosp_claims.csv"), "w") as f:
        f.write(",".join(CLAIM_COLUMNS) + "\n")
        for p in points:
            f.write(",".join(_cell(p["bias"] == "trained" if c == "bias_trained" else p[c]) for c in CLAIM_COLUMNS)
                    + "\n")
    h, d, k = (max(p[key] for p in points) for key in ("width", "d", "k"))
    W, U = np.full((len(points), h, d), np.nan), np.full((len(points), d, k), np.nan)
    for i, p in enumerate(points):
        W[i, :p["width"], :p["d"]], U[i, :p["d"], :p["k"]] = p["W"], p["U"]
    def arr(key):
        return np.array([p[key] for p in points])
    np.savez_compressed(os.path.join(folder, "sosp_claims_points.npz"), W=W, U=U, row=arr("row"), lam=arr("lam"),
                        seed=arr("seed"), bias_trained=arr("bias") == "trained", width=arr("width"), d=arr("d"),
                        k=arr("k"), type=arr("type"))


def _path_summary(p, cfg):
    """One path in numbers: ‖W⊥‖ at the end against the regulariser alone and the rate prediction."""
    return {"row": p["row"], "steps": int(p["step"][-1]), "perp_start": float(p["perp_norm"][0]),
            "perp_end": float(p["perp_norm"][-1]), "regulariser_alone_end": float(p["regulariser_alone"][-1]),
            "predicted_end": float(p["predicted"][-1]), "max_residual": float(np.nanmax(p["residual"])),
            "median_rate": float(np.median(p["rate"])), "hb_min": float(p["hb_min"].min()),
            "hb_median": float(np.median(p["hb_median"])), "hb_max": float(p["hb_max"].max()),
            "lam": cfg.path_lam, "seconds": p["seconds"]}


def draw_sosp_claims(folder, res):
    from NeuralNetworks.plot import plot_sosp_claims, plot_lemma_paths
    def values(key, points):
        return "/".join(f"{v:g}" for v in sorted({p[key] for p in points}))
    pts = res["points"]
    save_figure(plot_sosp_claims(pts, f"teacher tanh<x, u>, d = {values('d', pts)}, widths {values('width', pts)}, "
                                      f"seeds {values('seed', pts)}"), os.path.join(folder, "sosp_claims"))
    with np.load(os.path.join(folder, "sosp_claims_paths.npz")) as z:
        paths = [{k: z[f"{k}_{i}"] for k in ("step", "perp_norm", "regulariser_alone", "predicted", "rate",
                                            "hb_min", "hb_median", "hb_max")} | {"row": str(r)}
                 for i, r in enumerate(z["rows"])]
    setting = (f"d = {values('d', pts)}, {res['paths'][0]['steps'] + 1} steps, bias trained, seed 0's init"
               if res["paths"] else "")
    save_figure(plot_lemma_paths(paths, res["paths"][0]["lam"] if res["paths"] else None, setting),
                os.path.join(folder, "sosp_claims_paths"))


def summary_sosp_claims(res):
    rows = "; ".join(f"{r['row']}: trained {r['trained_max_ratio']:.1e}, frozen {r['frozen_max_ratio']:.1e}, "
                     f"{r['certified']}/{r['points']} certified, {r['verdict']}" for r in res["rows"])
    paths = "; ".join(f"{p['row']}: ||W_perp|| {p['perp_start']:.3g} -> {p['perp_end']:.3g} (regulariser alone "
                      f"{p['regulariser_alone_end']:.3g}, residual {p['max_residual']:.0e})" for p in res["paths"])
    algos = "; ".join(f"{m['method']}: SOSP at {m['steps_to_sosp']}, collapse at {m['steps_to_collapse']}"
                      for m in res["methods"])
    return f"sosp-claims: {rows} | paths: {paths} | algorithms: {algos}"


@dataclasses.dataclass
class DimensionConfig:
    SHRINK = "--width (or --seeds, --dims)"     # what the memory refusal suggests (not an option)
    dims: tuple = option((2, 8, 32, 128, 512), "input dimensions d", nargs="+", kind=int, lo=2, hi=10**5)
    ks: tuple = option((1, 2), "teacher directions k (each < every d)", nargs="+", kind=int, lo=1, hi=10**5)
    teachers: str = option("tanh,he4", "links f of the teacher mean_j f(<x, u_j>), comma-separated: tanh (paper), "
                           "he2, he4 (He_2/sqrt 2, He_4/sqrt 24)")
    width: int = option(128, "hidden width h (paper: 1000; 128 fits d = 512 in the 20-minute budget)", lo=1, hi=10**6)
    steps: int = option(10_000, "PGD steps of every run (paper: 20 000; 10 000 fits the budget)", lo=1, hi=10**9)
    seeds: int = option(3, "seeds per (d, k, teacher)", lo=1, hi=1000)
    test_samples: int = option(10_000, "fresh samples of each run's test MSE", lo=1, hi=10**7)
    noise_samples: int = option(4096, "fresh samples of the end point's gradient-noise estimate", lo=2, hi=10**7)
    seed: int = seed_option("the first of the --seeds seeds SEED, SEED+1, ...: each run's init, minibatches, kicks "
                            "and test set (the k > 1 teacher frame is fixed: model.SUBSPACE_SEED)")

    def __post_init__(self):
        from NeuralNetworks.dimension import LINKS
        self.dims, self.ks = tuple(int(d) for d in self.dims), tuple(int(k) for k in self.ks)
        links = [t for t in self.teachers.split(",") if t]
        bad = [t for t in links if t not in LINKS]
        if bad or not links:
            raise ValueError(f"--teachers {self.teachers}: unknown teacher {bad[0] if bad else '(none)'}; choose "
                             f"from {', '.join(LINKS)}")
        self.teachers = ",".join(links)
        if not any(k < d for d in self.dims for k in self.ks):     # a cell with k >= d has no W_perp: skipped
            raise ValueError(f"--dims {' '.join(map(str, self.dims))} with --ks {' '.join(map(str, self.ks))}: "
                             "every k is >= every d, so W_perp is empty in every cell; a k must be smaller than a d")

    def quick(self, given):
        return dataclasses.replace(self, dims=tuple(d for d in self.dims if d <= 32) or self.dims[:1],
                                   width=min(self.width, 64), steps=min(self.steps, 1000), seeds=min(self.seeds, 2),
                                   test_samples=min(self.test_samples, 2000),
                                   noise_samples=min(self.noise_samples, 512))

    def memory(self):
        d = max(self.dims)
        return (_training(4 * self.seeds, d, self.width, TrainConfig.batch, 1)
                + 4.0 * 2 * self.seeds * 7 * self.width * d
                + 4.0 * 2 * self.seeds * max(self.test_samples, self.noise_samples) * (3 * self.width + 2 * d))


def run_dimension(cfg: DimensionConfig, folder, device, progress=True) -> dict:
    """Fig. 3's PGD at every (d, k, teacher) over the seeds, each batch of seeds with its nulls (dimension.py);
    writes ``dimension.csv``, ``dimension_history.npz``, the figure, and returns the per-cell summaries."""
    from NeuralNetworks import dimension as dm
    seeds, train_cfg = list(range(cfg.seed, cfg.seed + cfg.seeds)), TrainConfig(steps=cfg.steps)
    rows, cells, hist, interrupted = [], [], {}, False
    grid = [(d, k, link) for d in cfg.dims for k in cfg.ks if k < d      # k >= d: W_perp is empty (d = 2, k = 2)
            for link in cfg.teachers.split(",")]
    for d, k, link in grid:
        t0 = time.perf_counter()
        out = dm.run_cell(d, k, link, seeds, cfg.width, train_cfg, device, cfg.test_samples, cfg.noise_samples,
                          progress)
        cell = dm.cell_rows(out, d, k, link, seeds, cfg.width, train_cfg)
        rows += cell
        cells.append({**dm.cell_summary(cell), "seconds": time.perf_counter() - t0})
        hist.update({f"{key}_d{d}_k{k}_{link}": v for key, v in dm.history_arrays(out).items()})
        if out["interrupted"]:             # Ctrl-C: the cells so far (this one up to its last recorded step) are kept
            interrupted = True
            break
    dm.write_csv(os.path.join(folder, "dimension.csv"), rows)
    np.savez_compressed(os.path.join(folder, "dimension_history.npz"), **hist)
    res = {"settings": {**dataclasses.asdict(train_cfg), "width": cfg.width, "seeds": seeds},
           "recovery_rule": {"max_angle_below_deg": dm.RECOVERY_ANGLE, "mse_ratio_below": dm.RECOVERY_MSE,
                             "par_norm_kept_fraction": dm.KEPT_PAR},
           "cells": cells, "interrupted": interrupted}
    draw_dimension(folder, res)
    return res


def draw_dimension(folder, res):
    from NeuralNetworks.plot import plot_dimension
    s = res["settings"]
    setting = (f"width {s['width']}, {s['steps']} PGD steps, batch {s['batch']}, λ = {s['lam']:g}, "
               f"{len(s['seeds'])} seeds")
    save_figure(plot_dimension(res["cells"], setting), os.path.join(folder, "dimension"))


def summary_dimension(res):
    big = max(c["d"] for c in res["cells"])
    cells = "; ".join(f"{c['teacher']} k={c['k']}: angle {c['max_angle_final']['median']:.1f} deg, MSE/const "
                      f"{c['mse_ratio']['median']:.2f}, ||W_perp||/||W|| {c['perp_ratio_final']['median']:.2f} "
                      f"(null {c['null_perp_ratio_final']['median']:.2f}), {c['category']}"
                      for c in res["cells"] if c["d"] == big)
    found = sum(c["recovered"] for c in res["cells"])
    return f"dimension: {found}/{len(res['cells'])} cells recover span(U); at d = {big}: {cells}"


ERRORS = {DivergenceError: "the run diverged or overflowed float32: try a smaller --lr / --lr-bias (or --lam, "
                           "--noise)"}     # an error an experiment raises -> the hint of its one line (exit 2)
