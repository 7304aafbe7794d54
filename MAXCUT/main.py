"""Section 5.1 of the paper: Goemans-Williamson rounding derandomised by gradient descent (Fig. 5).

``python MAXCUT/main.py`` reproduces Fig. 5 as the authors ran it (App. F): their G(15, 0.6) graph (built
with torch from seed 42: 62 edges, optimum 41), their spectral "GW vectors", their score-function update rule
and schedule, optimisation seed 43.
``--graph FILE`` runs on a G-set/rudy file or an edge list, by default with a real GW SDP embedding
(Burer-Monteiro) and the pathwise estimator of the smoothed objective.
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
EXACT_MAX_NODES = 24
NX_AUTO_MAX_NODES = 300
ROUNDING_SEED_OFFSET = 1   # the GW roundings draw from seed + this
SDP_SEED_OFFSET = 2        # the SDP's random start: seed + this
QUICK_SDP_ITERS = 200      # --quick: the SDP's L-BFGS iterations (a bound close to the SDP value, not at it)
QUICK_WORK = 2e10          # --quick: about this many multiply-adds at most for the steps (1% of it for the SDP)
WEIGHT_RANGE = (1e-100, 1e100)   # total |weight| of a graph: beyond this, sums of squares over- or underflow


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


def _float_in(lo, hi, lo_open=True):
    def parse(s):
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{s!r} is not a number")
        if not (math.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi):
            raise argparse.ArgumentTypeError(
                f"{s} is not allowed; it must lie in {'(' if lo_open else '['}{lo:g}, {hi:g}]")
        return v
    return parse


_pos, _nonneg = _float_in(0, math.inf), _float_in(0, math.inf, lo_open=False)


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
    from MAXCUT.derandomise import PathwiseConfig, ScoreConfig
    from MAXCUT.graphs import GRAPH_FORMATS
    sc, pw = ScoreConfig(), PathwiseConfig()
    p = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--graph", default=None, help="G-set/rudy file ('n m' then 'i j w', 1-based) or edge list ('u v' or 'u v w' "
      "on every line); default: the authors' random graph")
    a("--graph-format", choices=GRAPH_FORMATS, default="auto",
      help="how --graph is read: auto = gset when the first line has two fields and the second three, else edges "
           "(a file that could be either is refused); the format used is printed and saved")
    a("--nodes", type=_int_at_least(2), default=15, help="nodes of the random graph (paper: 15)")
    a("--edge-prob", type=_float_in(0, 1), default=0.6, help="edge probability of the random graph (paper: 0.6)")
    a("--graph-source", choices=("torch", "networkx"), default=None,
      help="how the random graph is drawn: 'torch' (default) is the authors' construction (rand(n, n) < p, upper "
           "triangle mirrored); 'networkx' is gnp_random_graph(n, p, seed)")
    a("--graph-seed", type=_seed, default=42, help="seed of the random graph (paper: 42)")
    a("--embedding", choices=("auto", "spectral", "sdp"), default="auto",
      help="vectors v_i: the authors' adjacency eigenvectors or the GW SDP solution; "
           "auto = spectral for the random graph (paper), sdp for --graph")
    a("--estimator", choices=("auto", "score", "pathwise"), default="auto",
      help="gradient estimator; auto = score for the random graph (paper), pathwise for --graph")
    a("--steps", type=_int_at_least(1), default=None,
      help=f"optimisation steps (score: {sc.steps}, the paper's; pathwise: {pw.steps})")
    a("--samples", type=_int_at_least(1), default=None,
      help=f"Monte-Carlo samples per step (score: {sc.samples}, the paper's; pathwise: {pw.samples})")
    a("--lr-mean", type=_pos, default=None, help=f"step size of m (score: {sc.lr_mean}, paper; pathwise: {pw.lr_mean})")
    a("--lr-sigma", type=_pos, default=None,
      help=f"step size of log sigma (score: {sc.lr_sigma}, paper; pathwise: {pw.lr_sigma})")
    a("--lam", type=_nonneg, default=None, help=f"penalty on sigma (score: {sc.lam}, paper; pathwise: {pw.lam}, "
      "relative to the total |weight|)")
    a("--delta", type=_float_in(1e-6, 1e3, lo_open=False), default=pw.delta,
      help="pathwise only: width of the smooth step, in [1e-6, 1e3] (its slope 1.5/delta is formed in float32)")
    a("--chains", type=_int_at_least(1), default=pw.chains,
      help="pathwise only: independent (m, sigma) chains optimised at once; the best final hyperplane is kept")
    a("--rounds", type=_int_at_least(1), default=1000, help="random GW roundings for the best-of-k baseline")
    a("--exact", choices=("auto", "yes", "no"), default="auto",
      help=f"brute-force optimum (auto: up to {EXACT_MAX_NODES} nodes)")
    a("--nx", choices=("auto", "yes", "no"), default="auto",
      help=f"networkx approximation baselines (auto: up to {NX_AUTO_MAX_NODES} nodes; one_exchange is slow)")
    a("--polish", action="store_true", help="also report a greedy one-flip local search from the derandomised cut")
    a("--sdp-iters", type=_int_at_least(1), default=3000, help="L-BFGS iterations of the SDP solver")
    a("--seed", type=_seed, default=None,
      help="seed of the optimisation's draws (the SDP start uses seed + 2, the roundings seed + 1); default 43, "
           "the authors' optimisation seed, for the score estimator, 0 for the pathwise one")
    a("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where torch computes")
    a("--threads", type=_threads, default=1,
      help="CPU threads (default 1: measured, Fig. 5 is as fast on one thread as on two idle and 3x slower on two "
           "beside a busy process; G1's whole run took 42 s on one, 38-53 s on two)")
    a("--out-dir", default=None, help="output folder (default MAXCUT/results/fig5/, or MAXCUT/results/<graph>/)")
    a("--quick", action="store_true", help="the same run with fewer steps and roundings (tests, CI)")
    a("--no-progress", action="store_true", help="no progress bar")
    a("--plot-only", metavar="RESULTS_DIR", default=None,
      help="redraw the figures of an earlier run from the history and results it saved there, without computing")
    return p


def parse_args(argv=None):
    """Parse and validate everything, graph file included, before any work is done."""
    from MAXCUT.graphs import GraphFormatError, authors_graph, random_graph, read_graph_file
    from MAXCUT.utils import given_options, resolve_device
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.plot_only is not None:
        from MAXCUT.utils import refuse_with_plot_only, saved_run
        refuse_with_plot_only(parser, args)
        try:
            args.saved = saved_run(args.plot_only, ["history.npz"])
        except ValueError as e:
            parser.error(str(e))
        return args, None
    try:
        args.device_resolved = resolve_device(args.device)
    except ValueError as e:
        parser.error(str(e))
    random_graph_options = given_options(parser, args, ("graph_source", "nodes", "edge_prob", "graph_seed"))
    if args.graph is not None and random_graph_options:      # they do not apply to a graph file
        parser.error(f"--{random_graph_options[0].replace('_', '-')} chooses how the random graph is drawn; it does "
                     "not apply with --graph")
    if args.graph is None and "graph_format" in given_options(parser, args, ("graph_format",)):
        parser.error("--graph-format says how --graph is read; there is no --graph")
    auto = args.graph is None
    if auto:
        args.graph_source, args.graph_format = args.graph_source or "torch", None
        make, tag = (authors_graph, "torch") if args.graph_source == "torch" else (random_graph, "gnp")
        args.graph_name = f"{tag}_{args.nodes}_{args.edge_prob:g}_seed{args.graph_seed}"
        n, m = args.nodes, args.edge_prob * args.nodes * (args.nodes - 1) / 2     # m: the expected edge count
    else:
        args.graph_name = os.path.splitext(os.path.basename(args.graph))[0]
        try:
            graph, args.graph_format = read_graph_file(args.graph, args.graph_format)
        except GraphFormatError as e:
            parser.error(str(e))
        n, m = graph[0], len(graph[1])
    if args.exact == "yes" and n > EXACT_MAX_NODES:
        parser.error(f"--exact yes enumerates 2^(n-1) cuts; {n} nodes is more than the {EXACT_MAX_NODES} allowed")
    args.embedding = args.embedding if args.embedding != "auto" else ("spectral" if auto else "sdp")
    args.estimator = args.estimator if args.estimator != "auto" else ("score" if auto else "pathwise")
    pathwise_options = given_options(parser, args, ("chains", "delta"))
    if args.estimator == "score" and pathwise_options:        # they do nothing to the score rule
        parser.error(f"--{pathwise_options[0]} applies to the pathwise estimator only, not to --estimator score")
    if args.seed is None:
        args.seed = 43 if args.estimator == "score" else 0
    if args.quick:   # quick at every size: fewer steps, roundings, chains and SDP iterations, within a work budget
        from MAXCUT.baselines import sdp_rank
        args.rounds, args.chains = min(args.rounds, 200), min(args.chains, 8)
        cfg, r = _config(args), sdp_rank(n)
        per_step = cfg.samples * getattr(cfg, "chains", 1) * n * (n if args.embedding == "spectral" else r)
        args.steps = min(args.steps or 10**9, 500 if args.estimator == "score" else 100,
                         max(10, int(QUICK_WORK / per_step)))
        args.sdp_iters = min(args.sdp_iters, QUICK_SDP_ITERS, max(5, int(QUICK_WORK / 100 / (m * r))))
    from MAXCUT.utils import memory_problem
    problem = memory_problem(memory_needed(n, m, args), f"{n} nodes, about {m:.0f} edges", args.device_resolved)
    if problem:
        parser.error(problem)
    if auto:
        graph = make(args.nodes, args.edge_prob, args.graph_seed)
    weights = graph[2]
    if len(graph[1]) == 0 or not np.any(weights):
        parser.error(f"the graph {args.graph_name} has no edges of non-zero weight: every cut is 0")
    total = float(np.abs(weights).sum())
    if not WEIGHT_RANGE[0] <= total <= WEIGHT_RANGE[1]:
        parser.error(f"the graph {args.graph_name}'s total |weight| is {total:.3g}; it must lie in "
                     f"[{WEIGHT_RANGE[0]:g}, {WEIGHT_RANGE[1]:g}] (cuts are squared and summed in float64): "
                     "rescale the weights")
    if args.out_dir is None:
        args.out_dir = os.path.join(HERE, "results", "fig5" if auto else args.graph_name)
    from MAXCUT.utils import check_writable
    problem = check_writable(args.out_dir)
    if problem:
        parser.error(problem)
    return args, graph


def memory_needed(n, m, args) -> float:
    """Bytes a run on ``n`` nodes and ``m`` edges needs at its peak, roughly (upper estimates of the largest
    arrays: the random graph's n x n draw, the spectral embedding's dense eigendecomposition, the SDP factor and
    its per-edge gathers, the roundings' (rounds, m) gathers and the optimiser's sampled hyperplanes)."""
    from MAXCUT.baselines import sdp_rank
    cfg, r = _config(args), sdp_rank(n)
    dims = n if args.embedding == "spectral" else r
    per_draw = (n + dims) * (8 if args.estimator == "score" else 4 * getattr(cfg, "chains", 1))
    return (8.0 * n * n * (args.graph is None) + 32.0 * n * n * (args.embedding == "spectral")
            + (8.0 * n * n if n <= 512 else 24.0 * m) + 8.0 * (8 * n * r + 4 * m * r)
            + 8.0 * args.rounds * (dims + n + 2 * m) + 4.0 * cfg.samples * per_draw)


def _config(args):
    from MAXCUT.derandomise import PathwiseConfig, ScoreConfig
    cfg = ScoreConfig() if args.estimator == "score" else PathwiseConfig(delta=args.delta, chains=args.chains)
    for flag, field in [("steps", "steps"), ("samples", "samples"), ("lr_mean", "lr_mean"),
                        ("lr_sigma", "lr_sigma"), ("lam", "lam")]:
        if getattr(args, flag) is not None:
            setattr(cfg, field, getattr(args, flag))
    return cfg


def _nx_baselines(args, graph):
    """networkx's randomized_partitioning and one_exchange, or (None, None, reason)."""
    n = graph[0]
    if args.nx == "no" or (args.nx == "auto" and n > NX_AUTO_MAX_NODES):
        why = "--nx no" if args.nx == "no" else f"{n} nodes > {NX_AUTO_MAX_NODES} (one_exchange is slow; --nx yes forces it)"
        return None, None, why
    from networkx.algorithms.approximation import one_exchange, randomized_partitioning
    from MAXCUT.graphs import to_networkx
    g = to_networkx(*graph)
    rnd, _ = randomized_partitioning(g, seed=args.seed, weight="weight")
    one, _ = one_exchange(g, seed=args.seed, weight="weight")
    return float(rnd), float(one), None


def run(args, graph) -> dict:
    """Embedding, baselines, derandomisation, polishing; writes every output; returns ``results``."""
    from MAXCUT import baselines as B
    from MAXCUT.derandomise import run_pathwise, run_score
    from MAXCUT.graphs import GSET_REFERENCE, Graph, cut_value
    from MAXCUT.utils import optimisation_over, write_npz, write_run_record

    t0 = time.perf_counter()
    n, edges, weights = graph
    dev = args.device_resolved
    ts = time.perf_counter()  # separate streams: the SDP start, the roundings, the optimisation
    sdp_gen = torch.Generator(device=dev).manual_seed(args.seed + SDP_SEED_OFFSET)
    V_sdp, sdp_value = B.solve_sdp(n, edges, weights, sdp_gen, max_iter=args.sdp_iters, device=dev)
    sdp_s = time.perf_counter() - ts
    V = V_sdp if args.embedding == "sdp" else B.spectral_embedding(n, edges, weights)
    # the pathwise estimator uses the cut only through smooth gradients: float32 halves its time; the
    # reported cut is recomputed in float64 from the partition
    dtype = torch.float32 if args.estimator == "pathwise" else torch.float64
    Vt = torch.as_tensor(V, dtype=dtype, device=dev)
    gw_exp = B.gw_expected(V, edges, weights)
    cpu_gen = torch.Generator().manual_seed(args.seed + ROUNDING_SEED_OFFSET)
    round_cuts, _ = B.gw_round(V, edges, weights, args.rounds, cpu_gen)
    exact = None
    if args.exact == "yes" or (args.exact == "auto" and n <= EXACT_MAX_NODES):
        exact = B.brute_force(n, edges, weights)[0]
    nx_rnd, nx_one, nx_why = _nx_baselines(args, graph)

    cfg = _config(args)
    G = Graph(n, edges, weights, dev, dtype=dtype)
    gen = torch.Generator(device=dev).manual_seed(args.seed)
    runner = run_score if args.estimator == "score" else run_pathwise
    hist = runner(Vt, G, cfg, gen, progress=not args.no_progress)
    optimisation_over()
    partition = (V @ hist["m"] < 0).astype(np.int64)
    cut = float(cut_value(edges, weights, partition))
    if hist["cut_mean"].size and not math.isclose(cut, float(hist["cut_mean"][-1]), rel_tol=1e-5, abs_tol=1e-3):
        raise AssertionError("the partition's cut differs from the optimiser's last deterministic cut")
    polished = None
    if args.polish:  # from every chain's final hyperplane (one chain for the score estimator)
        tp = time.perf_counter()
        starts = (V @ hist["chain_m"].T < 0).T.astype(np.int64) if len(hist["chain_m"]) else partition[None]
        polished = max(float(cut_value(edges, weights, B.local_search(n, edges, weights, x))) for x in starts)
        polish_s = time.perf_counter() - tp
    best_known = GSET_REFERENCE.get(args.graph_name, (None, None))[0] if args.graph else None
    res = {
        "graph": args.graph_name, "graph_format": args.graph_format, "nodes": n, "edges": int(len(edges)), "embedding": args.embedding,
        "estimator": args.estimator, "cut": cut, "cut_polished": polished,
        "cut_best_iterate": float(hist["cut_mean"].max()) if hist["cut_mean"].size else cut,
        "sdp_value": sdp_value, "gw_expected": gw_exp, "gw_best_of_k": float(round_cuts.max()),
        "gw_mean_of_k": float(round_cuts.mean()), "rounds": args.rounds,
        "nx_randomized": nx_rnd, "nx_one_exchange": nx_one, "nx_note": nx_why,
        "exact": exact, "best_known": best_known,
        "sigma_final": float(hist["sigma_max"][-1]) if hist["sigma_max"].size else None,
        "sigma_relative_final": float(hist["sigma_relative"][-1]) if hist["sigma_max"].size else None,
        "cut_at_least_gw_expected": bool(cut >= gw_exp), "steps_run": int(hist["step"].size),
        "interrupted": hist["interrupted"], "sdp_s": sdp_s, "optimize_s": hist["optimize_s"],
        "polish_s": polish_s if args.polish else None,
    }
    write_npz(os.path.join(args.out_dir, "history.npz"), step=hist["step"], cut_sampled=hist["cut_sampled"],
              cut_mean=hist["cut_mean"], sigma_max=hist["sigma_max"], sigma_relative=hist["sigma_relative"], m=hist["m"],
              gw_round_cuts=round_cuts)
    draw_figures(args.out_dir, hist, res, args.embedding)
    res["wall_s"] = time.perf_counter() - t0
    res["partition"] = partition.tolist()
    write_run_record(args, dev, res)
    return res


def draw_figures(out_dir, hist, res, embedding):
    """Fig. 5's two figures from the history (``step``, ``cut_sampled``, ``cut_mean``, ``sigma_max``,
    ``sigma_relative``) and the results (GW expectation, optimum or best known cut, SDP value)."""
    from MAXCUT.plot import plot_cut, plot_sigma
    from MAXCUT.utils import save_figure
    exact, best_known = res["exact"], res["best_known"]
    ref = (exact, "optimum (brute force)") if exact is not None else (best_known, "best known cut")
    save_figure(plot_cut(hist["step"], hist["cut_sampled"], hist["cut_mean"], res["gw_expected"], ref[0], ref[1],
                         res["sdp_value"] if embedding == "sdp" else None), os.path.join(out_dir, "fig5_cut"))
    save_figure(plot_sigma(hist["step"], hist["sigma_max"], hist["sigma_relative"]), os.path.join(out_dir, "fig5_sigma"))
    return ["fig5_cut", "fig5_sigma"]


def main(argv=None):
    from MAXCUT.utils import run_staged, set_threads, write_failed
    args, graph = parse_args(argv)
    if args.plot_only is not None:
        config, res, arrays = args.saved
        names = draw_figures(args.plot_only, arrays["history.npz"], res, config["args"]["embedding"])
        print(f"redrew {', '.join(names)} (.png, .pdf) in {args.plot_only}")
        return res
    set_threads(args.threads)
    try:
        res = run_staged(args, lambda a: run(a, graph))
    except OSError as e:
        write_failed(args, e)
    except FloatingPointError as e:
        print(f"{os.path.basename(sys.argv[0]) or 'main.py'}: error: {e}; the run diverged, try a smaller "
              "--lr-mean / --lr-sigma", file=sys.stderr)
        sys.exit(2)
    extra = f", polished {res['cut_polished']:g}" if res["cut_polished"] is not None else ""
    ref = (f", optimum {res['exact']:g}" if res["exact"] is not None else
           f", best known {res['best_known']:g}" if res["best_known"] is not None else "")
    read_as = f"read as {res['graph_format']}, " if res.get("graph_format") else ""
    print(f"maxcut {res['graph']} ({read_as}{res['nodes']} nodes, {res['edges']} edges, {args.embedding}/{args.estimator}): "
          f"cut {res['cut']:g}{extra}{ref}{' (interrupted)' if res['interrupted'] else ''}; GW expectation {res['gw_expected']:.1f}, best of {res['rounds']} "
          f"{res['gw_best_of_k']:g}, SDP bound {res['sdp_value']:.2f}; sdp {res['sdp_s']:.1f} s, "
          f"optimise {res['optimize_s']:.1f} s, total {res['wall_s']:.1f} s"
          + (f"; networkx skipped: {res['nx_note']}" if res["nx_note"] else ""))
    return res


if __name__ == "__main__":
    main()
