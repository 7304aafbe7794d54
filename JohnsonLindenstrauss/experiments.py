"""The three experiments of Section 5.2, each a config (its command-line options and defaults, declared once), a
``run`` that computes and writes its outputs into a folder, a ``draw`` that makes its figures from them and a
``summary`` line (main.py lists them).

fig7     Fig. 7: 100 unit vectors in R^500 (uniform[0,1] rows, normalised), k = 30, a Gaussian distribution over
         30 x 500 matrices with mean 0 and one scalar log-variance 0, optimised by Adam on the largest distortion
         of a batch of 20 sampled matrices; against Gaussian, orthogonal, sparse, SVD and PCA projections.
ksweep   every method's max distortion against k, for norms and pairwise distances (ksweep.py).
theorem  Theorem 5.5 in its regime: the smoothed union bound descended to a second-order stationary point, its
         mean matrix certified (theorem.py, certificate.py).
"""
import bisect
import dataclasses
import math
import os

import numpy as np
import torch

from JohnsonLindenstrauss.data import DATASETS, is_file
from JohnsonLindenstrauss.model import DivergenceError, JLConfig, NoImprovementError
from JohnsonLindenstrauss.theorem import TheoremSettings
from JohnsonLindenstrauss.utils import memory_problem, save_figure, sha256_of

JL_DEFAULTS = JLConfig()
BASELINE_SEED_OFFSETS = {"gaussian": 1_000_003, "orthogonal": 2_000_003}   # each baseline's own stream: seed + this
KSWEEP_QUICK_GRID = (2, 8, 32)
POS = dict(lo=0.0, hi=1e30, open=True)


def option(default, help, **check):
    """A config field that is also a command-line option (main.py builds it): ``check`` holds ``lo``/``hi`` (with
    ``open``: strict bounds), ``choices``, ``nargs``."""
    return dataclasses.field(default=default, metadata={"help": help, **check})


@dataclasses.dataclass
class Data:
    """The points: options shared by both experiments, and the checks of their data source."""
    data: str = option("uniform", "uniform | gaussian | digits (scikit-learn's, 64-d) | PATH.npy | PATH.csv (rows "
                       "are points, normalised on load; a .csv may have a header line) (paper: uniform)", kind=str)
    n: int = option(None, "training points (paper: 100). A file: its first --n rows train and the next --holdout "
                    "rows are held out, in the file's order unless --shuffle (default: all rows but the holdout)",
                    lo=1, hi=10**12)
    d: int = option(None, "dimension of generated data, uniform or gaussian (paper: 500)", lo=1, hi=10**9)
    holdout: int = option(0, "further points from the same source, never trained on (a file: the rows after the "
                          "first --n)", lo=0, hi=10**9)
    shuffle: bool = option(False, "a file's rows shuffled with --seed before they are split into --n training and "
                           "--holdout held-out rows (the digits always are; generated rows are drawn at random)")
    batch: int = option(JL_DEFAULTS.batch, "matrices sampled per step (paper: 20)", lo=1, hi=10**12)
    lr: float = option(JL_DEFAULTS.lr, "Adam step size (paper: 0.01)", **POS)
    tol: float = option(None, f"objective max: stop once the sampled max distortion is below this, in (0, 1) "
                        f"(default {JL_DEFAULTS.tol}, the paper's; the initial M = 0 has distortion 1)", lo=0.0, hi=1.0,
                        open=True)
    draws: int = option(1000, "Gaussian matrices for the baseline (paper: 1000)", lo=1, hi=10**7)
    seed: int = 0

    def check_data(self):
        if self.data not in DATASETS and not is_file(self.data):
            raise ValueError(f"--data {self.data!r}: choose uniform, gaussian, digits or a .npy or .csv file")
        if self.shuffle and not is_file(self.data):
            raise ValueError(f"--shuffle reorders a file's rows; --data {self.data} has none to reorder")
        if self.d is not None and self.data not in ("uniform", "gaussian"):
            raise ValueError(f"--d sets the dimension of generated data; --data {self.data} has its own")
        self.d = self.d or (500 if self.data in ("uniform", "gaussian") else None)
        self.n = self.n if self.n is not None or is_file(self.data) else 100

    def as_used(self, X, Xh):
        """Every option as the run used it: the sizes from the points, the defaults that were None resolved."""
        used = {**dataclasses.asdict(self), "n": len(X), "d": X.shape[1], "holdout": len(Xh)}
        if getattr(self, "objective", "max") == "max" and used["tol"] is None:
            used["tol"] = JL_DEFAULTS.tol
        return used

    def input_files(self):
        """The files the points were read from: a ``.npy`` or ``.csv`` given, or scikit-learn's bundled digits."""
        if self.data == "digits":
            import sklearn.datasets
            bundled = os.path.join(os.path.dirname(sklearn.datasets.__file__), "data", "digits.csv.gz")
            return [bundled] if os.path.isfile(bundled) else []
        return [] if self.data in DATASETS else [self.data]

    def load(self, targets, device):
        """``(X, X_holdout)``: the points, after a memory check of a generated draw, and for ``pairwise`` of their
        pairs (:meth:`check_pairs`); ``ValueError`` if unusable."""
        from JohnsonLindenstrauss.data import load_points
        if self.data in ("uniform", "gaussian"):
            problem = memory_problem(24.0 * (self.n + self.holdout) * self.d, f"--n {self.n}, --holdout "
                                     f"{self.holdout}, --d {self.d}", device)
            if problem:
                raise ValueError(problem + "; take fewer points with --n (or --holdout), or a smaller --d")
        X, Xh, rows = load_points(self.data, self.n, self.holdout, self.d, self.seed, self.shuffle, with_rows=True)
        if "pairwise" in targets:
            self.check_pairs(X, Xh, device, rows)
        return X, Xh

    def check_pairs(self, X, Xh, device, rows=None):
        """Before any pair is built: the pairs' memory (the refusal suggests the ``--n`` that fits), and two rows
        whose distance is lost to rounding -- below sqrt(eps) of the dtype computing their squared distance
        from a Gram matrix (float32 in the optimiser, float64 elsewhere), its error is as large as itself. ``rows``:
        the source's row numbers of ``[X; Xh]``, by which a pair is named."""
        from JohnsonLindenstrauss.data import close_pair
        n, h, d = len(X), len(Xh), X.shape[1]
        if n < 2:
            raise ValueError("--target pairwise needs at least 2 training points: one point has no distances")
        problem = memory_problem(self.pair_bytes(n, h, d), f"--target pairwise, {n} points (+{h} held out): "
                                 f"{(n + h) * (n + h - 1) // 2} pairs", device)
        if problem:
            fit = bisect.bisect_left(range(n), True, key=lambda m: memory_problem(
                self.pair_bytes(m, h, d), "", device) is not None) - 1
            rest = "--batch or --seeds" if hasattr(self, "seeds") else "--batch"
            raise ValueError(problem + (f"; take fewer points with --n (--n {fit} fits)" if fit >= 2 else
                                        f"; no --n fits: sample fewer matrices with {rest}"))
        every, train = (np.vstack([X, Xh]), np.float64, "float64"), (X, np.float32, "the optimiser's float32")
        for points, dtype, who in (every, train):
            limit = math.sqrt(np.finfo(dtype).eps)
            pair = close_pair(points, limit)
            if pair is None:
                continue
            i, j, dist = pair
            i, j = sorted((int(rows[i]), int(rows[j]))) if rows is not None else (i, j)
            rows = f"--target pairwise: rows {i} and {j} of {self.data} (counted from 0)"
            if dist < 1e-12:                                # parallel rows, up to the rounding of normalisation
                raise ValueError(f"{rows} point the same way: after normalisation their distance is 0, so a "
                                 "pairwise distortion is undefined; remove one")
            raise ValueError(f"{rows} point almost the same way: after normalisation they are {dist:.2g} apart, "
                             f"below the {limit:.2g} that {who} resolves, so their pairwise distortion is rounding "
                             "noise; remove one")

    def pair_bytes(self, n, h, d):
        """Bytes that ``--target pairwise`` sizes by its pairs, at the peak, roughly. For the N = n + h points
        and their p = N(N-1)/2 pairs: the N x N masks of the targets (three in float64 for the training and the
        held-out pairs, three in float32 for the optimiser), and the largest of: the pairs being built (their
        indices, and their difference vectors in float64, twice), the optimiser's n x n Gram matrices of every
        sampled matrix (float32; autograd keeps more of them for the surrogate), the baselines' for chunks of
        50 matrices (float64, four N x N arrays each)."""
        N, runs = n + h, self.batch * getattr(self, "seeds", 1)
        p = N * (N - 1) // 2
        per_matrix = 16 if getattr(self, "objective", "max") == "surrogate" else 2
        return 60.0 * N * N + max(32.0 * p * d + 40.0 * p, 4.0 * per_matrix * runs * n * n, 8.0 * 4 * 50 * N * N)

    def memory(self, X, Xh, targets, k):
        """Bytes at the peak, roughly: the sampled matrices and their images (float32), the baselines' matrices
        (float64), and the larger of the norms' targets and distortions and :meth:`pair_bytes`."""
        n, h, d = len(X), len(Xh), X.shape[1]
        N, runs = n + h, self.batch * getattr(self, "seeds", 1)
        norms = 8.0 * N * d + 16.0 * N + 4.0 * runs * (3 + 2 * k) * N + 8.0 * 50 * 2 * k * N
        pairs = self.pair_bytes(n, h, d) if "pairwise" in targets else 0.0
        return 4.0 * runs * (3 * k * d + 2 * k * N) + 8.0 * 50 * k * d + max(norms, pairs)


def default_folder(experiment, data, *what, shuffle=False):
    """The default run folder ``experiment-data-what...``: a file as its stem and the first 8 hex digits of the
    SHA-256 of its bytes (``-shuffled`` added for ``--shuffle``), so a file never shares a folder with a built-in
    dataset or another file."""
    if is_file(data):
        data = f"{os.path.splitext(os.path.basename(data))[0]}-{sha256_of(data)[:8]}" + ("-shuffled" * shuffle)
    return "-".join([experiment, data, *what])


@dataclasses.dataclass
class Fig7Config(Data):
    target: str = option("norms", "preserve the points' norms (paper) or all pairwise distances",
                         choices=("norms", "pairwise"))
    objective: str = option("max", "max distortion of a sampled batch (the authors' code) or the union bound of "
                            "Eq. 9", choices=("max", "surrogate"))
    k: int = option(JL_DEFAULTS.k, "target dimension (paper: 30)", lo=1, hi=10**6)
    steps: int = option(JL_DEFAULTS.steps, "maximum steps (paper: 5000)", lo=1, hi=10**9)
    eps: float = option(None, f"surrogate: distortion threshold epsilon (default {JL_DEFAULTS.eps})", **POS)
    lam: float = option(None, f"surrogate: weight of the variance penalty (default {JL_DEFAULTS.lam}; 0: none)",
                        lo=0.0, hi=1e30)
    tau: float = option(None, "surrogate: width of the smoothed indicator (default sqrt(2/k))", lo=1e-6, hi=1e6)

    def __post_init__(self):
        self.check_data()
        own = [f for f in ("eps", "lam", "tau") if getattr(self, f) is not None]
        if self.objective == "max" and own:
            raise ValueError(f"--{own[0]} applies to --objective surrogate only, not to --objective max")
        if self.objective == "surrogate" and self.tol is not None:
            raise ValueError("--tol applies to --objective max only (the surrogate runs all --steps)")

    def targets(self):
        return [self.target]

    def check_k(self, d):
        if self.k > d:
            raise ValueError(f"--k {self.k} is larger than the data dimension d = {d}")
        return self.k

    def quick(self, given, d):
        return dataclasses.replace(self, steps=min(self.steps, 300), draws=min(self.draws, 100))

    def as_used(self, X, Xh):
        """:meth:`Data.as_used`; for the surrogate, its ε, λ and τ as :meth:`jl_config` resolves them (the max
        objective uses none of the three: they stay None)."""
        used = Data.as_used(self, X, Xh)
        if self.objective == "surrogate":
            jc = self.jl_config()
            used |= {"eps": jc.eps, "lam": jc.lam, "tau": jc.tau or math.sqrt(2.0 / self.k)}
        return used

    def jl_config(self):
        lam = JL_DEFAULTS.lam if self.lam is None else self.lam
        return JLConfig(k=self.k, batch=self.batch, lr=self.lr, steps=self.steps, tol=self.tol or JL_DEFAULTS.tol,
                        objective=self.objective, eps=self.eps or JL_DEFAULTS.eps, lam=lam, tau=self.tau)

    def folder_name(self):
        paper = (self.data, self.target, self.objective) == ("uniform", "norms", "max")
        return "fig7" if paper else default_folder("fig7", self.data, self.target, self.objective,
                                                           shuffle=self.shuffle)


@dataclasses.dataclass
class KsweepConfig(Data):
    target: str = option(None, "norms or pairwise (default: both)", choices=("norms", "pairwise"))
    k_grid: list = option(None, "the target dimensions (default 1, 2, 4, ... below d, and d)", nargs="+",
                          kind=int, lo=1, hi=10**6, metavar="K")
    steps: int = option(3000, "maximum steps per k and target (the sweep's 2 x 10 optimisations fit 10 minutes)",
                        lo=1, hi=10**9)
    eps: float = option(0.1, "the distortion a k must reach, in (0, 1)", lo=0.0, hi=1.0, open=True)
    seeds: int = option(1, "learned runs per k, their draws seeded --seed, --seed + 1, ... (the points stay those "
                        "of --seed), optimised as one batch", lo=1, hi=1000)

    def __post_init__(self):
        self.check_data()

    def targets(self):
        return [self.target] if self.target else ["norms", "pairwise"]

    def as_used(self, X, Xh):
        """:meth:`Data.as_used`, ``target`` ``norms+pairwise`` when both ran; ``k_grid`` is resolved by
        :meth:`check_k`."""
        return {**Data.as_used(self, X, Xh), "target": "+".join(self.targets())}

    def check_k(self, d):
        bad = [k for k in self.k_grid or () if not 1 <= k <= d]
        if bad:
            raise ValueError(f"--k-grid: {bad[0]} is outside [1, d = {d}]")
        from JohnsonLindenstrauss.ksweep import default_grid
        self.k_grid = sorted(set(self.k_grid or default_grid(d)))
        return max(self.k_grid)

    def quick(self, given, d):
        grid = self.k_grid if "k_grid" in given else [k for k in KSWEEP_QUICK_GRID if k <= d] or [d]
        return dataclasses.replace(self, steps=min(self.steps, 300), draws=min(self.draws, 100), k_grid=grid)

    def folder_name(self):
        return default_folder("ksweep", self.data, "+".join(self.targets()), shuffle=self.shuffle)


def _stream(cfg, name, device):
    """A fresh generator for one baseline: its draws do not depend on how many steps the optimiser ran, and the
    training and held-out targets are measured on the same matrices."""
    return torch.Generator(device=device).manual_seed(cfg.seed + BASELINE_SEED_OFFSETS[name])


def _targets(X, Xh, target, device):
    """The training and held-out targets of ``target`` (float64) as :class:`baselines.Points`: the stacked base
    points ``[X; Xh]`` every baseline maps, the training targets (from the first ``n`` columns), and the held-out
    ones (None without a holdout: the held-out rows; for pairs, every pair with a held-out point)."""
    from JohnsonLindenstrauss.baselines import Points
    from JohnsonLindenstrauss.targets import holdout_pairs, make_targets
    n, both = len(X), torch.as_tensor(np.vstack([X, Xh]), dtype=torch.float64, device=device)
    pts = Points(both, make_targets(both[:n], target), slice(0, n))
    if len(Xh):
        pts.held, pts.held_cols = ((make_targets(both[n:], "norms"), slice(n, None)) if target == "norms" else
                                   (make_targets(both, "pairwise", holdout_pairs(n, len(Xh))), slice(None)))
    return pts


BASELINES = ("gaussian_mean", "gaussian_min", "orthogonal_mean", "sparse_mean", "svd", "pca_centred")


def _baselines(cfg, X, pts, k, device):
    """Every baseline at ``k`` (:data:`BASELINES`), at its fixed scale and at its best scalar (chosen on the
    training targets), on the training targets and, with a holdout, on the held-out ones; ``gaussian_min`` is the
    draw best on the training targets. Returns the results' keys and the Gaussian draws' fixed-scale values."""
    from JohnsonLindenstrauss import baselines as jb
    g = jb.gaussian_baseline(pts, k, cfg.draws, _stream(cfg, "gaussian", device))
    o = jb.orthogonal_baseline(pts, k, cfg.draws, _stream(cfg, "orthogonal", device))
    sp = jb.matrices_baseline(jb.sparse_projections(X, k, min(cfg.draws, 100), cfg.seed), pts)
    svd = jb.matrices_baseline(jb.svd_projection(k, pts.train)[None], pts)
    pca = jb.matrices_baseline(jb.pca_projection(X, k, pts.train)[None], pts)
    out = {}
    for where, (fixed, scaled) in {"": ("fixed", "scaled"), "held_": ("held_fixed", "held_scaled")}.items():
        if pts.held is None and where:
            break
        for name, key in (("fixed_scale", fixed), ("best_scale", scaled)):
            pick = g["fixed" if key == fixed else "scaled"].argmin()          # chosen on the training targets
            out[where + name] = {"gaussian_mean": float(g[key].mean()), "gaussian_min": float(g[key][pick]),
                                 "orthogonal_mean": float(o[key].mean()), "sparse_mean": float(sp[key].mean()),
                                 "svd": float(svd[key][0]), "pca_centred": float(pca[key][0])}
    res = {**{m: out["fixed_scale"][m] for m in BASELINES[:4]}, "svd_best_scale": out["best_scale"]["svd"],
           "fixed_scale": out["fixed_scale"], "best_scale": out["best_scale"], "jl_min_dim": jb.jl_min_dim(len(X), 0.1)}
    if pts.held is not None:
        res["holdout"] = {**{m: out["held_fixed_scale"][m] for m in BASELINES[:4]},
                          "fixed_scale": out["held_fixed_scale"], "best_scale": out["held_best_scale"]}
    return res, g["fixed"]


def _learned(P, pts):
    """The learned map ``P: (k, d)`` as it is, and at its best scalar on the training targets (held out: the
    same scalar): ``(train, best-scale train, held-out or None, best-scale held-out or None)``."""
    from JohnsonLindenstrauss import baselines as jb
    r = jb.matrices_baseline(P[None], pts)
    return tuple(float(r[key][0]) if key in r else None for key in ("fixed", "scaled", "held_fixed", "held_scaled"))


def run_fig7(cfg: Fig7Config, X, Xh, folder, device, progress=True) -> dict:
    """One learned projection at ``k`` and every baseline; writes ``history.npz``, ``projection.npy``, figures."""
    from JohnsonLindenstrauss.train import optimise
    from JohnsonLindenstrauss.targets import matrix_distortion
    pts = _targets(X, Xh, cfg.target, device)
    T, Th = pts.train, pts.held
    # optimised in float32 (Gaussian draws are 6x cheaper than in float64); every reported number in float64
    jc = dataclasses.replace(cfg.jl_config(), snapshot_every=25 if Th is not None else 0)
    hist = optimise(T.to(torch.float32), jc, torch.Generator(device=device).manual_seed(cfg.seed), progress=progress)
    held = [matrix_distortion((M.double() / math.sqrt(cfg.k)).cpu().numpy(), Th) for M in hist["snapshots"]]
    P = (hist["M"].double() / math.sqrt(cfg.k)).cpu().numpy()            # embedding x -> P @ x
    base, gauss = _baselines(cfg, X, pts, cfg.k, device)
    train, train_scaled, held_out, held_scaled = _learned(P, pts)
    base["best_scale"]["learned"] = train_scaled
    if Th is not None:
        base["holdout"]["best_scale"]["learned"] = held_scaled
    res = {"data": cfg.data, "target": cfg.target, "objective": cfg.objective, "n": len(X), "d": X.shape[1],
           "k": cfg.k, "targets": len(T), "max_distortion": train,
           "max_distortion_last": matrix_distortion((hist["M_last"].double() / math.sqrt(cfg.k)).cpu().numpy(), T),
           "best_step": int(np.argmin(hist["mean_max"])) + 1 if hist["steps_run"] else 0,
           "holdout_max_distortion": held_out, **base,
           "sigma_final": float(np.max(hist["sigma"])), "steps_run": hist["steps_run"],
           "interrupted": hist["interrupted"], "optimize_s": hist["optimize_s"]}
    if cfg.objective == "surrogate":
        Y = torch.as_tensor(P, dtype=torch.float64, device=device) @ T.X.T
        res["fraction_above_eps"] = float(T.values(Y, 1).gt(cfg.jl_config().eps).double().mean())
    np.savez_compressed(os.path.join(folder, "history.npz"), loss=hist["loss"], sampled_max=hist["sampled_max"],
                        mean_max=hist["mean_max"], sigma_max=hist["sigma_max"], gaussian_draws=gauss,
                        holdout_steps=hist["snapshot_steps"], holdout_mean_max=np.array(held))
    np.save(os.path.join(folder, "projection.npy"), P)
    draw_fig7(folder, res)
    return res


def figure_title(res, what):
    """``what`` on its data: the dataset (a file by its name), n, d and k where the run has them."""
    data = os.path.basename(res["data"]) if is_file(res["data"]) else res["data"]
    sizes = ", ".join(f"{key} = {res[key]}" for key in ("n", "d", "k") if key in res)
    return f"{what}: {data} data, {sizes}"


def draw_fig7(folder, res):
    """The distortion per iteration against every baseline (with a holdout, the mean matrix on the held-out
    targets too) and σ per iteration: ``fig7_*`` in the paper's setting (uniform data, norms, the authors'
    objective), ``jl_*`` otherwise."""
    from JohnsonLindenstrauss.plot import plot_distortion, plot_sigma
    label = "norms" if res["target"] == "norms" else "pairwise distances"
    b = res["best_scale"]
    levels = [("Gaussian: mean of the draws", res["gaussian_mean"]),
              ("Gaussian: best of the draws", res["gaussian_min"]),
              ("Gaussian: best draw, its best scalar", b["gaussian_min"]),
              ("orthogonal rows: mean", res["orthogonal_mean"]), ("sparse (scikit-learn): mean", res["sparse_mean"]),
              ("top-k SVD (uncentred), best scalar", b["svd"]), ("PCA (centred), best scalar", b["pca_centred"])]
    name = "fig7" if (res["data"], res["target"], res["objective"]) == ("uniform", "norms", "max") else "jl"
    with np.load(os.path.join(folder, "history.npz")) as h:
        held = (h["holdout_steps"], h["holdout_mean_max"]) if "holdout_steps" in h and len(h["holdout_steps"]) else None
        what = f"{'Fig. 7, ' if name == 'fig7' else ''}{label}, objective {res['objective']}"
        reported = (res["best_step"], res["max_distortion"], res["max_distortion_last"]) if res["best_step"] else None
        save_figure(plot_distortion(h["sampled_max"], h["mean_max"], levels, label, held, reported,
                                    figure_title(res, what)), os.path.join(folder, f"{name}_distortion"))
        save_figure(plot_sigma(h["sigma_max"], res["objective"], figure_title(res, what)),
                    os.path.join(folder, f"{name}_sigma"))


def summary_fig7(res):
    hold = (f", held-out {res['holdout_max_distortion']:.4f} (Gaussian mean {res['holdout']['gaussian_mean']:.3f}, "
            f"SVD {res['holdout']['best_scale']['svd']:.3f})" if res["holdout_max_distortion"] is not None else "")
    b = res["best_scale"]
    return (f"jl {res['data']}/{res['target']}/{res['objective']} n={res['n']} d={res['d']} k={res['k']}: learned "
            f"max distortion {res['max_distortion']:.4f} (best training iterate, step {res['best_step']}; last iterate "
            f"{res['max_distortion_last']:.4f}){hold}; "
            f"Gaussian mean {res['gaussian_mean']:.3f} min {res['gaussian_min']:.3f} (at its best scalar "
            f"{b['gaussian_min']:.3f}), orthogonal {res['orthogonal_mean']:.3f}, sparse {res['sparse_mean']:.3f}, "
            f"uncentred SVD at its best scalar {res['svd_best_scale']:.3f}, centred PCA {b['pca_centred']:.3f}; "
            f"sigma {res['sigma_final']:.2e}; {res['steps_run']} steps, "
            f"{res['optimize_s']:.1f} s optimise (JL bound for eps 0.1: k >= {res['jl_min_dim']})")


def run_ksweep(cfg: KsweepConfig, X, Xh, folder, device, progress=True) -> dict:
    """Every method at every k of the grid, for each target; the smallest k within ε of each (ksweep.py). The
    ``--seeds`` learned runs of one k are one batch, run r drawing from its own generator seeded ``seed + r``."""
    from JohnsonLindenstrauss import ksweep as ks
    from JohnsonLindenstrauss.baselines import jl_min_dim
    rows, learned, optimise_s, stopped = [], {}, 0.0, False
    seeds = list(range(cfg.seed, cfg.seed + cfg.seeds))
    for target in cfg.targets():
        pts = _targets(X, Xh, target, device)
        for k in cfg.k_grid:
            new, Ps, seconds, stopped = _ksweep_point(cfg, X, pts, target, k, seeds, device, progress)
            rows += new
            learned[f"{target}_k{k}_seeds"] = np.stack(Ps)
            learned[f"{target}_k{k}"] = Ps[next(r for r in new if r["method"] == "learned")["best_seed"] - cfg.seed]
            optimise_s += seconds
            if stopped:
                break
        if stopped:
            break
    done = [t for t in cfg.targets() if any(r["target"] == t for r in rows)]
    res = {"data": cfg.data, "n": len(X), "holdout": len(Xh), "d": X.shape[1], "targets": done, "grid": cfg.k_grid,
           "eps": cfg.eps, "jl_bound": jl_min_dim(len(X), cfg.eps), "steps": cfg.steps, "draws": cfg.draws,
           "seeds": seeds, "rows": rows, "smallest_k": ks.table(rows, done, cfg.eps), "optimize_s": optimise_s,
           "interrupted": stopped}
    with open(os.path.join(folder, "ksweep.csv"), "w") as f:
        f.write(ks.to_csv(rows))
    with open(os.path.join(folder, "ksweep.md"), "w") as f:
        f.write(ks.to_markdown(res))
    np.savez_compressed(os.path.join(folder, "ksweep_projections.npz"), **learned)
    draw_ksweep(folder, res)
    return res


def _ksweep_point(cfg, X, pts, target, k, seeds, device, progress):
    """The rows of one (target, k): the learned runs (a run whose iterates never beat M = 0 keeps M = 0) and
    every baseline at its fixed scale and at its best scalar (``NAME_best_scale``). Returns the rows, the learned
    matrices, the optimisation's seconds and whether it was stopped."""
    from JohnsonLindenstrauss.train import optimise
    from JohnsonLindenstrauss.targets import matrix_distortion
    T, Th = pts.train, pts.held
    jc = JLConfig(k=k, batch=cfg.batch, lr=cfg.lr, steps=cfg.steps, tol=cfg.tol or JL_DEFAULTS.tol)
    runs = optimise(T.to(torch.float32), jc, [torch.Generator(device=device).manual_seed(s) for s in seeds],
                    progress=False)
    Ps = [(r["M"].double() / math.sqrt(k)).cpu().numpy() for r in runs]
    train = [matrix_distortion(P, T) for P in Ps]
    held = [matrix_distortion(P, Th) for P in Ps] if Th is not None else None
    best = int(np.argmin(train))                                  # chosen on the training targets only
    base, _ = _baselines(cfg, X, pts, k, device)
    hb = base.get("holdout", {})
    values = {"learned": (float(np.mean(train)), float(np.mean(held)) if held else None),
              "learned_best": (train[best], held[best] if held else None)}
    for scale, suffix in (("fixed_scale", ""), ("best_scale", "_best_scale")):
        values |= {m + suffix: (base[scale][m], hb[scale][m] if hb else None) for m in BASELINES}
    steps = [r["steps_run"] for r in runs]
    rows = [{"target": target, "k": k, "method": m, "max_distortion": v, "holdout_max_distortion": h,
             **({"seeds": seeds, "seed_values": train, "seed_holdout_values": held, "steps_run": steps,
                 "best_seed": seeds[best]} if m.startswith("learned") else {})} for m, (v, h) in values.items()]
    if progress:
        over = f" (mean of {len(seeds)} seeds; best {train[best]:.4f})" if len(seeds) > 1 else ""
        print(f"ksweep {target} k={k}: learned {values['learned'][0]:.4f}{over}, Gaussian best "
              f"{base['gaussian_min']:.4f}, uncentred SVD at its best scalar {base['svd_best_scale']:.4f} "
              f"({max(steps)} steps, {runs[0]['optimize_s']:.1f} s)", flush=True)
    return rows, Ps, runs[0]["optimize_s"], runs[0]["interrupted"]


def draw_ksweep(folder, res):
    from JohnsonLindenstrauss.plot import plot_ksweep
    title = figure_title(res, f"smallest k: max distortion against k, eps = {res['eps']:g}")
    save_figure(plot_ksweep(res["rows"], res["targets"], res["eps"], res["jl_bound"], title),
                os.path.join(folder, "ksweep"))


def summary_ksweep(res):
    sk = res["smallest_k"]
    return (f"ksweep {res['data']} n={res['n']} d={res['d']}, k in {res['grid']}: smallest k with max distortion <= "
            f"{res['eps']:g} (learned: each run's best training iterate) -- "
            + "; ".join(f"{t}: " + ", ".join(f"{m} {sk[t][m]}" for m in sk[t]) for t in res["targets"])
            + f"; JL bound {res['jl_bound']}; {res['optimize_s']:.0f} s optimise")


THEOREM_DEFAULTS = TheoremSettings()


@dataclasses.dataclass
class TheoremConfig:
    """Theorem 5.5 in its regime (theorem.py): ε = 0.5, the smallest k at which the initial objective is below 1,
    exactly and as descended (its common random numbers), gradient descent to a second-order stationary point,
    the mean matrix checked against the guarantee."""
    data: str = option("uniform", "uniform | gaussian | digits | PATH.npy | PATH.csv (as for fig7)", kind=str)
    n: int = option(None, "training points (default 100). A file: its first --n rows train, the next --holdout "
                    "are held out, in the file's order unless --shuffle (default: all rows but the holdout)",
                    lo=1, hi=10**6)
    d: int = option(None, "dimension of generated data (default 500)", lo=1, hi=10**6)
    holdout: int = option(100, "held-out points from the same source, never trained on (a file: the rows after "
                          "the first --n)", lo=0, hi=10**6)
    shuffle: bool = option(False, "a file's rows shuffled with --seed before the split (as for fig7)")
    k: int = option(None, "target dimension (default: the smallest k whose initial objective is below 1, the "
                    "theorem's premise, both exactly and with the draws the descent uses)", lo=1, hi=10**5)
    eps: float = option(THEOREM_DEFAULTS.eps, "distortion threshold epsilon", lo=0.0, hi=1.0, open=True)
    tau: float = option(THEOREM_DEFAULTS.tau, "width of the smooth indicator, below epsilon (the allowance it "
                        "gives)", lo=0.0, hi=1.0, open=True)
    lam: float = option(THEOREM_DEFAULTS.lam, "penalty on the variances (lambda k d must stay below 1 - the initial "
                        "objective)", lo=0.0, hi=1.0)
    samples: int = option(THEOREM_DEFAULTS.samples, "common random draws G_1..G_S of the objective", lo=1, hi=10**5)
    tol: float = option(THEOREM_DEFAULTS.tol, "gradient norm at which the Hessian is tested", lo=1e-14, hi=1.0)
    max_steps: int = option(THEOREM_DEFAULTS.max_steps, "gradient steps at most", lo=1, hi=10**8)
    budget: float = option(600.0, "seconds of descent at most (then tested where it stands)", lo=1.0, hi=1e7)
    draws: int = option(1000, "Gaussian matrices for the baseline at the same k", lo=1, hi=10**7)
    seed: int = 0

    check_data = Data.check_data
    load = Data.load
    input_files = Data.input_files

    def as_used(self, X, Xh):
        """:meth:`Data.as_used`; ``k`` as run (``k_chosen``: given, or the smallest meeting the premise)."""
        used = Data.as_used(self, X, Xh)
        return {**used, "k_chosen": "given" if getattr(self, "k_given", True) else "premise"}

    def __post_init__(self):
        self.check_data()
        if self.tau >= self.eps:
            raise ValueError(f"--tau {self.tau:g} must be below --eps {self.eps:g} (the smooth indicator would "
                             "feel the kink of |u - 1| at distortion 0)")

    def targets(self):
        return ["norms"]

    def check_k(self, d):
        """The exact premise's k when none is given (:func:`run_theorem` then moves it to where the descended
        objective starts below 1 too)."""
        from JohnsonLindenstrauss.theorem import premise_k
        self.k_given = self.k is not None
        if self.k is None:
            self.k = premise_k(self.n, self.eps, self.tau, d)
            if self.k is None:
                raise ValueError(f"no k <= d = {d} has an initial objective below 1 for n = {self.n}, eps = "
                                 f"{self.eps:g}: the theorem's premise fails; give --k to run anyway")
        if self.k > d:
            raise ValueError(f"--k {self.k} is larger than the data dimension d = {d}")
        return self.k

    def quick(self, given, d):
        return dataclasses.replace(self, budget=min(self.budget, 20.0), samples=min(self.samples, 8),
                                   draws=min(self.draws, 100))

    def memory(self, X, Xh, targets, k):
        return 8.0 * self.samples * k * (X.shape[1] + len(X)) * 12

    def settings(self):
        return TheoremSettings(eps=self.eps, tau=self.tau, lam=self.lam, samples=self.samples, tol=self.tol,
                               max_steps=self.max_steps, budget_s=self.budget)

    def folder_name(self):
        return default_folder("theorem", self.data, "norms", shuffle=self.shuffle)


def run_theorem(cfg: TheoremConfig, X, Xh, folder, device, progress=True) -> dict:
    """One descent at k and its guarantee chain (theorem.py: what guarantees what); every baseline at k."""
    from JohnsonLindenstrauss import theorem as th
    from JohnsonLindenstrauss.baselines import jl_min_dim
    from JohnsonLindenstrauss.certificate import certify
    Xt, Xht = (torch.as_tensor(A, dtype=torch.float64, device=device) for A in (X, Xh))
    d, settings = X.shape[1], cfg.settings()
    tried = {}
    if not getattr(cfg, "k_given", True):
        found, tried = th.descended_k(Xt, settings, cfg.seed, cfg.k)
        cfg.k = found or cfg.k
    k = cfg.k
    pts = _targets(X, Xh, "norms", device)
    base, gauss = _baselines(cfg, X, pts, k, device)
    init = th.initial_objective(len(X), k, cfg.eps, cfg.tau)
    r = th.descend(Xt, k, settings, cfg.seed, progress=progress)
    point = certify(r, Xt, init, cfg.eps, cfg.tau)
    worst, start = point["max_distortion"], point["objective_start"]
    held = th.distortions(r["M"], Xht) if len(Xh) else None
    res = {"data": cfg.data, "n": len(X), "d": d, "holdout": len(Xh), "k": k, "eps": cfg.eps, "tau": cfg.tau,
           "lam": cfg.lam, "samples": cfg.samples, "initial_objective": init, "premise": bool(init < 1),
           "initial_objective_crn": start - cfg.lam * k * d, "penalty_at_start": cfg.lam * k * d,
           "initial_objective_descended": start, "outside_theorem": not (init < 1 and start < 1),
           "descended_starts_tried": {str(j): v for j, v in tried.items()},
           "allowance": cfg.tau, "sigma_max": point["sigma_max"], "max_distortion": worst,
           "max_distortion_holdout": float(held.max()) if held is not None else None,
           "within_eps": bool(worst <= cfg.eps), "within_allowance": bool(worst <= cfg.eps + cfg.tau),
           "holdout_within_allowance": bool(held.max() <= cfg.eps + cfg.tau) if held is not None else None,
           "certified": point["certified"], "points": [point], **base,
           "gaussian_within_eps": float((gauss <= cfg.eps).mean()), "draws": cfg.draws,
           **{q: r[q] for q in ("status", "steps", "kicks", "objective_end", "grad_norm", "lam_min_hessian")},
           "optimize_s": r["seconds"], "interrupted": r["status"] == "interrupted"}
    res["jl_min_dim"] = jl_min_dim(len(X), cfg.eps)
    np.savez_compressed(os.path.join(folder, "history.npz"), **r["history"],
                        train=th.distortions(r["M"], Xt).cpu().numpy(),
                        holdout=held.cpu().numpy() if held is not None else np.zeros(0))
    np.save(os.path.join(folder, "projection.npy"), (r["M"] / math.sqrt(k)).cpu().numpy())
    draw_theorem(folder, res)
    return res


def draw_theorem(folder, res):
    """``jl_theorem``: the mean matrix's max distortion and max σ per step against ε and ε + τ."""
    from JohnsonLindenstrauss.plot import plot_theorem
    with np.load(os.path.join(folder, "history.npz")) as h:
        fig = plot_theorem(h["max_distortion"], h["sigma_max"], h["objective"], res["eps"], res["allowance"],
                           res["max_distortion_holdout"], figure_title(res, "Theorem 5.5, norms"))
    save_figure(fig, os.path.join(folder, "jl_theorem"))


def summary_theorem(res):
    held = (f", held out {res['max_distortion_holdout']:.3f}" if res["max_distortion_holdout"] is not None else "")
    p = res["points"][0]
    where = "OUTSIDE the theorem: " if res["outside_theorem"] else ""
    return (f"JL theorem {res['data']} n={res['n']} d={res['d']} k={res['k']} (JL bound {res['jl_min_dim']}), eps "
            f"{res['eps']:g}: {where}initial objective {res['initial_objective']:.3f} exactly, "
            f"{res['initial_objective_descended']:.3f} as descended ({res['samples']} draws, penalty included); "
            f"{res['status']} after {res['steps']} steps, F {p['objective_start']:.3f} -> {p['objective_end']:.3f} "
            f"({'monotone' if p['monotone'] else 'NOT monotone'}); max distortion of the last iterate's M "
            f"{res['max_distortion']:.3f}"
            f"{held} against eps + tau = {p['bound']:g}: {'certified' if p['certified'] else 'NOT certified'}; "
            f"{res['draws']} Gaussian matrices: mean {res['gaussian_mean']:.3f}, best {res['gaussian_min']:.3f} "
            f"(best scalar {res['best_scale']['gaussian_min']:.3f}), {100 * res['gaussian_within_eps']:.0f}% within "
            f"eps; uncentred SVD at its best scalar {res['svd_best_scale']:.3f}; max sigma {res['sigma_max']:.1e}, "
            f"grad {res['grad_norm']:.1e}, lambda_min {res['lam_min_hessian']:.1e}, {res['optimize_s']:.1f} s")


RUN_ERRORS = (DivergenceError,)     # a run that ends in one of these: one line (:func:`hint` added), exit 2


def hint(error, cfg):
    """What to try after a run ended in ``error``: a smaller step, unless M never moved."""
    if (isinstance(error, NoImprovementError) and not error.moved) or not hasattr(cfg, "lr"):
        return ""
    return "; try a smaller --lr" + (" (or --lam, a larger --tau)" if getattr(cfg, "objective", "max") ==
                                     "surrogate" else "")
