"""Section 4 of the paper: structure discovery in neural networks.

``python NeuralNetworks/main.py`` reproduces Fig. 3 with the authors' settings (App. E):
a width-1000 two-layer student with activation 1/2 log(1 + e^{2z}) trained by perturbed gradient
descent on the single-index teacher tanh(<x, u>), u = (1, 1)/sqrt(2).
``--experiment fig2``: the one-neuron toy of Fig. 2 (why the bias must be trained).
``--experiment claims``: a measured check of each claim (a)-(e) on a multi-index teacher.
``--experiment sosp``: Lemma 3.1 measured where it applies -- certified stationary points of the population
objective over a λ grid, bias trained vs frozen, and how many PGD steps reach them.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # before torch loads; see utils.set_threads


def _interrupted(kind, value, tb, _default=sys.excepthook):
    """A Ctrl-C that reaches the top (before the optimisation has ended, or a second one while the outputs are
    written): one line, exit status 130, and no output folder changed (see utils.run_staged)."""
    if issubclass(kind, KeyboardInterrupt):
        print(f"{os.path.basename(sys.argv[0]) or 'main.py'}: interrupted; no outputs written (the output folder "
              "is as it was)", file=sys.stderr)
    else:
        _default(kind, value, tb)


sys.excepthook = _interrupted

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from NeuralNetworks.activations import ACTIVATIONS  # noqa: E402
from NeuralNetworks.train import LOSSES  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
QUICK_STEPS = {"fig3": 2000, "claims": 1000, "sosp": 2000}
DEFAULT_STEPS = {"fig3": 20_000, "claims": 10_000, "sosp": 20_000}
DEFAULT_LAM_GRID = {"fig2": ("1e-4", "10", "41"), "sosp": ("1e-5", "1e-1", "9")}
SOSP_PGD_LAMS = (1e-3, 3e-3, 1e-2, 3e-2)   # the steps-to-collapse runs, beside every λ of the grid
SOSP_QUICK = {"width": 64, "lam_grid": (1e-3, 1e-1, 3), "seeds": 1}
SOSP_NODES = {1: 90, 2: 40}    # sosp: default Gauss–Hermite nodes along span(U) of the first rule, by k
SOSP_PERP_NODES = 8            # ... and across it (every certified rule of the default sweep needed 8 there)
# Every option acts in the experiments listed here, or is refused (one line, exit 2) when given to another.
COMMON_FLAGS = {"experiment", "device", "threads", "out_dir", "quick", "no_progress", "plot_only"}
_PGD = {"steps", "batch", "lr", "lr_bias", "pgd_threshold", "pgd_radius", "seed"}
USES = {
    "fig3": {"d", "k", "width", "depth", "activation", "loss", "lam", "noise", "freeze_bias"} | _PGD,
    "fig2": {"activation", "lam_grid"},                              # exact expectations: no seed, no training
    "claims": {"d", "k", "steps", "seeds", "lr", "seed"},            # every other setting is a row of the grid
    "sosp": {"d", "k", "width", "seeds", "lam_grid", "offset", "a_init", "nodes", "collapse_tol"} | _PGD,
}
PLOT_ONLY_FILES = {"fig3": ["history.npz"], "fig2": [], "claims": ["claims_history.npz"], "sosp": []}
TEST_SEED_OFFSET = 1_000_003  # fig3's test samples: seed + this (training data and init use the seed)
THREADS_MIN_SOSP_WIDTH = 128   # sosp from this width: one worker process per core (see sosp.run_jobs)
DEFAULT_D = {"fig3": 2, "claims": 20, "sosp": 2}


def _positive_int(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not an integer")
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{v} is not allowed; it must be a positive integer")
    return v


FLOAT_MAX = 1e30    # training runs in float32 (largest 3.4e38): larger step sizes, penalties or noise overflow it


def _float_at_least(lo, strict):
    def parse(s):
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{s!r} is not a number")
        if not math.isfinite(v) or v < lo or (strict and v == lo) or v > FLOAT_MAX:
            raise argparse.ArgumentTypeError(
                f"{s} is not allowed; it must be a finite number {'>' if strict else '>='} {lo:g} and at most "
                f"{FLOAT_MAX:g} (training runs in float32)")
        return v
    return parse


_positive, _nonneg = _float_at_least(0.0, True), _float_at_least(0.0, False)


class _Parser(argparse.ArgumentParser):
    """Bad input ends with one line naming the problem and exit status 2 (no usage dump)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


# torch's CPU generator reads only the low 32 bits of a seed: below 2^29 no two seeds (nor their offset and
# 1000x-strided streams) share a stream, and scikit-learn's random_state (< 2^32) accepts every one
MAX_SEED = 2 ** 29 - 1

def _threads(s):
    """--threads: an integer from 1 to 4x the cores this process may use (far more made torch's thread pool
    crash: --threads 100000 ended in a segmentation fault)."""
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not an integer")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if not 1 <= v <= 4 * cores:
        raise argparse.ArgumentTypeError(f"{v} is not allowed; it must lie in [1, {4 * cores}] (4 x the {cores} "
                                         "cores available)")
    return v



def _seed(s):
    """A seed: an integer in [0, MAX_SEED]."""
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not an integer")
    if not 0 <= v <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{s} is not allowed; a seed is an integer from 0 to 2^29 - 1 = {MAX_SEED}")
    return v


def build_parser():
    from NeuralNetworks.train import TrainConfig
    tc = TrainConfig()                     # the defaults live there, once
    p = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--experiment", choices=("fig3", "fig2", "claims", "sosp"), default="fig3",
      help="which part of Section 4 to run")
    a("--d", type=_positive_int, default=None, help="input dimension (fig3: 2, the paper's; claims: 20)")
    a("--k", type=_positive_int, default=None, help="teacher directions (fig3: 1, the paper's; claims: 2)")
    a("--width", type=_positive_int, default=1000, help="fig3, sosp: hidden width h (paper App. E: 1000)")
    a("--depth", type=_positive_int, default=1, help="fig3: hidden layers (paper: 1)")
    a("--activation", choices=ACTIVATIONS, default="smooth_relu",
      help="student / toy activation: 1/2 log(1+e^{2z}) (paper) or ReLU")
    a("--loss", choices=LOSSES, default="mse", help="fig3: training loss (paper: mse)")
    a("--batch", type=_positive_int, default=tc.batch, help="fresh Gaussian samples per step (paper: 50)")
    a("--steps", type=_positive_int, default=None,
      help="training steps (fig3: 20 000, the paper's; claims: 10 000, to fit the grid in 5 minutes on 2 cores)")
    a("--seeds", type=_positive_int, default=3, help="claims: seeds per row; sosp: seeds (inits) per point")
    a("--lam-grid", nargs=3, metavar=("MIN", "MAX", "COUNT"), default=None,
      help="fig2, sosp: log-spaced lambda grid (fig2: 1e-4 10 41; sosp: 1e-5 1e-1 9)")
    a("--offset", type=float, default=0.0,
      help="sosp: constant added to the teacher, y = c + tanh(<x, u>) (paper: 0)")
    a("--a-init", choices=("paper", "constant"), default="paper",
      help="sosp: second layer a ~ N(0, 1/h^2) (paper) or a = 1/h for every neuron")
    a("--nodes", type=_positive_int, default=None,
      help=f"sosp: Gauss-Hermite nodes along each axis of span(U) of the first rule (default {SOSP_NODES[1]}, "
           f"{SOSP_NODES[2]} for k = 2; {SOSP_PERP_NODES} across it); the certifying rule is then refined from it "
           "until doubling it moves g by < 1e-10")
    a("--collapse-tol", type=_positive, default=0.01,
      help="sosp: PGD has collapsed when ||W_perp||/||W|| is within this of its value at the certified point")
    a("--lam", type=_nonneg, default=tc.lam, help="weight decay on W (paper: 1e-4)")
    a("--lr", type=_positive, default=tc.lr, help="learning rate of W (paper: 1)")
    a("--lr-bias", type=_positive, default=tc.lr_bias, help="learning rate of b (paper: 1)")
    a("--pgd-threshold", type=_nonneg, default=tc.pgd_threshold,
      help="perturb when the norm of the loss gradient in W is below this (paper: 1e-3)")
    a("--pgd-radius", type=_nonneg, default=tc.pgd_radius, help="std of the PGD perturbation (paper: 0.005)")
    a("--noise", type=_nonneg, default=0.0, help="std of label noise of the teacher (paper: 0)")
    a("--freeze-bias", action="store_true", help="keep b at its initial value (paper: b trained)")
    a("--seed", type=_seed, default=0, help="seed of every random draw (init, data, perturbations)")
    a("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where torch computes")
    a("--threads", type=_threads, default=None,
      help=f"CPU threads (default 1: a training step's kernels are too small to share). sosp: N > 1 runs the "
           f"points and PGD in N single-threaded worker processes (default: every available core at width >= "
           f"{THREADS_MIN_SOSP_WIDTH})")
    a("--out-dir", default=None, help="output folder (default NeuralNetworks/results/<experiment>/)")
    a("--quick", action="store_true", help=f"the same run shortened (steps: {QUICK_STEPS}; fig2: 9 lambdas)")
    a("--no-progress", action="store_true", help="no progress bar")
    a("--plot-only", metavar="RESULTS_DIR", default=None,
      help="redraw the figures of an earlier run (any experiment) from the history and results it saved there, "
           "without computing")
    return p


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    from NeuralNetworks.utils import available_cores, given_options, refuse_with_plot_only, resolve_device, saved_run
    if args.plot_only is not None:
        refuse_with_plot_only(parser, args)
        try:
            args.saved = saved_run(args.plot_only, lambda config: PLOT_ONLY_FILES[config["args"]["experiment"]])
        except (ValueError, KeyError, TypeError) as e:
            parser.error(str(e) if isinstance(e, ValueError) else f"{args.plot_only}/config.json: no experiment named")
        return args
    exp = args.experiment
    ignored = [k for k in given_options(parser, args) if k not in COMMON_FLAGS | USES[exp]]
    if ignored:
        uses = ", ".join("--" + f.replace("_", "-") for f in sorted(USES[exp])) or "none of the model options"
        parser.error(f"--{ignored[0].replace('_', '-')} does not apply to --experiment {exp} (it uses {uses})")
    try:
        args.device_resolved = resolve_device(args.device)
    except ValueError as e:
        parser.error(str(e))
    exp = args.experiment
    args.d = args.d or DEFAULT_D.get(exp, 1)
    args.k = args.k or (2 if exp == "claims" else 1)
    if args.k >= args.d and exp != "fig2":                 # fig2 is the one-neuron toy: no d, no k
        parser.error(f"--k {args.k} with --d {args.d}: the teacher needs k orthonormal directions in R^d and the "
                     "experiment measures W on their orthogonal complement, so k must be smaller than d")
    args.steps = args.steps or DEFAULT_STEPS.get(exp, 0)
    if exp == "sosp":
        if args.d > 3:
            parser.error(f"--d {args.d}: the sosp quadrature is a tensor grid, it allows d <= 3")
        if not (math.isfinite(args.offset) and abs(args.offset) <= 1e6):
            parser.error(f"--offset {args.offset}: must be a number in [-1e6, 1e6] (PGD squares it in float32)")
        from NeuralNetworks.sosp import MAX_GRID
        args.nodes = args.nodes or SOSP_NODES.get(args.k, 32)
        coarse = args.nodes ** args.k * SOSP_PERP_NODES ** (args.d - args.k)
        if args.nodes < 4 or coarse > MAX_GRID:
            parser.error(f"--nodes {args.nodes}: at least 4 Gauss-Hermite nodes per axis, and at most {MAX_GRID} in "
                         f"the first rule (this one has {coarse})")
    grid_given = args.lam_grid is not None
    args.lam_grid = args.lam_grid or DEFAULT_LAM_GRID.get(exp, ("1e-4", "10", "41"))
    try:
        lo, hi, count = float(args.lam_grid[0]), float(args.lam_grid[1]), int(args.lam_grid[2])
    except ValueError:
        parser.error(f"--lam-grid {' '.join(args.lam_grid)}: expected two numbers and an integer count")
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi and count >= 2):
        parser.error(f"--lam-grid {' '.join(args.lam_grid)}: needs 0 < MIN < MAX (finite) and COUNT >= 2")
    args.lam_grid = (lo, hi, 9 if args.quick and exp == "fig2" else count)
    if args.quick and exp == "sosp":   # smaller everywhere; a grid given on the command line keeps its range
        args.width, args.seeds = min(args.width, SOSP_QUICK["width"]), min(args.seeds, SOSP_QUICK["seeds"])
        args.lam_grid = (lo, hi, min(count, 3)) if grid_given else SOSP_QUICK["lam_grid"]
    if args.quick and exp in QUICK_STEPS:
        args.steps = min(args.steps, QUICK_STEPS[exp])
    from NeuralNetworks.utils import memory_problem
    sizes = {"claims": f"--d {args.d}, --seeds {args.seeds}", "sosp": f"--width {args.width}, --d {args.d}"}
    problem = memory_problem(memory_needed(args), sizes.get(exp, f"--width {args.width}, --d {args.d}, --batch "
                                                                f"{args.batch}, --depth {args.depth}"), args.device_resolved)
    if problem:
        parser.error(problem)
    large = exp == "sosp" and args.width >= THREADS_MIN_SOSP_WIDTH
    args.threads_resolved = args.threads or (available_cores() if large else 1)
    if args.out_dir is None:
        args.out_dir = os.path.join(HERE, "results", exp)
    from NeuralNetworks.utils import check_writable
    problem = check_writable(args.out_dir)
    if problem:
        parser.error(problem)
    return args


def memory_needed(args) -> float:
    """Bytes an experiment needs at its peak, roughly: per training run (float32) its data block (256 steps of
    batches, with the labels and the one-hidden-layer step's prepared copies of ``[x, 1]``), the hidden
    activations and their gradients, the weights with their snapshots; the test set's activations; for sosp
    also the quadrature chunks and the dense Hessian or Lanczos basis (float64)."""
    exp, d = args.experiment, args.d
    if exp == "fig2":
        return 0.0

    def training(runs, width, batch, depth):
        return 4.0 * runs * (256 * batch * (5 * d + 8) + 12 * batch * width * depth + 48 * width * d
                             + width * width * (depth - 1))
    if exp == "claims":
        from NeuralNetworks.claims import ROWS
        from NeuralNetworks.train import TrainConfig
        return training(len(ROWS) * args.seeds, 1024, TrainConfig.batch, 3) + 4.0 * 10_000 * (6 * 1024 + d) * args.seeds
    if exp == "fig3":
        return training(1, args.width, args.batch, args.depth) + 4.0 * 10_000 * (6 * args.width + d)
    from NeuralNetworks.sosp import CHUNK, MAX_GRID                     # sosp
    params = args.width * (d + 1)
    runs = 2 * (args.lam_grid[2] + len(SOSP_PGD_LAMS))
    return (training(runs, args.width, args.batch, 1) + 8.0 * 6 * CHUNK * args.width + 8.0 * MAX_GRID * (d + 2)
            + 8.0 * (3 * params * params if params <= 4500 else 70 * params))


def run_fig3(args) -> dict:
    """Train the Fig. 3 student, write every output, return ``results``."""
    from NeuralNetworks.model import Teacher, init_student, make_subspace, perp_norm, stable_rank
    from NeuralNetworks.train import TrainConfig, log_spaced_steps, test_mse, train
    from NeuralNetworks.utils import optimisation_over, write_npz, write_run_record

    t0 = time.perf_counter()
    device = args.device_resolved
    gen = torch.Generator(device=device).manual_seed(args.seed)
    U = make_subspace(args.d, args.k, gen, device)
    teacher = Teacher(U, args.noise)
    student = init_student(1, args.d, args.width, args.depth, gen, args.activation, device=device)
    cfg = TrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, lr_bias=args.lr_bias, lam=args.lam,
                      pgd_threshold=args.pgd_threshold, pgd_radius=args.pgd_radius,
                      freeze_bias=args.freeze_bias, loss=args.loss)
    t1 = time.perf_counter()
    hist = train(student, teacher, cfg, gen, snapshot_steps=log_spaced_steps(args.steps, 40),
                 progress=not args.no_progress)
    optimisation_over()
    optimize_s = time.perf_counter() - t1
    steps_done = int(hist["step"][-1])
    test_gen = torch.Generator(device=device).manual_seed(args.seed + TEST_SEED_OFFSET)
    perp, wn = hist["perp_norm"][:, 0], hist["w_norm"][:, 0]
    decay = (1 - args.lr * args.lam) ** hist["step"] * perp[0]
    res = {
        "perp_ratio_init": float(perp[0] / wn[0]), "perp_ratio_final": float(perp[-1] / wn[-1]),
        "perp_norm_init": float(perp[0]), "perp_norm_final": float(perp_norm(student.W, U).item()),
        "decay_only_perp_norm_final": float(decay[-1]),
        "w_norm_init": float(wn[0]), "w_norm_final": float(wn[-1]),
        "stable_rank_final": float(stable_rank(student.W).item()),
        "test_mse": float(test_mse(student, teacher, 10_000, test_gen)[0]),
        "steps_run": steps_done, "perturbations": int(hist["perturbations"][0]),
        "interrupted": bool(hist["interrupted"]), "optimize_s": optimize_s,
    }
    u = U[:, 0].cpu().numpy()
    write_npz(os.path.join(args.out_dir, "history.npz"), u=u, snapshot_steps=hist["snapshot_steps"],
              snapshots=hist["snapshots"][:, 0], step=hist["step"], perp_norm=perp, w_norm=wn,
              loss=hist["loss"][:, 0], grad_norm=hist["grad_norm"][:, 0], decay_only_perp_norm=decay)
    draw_fig3(args.out_dir, {"snapshots": hist["snapshots"][:, 0], "u": u, "step": hist["step"], "perp_norm": perp,
                             "w_norm": wn, "decay_only_perp_norm": decay})
    res["wall_s"] = time.perf_counter() - t0
    write_run_record(args, device, res)
    return res


def run_fig2(args) -> dict:
    """Minimisers of the one-neuron toy over the lambda grid; writes the figure and results."""
    from NeuralNetworks.toy import minimise
    from NeuralNetworks.utils import write_run_record

    t0 = time.perf_counter()
    lo, hi, count = args.lam_grid
    lams = np.geomspace(lo, hi, count)
    wf, _, ff = minimise(lams, False, args.activation)
    wt, bt, ft = minimise(lams, True, args.activation)
    res = {"activation": args.activation, "lambda": lams, "w_frozen": wf, "objective_frozen": ff,
           "w_trained": wt, "b_trained": bt, "objective_trained": ft,
           "max_abs_w_trained": float(np.max(np.abs(wt))),
           "smallest_lambda_with_w_frozen_zero": (float(lams[np.argmax(wf < 1e-8)]) if np.any(wf < 1e-8) else None)}
    draw_fig2(args.out_dir, res)
    res["wall_s"] = time.perf_counter() - t0
    write_run_record(args, args.device_resolved, res)
    return res


def run_claims_grid(args) -> dict:
    """Every row of the claims grid over ``--seeds`` seeds; writes the table, CSV, figure and results."""
    from NeuralNetworks.claims import run_claims, table_rows, to_csv, to_markdown, verdict
    from NeuralNetworks.train import TrainConfig
    from NeuralNetworks.utils import optimisation_over, write_npz, write_run_record, write_text

    t0 = time.perf_counter()
    results = run_claims(list(range(args.seed, args.seed + args.seeds)), args.d, args.k, args.steps, args.lr,
                         args.device_resolved, progress=not args.no_progress)
    optimisation_over()
    rows = table_rows(results, args.k)
    head = (f"Claims grid: d = {args.d}, k = {args.k}, {args.steps} steps, lr {args.lr} (Adam 1e-3), "
            f"batch {TrainConfig.batch}, {args.seeds} seeds; mean ± sd over seeds.\n\n")
    write_text(os.path.join(args.out_dir, "claims.md"), head + to_markdown(rows))
    write_text(os.path.join(args.out_dir, "claims.csv"), to_csv(results))
    hist = {f"{key}_{i}": r[name] for i, r in enumerate(results)
            for key, name in (("step", "step"), ("perp", "perp_history"))}
    write_npz(os.path.join(args.out_dir, "claims_history.npz"), **hist)
    draw_claims(args.out_dir, hist, [r["row"].name for r in results], [r["decay_only"] for r in results], args.lr)
    res = {"d": args.d, "k": args.k, "steps": args.steps, "seeds": args.seeds,
           "rows": [{"row": r["row"].name, "claim": r["row"].claim, "setting": r["row"].setting,
                     "ratio_init": r["ratio_init"], "ratio_final": r["ratio_final"], "perp_init": r["perp_init"],
                     "perp_final": r["perp_final"], "decay_only": r["decay_only"], "stable_rank": r["stable_rank"],
                     "test_mse": r["test_mse"], "verdict": verdict(r)} for r in results],
           "interrupted": any(r["interrupted"] for r in results)}
    res["wall_s"] = time.perf_counter() - t0
    write_run_record(args, args.device_resolved, res)
    return res


def _write_points(args, rows, U):
    """``sosp.csv`` and ``sosp_points.npz`` of the certified points ``rows``; returns them as plain dicts."""
    from NeuralNetworks.sosp import SADDLE_TOL
    from NeuralNetworks.utils import write_npz, write_text
    points = [{k: v for k, v in r.items() if k not in ("theta", "a")} for r in rows]
    for p in points:
        p["type"] = "saddle" if p["lam_min_hessian"] < -SADDLE_TOL else "minimum"
    if not rows:
        return points
    write_text(os.path.join(args.out_dir, "sosp.csv"), _csv(points))
    write_npz(os.path.join(args.out_dir, "sosp_points.npz"), W=np.stack([r["theta"][:, :-1].numpy() for r in rows]),
              b=np.stack([r["theta"][:, -1].numpy() for r in rows]), a=np.stack([r["a"].numpy() for r in rows]),
              lam=np.array([r["lam"] for r in rows]), bias_trained=np.array([r["bias"] == "trained" for r in rows]),
              seed=np.array([r["seed"] for r in rows]), U=U.numpy(), offset=args.offset)
    return points


def _sosp_head(args, grid, seeds, points, pgd) -> dict:
    """The settings and points every sosp ``results.json`` starts with, whole sweep or interrupted."""
    return {"width": args.width, "d": args.d, "k": args.k, "offset": args.offset, "a_init": args.a_init,
            "lambda_grid": grid, "seeds": seeds, "points": points, "pgd": pgd, "collapse_tol": args.collapse_tol}


def _sosp_interrupted(args, rows, U, grid, seeds, sweep_s, t0) -> dict:
    """A sweep stopped by Ctrl-C (or PGD stopped before its first step): the points certified so far
    (``sosp.csv``, ``sosp_points.npz``) and results saying so; no PGD, table or figure (they compare whole λ
    columns)."""
    from NeuralNetworks.utils import write_run_record
    points = _write_points(args, rows, U)
    res = {**_sosp_head(args, grid, seeds, points, []), "points_planned": len(grid) * len(seeds) * 2,
           "sweep_s": sweep_s, "interrupted": True, "wall_s": time.perf_counter() - t0}
    write_run_record(args, args.device_resolved, res)
    return res


def run_sosp(args) -> dict:
    """Certified stationary points over the λ grid x seeds x bias mode, PGD from the same init; writes
    ``sosp.csv``, ``sosp.md``, ``sosp_points.npz``, ``sosp_pgd.npz``, the figure and results."""
    from NeuralNetworks.sosp import decay_only_steps, pgd_runs, steps_to_collapse, summary_markdown, sweep
    from NeuralNetworks.train import TrainConfig
    from NeuralNetworks.utils import optimisation_over, write_npz, write_run_record, write_text

    t0 = time.perf_counter()
    lo, hi, count = args.lam_grid
    grid = [float(x) for x in np.geomspace(lo, hi, count)]
    seeds = list(range(args.seed, args.seed + args.seeds))
    # certified points for the extra PGD λs too (first seed): every PGD run has a target
    extra = [lam for lam in SOSP_PGD_LAMS if lo <= lam <= hi and not np.isclose(grid, lam).any()]
    pgd_lams = sorted(set(grid) | set(extra))
    pgd_cfg = TrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, lr_bias=args.lr_bias,
                          pgd_threshold=args.pgd_threshold, pgd_radius=args.pgd_radius)
    pgd_args = (pgd_lams, args.seed, args.d, args.k, args.width, args.offset, args.a_init, pgd_cfg,
                args.device_resolved)
    # --threads N > 1: N single-threaded worker processes, the PGD runs one of their jobs (see sosp.run_jobs)
    rows, U, stopped, side = sweep(grid, seeds, d=args.d, k=args.k, width=args.width, offset=args.offset,
                                   a_init=args.a_init, coarse=(args.nodes, SOSP_PERP_NODES), extra_lams=extra,
                                   workers=args.threads_resolved, beside=(pgd_runs, pgd_args),
                                   progress=not args.no_progress)
    sweep_s = time.perf_counter() - t0
    if stopped:
        optimisation_over()
        return _sosp_interrupted(args, rows, U, grid, seeds, sweep_s, t0)
    if side is None:                    # one process: PGD after the points, here (a Ctrl-C keeps what was trained)
        t1 = time.perf_counter()
        try:
            hist, lam_r, frozen_r = pgd_runs(*pgd_args, progress=not args.no_progress)
        except KeyboardInterrupt:       # before PGD's first step: keep the certified points
            optimisation_over()
            return _sosp_interrupted(args, rows, U, grid, seeds, sweep_s, t0)
        pgd_s = time.perf_counter() - t1
    else:
        (hist, lam_r, frozen_r), pgd_s = side
    optimisation_over()
    ratio = hist["perp_norm"] / hist["w_norm"]
    tail = hist["step"] >= 0.8 * hist["step"][-1]
    target = {(r["lam"], r["bias"]): r["perp_ratio"] for r in rows if r["seed"] == args.seed}
    pgd = []
    for i, (lam, fb) in enumerate(zip(lam_r, frozen_r)):
        bias = "frozen" if fb else "trained"
        tgt = target[(float(lam), bias)]
        pgd.append({"lam": float(lam), "bias": bias, "ratio_certified": tgt, "ratio_end": float(ratio[-1, i]),
                    "ratio_floor": float(np.median(ratio[tail, i])), "one_over_lr_lam": 1.0 / (args.lr * lam),
                    "steps_to_collapse": steps_to_collapse(hist["step"], ratio[:, i], tgt, args.collapse_tol),
                    "decay_only_steps": decay_only_steps(hist["step"], hist["perp_norm"][0, i], hist["w_norm"][:, i],
                                                         lam, args.lr, tgt, args.collapse_tol)})
    points = _write_points(args, rows, U)
    write_npz(os.path.join(args.out_dir, "sosp_pgd.npz"), step=hist["step"], perp_norm=hist["perp_norm"],
              w_norm=hist["w_norm"], lam=lam_r, frozen=frozen_r)
    write_text(os.path.join(args.out_dir, "sosp.md"), summary_markdown(points, pgd, grid))
    draw_sosp(args.out_dir, {"points": points, "pgd": pgd, "lambda_grid": grid, "collapse_tol": args.collapse_tol})
    by = {b: [p for p in points if p["bias"] == b] for b in ("trained", "frozen")}
    res = {**_sosp_head(args, grid, seeds, points, pgd),
           "trained_max_perp_ratio": max(p["perp_ratio"] for p in by["trained"]),
           "frozen_max_perp_ratio": max(p["perp_ratio"] for p in by["frozen"]),
           "max_grad_norm": max(p["grad_norm"] for p in points),
           "max_quad_change": max(p["quad_change"] for p in points),
           "saddles": sum(p["type"] == "saddle" for p in points),
           "workers": args.threads_resolved, "sweep_s": sweep_s, "pgd_s": pgd_s,
           "interrupted": bool(hist["interrupted"])}
    res["wall_s"] = time.perf_counter() - t0
    write_run_record(args, args.device_resolved, res)
    return res


def _csv(points) -> str:
    cols = ["seed", "lam", "bias", "type", "perp_ratio", "perp_norm", "par_norm", "bound", "grad_norm",
            "grad_w_norm", "lam_min_hessian", "lam_min_hb", "stein_residual", "g", "loss", "nodes_par",
            "nodes_perp", "quad_change", "grad_norm_fine", "nfev", "escapes", "seconds"]
    lines = [",".join(cols)]
    for p in points:
        lines.append(",".join("" if p[c] is None else (f"{p[c]:.6g}" if isinstance(p[c], float) else str(p[c]))
                              for c in cols))
    return "\n".join(lines) + "\n"


def draw_fig3(out_dir, hist):
    from NeuralNetworks.plot import plot_perp, plot_weights
    from NeuralNetworks.utils import save_figure
    save_figure(plot_weights(hist["snapshots"], hist["u"]), os.path.join(out_dir, "fig3_weights"))
    save_figure(plot_perp(hist["step"], hist["perp_norm"], hist["w_norm"], hist["decay_only_perp_norm"]),
                os.path.join(out_dir, "fig3_perp"))
    return ["fig3_weights", "fig3_perp"]


def draw_fig2(out_dir, res):
    from NeuralNetworks.plot import plot_fig2
    from NeuralNetworks.utils import save_figure
    save_figure(plot_fig2(np.asarray(res["lambda"]), np.asarray(res["w_frozen"]), np.asarray(res["w_trained"]),
                          res["activation"]), os.path.join(out_dir, "fig2_bias"))
    return ["fig2_bias"]


def draw_claims(out_dir, hist, names, decay_only, lr):
    """``hist``: ``step_i``, ``perp_i`` for the i-th row of ``names`` (rows of claims.ROWS)."""
    from NeuralNetworks.claims import ROWS
    from NeuralNetworks.plot import plot_claims
    from NeuralNetworks.utils import save_figure
    rows = {r.name: r for r in ROWS}
    results = [{"row": rows[n], "step": hist[f"step_{i}"], "perp_history": hist[f"perp_{i}"],
                "decay_only": np.asarray(decay_only[i])} for i, n in enumerate(names)]
    save_figure(plot_claims(results, lr), os.path.join(out_dir, "claims_perp"))
    return ["claims_perp"]


def draw_sosp(out_dir, res):
    from NeuralNetworks.plot import plot_sosp
    from NeuralNetworks.utils import save_figure
    grid = res["lambda_grid"]
    save_figure(plot_sosp([p for p in res["points"] if p["lam"] in grid], res["pgd"], res["collapse_tol"]),
                os.path.join(out_dir, "sosp"))
    return ["sosp"]


def plot_only(folder, saved) -> list:
    """Redraw every figure of the run saved in ``folder``; returns the figure names."""
    config, res, arrays = saved
    args = config["args"]
    exp = args["experiment"]
    if exp == "fig3":
        return draw_fig3(folder, arrays["history.npz"])
    if exp == "fig2":
        return draw_fig2(folder, res)
    if exp == "claims":
        return draw_claims(folder, arrays["claims_history.npz"], [r["row"] for r in res["rows"]],
                           [r["decay_only"] for r in res["rows"]], args["lr"])
    return draw_sosp(folder, res)


def main(argv=None):
    from NeuralNetworks.utils import run_staged, set_threads, write_failed
    args = parse_args(argv)
    if args.plot_only is not None:
        names = plot_only(args.plot_only, args.saved)
        print(f"redrew {', '.join(names)} (.png, .pdf) in {args.plot_only}")
        return args.saved[1]
    set_threads(args.threads_resolved)
    from NeuralNetworks.train import DivergenceError
    runner = {"fig3": run_fig3, "fig2": run_fig2, "claims": run_claims_grid, "sosp": run_sosp}[args.experiment]
    try:
        res = run_staged(args, runner)
    except OSError as e:
        write_failed(args, e)
    except DivergenceError as e:
        print(f"{os.path.basename(sys.argv[0]) or 'main.py'}: error: {e}; the run diverged or overflowed float32: "
              "try a smaller --lr / --lr-bias (or --lam, --noise)", file=sys.stderr)
        sys.exit(2)
    if args.experiment == "fig2":
        print(f"fig2 ({args.activation}): |w*| with bias frozen {res['w_frozen'][0]:.4f} at lambda "
              f"{res['lambda'][0]:.0e}, reaches 0 at lambda {res['smallest_lambda_with_w_frozen_zero']}; with bias "
              f"trained max |w*| = {res['max_abs_w_trained']:.1e} -> {args.out_dir}")
        return res
    if args.experiment == "sosp" and not res["pgd"]:
        print(f"sosp: interrupted after {len(res['points'])} of {res['points_planned']} certified points; they are "
              f"in {args.out_dir} (sosp.csv, sosp_points.npz), without PGD, table or figure")
        return res
    if args.experiment == "sosp":
        col = {p["lam"]: p for p in res["pgd"] if p["bias"] == "trained"}
        print(f"sosp: width {args.width}, {len(res['points'])} certified points ({res['saddles']} saddles), "
              f"max ||grad g|| {res['max_grad_norm']:.1e}, quadrature change {res['max_quad_change']:.1e}; "
              f"max ||W_perp||/||W||: bias trained {res['trained_max_perp_ratio']:.1e}, "
              f"frozen {res['frozen_max_perp_ratio']:.2g}; PGD steps to collapse (trained): "
              + ", ".join(f"{lam:g}: {p['steps_to_collapse']}" for lam, p in sorted(col.items()) if lam >= 1e-3)
              + f"; {res['wall_s']:.0f} s{' (interrupted)' if res['interrupted'] else ''} -> {args.out_dir}")
        return res
    if args.experiment == "claims":
        print(f"claims: {len(res['rows'])} rows x {args.seeds} seeds, {args.steps} steps, {res['wall_s']:.0f} s"
              f"{' (interrupted)' if res['interrupted'] else ''}; "
              + "; ".join(f"{r['row']}: {np.mean(r['ratio_final']):.2f} ({r['verdict']})" for r in res["rows"])
              + f" -> {args.out_dir}")
        return res
    print(f"fig3: steps={res['steps_run']}{' (interrupted)' if res['interrupted'] else ''} "
          f"||W_perp||/||W|| {res['perp_ratio_init']:.3f} -> {res['perp_ratio_final']:.3f}, "
          f"||W_perp||_F {res['perp_norm_init']:.2f} -> {res['perp_norm_final']:.2f} "
          f"(weight decay alone: {res['decay_only_perp_norm_final']:.2f}), test MSE {res['test_mse']:.2e}, "
          f"{res['wall_s']:.1f} s -> {args.out_dir}")
    return res


if __name__ == "__main__":
    main()
