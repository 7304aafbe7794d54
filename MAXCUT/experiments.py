"""The two MAXCUT experiments of Section 5.1 -- ``derandomise`` (Fig. 5, G-set) and ``theorem`` (Theorem 5.2 with
its own algorithm) -- each a config (its options and defaults, declared once), a ``run`` that computes and writes
the outputs into a folder, a ``draw`` for its figures and a one-line summary.

With no ``--graph``: Fig. 5 as the authors ran it -- their G(15, 0.6) graph (torch, seed 42: 62 edges, optimum
41), their spectral "GW vectors" and score-function rule, optimisation seed 43. With ``--graph FILE``: a G-set
or edge-list file, a real GW SDP embedding (Burer-Monteiro) and the pathwise estimator of the smoothed objective.
"""
import dataclasses
import functools
import math
import os
import time
import zlib

import numpy as np
import torch

from MAXCUT import baselines, conditional, gw
from MAXCUT.certificates import sdp_certificate
from MAXCUT.graphs import (GRAPH_FORMATS, Graph, authors_graph, cut_value, graph_digest, gset_reference,
                           random_graph, read_graph_file, weight_scale)
from MAXCUT.model import CHUNK, NODES, hyperplane_partition, smoothing_loss_rate
from MAXCUT.optimizer import (STEP_RULES, DescentSettings, DivergenceError, PathwiseConfig, ScoreConfig, descend,
                              optimise_pathwise, optimise_score)
from MAXCUT.utils import save_figure, trim_heap

EXACT_MAX_NODES = 24       # brute force up to this many nodes (2^(n-1) cuts)
NX_AUTO_MAX_NODES = 300    # networkx's one_exchange is slow beyond
ROUNDING_SEED_OFFSET = 1   # the GW roundings draw from seed + this
SDP_SEED_OFFSET = 2        # the SDP's random start: seed + this
QUICK_WORK = 2e10          # --quick: about this many multiply-adds for the steps (1% of it for the SDP)
WEIGHT_RANGE = (1e-100, 1e100)   # total |weight|: cuts, sums and gains over the edges stay finite in float64
RANDOM_GRAPH = {"nodes": 15, "edge_prob": 0.6, "graph_source": "torch", "graph_seed": 42}   # the authors'
SCORE, PATHWISE, DESCENT = ScoreConfig(), PathwiseConfig(), DescentSettings()     # their defaults, for the help


def trim_heap_every(t, every=20):
    """After every ``every``-th step of the pathwise descent: hand freed heap memory back (utils.trim_heap)."""
    if t % every == 0:
        trim_heap()


def option(default, help, **check):
    """A config field that is also a command-line option (main.py builds it): ``check`` holds ``lo``/``hi`` (with
    ``open``: strict bounds), ``choices``."""
    return dataclasses.field(default=default, metadata={"help": help, **check})


GRAPH_HELP = ("G-set/rudy file ('n m' then 'i j w', 1-based) or edge list ('u v', 'u v w' or networkx's 'u v {...}' "
              "per line; integer labels, kept in partition.csv); default: the authors' random graph")
FORMAT_HELP = ("how --graph is read: auto (default) = gset when the first line has two fields and the second three, "
               "or when a first line 'n m' announces exactly the m two-field lines below it (ids 1..n or 0..n-1); "
               "else edges; a lone two-field line is refused as ambiguous")


def _check_graph_option(graph):
    if graph is not None and not graph.strip():
        raise ValueError("--graph is empty: name a graph file (or leave the option out for the authors' graph)")


@dataclasses.dataclass
class MaxcutConfig:
    graph: str = option(None, GRAPH_HELP, kind=str)
    graph_format: str = option(None, FORMAT_HELP, choices=GRAPH_FORMATS)
    nodes: int = option(None, "nodes of the random graph (paper: 15)", lo=2, hi=10**6)
    edge_prob: float = option(None, "edge probability of the random graph (paper: 0.6)", lo=0.0, hi=1.0)
    graph_source: str = option(None, "the random graph: 'torch' (default), the authors' construction (rand(n, n) "
                               "< p, upper triangle mirrored), or networkx's gnp_random_graph",
                               choices=("torch", "networkx"))
    graph_seed: int = option(None, "seed of the random graph (paper: 42)", lo=0, hi=2 ** 29 - 1)
    embedding: str = option("auto", "vectors v_i: the authors' adjacency eigenvectors or the GW SDP solution; "
                            "auto = spectral for the random graph (paper), sdp for --graph",
                            choices=("auto", "spectral", "sdp"))
    estimator: str = option("auto", "gradient estimator; auto = score for the random graph (paper), pathwise for "
                            "--graph", choices=("auto", "score", "pathwise"))
    steps: int = option(None, f"optimisation steps (score: {SCORE.steps}, the paper's; pathwise: {PATHWISE.steps})",
                        lo=1, hi=10**9)
    samples: int = option(None, f"Monte-Carlo samples per step (score: {SCORE.samples}, the paper's; pathwise: "
                          f"{PATHWISE.samples})", lo=1, hi=10**12)
    lr_mean: float = option(None, f"step size of m (score: {SCORE.lr_mean}, paper; pathwise: {PATHWISE.lr_mean})",
                            lo=0.0, hi=1e30, open=True)
    lr_sigma: float = option(None, f"step size of log sigma (score: {SCORE.lr_sigma}, paper; pathwise: "
                             f"{PATHWISE.lr_sigma})", lo=0.0, hi=1e30, open=True)
    lam: float = option(None, f"penalty on sigma (score: {SCORE.lam}, paper; pathwise: {PATHWISE.lam}, relative to the "
                        "total |weight|)", lo=0.0, hi=1e30)
    delta: float = option(None, f"pathwise only: width of the smooth step (default {PATHWISE.delta})", lo=1e-6, hi=1e3)
    chains: int = option(None, f"pathwise only: (m, sigma) chains optimised at once, the best final hyperplane "
                         f"kept (default {PATHWISE.chains})", lo=1, hi=10**5)
    rounds: int = option(1000, "random GW roundings for the best-of-k baseline", lo=1, hi=10**7)
    exact: str = option("auto", f"brute-force optimum (auto: up to {EXACT_MAX_NODES} nodes)",
                        choices=("auto", "yes", "no"))
    nx: str = option("auto", f"networkx approximation baselines (auto: up to {NX_AUTO_MAX_NODES} nodes)",
                     choices=("auto", "yes", "no"))
    polish: bool = option(False, "also report a greedy one-flip local search from the derandomised cut")
    tabu: int = option(0, "with --polish: also report a tabu search of this many flips per node from the polished "
                       "cut (a stronger local search, reported apart)", lo=0, hi=10**5)
    sdp_iters: int = option(3000, "L-BFGS iterations of the SDP solver", lo=1, hi=10**7)
    sdp_rank: int = option(None, "rank p of the SDP factor (default: the smallest p with p(p+1)/2 > n, plus one)",
                           lo=1, hi=10**5)
    seed: int = dataclasses.field(default=None, metadata={"seed_help": "default: 43, the authors' Fig. 5 seed, with "
                                  "the score estimator (the default without --graph); else 0"})
    graph_notes: tuple = ()    # what the file reader said of the file (not an option)
    graph_digest: str = None   # graphs.graph_digest of the file's graph, set when it is read (not an option)
    graph_labels: np.ndarray = None   # the file's own label of each node 0..n-1, set when it is read (not an option)

    def __post_init__(self):
        _check_graph_option(self.graph)
        given = [f for f in RANDOM_GRAPH if getattr(self, f) is not None]
        if self.graph is not None and given:
            raise ValueError(f"--{given[0].replace('_', '-')} chooses the random graph; it does not apply with "
                             "--graph")
        if self.graph is None and self.graph_format is not None:
            raise ValueError("--graph-format says how --graph is read; there is no --graph")
        for f, v in RANDOM_GRAPH.items():
            setattr(self, f, v if getattr(self, f) is None and self.graph is None else getattr(self, f))
        auto = self.graph is None
        self.embedding = self.embedding if self.embedding != "auto" else ("spectral" if auto else "sdp")
        self.estimator = self.estimator if self.estimator != "auto" else ("score" if auto else "pathwise")
        own = [f for f in ("delta", "chains") if getattr(self, f) is not None]
        if self.tabu and not self.polish:
            raise ValueError("--tabu starts from the polished cut: add --polish")
        if self.estimator == "score" and own:
            raise ValueError(f"--{own[0]} applies to the pathwise estimator only, not to --estimator score")
        self.seed = self.seed if self.seed is not None else 43 if self.estimator == "score" else 0
        self.name = (os.path.splitext(os.path.basename(self.graph))[0] if self.graph else
                     f"{'torch' if self.graph_source == 'torch' else 'gnp'}_{self.nodes}_{self.edge_prob:g}_"
                     f"seed{self.graph_seed}")

    def folder_name(self):
        """What the run is: ``fig5`` (the authors' graph), ``derandomise-torch_20_0.6_seed42`` (another random
        graph), ``derandomise-<file stem>-<8 hex digits of its graph's digest>``."""
        if self.graph:
            return f"derandomise-{self.name}-{(self.graph_digest or '')[:8]}".rstrip("-")
        authors = all(getattr(self, f) == v for f, v in RANDOM_GRAPH.items())
        return "fig5" if authors else f"derandomise-{self.name}"

    def optimiser(self):
        """The estimator's config: its defaults (optimizer.py), overridden by the options given."""
        cfg = ScoreConfig() if self.estimator == "score" else PathwiseConfig(delta=self.delta or PATHWISE.delta,
                                                                              chains=self.chains or PATHWISE.chains)
        for f in ("steps", "samples", "lr_mean", "lr_sigma", "lam"):
            if getattr(self, f) is not None:
                setattr(cfg, f, getattr(self, f))
        return cfg

    def as_used(self, n):
        """Every option as the run uses it (``config.json``): the estimator's settings where the option was left
        to its default, the SDP rank resolved from ``n``; an option the run does not use stays None."""
        opts, opt = dataclasses.asdict(self), self.optimiser()
        names = ("steps", "samples", "lr_mean", "lr_sigma", "lam") + (("delta", "chains") if self.estimator
                                                                       == "pathwise" else ())
        opts.update({f: getattr(opt, f) for f in names}, sdp_rank=self.sdp_rank or gw.sdp_rank(n),
                    estimator_settings=dataclasses.asdict(opt))
        del opts["graph_labels"]
        return opts

    def quick(self, n, m):
        """Quick at every size: fewer steps, roundings, chains and SDP iterations, within a work budget."""
        cfg, p = self.optimiser(), self.sdp_rank or gw.sdp_rank(n)
        per_step = cfg.samples * min(getattr(cfg, "chains", 1), 8) * n * (n if self.embedding == "spectral" else p)
        steps = min(cfg.steps, 500 if self.estimator == "score" else 100, max(10, int(QUICK_WORK / per_step)))
        return dataclasses.replace(self, rounds=min(self.rounds, 200), steps=steps,
                                   chains=min(cfg.chains, 8) if self.estimator == "pathwise" else None,
                                   sdp_iters=min(self.sdp_iters, 200, max(5, int(QUICK_WORK / 100 / (m * p)))))

    def memory(self, n, m):
        """Bytes at the peak, roughly: the random graph's n x n draw, the spectral embedding's eigendecomposition,
        the SDP factor and its per-edge gathers, the roundings and the optimiser's sampled hyperplanes."""
        cfg, p = self.optimiser(), self.sdp_rank or gw.sdp_rank(n)
        dims = n if self.embedding == "spectral" else p
        per_draw = (n + dims) * (8 if self.estimator == "score" else 4 * getattr(cfg, "chains", 1))
        return (8.0 * n * n * (self.graph is None) + 32.0 * n * n * (self.embedding == "spectral")
                + (8.0 * n * n if n <= 512 else 24.0 * m) + gw.sdp_bytes(n, m, p, self.sdp_iters)
                + 24.0 * n * n * (n <= gw.CERTIFY_UP_TO)
                + 8.0 * self.rounds * (dims + n + 2 * m) + 4.0 * cfg.samples * per_draw)

    def read_graph(self):
        """``(graph or None, n, m)``: the file's graph, or None and the random graph's size (m expected)."""
        if self.graph is None:
            return None, self.nodes, self.edge_prob * self.nodes * (self.nodes - 1) / 2
        graph, self.graph_format, notes, self.graph_labels = read_graph_file(self.graph, self.graph_format or "auto",
                                                                             with_labels=True)
        self.graph_notes, self.graph_digest = tuple(notes), graph_digest(*graph)
        return graph, graph[0], len(graph[1])

    def make_graph(self, graph):
        """The graph to cut (the random one drawn here), refused when every cut is 0 or its weights overflow."""
        if graph is None:
            graph = (authors_graph if self.graph_source == "torch" else random_graph)(self.nodes, self.edge_prob,
                                                                                        self.graph_seed)
        if self.exact == "yes" and graph[0] > EXACT_MAX_NODES:
            raise ValueError(f"--exact yes enumerates 2^(n-1) cuts; {graph[0]} nodes is more than the "
                             f"{EXACT_MAX_NODES} allowed")
        return check_weights(self.name, graph)


def check_weights(name, graph):
    """``graph``, refused (one line) when every cut is 0 or its weights lie outside what the numerics hold. Inside
    :data:`WEIGHT_RANGE` every scale gives the same partitions: what needs it works on ``w / weight_scale(w)``."""
    w = graph[2]
    if not np.any(w):
        raise ValueError(f"the graph {name} has no edges of non-zero weight: every cut is 0")
    total = float(np.abs(w).sum())
    if not WEIGHT_RANGE[0] <= total <= WEIGHT_RANGE[1]:
        raise ValueError(f"the graph {name}'s weights are of scale {float(np.abs(w).max()):.3g} (max |weight|) and "
                         f"total {total:.3g}: the total |weight| must lie in [{WEIGHT_RANGE[0]:g}, "
                         f"{WEIGHT_RANGE[1]:g}], where sums over the edges stay finite; rescale the weights "
                         f"(divide them by {float(np.abs(w).max()):.3g}, say)")
    return graph


def _nx_baselines(cfg, graph):
    """networkx's randomized_partitioning and one_exchange, or (None, None, why not)."""
    n = graph[0]
    if cfg.nx == "no" or (cfg.nx == "auto" and n > NX_AUTO_MAX_NODES):
        return None, None, ("--nx no" if cfg.nx == "no" else
                            f"{n} nodes > {NX_AUTO_MAX_NODES} (one_exchange is slow; --nx yes forces it)")
    return (*baselines.nx_baselines(graph, cfg.seed), None)


def run(cfg: MaxcutConfig, graph, folder, device, progress=True) -> dict:
    """Embedding, baselines, derandomisation, polishing; writes ``history.npz`` and the figures."""
    n, edges, weights = graph
    scale = weight_scale(weights)  # a power of two: the embedding and optimiser see weights / scale (exact), so
    unit = weights / scale         # every weight scale gives the same partition; cuts are reported in w's units
    ts = time.perf_counter()       # separate streams: the SDP start, the roundings, the optimisation
    sdp_gen = torch.Generator(device=device).manual_seed(cfg.seed + SDP_SEED_OFFSET)
    V_sdp, sdp_value = gw.solve_sdp(n, edges, weights, sdp_gen, rank=cfg.sdp_rank, max_iter=cfg.sdp_iters,
                                    device=device)
    sdp = sdp_certificate(graph, V_sdp, sdp_value)
    sdp_s = time.perf_counter() - ts
    V = V_sdp if cfg.embedding == "sdp" else gw.spectral_embedding(n, edges, unit)
    # the pathwise estimator uses the cut only through smooth gradients: float32 halves its time; the reported
    # cut is recomputed in float64 from the partition
    dtype = torch.float32 if cfg.estimator == "pathwise" else torch.float64
    gw_exp = gw.gw_expectation(V, edges, weights)
    round_cuts, _ = gw.gw_round(V, edges, weights, cfg.rounds,
                                torch.Generator().manual_seed(cfg.seed + ROUNDING_SEED_OFFSET))
    classic = conditional_expectations(V, edges, weights, gw_exp)
    exact = baselines.brute_force(n, edges, weights)[0] if cfg.exact == "yes" or (
        cfg.exact == "auto" and n <= EXACT_MAX_NODES) else None
    nx_rnd, nx_one, nx_why = _nx_baselines(cfg, graph)
    optimise = optimise_score if cfg.estimator == "score" else functools.partial(optimise_pathwise,
                                                                               after_step=trim_heap_every)
    hist = optimise(torch.as_tensor(V, dtype=dtype, device=device), Graph(n, edges, unit, device, dtype=dtype),
                    cfg.optimiser(), torch.Generator(device=device).manual_seed(cfg.seed), progress=progress)
    if scale != 1:
        hist.update({k: hist[k].astype(np.float64) * scale for k in ("cut_mean", "cut_sampled", "chain_final_cuts")})
    partition = hyperplane_partition(V, hist["m"])
    cut = float(cut_value(edges, weights, partition))
    if hist["cut_mean"].size and not math.isclose(cut, float(hist["cut_mean"][-1]), rel_tol=1e-5,
                                                  abs_tol=1e-3 * scale):
        raise AssertionError("the partition's cut differs from the optimiser's last deterministic cut")
    polished, polish_s, tabu, tabu_s = _polish(cfg, graph, V, hist, partition)
    np.savez_compressed(os.path.join(folder, "history.npz"), step=hist["step"], cut_sampled=hist["cut_sampled"],
                        cut_mean=hist["cut_mean"], sigma_max=hist["sigma_max"], sigma_relative=hist["sigma_relative"],
                        m=hist["m"], gw_round_cuts=round_cuts,
                        **({"sigma_step": hist["sigma_step"]} if "sigma_step" in hist else {}))
    write_partition(os.path.join(folder, "partition.csv"), cfg.graph_labels, partition)
    last = hist["sigma_max"].size > 0
    res = {"graph": cfg.name, "graph_format": cfg.graph_format, "graph_notes": list(cfg.graph_notes),
           "graph_digest": cfg.graph_digest, "nodes": n, "edges": int(len(edges)),
           "embedding": cfg.embedding, "estimator": cfg.estimator, "cut": cut, "cut_polished": polished,
           "cut_best_iterate": float(hist["cut_mean"].max()) if hist["cut_mean"].size else cut,
           **sdp, "gw_expectation": gw_exp, "gw_best_of_k": float(round_cuts.max()),
           "gw_mean_of_k": float(round_cuts.mean()), "rounds": cfg.rounds, "conditional_expectations": classic,
           "nx_randomized": nx_rnd,
           "nx_one_exchange": nx_one, "nx_note": nx_why, "exact": exact,
           "best_known": gset_reference(cfg.graph_digest)[0],
           "sigma_final": float(hist["sigma_max"][-1]) if last else None,
           "sigma_relative_final": float(hist["sigma_relative"][-1]) if last else None,
           "cut_at_least_gw_expectation": bool(cut >= gw_exp), "steps_run": int(hist["step"].size),
           "interrupted": hist["interrupted"], "sdp_s": sdp_s, "optimize_s": hist["optimize_s"],
           "polish_s": polish_s, "cut_tabu": tabu, "tabu_s": tabu_s, "tabu_flips_per_node": cfg.tabu,
           "partition": partition.tolist()}
    draw(folder, res)
    return res


def conditional_expectations(V, edges, weights, gw_exp):
    """The classic derandomisation of the same vectors (Mahajan & Ramesh, conditional.py): ``results.json``'s
    ``conditional_expectations`` (its cut, ≥ the GW expectation by construction, checked; the values along the way;
    the search; the time)."""
    return conditional.summary_record(conditional.derandomise(V, edges, weights), gw_exp)


def write_partition(path, labels, partition):
    """``partition.csv``: ``label,side``, one row per node under the file's own labels (0..n-1 for the random
    graph), side 0 or 1 as in results.json's ``partition``."""
    labels = np.arange(len(partition)) if labels is None else labels
    with open(path, "w") as f:
        f.write("label,side\n" + "".join(f"{int(a)},{int(b)}\n" for a, b in zip(labels, partition)))


def _polish(cfg, graph, V, hist, partition):
    """``--polish``: one-flip local search from every chain's final hyperplane (one chain for the score
    estimator), then with ``--tabu`` a tabu search from the best of them. ``(polished, s, tabu, s)``, None
    where not asked."""
    n, edges, weights = graph
    if not cfg.polish:
        return None, None, None, None
    tp = time.perf_counter()
    starts = hyperplane_partition(V, hist["chain_m"].T).T if len(hist["chain_m"]) else partition[None]
    found = [baselines.local_search(n, edges, weights, x) for x in starts]
    cuts = [float(cut_value(edges, weights, x)) for x in found]
    polished, polish_s = max(cuts), time.perf_counter() - tp
    if not cfg.tabu:
        return polished, polish_s, None, None
    tp = time.perf_counter()
    best = baselines.tabu_search(n, edges, weights, found[int(np.argmax(cuts))], cfg.tabu * n, cfg.seed)
    return polished, polish_s, float(cut_value(edges, weights, best)), time.perf_counter() - tp


def draw(folder, res):
    """The cut and σ per iteration from ``history.npz`` and the results: ``fig5_cut``/``fig5_sigma`` for the
    authors' random graph (the paper's Fig. 5), ``gset_cut``/``gset_sigma`` for a graph file."""
    from MAXCUT.plot import plot_cut, plot_sigma      # matplotlib loads once take_signals has chosen Agg
    name = "fig5" if res.get("graph_format") is None else "gset"
    ref = ("optimum (brute force)", res["exact"]) if res["exact"] is not None else ("best known cut", res["best_known"])
    spectral = res.get("embedding") == "spectral"    # the authors' "GW vectors": eigenvectors, a uniform random cut
    levels = [("gw", "expected cut of the spectral vectors (uniform random cut)" if spectral else "GW expectation",
               res["gw_expectation"]),
              ("best_of_k", f"best of {res['rounds']} {'spectral' if spectral else 'GW'} roundings",
               res["gw_best_of_k"]),
              ("polished", "polished (one-flip local search)", res["cut_polished"]),
              ("conditional", "conditional expectations (Mahajan–Ramesh)", _classic_cut(res)), ("reference", *ref),
              ("sdp", *_sdp_level(res))]
    with np.load(os.path.join(folder, "history.npz")) as h:
        title = _title(res)
        save_figure(plot_cut(h["step"], h["cut_sampled"], h["cut_mean"], levels, title),
                    os.path.join(folder, f"{name}_cut"))
        step_scale = h["sigma_step"] if "sigma_step" in h.files else None     # the authors' rule: max σ + 0.5
        save_figure(plot_sigma(h["step"], h["sigma_max"], h["sigma_relative"], title, step_scale),
                    os.path.join(folder, f"{name}_sigma"))


def _classic_cut(res):
    """The cut of the method of conditional expectations, or None in a results.json of an earlier version."""
    return (res.get("conditional_expectations") or {}).get("cut")


def _classic_said(res):
    ce = res.get("conditional_expectations")
    return (f", conditional expectations {ce['cut']:g} ({'≥' if ce['guarantee_holds'] else 'NOT ≥'} GW expectation, "
            f"{ce['time_s']:.1f} s)" if ce else "")


def _graph_title(res):
    """The graph as a figure's title names it: the authors' random graph by its construction, else its name."""
    if res["graph"] == "torch_15_0.6_seed42" and res.get("graph_format") is None:
        return "Fig. 5: the authors' G(15, 0.6), torch seed 42"
    return res["graph"]


def _title(res):
    return (f"{_graph_title(res)}: n = {res['nodes']}, {res['edges']} edges; {res['embedding']} vectors, "
            f"{res['estimator']} estimator")


def _sdp_level(res):
    """The figure's SDP line: the certified upper bound where there is one, else the value, named as such."""
    if res.get("sdp_upper_bound") is not None:
        return "SDP upper bound (certified)", res["sdp_upper_bound"]
    return "SDP value (not certified)", res["sdp_value"]


def _sdp_said(res):
    bound = res.get("sdp_upper_bound")
    return (f"SDP {_fixed(res['sdp_value'], 2)} (certified bound {_fixed(bound, 2)})" if bound is not None else
            f"SDP value {_fixed(res['sdp_value'], 2)} (not certified above {gw.CERTIFY_UP_TO} nodes)")


def _fixed(x, places):
    """``x`` with ``places`` decimals where that shows it (1 <= |x| < 1e9), else 4 significant digits."""
    return f"{x:.{places}f}" if x == 0 or 1 <= abs(x) < 1e9 else f"{x:.4g}"


def summary(res):
    extra = f", polished {res['cut_polished']:g}" if res["cut_polished"] is not None else ""
    extra += f", tabu search {res['cut_tabu']:g}" if res.get("cut_tabu") is not None else ""
    ref = (f", optimum {res['exact']:g}" if res["exact"] is not None else
           f", best known {res['best_known']:g}" if res["best_known"] is not None else "")
    notes = "".join(f" ({note})" for note in res.get("graph_notes", []))
    best = (f"; best iterate {res['cut_best_iterate']:g}" if res.get("cut_best_iterate", res["cut"]) != res["cut"]
            else "")
    read_as = f"read as {res['graph_format']}{notes}, " if res.get("graph_format") else ""
    return (f"maxcut {res['graph']} ({read_as}{res['nodes']} nodes, {res['edges']} edges, {res['embedding']}/"
            f"{res['estimator']}): cut {res['cut']:g} (final iterate{best}){extra}{ref}; "
            f"GW expectation {_fixed(res['gw_expectation'], 1)}, "
            f"best of {res['rounds']} {res['gw_best_of_k']:g}{_classic_said(res)}, {_sdp_said(res)}; "
            f"sdp {res['sdp_s']:.1f} s, optimise {res['optimize_s']:.1f} s"
            + (f"; networkx skipped: {res['nx_note']}" if res["nx_note"] else ""))


GW_RATIO = 0.87856        # Goemans-Williamson: E[cut] >= this * SDP for non-negative weights


@dataclasses.dataclass
class TheoremConfig:
    """Theorem 5.2 with its own algorithm: the exact smoothed objective (model.py), one descent per (δ, λ) from
    plain GW (optimizer.descend), no chains, no polish; each end point's stationarity and the theorem's chain
    (certified or not). Default graph: the authors' G(15, 0.6) with real SDP vectors."""
    graph: str = option(None, GRAPH_HELP, kind=str)
    graph_format: str = option(None, FORMAT_HELP, choices=GRAPH_FORMATS)
    deltas: tuple = option((0.03, 0.01), "widths delta of the smooth step, one descent each (projections start "
                           "with rms 1)", nargs="+", lo=1e-4, hi=10.0, metavar="DELTA")
    lams: tuple = option((1e-4, 1e-5), "penalties lambda on ||sigma||^2, relative to the total weight (the cut's "
                         "allowance is lambda W p)", nargs="+", lo=0.0, hi=1.0, metavar="LAM")
    tol: float = option(DESCENT.tol, "gradient norm at which the exact Hessian is tested", lo=1e-14, hi=1.0)
    curvature_tol: float = option(DESCENT.curvature_tol, "second-order: lambda_min of the Hessian >= -this",
                                  lo=0.0, hi=1.0)
    max_steps: int = option(DESCENT.max_steps, "gradient steps per descent at most", lo=1, hi=10**7)
    budget: float = option(300.0, "seconds per descent at most (then checked where it stands)", lo=1.0,
                           hi=1e7)
    step_rule: str = option(DESCENT.step_rule, "joint: one backtracking step for (m, sigma) (default); blocks: "
                            "m, then sigma, each with its own backtracking step size (docs: the stalls)",
                            choices=tuple(STEP_RULES))
    pathwise: bool = option(False, "also run the Monte-Carlo pathwise derandomisation (derandomise's defaults: "
                            "32 Adam chains) on the same vectors, for its cut beside the theorem's")
    rounds: int = option(1000, "random GW roundings for the best-of-k baseline", lo=1, hi=10**7)
    sdp_iters: int = option(3000, "L-BFGS iterations of the SDP solver", lo=1, hi=10**7)
    seed: int = dataclasses.field(default=0, metadata={"seed_help": "default: 0; the SDP start, the roundings and "
                                  "the perturbations"})
    graph_notes: tuple = ()
    graph_digest: str = None
    graph_labels: np.ndarray = None

    def __post_init__(self):
        _check_graph_option(self.graph)
        if self.graph is None and self.graph_format is not None:
            raise ValueError("--graph-format says how --graph is read; there is no --graph")
        self.deltas, self.lams = tuple(self.deltas), tuple(self.lams)
        for f, v in RANDOM_GRAPH.items():
            setattr(self, f, v)
        self.name = (os.path.splitext(os.path.basename(self.graph))[0] if self.graph else
                     f"torch_{self.nodes}_{self.edge_prob:g}_seed{self.graph_seed}")

    read_graph = MaxcutConfig.read_graph

    def as_used(self, n):
        """Every option as the run uses it (``config.json``), the random graph's settings without ``--graph``,
        the SDP rank and, with ``--pathwise``, the pathwise estimator's settings."""
        graph = {} if self.graph else {f: getattr(self, f) for f in RANDOM_GRAPH}
        opts = {**dataclasses.asdict(self), **graph, "sdp_rank": gw.sdp_rank(n),
                "pathwise_settings": dataclasses.asdict(PathwiseConfig()) if self.pathwise else None}
        del opts["graph_labels"]
        return opts

    def folder_name(self):
        """``theorem`` (the authors' graph) or ``theorem-<file stem>-<8 hex digits of its graph's digest>``."""
        return f"theorem-{self.name}-{(self.graph_digest or '')[:8]}".rstrip("-") if self.graph else "theorem"

    def settings(self):
        return DescentSettings(tol=self.tol, curvature_tol=self.curvature_tol, max_steps=self.max_steps,
                               budget_s=self.budget, step_rule=self.step_rule)

    def quick(self, n, m):
        """One (δ, λ) point, a 20 s budget, 200 roundings."""
        return dataclasses.replace(self, deltas=self.deltas[:1], lams=self.lams[:1], budget=min(self.budget, 20.0),
                                   rounds=min(self.rounds, 200), sdp_iters=min(self.sdp_iters, 500))

    def memory(self, n, m):
        """The SDP factor and gathers, a block of edges' quadrature (autograd keeps ~40 tensors of it), the
        Hessian's Jacobian block."""
        p = gw.sdp_rank(n)
        return (gw.sdp_bytes(n, m, p, self.sdp_iters) + 24.0 * n * n * (n <= gw.CERTIFY_UP_TO)
                + 8.0 * 40 * CHUNK * 22 * NODES + 8.0 * 10 * CHUNK * p)

    def make_graph(self, graph):
        graph = graph if graph is not None else authors_graph(self.nodes, self.edge_prob, self.graph_seed)
        if np.any(graph[2] < 0):
            raise ValueError(f"the graph {self.name} has negative weights: Theorem 5.2's guarantee (the GW "
                             "expectation, 0.87856 of the SDP) needs non-negative weights")
        return check_weights(self.name, graph)


def run_theorem(cfg: TheoremConfig, graph, folder, device, progress=True) -> dict:
    """SDP vectors, GW's numbers, one descent per (δ, λ) with its checks; ``history.npz`` (``p<k>_<quantity>`` per
    point) and the figures."""
    n, edges, weights = graph
    ts = time.perf_counter()
    V, sdp_value = gw.solve_sdp(n, edges, weights, torch.Generator(device=device).manual_seed(cfg.seed
                                + SDP_SEED_OFFSET), max_iter=cfg.sdp_iters, device=device)
    sdp = sdp_certificate(graph, V, sdp_value)
    sdp_s = time.perf_counter() - ts
    Vt = torch.as_tensor(V, device=device)
    E, w = torch.as_tensor(edges, device=device), torch.as_tensor(weights, dtype=torch.float64, device=device)
    g = Graph(n, edges, weights, device)
    gw_exp = gw.gw_expectation(V, edges, weights)
    rounds, _ = gw.gw_round(V, edges, weights, cfg.rounds,
                            torch.Generator().manual_seed(cfg.seed + ROUNDING_SEED_OFFSET))
    classic = conditional_expectations(V, edges, weights, gw_exp)
    res = {"graph": cfg.name, "graph_format": cfg.graph_format, "graph_notes": list(cfg.graph_notes),
           "graph_digest": cfg.graph_digest, "nodes": n, "edges": int(len(edges)),
           "weighted": bool(np.any(weights != 1)), "rank": int(V.shape[1]),
           "total_weight": g.abs_total, **sdp, "gw_ratio_bound": GW_RATIO * sdp_value,
           "gw_expectation": gw_exp, "gw_best_of_k": float(rounds.max()), "rounds": cfg.rounds,
           "conditional_expectations": classic,
           "exact": baselines.brute_force(n, edges, weights)[0] if n <= EXACT_MAX_NODES else None,
           "best_known": gset_reference(cfg.graph_digest)[0], "sdp_s": sdp_s, "points": [], "interrupted": False,
           "smoothing_loss_rate": smoothing_loss_rate(V, edges, weights)}
    arrays = {}
    for delta in cfg.deltas:
        for lam in cfg.lams:             # each point's perturbations from its own stream, whatever the grid
            gen = torch.Generator().manual_seed(cfg.seed + zlib.crc32(f"{delta!r} {lam!r}".encode()) % 2 ** 20)
            d = descend(Vt, g, E, w, delta, lam, cfg.settings(), gen, progress=progress)
            k = len(res["points"])
            arrays.update({f"p{k}_{q}": v for q, v in d["history"].items()})
            res["points"].append({**_theorem_point(d, V, delta, lam, gw_exp, g.abs_total),
                                  "smoothing_loss_predicted": res["smoothing_loss_rate"] * delta ** 2,
                                  "step_rule": cfg.step_rule})
            if d["status"] == "interrupted":
                res["interrupted"] = True
                break
        if res["interrupted"]:
            break
    res["pathwise_cut"] = None
    if cfg.pathwise and not res["interrupted"]:
        hist = optimise_pathwise(torch.as_tensor(V, dtype=torch.float32, device=device),
                                 Graph(n, edges, weights / weight_scale(weights), device, dtype=torch.float32),
                                 PathwiseConfig(),
                                 torch.Generator(device=device).manual_seed(cfg.seed), progress=progress,
                                 after_step=trim_heap_every)
        res["pathwise_cut"] = float(cut_value(edges, weights, hyperplane_partition(V, hist["m"])))
        res["interrupted"] = hist["interrupted"]
    np.savez_compressed(os.path.join(folder, "history.npz"), **arrays)
    draw_theorem(folder, res)
    return res


def _theorem_point(d, V, delta, lam, gw_exp, total):
    """One (δ, λ) entry of ``results.json``: the end point's stationarity (``stationary``: it certifies nothing about
    the cut) and the theorem's chain (``objective_start``, ``monotone``, ``objective_end``, the cut of sign(Vm)
    against ``bound``; ``certified``: all hold), against the GW expectation."""
    x = d["x"].cpu()
    m, sig = x[:len(x) // 2].numpy(), x[len(x) // 2:].numpy()
    return {"delta": delta, "lam": lam, "status": d["status"], "steps": d["steps"], "kicks": d["kicks"],
            "seconds": d["seconds"], "sigma_max": float(np.abs(sig).max()),
            "sigma_over_m": float(np.linalg.norm(sig) / np.linalg.norm(m)) if np.any(m) else None,
            "smoothed_cut": d["smoothed_cut"], "gw_expectation": gw_exp, "start_smoothed_cut": d["start_smoothed_cut"],
            "smoothing_loss": gw_exp - d["start_smoothed_cut"], "allowance": lam * total * V.shape[1],
            "cut_at_least_gw": bool(d["cut"] >= gw_exp), "near_hyperplane": int(np.sum(np.abs(V @ m) < delta)),
            **{q: d[q] for q in ("objective_start", "monotone", "objective_end", "descended", "cut", "bound",
                                 "cut_at_least_bound", "deterministic", "informative", "certified", "stationary",
                                 "grad_norm", "lam_min_hessian", "lam_min_hmm", "stein_residual", "sigma_bound",
                                 "stationarity_at", "sigma_distance", "max_spread")}, "m": m.tolist()}


def draw_theorem(folder, res):
    """``theorem_sigma`` (max |σ| and ‖σ‖/‖m‖ along each descent) and ``theorem_cut`` (the cut of sign(Vm) along
    each descent against the GW expectation, the theorem's bound and 0.87856 SDP)."""
    from MAXCUT.plot import plot_theorem, plot_theorem_deltas     # matplotlib loads once take_signals chose Agg
    with np.load(os.path.join(folder, "history.npz")) as h:
        curves = [(f"δ={p['delta']:g}, λ={p['lam']:g}", {q: h[f"p{k}_{q}"] for q in ("cut", "sigma_max",
                                                                                    "sigma_over_m")}, p["bound"])
                  for k, p in enumerate(res["points"])]
    levels = [("gw", "GW expectation", res["gw_expectation"]), ("sdp", "0.87856 SDP", res["gw_ratio_bound"]),
              ("best_of_k", f"best of {res['rounds']} GW roundings", res["gw_best_of_k"]),
              ("polished", "Monte-Carlo pathwise derandomisation", res["pathwise_cut"]),
              ("conditional", "conditional expectations (Mahajan–Ramesh)", _classic_cut(res)),
              ("reference", "optimum" if res["exact"] is not None else "best known",
               res["exact"] if res["exact"] is not None else res["best_known"])]
    title = (f"Theorem 5.2 on {_graph_title(res).replace('Fig. 5: ', '')}: n = {res['nodes']}, {res['edges']} edges, "
             f"SDP rank p = {res['rank']}")
    for stem, fig in zip(("theorem_cut", "theorem_sigma"), plot_theorem(curves, levels, title)):
        save_figure(fig, os.path.join(folder, stem))
    if len({p["delta"] for p in res["points"]}) > 1:                  # a δ sweep: its own figure
        save_figure(plot_theorem_deltas(res["points"], res["gw_expectation"], title), os.path.join(folder,
                                                                                                  "theorem_deltas"))


def summary_theorem(res):
    pts = "; ".join(f"δ={p['delta']:g} λ={p['lam']:g}: cut {p['cut']:g} (bound {_fixed(p['bound'], 1)}), "
                    f"{'certified' if p['certified'] else 'NOT certified'} (F {p['objective_start']:.6f} → "
                    f"{p['objective_end']:.6f}, monotone {str(p['monotone']).lower()}), max|σ| {p['sigma_max']:.1e}, "
                    f"‖∇‖ {p['grad_norm']:.1e}, λ_min {p['lam_min_hessian']:.1e}, {p['status']} after {p['steps']} "
                    f"steps, {p['seconds']:.1f} s" for p in res["points"])
    ref = res["exact"] if res["exact"] is not None else res["best_known"]
    return (f"theorem {res['graph']} (cuts at the end of each descent; {res['nodes']} nodes, {res['edges']} edges, "
            f"rank {res['rank']}): GW expectation "
            f"{_fixed(res['gw_expectation'], 1)}, 0.87856 SDP {_fixed(res['gw_ratio_bound'], 1)}" +
            (f", {'optimum' if res['exact'] is not None else 'best known'} {ref:g}" if ref is not None else "") +
            (f", pathwise {res['pathwise_cut']:g}" if res["pathwise_cut"] is not None else "") +
            f"{_classic_said(res)}, {_sdp_said(res)}; {pts}")


ERRORS = {DivergenceError: lambda cfg: "the run diverged" + (", try a smaller --lr-mean / --lr-sigma"
                                                             if hasattr(cfg, "lr_mean") else "")}
