"""Section 5.2 of the paper: a Johnson-Lindenstrauss projection learned by derandomisation (Fig. 7).

``python JohnsonLindenstrauss/main.py`` runs the authors' experiment (App. G): 100 unit vectors in
R^500 (uniform[0,1] rows, normalised), k = 30, a Gaussian distribution over 30x500 matrices with mean 0 and
one scalar log-variance 0, optimised by Adam on the largest distortion of a batch of 20 sampled matrices.
``--target pairwise`` preserves distances instead of norms; ``--objective surrogate`` uses the paper's
own union-bound objective (Eq. 9).
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

HERE = os.path.dirname(os.path.abspath(__file__))
QUICK_STEPS = 300
KSWEEP_STEPS = 3000        # per k and target: the sweep's 2 x 10 optimisations fit its 10-minute budget
KSWEEP_QUICK_GRID = (2, 8, 32)
KSWEEP_SEEDS = 1           # learned runs per k (--seeds N: N runs per k, one batch)


class _Parser(argparse.ArgumentParser):
    """Bad input ends with one line naming the problem and exit status 2 (no usage dump)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int_at_least(lo):
    def parse(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{s!r} is not an integer")
        if v < lo:
            raise argparse.ArgumentTypeError(f"{v} is not allowed; it must be an integer >= {lo}")
        return v
    return parse


def _finite_number(zero_allowed):
    """Parser of a finite number > 0 (or >= 0 with ``zero_allowed``)."""
    bound = ">= 0" if zero_allowed else "> 0"

    def parse(s):
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{s!r} is not a number")
        if not (math.isfinite(v) and (v >= 0 if zero_allowed else v > 0)):
            raise argparse.ArgumentTypeError(f"{s} is not allowed; it must be a finite number {bound}")
        return v
    return parse


_nonneg, _positive = _finite_number(True), _finite_number(False)


def _in_range(lo, hi, why, lo_open=False, hi_open=False):
    def parse(s):
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{s!r} is not a number")
        if not (math.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)):
            raise argparse.ArgumentTypeError(f"{s} is not allowed; it must lie in {'(' if lo_open else '['}{lo:g}, "
                                             f"{hi:g}{')' if hi_open else ']'} ({why})")
        return v
    return parse


_below_one = _in_range(0, 1, "the initial M = 0 has distortion 1: a larger tolerance stops before any step",
                       lo_open=True, hi_open=True)
_tau = _in_range(1e-6, 1e6, "a narrower indicator overflows exp")


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
    from JohnsonLindenstrauss.model import JLConfig
    jc = JLConfig()                        # the defaults live there, once
    p = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--experiment", choices=("fig7", "ksweep"), default="fig7",
      help="fig7: one run at --k (the paper's); ksweep: every method's max distortion against k over --k-grid, "
           "for norms and pairwise distances (or the --target given), and the smallest k within --eps")
    a("--k-grid", type=_int_at_least(1), nargs="+", default=None, metavar="K",
      help="ksweep: the target dimensions (default 1, 2, 4, ... below d, and d)")
    a("--data", default="uniform", help="uniform | gaussian | digits (scikit-learn's, 64-d) | PATH.npy "
      "(rows are points, normalised on load) (paper: uniform)")
    a("--target", choices=("norms", "pairwise"), default=None,
      help="preserve the points' norms (paper) or all pairwise distances")
    a("--objective", choices=("max", "surrogate"), default="max",
      help="max distortion of a sampled batch (the authors' code) or the union bound of Eq. 9")
    a("--n", type=_int_at_least(1), default=None, help="training points (paper: 100; a .npy: all rows but the holdout)")
    a("--d", type=_int_at_least(1), default=500, help="dimension of generated data (paper: 500)")
    a("--k", type=_int_at_least(1), default=jc.k, help="target dimension (paper: 30)")
    a("--holdout", type=_int_at_least(0), default=0, help="further points from the same source, never trained on")
    a("--batch", type=_int_at_least(1), default=jc.batch, help="matrices sampled per step (paper: 20)")
    a("--lr", type=_positive, default=jc.lr, help="Adam step size (paper: 0.01)")
    a("--steps", type=_int_at_least(1), default=None,
      help=f"maximum steps (paper: {jc.steps}; ksweep: {KSWEEP_STEPS} per k and target)")
    a("--tol", type=_below_one, default=jc.tol,
      help="'max': stop when the sampled max distortion is below, in (0, 1) (paper: 0.01)")
    a("--eps", type=_positive, default=jc.eps,
      help="'surrogate': distortion threshold epsilon; ksweep: the distortion a k must reach, in (0, 1) (default 0.1)")
    a("--lam", type=_nonneg, default=jc.lam,
      help="'surrogate': weight of the variance penalty (ours; see model.py; 0: no penalty)")
    a("--tau", type=_tau, default=None,
      help="'surrogate': width of the smoothed indicator, in [1e-6, 1e6] (default sqrt(2/k))")
    a("--draws", type=_int_at_least(1), default=1000, help="Gaussian matrices for the baseline (paper: 1000)")
    a("--seed", type=_seed, default=0, help="seed of the data and of every random draw")
    a("--seeds", type=_int_at_least(1), default=None,
      help=f"ksweep: learned runs per k, their draws seeded --seed, --seed + 1, ... (the points stay those of "
           f"--seed), optimised as one batch (default {KSWEEP_SEEDS})")
    a("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where torch computes")
    a("--threads", type=_threads, default=1,
      help="CPU threads (default 1: measured, every configuration here ran faster on one thread than on two, "
           "idle or not)")
    a("--out-dir", default=None, help="output folder (default JohnsonLindenstrauss/results/fig7/ for the paper's "
      "run, else results/<data>_<target>_<objective>/)")
    a("--quick", action="store_true", help=f"the same run with at most {QUICK_STEPS} steps and 100 draws (tests, CI)")
    a("--no-progress", action="store_true", help="no progress bar")
    a("--plot-only", metavar="RESULTS_DIR", default=None,
      help="redraw the figures of an earlier run from the history and results it saved there, without computing")
    return p


def memory_needed(args, n, holdout, d) -> float:
    """Bytes the run needs at its peak, roughly: the targets (for pairs, one pass over every difference), the
    optimiser's sampled matrices and their images of every target (float32), and the baselines' chunks of 50
    matrices (float64)."""
    m = n if args.targets == ["norms"] else n * (n - 1) // 2 + holdout * n + holdout * (holdout - 1) // 2
    return (8.0 * m * d + 16.0 * m + 4.0 * args.batch * (3 * args.k * d + 2 * args.k * (n + holdout) + 3 * m
                                                          + 2 * args.k * m) + 8.0 * 50 * (args.k * d + 2 * args.k * m))


def parse_args(argv=None):
    """Parse and validate every argument and load the data, before any output is written."""
    from JohnsonLindenstrauss.data import DATASETS, DataError, load_points
    from JohnsonLindenstrauss.targets import make_targets
    from JohnsonLindenstrauss.model import JLConfig
    from JohnsonLindenstrauss.utils import given_options, resolve_device
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.plot_only is not None:
        from JohnsonLindenstrauss.utils import refuse_with_plot_only, saved_run
        refuse_with_plot_only(parser, args)
        try:
            args.saved = saved_run(args.plot_only, lambda config: [] if config["args"].get("experiment") == "ksweep"
                                   else ["history.npz"])
        except (ValueError, TypeError, KeyError) as e:
            parser.error(str(e) if isinstance(e, ValueError) else f"{args.plot_only}/config.json: not a run's")
        return args, None, None
    try:
        args.device_resolved = resolve_device(args.device)
    except ValueError as e:
        parser.error(str(e))
    ksweep = args.experiment == "ksweep"
    own = {"max": ("tol",), "surrogate": ("eps", "lam", "tau")}    # each objective's own options
    for objective, flags in own.items():
        other = given_options(parser, args, flags) if objective != args.objective else []
        other = [f for f in other if not (ksweep and f == "eps")]  # ksweep's ε
        if other:
            parser.error(f"--{other[0]} applies to --objective {objective} only, not to --objective {args.objective}")
    if ksweep and args.objective != "max":
        parser.error("--experiment ksweep learns with the authors' objective (--objective max)")
    if ksweep and "k" in given_options(parser, args, ("k",)):
        parser.error("--k is one target dimension; --experiment ksweep takes --k-grid")
    if not ksweep and args.k_grid is not None:
        parser.error("--k-grid applies to --experiment ksweep only")
    if not ksweep and args.seeds is not None:
        parser.error("--seeds applies to --experiment ksweep only (a fig7 run is one seed: --seed)")
    args.seeds = args.seeds or KSWEEP_SEEDS
    if ksweep and not 0 < args.eps < 1:
        parser.error(f"--eps {args.eps:g}: ksweep's distortion threshold must lie in (0, 1)")
    args.targets = [args.target] if args.target else (["norms", "pairwise"] if ksweep else ["norms"])
    args.target = args.target or "norms"
    args.steps = args.steps or (KSWEEP_STEPS if ksweep else JLConfig.steps)
    if args.data not in DATASETS and not args.data.endswith(".npy"):
        parser.error(f"--data {args.data!r}: choose uniform, gaussian, digits or a .npy file")
    n = args.n if (args.n is not None or args.data.endswith(".npy")) else 100
    from JohnsonLindenstrauss.utils import memory_problem
    if args.data in ("uniform", "gaussian"):                  # drawn here: refuse before drawing
        problem = memory_problem(24.0 * (n + args.holdout) * args.d, f"--n {n}, --holdout {args.holdout}, "
                                                                    f"--d {args.d}")
        if problem:
            parser.error(problem)
    try:
        X, Xh = load_points(args.data, n, args.holdout, args.d, args.seed)
        if "pairwise" in args.targets:
            make_targets(torch.as_tensor(np.vstack([X, Xh])), "pairwise")   # coinciding points
    except DataError as e:
        parser.error(str(e))
    if "pairwise" in args.targets and len(X) < 2:
        parser.error("--target pairwise needs at least 2 training points (--n >= 2): one point has no distances")
    if args.k > X.shape[1]:
        parser.error(f"--k {args.k} is larger than the data dimension d = {X.shape[1]}")
    if ksweep:
        from JohnsonLindenstrauss.ksweep import default_grid
        d = X.shape[1]
        grid = args.k_grid or ([k for k in KSWEEP_QUICK_GRID if k <= d] or [d] if args.quick else default_grid(d))
        bad = [k for k in grid if not 1 <= k <= d]
        if bad:
            parser.error(f"--k-grid: {bad[0]} is outside [1, d = {d}]")
        args.k_grid = sorted(set(grid))
        args.k = max(args.k_grid)                                 # the memory estimate's largest case
    problem = memory_problem(memory_needed(args, len(X), len(Xh), X.shape[1]),
                             f"{len(X)} points (+{len(Xh)} held out) in d = {X.shape[1]}, --target {args.target}, "
                             f"--k {args.k}, --batch {args.batch}", args.device_resolved)
    if problem:
        parser.error(problem)
    if args.quick:
        args.steps, args.draws = min(args.steps, QUICK_STEPS), min(args.draws, 100)
    if args.out_dir is None:
        paper = (args.data, args.target, args.objective) == ("uniform", "norms", "max")
        name = os.path.splitext(os.path.basename(args.data))[0]
        args.out_dir = os.path.join(HERE, "results", f"ksweep_{name}" if ksweep else "fig7" if paper
                                    else f"{name}_{args.target}_{args.objective}")
    from JohnsonLindenstrauss.utils import check_writable
    problem = check_writable(args.out_dir)
    if problem:
        parser.error(problem)
    return args, X, Xh


BASELINE_SEED_OFFSETS = {"gaussian": 1_000_003, "orthogonal": 2_000_003}   # each baseline's own stream: seed + this


def _stream(args, name):
    """A fresh generator for one baseline: its draws do not depend on how many steps the optimiser ran, and
    the training and held-out targets are measured on the same matrices."""
    return torch.Generator(device=args.device_resolved).manual_seed(args.seed + BASELINE_SEED_OFFSETS[name])


def _baselines(args, X, Xh, T, Th, k=None):
    """Every baseline at ``k`` (default ``--k``) on the training targets and, when there is a holdout, on the
    held-out ones."""
    from JohnsonLindenstrauss import baselines as jb
    from JohnsonLindenstrauss.targets import matrix_distortion
    k = k or args.k
    g = jb.gaussian_baseline(T, k, args.draws, _stream(args, "gaussian"))
    o = jb.orthogonal_baseline(T, k, args.draws, _stream(args, "orthogonal"))
    sparse = jb.sparse_projections(X, k, min(args.draws, 100), args.seed)
    pca = jb.pca_projection(X, k, T)
    res = {"gaussian_mean": float(g.mean()), "gaussian_min": float(g.min()), "orthogonal_mean": float(o.mean()),
           "sparse_mean": float(np.mean([matrix_distortion(P, T) for P in sparse])),
           "pca": matrix_distortion(pca, T), "jl_min_dim": jb.jl_min_dim(len(X), 0.1)}
    if Th is not None:
        gh = jb.gaussian_baseline(Th, k, args.draws, _stream(args, "gaussian"))
        oh = jb.orthogonal_baseline(Th, k, args.draws, _stream(args, "orthogonal"))
        res["holdout"] = {"gaussian_mean": float(gh.mean()), "gaussian_min": float(gh.min()),
                          "orthogonal_mean": float(oh.mean()),
                          "sparse_mean": float(np.mean([matrix_distortion(P, Th) for P in sparse])),
                          "pca": matrix_distortion(pca, Th)}
    return res, g


def _targets(args, X, Xh, target):
    """The training targets (float64) and the held-out ones (None without a holdout) of ``target``."""
    from JohnsonLindenstrauss.targets import holdout_pairs, make_targets
    dev, dt = args.device_resolved, torch.float64
    T = make_targets(torch.as_tensor(X, dtype=dt, device=dev), target)
    Th = None
    if len(Xh):
        both = torch.as_tensor(np.vstack([X, Xh]), dtype=dt, device=dev)
        Th = (make_targets(torch.as_tensor(Xh, dtype=dt, device=dev), "norms") if target == "norms"
              else make_targets(both, "pairwise", holdout_pairs(len(X), len(Xh))))
    return T, Th


def run_ksweep(args, X, Xh) -> dict:
    """Every method's max distortion at every k of the grid, for each target; the smallest k within ε of each
    (see ksweep.py). The ``--seeds`` learned runs of one k are one batch, run r drawing its matrices from its own
    generator seeded ``--seed + r`` (the points are those of ``--seed`` for every run). Writes ``ksweep.csv``, ``ksweep.md``, ``ksweep_projections.npz`` (every learned
    matrix), the figure and results."""
    from JohnsonLindenstrauss import ksweep as ks
    from JohnsonLindenstrauss.baselines import jl_min_dim
    from JohnsonLindenstrauss.model import JLConfig, optimise
    from JohnsonLindenstrauss.targets import matrix_distortion
    from JohnsonLindenstrauss.utils import optimisation_over, write_npz, write_run_record, write_text
    t0, rows, learned, optimise_s, stopped = time.perf_counter(), [], {}, 0.0, False
    seeds = list(range(args.seed, args.seed + args.seeds))
    for target in args.targets:
        T, Th = _targets(args, X, Xh, target)
        for k in args.k_grid:
            cfg = JLConfig(k=k, batch=args.batch, lr=args.lr, steps=args.steps, tol=args.tol)
            gens = [torch.Generator(device=args.device_resolved).manual_seed(s) for s in seeds]   # data: --seed's
            # at small k a run's iterates may never beat M = 0 (distortion 1): its best iterate, M, is then 0
            runs = optimise(T.to(torch.float32), cfg, gens, progress=False)
            optimise_s += runs[0]["optimize_s"]
            Ps = [(r["M"].double() / math.sqrt(k)).cpu().numpy() for r in runs]
            train = [matrix_distortion(P, T) for P in Ps]
            held = [matrix_distortion(P, Th) for P in Ps] if Th is not None else None
            best = int(np.argmin(train))                              # chosen on the training targets only
            learned[f"{target}_k{k}"] = Ps[best]
            learned[f"{target}_k{k}_seeds"] = np.stack(Ps)
            base, _ = _baselines(args, X, Xh, T, Th, k)
            hb = base.get("holdout", {})
            values = {"learned": (float(np.mean(train)), float(np.mean(held)) if held else None),
                      "learned_best": (train[best], held[best] if held else None),
                      "gaussian_best": (base["gaussian_min"], hb.get("gaussian_min")),
                      **{m: (base[m], hb.get(m)) for m in ("gaussian_mean", "orthogonal_mean", "sparse_mean", "pca")}}
            steps = [r["steps_run"] for r in runs]
            rows += [{"target": target, "k": k, "method": m, "max_distortion": v, "holdout_max_distortion": h,
                      **({"seeds": seeds, "seed_values": train, "seed_holdout_values": held, "steps_run": steps,
                          "best_seed": seeds[best]} if m.startswith("learned") else {})}
                     for m, (v, h) in values.items()]
            if not args.no_progress:
                over = f" (mean of {len(seeds)} seeds; best {train[best]:.4f})" if len(seeds) > 1 else ""
                print(f"ksweep {target} k={k}: learned {values['learned'][0]:.4f}{over}, Gaussian best "
                      f"{base['gaussian_min']:.4f}, PCA {base['pca']:.4f} "
                      f"({max(steps)} steps, {runs[0]['optimize_s']:.1f} s)", flush=True)
            if runs[0]["interrupted"]:
                stopped = True
                break
        if stopped:
            break
    optimisation_over()
    done = [t for t in args.targets if any(r["target"] == t for r in rows)]
    res = {"data": args.data, "n": len(X), "holdout": len(Xh), "d": X.shape[1], "targets": done, "grid": args.k_grid,
           "eps": args.eps, "jl_bound": jl_min_dim(len(X), args.eps), "steps": args.steps, "draws": args.draws,
           "seeds": seeds, "rows": rows, "smallest_k": ks.table(rows, done, args.eps), "optimize_s": optimise_s,
           "interrupted": stopped}
    write_text(os.path.join(args.out_dir, "ksweep.csv"), ks.to_csv(rows))
    write_text(os.path.join(args.out_dir, "ksweep.md"), ks.to_markdown(res))
    write_npz(os.path.join(args.out_dir, "ksweep_projections.npz"), **learned)
    draw_ksweep(args.out_dir, res)
    res["wall_s"] = time.perf_counter() - t0
    write_run_record(args, args.device_resolved, res)
    return res


def draw_ksweep(out_dir, res):
    from JohnsonLindenstrauss.plot import plot_ksweep
    from JohnsonLindenstrauss.utils import save_figure
    save_figure(plot_ksweep(res["rows"], res["targets"], res["eps"], res["jl_bound"]), os.path.join(out_dir, "ksweep"))
    return ["ksweep"]


def run(args, X, Xh) -> dict:
    from JohnsonLindenstrauss.model import JLConfig, optimise
    from JohnsonLindenstrauss.targets import matrix_distortion
    from JohnsonLindenstrauss.utils import optimisation_over, write_npy, write_npz, write_run_record

    t0 = time.perf_counter()
    dev = args.device_resolved
    T, Th = _targets(args, X, Xh, args.target)
    gen = torch.Generator(device=dev).manual_seed(args.seed)
    cfg = JLConfig(k=args.k, batch=args.batch, lr=args.lr, steps=args.steps, tol=args.tol,
                   objective=args.objective, eps=args.eps, lam=args.lam, tau=args.tau)
    # optimised in float32 (Gaussian draws are 6x cheaper than in float64); every reported number in float64
    hist = optimise(T.to(torch.float32), cfg, gen, progress=not args.no_progress)
    optimisation_over()
    P = (hist["M"].double() / math.sqrt(args.k)).cpu().numpy()            # embedding x -> P @ x
    base, gauss = _baselines(args, X, Xh, T, Th)
    res = {"data": args.data, "target": args.target, "objective": args.objective, "n": len(X),
           "d": X.shape[1], "k": args.k, "targets": len(T),
           "max_distortion": matrix_distortion(P, T),
           "max_distortion_last": matrix_distortion((hist["M_last"].double() / math.sqrt(args.k)).cpu().numpy(), T),
           "best_step": int(np.argmin(hist["mean_max"])) + 1 if hist["steps_run"] else 0,
           "holdout_max_distortion": matrix_distortion(P, Th) if Th is not None else None, **base,
           "sigma_final": float(np.max(hist["sigma"])), "steps_run": hist["steps_run"],
           "interrupted": hist["interrupted"], "optimize_s": hist["optimize_s"]}
    if args.objective == "surrogate":
        Y = torch.as_tensor(P, dtype=torch.float64, device=dev) @ T.X.T
        res["fraction_above_eps"] = float(T.values(Y, 1).gt(args.eps).double().mean())
    write_npz(os.path.join(args.out_dir, "history.npz"), loss=hist["loss"], sampled_max=hist["sampled_max"],
              mean_max=hist["mean_max"], sigma_max=hist["sigma_max"], gaussian_draws=gauss)
    write_npy(os.path.join(args.out_dir, "projection.npy"), P)
    draw_figures(args.out_dir, hist, res)
    res["wall_s"] = time.perf_counter() - t0
    write_run_record(args, dev, res)
    return res


def draw_figures(out_dir, hist, res):
    """Fig. 7's two figures from the history (``sampled_max``, ``mean_max``, ``sigma_max``) and results."""
    from JohnsonLindenstrauss.plot import plot_distortion, plot_sigma
    from JohnsonLindenstrauss.utils import save_figure
    label = "norms" if res["target"] == "norms" else "pairwise distances"
    save_figure(plot_distortion(hist["sampled_max"], hist["mean_max"], res["gaussian_mean"], res["gaussian_min"],
                                label), os.path.join(out_dir, "fig7_distortion"))
    save_figure(plot_sigma(hist["sigma_max"]), os.path.join(out_dir, "fig7_sigma"))
    return ["fig7_distortion", "fig7_sigma"]


def main(argv=None):
    from JohnsonLindenstrauss.utils import run_staged, set_threads, write_failed
    args, X, Xh = parse_args(argv)
    if args.plot_only is not None:
        config, res, arrays = args.saved
        names = (draw_ksweep(args.plot_only, res) if config["args"].get("experiment") == "ksweep"
                 else draw_figures(args.plot_only, arrays["history.npz"], res))
        print(f"redrew {', '.join(names)} (.png, .pdf) in {args.plot_only}")
        return res
    set_threads(args.threads)
    from JohnsonLindenstrauss.model import DivergenceError, NoImprovementError
    try:
        res = run_staged(args, lambda a: (run_ksweep if a.experiment == "ksweep" else run)(a, X, Xh))
    except OSError as e:
        write_failed(args, e)
    except DivergenceError as e:
        hint = "" if isinstance(e, NoImprovementError) and not e.moved else (
            "; try a smaller --lr" + (" (or --lam, a larger --tau)" if args.objective == "surrogate" else ""))
        print(f"{os.path.basename(sys.argv[0]) or 'main.py'}: error: {e}{hint}", file=sys.stderr)
        sys.exit(2)
    if args.experiment == "ksweep":
        sk = res["smallest_k"]
        print(f"ksweep {args.data} n={res['n']} d={res['d']}, k in {res['grid']}: smallest k with max distortion <= "
              f"{res['eps']:g} -- " + "; ".join(f"{t}: " + ", ".join(f"{m} {sk[t][m]}" for m in sk[t])
                                                  for t in res["targets"])
              + f"; JL bound {res['jl_bound']}; {res['optimize_s']:.0f} s optimise, {res['wall_s']:.0f} s total"
              + (" (interrupted)" if res["interrupted"] else "") + f" -> {args.out_dir}")
        return res
    hold = (f", held-out {res['holdout_max_distortion']:.4f} (Gaussian mean {res['holdout']['gaussian_mean']:.3f})"
            if res["holdout_max_distortion"] is not None else "")
    print(f"jl {res['data']}/{res['target']}/{res['objective']} n={res['n']} d={res['d']} k={res['k']}: "
          f"learned max distortion {res['max_distortion']:.4f}{hold}; Gaussian mean {res['gaussian_mean']:.3f} "
          f"min {res['gaussian_min']:.3f}, orthogonal {res['orthogonal_mean']:.3f}, sparse {res['sparse_mean']:.3f}, "
          f"PCA {res['pca']:.3f}; sigma {res['sigma_final']:.2e}; {res['steps_run']} steps, "
          f"{res['optimize_s']:.1f} s optimise{' (interrupted)' if res['interrupted'] else ''}, {res['wall_s']:.1f} s total (JL bound for eps 0.1: k >= "
          f"{res['jl_min_dim']})")
    return res


if __name__ == "__main__":
    main()
