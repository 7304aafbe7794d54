"""MAXCUT benchmark (paper Sec. 5.1): prints the targets of the reproduction as tables.

1. The paper's configuration (the authors' G(15, 0.6) graph, spectral embedding, their score rule, 5000 steps,
   seed 43): the vectorised rule against the same rule written per draw (a Python loop), same draws.
2. The same configuration over the seeds 43, 44, ... (the authors' seed first), next to the pathwise estimator.
3. Every G-set graph in data/gset: SDP value, GW expectation, best of 1000 roundings, the method of conditional
   expectations (its cut and time), derandomised and polished cuts, best known cut, time; with the targets checked.

4. ``--contended``: the default run (Fig. 5) -- and G-set graphs named with ``--contended-graphs`` -- idle,
   beside one and two busy processes, and two seeds side by side, each in a fresh process.

    python MAXCUT/benchmark.py [--seeds 20] [--graphs G1 G14 ...] [--skip-loop]
    python MAXCUT/benchmark.py --contended [--contended-graphs G1] [--repeats 3] [--threads N]

Writes the tables to MAXCUT/results/benchmark.md as well. Times are wall-clock seconds on this machine.
"""
import os
import sys

if __name__ == "__main__":     # run as a script: the repository root on the path; a Ctrl-C or SIGTERM while
    import signal              # the libraries load ends with one line, nothing written
    for _s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_s, lambda s, f: (sys.stderr.write("benchmark.py: stopped while starting; nothing written\n"),
                                        os._exit(128 + s)))
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import signal
import time

import numpy as np
import torch

from MAXCUT.main import main as run_main
from MAXCUT.baselines import brute_force
from MAXCUT.gw import solve_sdp, spectral_embedding
from MAXCUT.optimizer import (PathwiseConfig, ScoreConfig, authors_gradients_per_draw, optimise_pathwise,
                              optimise_score)
from MAXCUT.graphs import GSET_DIR, GSET_REFERENCE, Graph, authors_graph
from MAXCUT.utils import set_threads, take_signals

HERE = os.path.dirname(os.path.abspath(__file__))


AUTHORS_SEED = 43     # the authors' optimisation seed


def paper_speed(skip_loop):
    n, e, w = authors_graph(15, 0.6, 42)
    V, G = torch.as_tensor(spectral_embedding(n, e, w)), Graph(n, e, w, "cpu")
    opt = brute_force(n, e, w)[0]
    rows = []
    optimise_score(V, G, ScoreConfig(steps=500), torch.Generator(), progress=False)   # warm-up: one-time costs
    for loop in ([False] if skip_loop else [False, True]):
        t = time.perf_counter()
        h = optimise_score(V, G, ScoreConfig(), torch.Generator().manual_seed(AUTHORS_SEED), progress=False,
                      gradients=authors_gradients_per_draw if loop else None)
        rows.append((loop, time.perf_counter() - t, h["cut_mean"][-1], h["m"], h["sigma_max"][-1]))
    lines = ["| implementation | time (s) | final cut | final max sigma | optimum |", "|---|---|---|---|---|"]
    lines += [f"| {'per-draw loop' if lp else 'vectorised'} | {s:.2f} | {c:g} | {sg:.3f} | {opt:g} |"
              for lp, s, c, _, sg in rows]
    if len(rows) == 2:
        same = np.allclose(rows[0][3], rows[1][3]) and rows[0][2] == rows[1][2]
        lines.append(f"\nspeed-up {rows[1][1] / rows[0][1]:.0f}x; same final hyperplane and cut: {same}")
    return "\n".join(lines)


def paper_seeds(seeds):
    n, e, w = authors_graph(15, 0.6, 42)
    opt = brute_force(n, e, w)[0]
    G = Graph(n, e, w, "cpu")
    Vs = torch.as_tensor(spectral_embedding(n, e, w))
    Vp = torch.as_tensor(solve_sdp(n, e, w, torch.Generator().manual_seed(2))[0])
    out = ["| method | mean final cut | min | max | runs reaching the optimum | median final max sigma "
           "| mean time (s) |", "|---|---|---|---|---|---|---|"]
    for name, V, runner, cfg in [("score, spectral (authors')", Vs, optimise_score, ScoreConfig()),
                                 ("pathwise (4 chains), spectral", Vs, optimise_pathwise, PathwiseConfig(chains=4)),
                                 ("pathwise (4 chains), SDP", Vp, optimise_pathwise, PathwiseConfig(chains=4))]:
        cuts, secs, sig = [], [], []
        for s in range(AUTHORS_SEED, AUTHORS_SEED + seeds):
            h = runner(V, G, cfg, torch.Generator().manual_seed(s), progress=False)
            cuts.append(h["cut_mean"][-1])
            secs.append(h["optimize_s"])
            sig.append(h["sigma_max"][-1])
        cuts = np.asarray(cuts)
        out.append(f"| {name} | {cuts.mean():.2f} | {cuts.min():g} | {cuts.max():g} | "
                   f"{int((cuts == opt).sum())}/{seeds} | {np.median(sig):.3f} | {np.mean(secs):.2f} |")
    return (f"The authors' G(15, 0.6) (torch, seed 42: {len(e)} edges), optimum {opt:g}; seeds {AUTHORS_SEED}.."
            f"{AUTHORS_SEED + seeds - 1}\n\n" + "\n".join(out))


TARGETS = {"G1": (11500, 11560, 60), "G22": (None, 13250, 180), "G48": (None, 6000, None)}


def gset_table(graphs):
    head = ("| graph | nodes | edges | SDP (ours) | SDP (published) | GW expectation | best of 1000 | cond. exp. (s) "
            "| derandomised | polished | best known | cut ≥ GW exp. | cut ≥ best of 1000 | time (s) |")
    out = [head, "|" + "---|" * 14]
    checks = []
    for name in graphs:
        res = run_main(["--graph", os.path.join(GSET_DIR, f"{name}.txt"), "--polish", "--no-progress",
                        "--out-dir", os.path.join(HERE, "results", "benchmark", name)])
        best, sdp_pub, ce = *GSET_REFERENCE[name], res["conditional_expectations"]
        out.append(f"| {name} | {res['nodes']} | {res['edges']} | {res['sdp_value']:.2f} | "
                   f"{'–' if sdp_pub is None else sdp_pub} | {res['gw_expectation']:.1f} | {res['gw_best_of_k']:g} | "
                   f"{ce['cut']:g} ({ce['time_s']:.0f}) | {res['cut']:g} | {res['cut_polished']:g} | {best} | "
                   f"{res['cut'] >= res['gw_expectation']} | {res['cut'] >= res['gw_best_of_k']} | "
                   f"{res['wall_s']:.1f} |")
        if sdp_pub is not None and name != "G48":
            checks.append((f"{name}: SDP within 0.1% of {sdp_pub}", abs(res["sdp_value"] - sdp_pub) <= 1e-3 * sdp_pub))
        checks.append((f"{name}: cut >= GW expectation", res["cut"] >= res["gw_expectation"]))
        checks.append((f"{name}: conditional expectations >= GW expectation", ce["guarantee_holds"]))
        if name in ("G1", "G14", "G22", "G43"):
            checks.append((f"{name}: cut >= best of 1000", res["cut"] >= res["gw_best_of_k"]))
        if name in TARGETS:
            cut_t, pol_t, sec_t = TARGETS[name]
            if cut_t is not None:
                checks.append((f"{name}: cut >= {cut_t}", res["cut"] >= cut_t))
            checks.append((f"{name}: polished {'=' if name == 'G48' else '>='} {pol_t}",
                           res["cut_polished"] == pol_t if name == "G48" else res["cut_polished"] >= pol_t))
            if sec_t is not None:
                checks.append((f"{name}: whole run <= {sec_t} s", res["wall_s"] <= sec_t))
    lines = "\n".join(out) + "\n\n" + "\n".join(f"- [{'x' if ok else ' '}] {what}" for what, ok in checks)
    return lines


def _stop(signum, frame):
    """Ctrl-C or SIGTERM ends the benchmark (an optimiser's own Ctrl-C handling would end only its run)."""
    print(f"benchmark.py: {'interrupted' if signum == signal.SIGINT else 'terminated'} (the G-set benchmark "
          "keeps what finished; a rerun resumes)", file=sys.stderr)
    raise SystemExit(128 + signum)


def main(argv=None):
    """The command line; a Ctrl-C ends it with one line and status 130 (SIGTERM: 143) at any moment."""
    take_signals()
    before = [signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)]
    try:
        return _main(argv)
    finally:
        for s, handler in zip((signal.SIGINT, signal.SIGTERM), before):
            signal.signal(s, handler)


def _main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.error = lambda message: p.exit(2, f"benchmark.py: error: {message}\n")      # bad input: one line
    p.add_argument("--seeds", type=int, default=20, help="seeds per method in the paper-configuration table")
    p.add_argument("--graphs", nargs="*", default=sorted(GSET_REFERENCE, key=lambda g: int(g[1:])))
    p.add_argument("--skip-loop", action="store_true", help="skip the slow per-draw reference run")
    p.add_argument("--contended", action="store_true", help="only the timings idle / beside busy processes")
    p.add_argument("--contended-graphs", nargs="*", default=[], help="--contended: G-set graphs timed too")
    p.add_argument("--repeats", type=int, default=3, help="--contended: runs per condition")
    p.add_argument("--threads", type=int, default=None, help="--contended: pass --threads N to main.py")
    p.add_argument("--gset-dir", help="the whole G-set: every graph file in this folder (see gset_all.py)")
    p.add_argument("--out-dir", help="--gset-dir: where the per-graph results, gset_all.csv/.md/.png go")
    p.add_argument("--only", help="--gset-dir: these graphs only, comma-separated (G1,G22)")
    p.add_argument("--budget", type=float, default=1800.0, help="--gset-dir: seconds allowed per graph")
    p.add_argument("--jobs", type=int, default=2, help="--gset-dir: graphs run at once (one process each)")
    p.add_argument("--tabu", type=int, default=50, help="--gset-dir: the polish step: tabu-search flips per node "
                   "from the one-flip cut (0: one-flip only)")
    args = p.parse_args(argv)
    if args.gset_dir is not None or args.out_dir is not None:
        return whole_gset(p, args)
    if args.contended:
        exps = [("Fig. 5 (optimize_s)", [], "optimize_s")]
        exps += [(f"{g} (wall_s)", ["--graph", os.path.join(GSET_DIR, f"{g}.txt")], "wall_s")
                 for g in args.contended_graphs]
        print(contended_table(exps, args.repeats, args.threads))
        return
    set_threads(1)                       # as main.py
    sections = [(f"Paper configuration: vectorised vs per-draw loop (seed {AUTHORS_SEED})",
                 paper_speed(args.skip_loop)),
                ("Paper configuration over seeds", paper_seeds(args.seeds)),
                ("G-set (SDP embedding, pathwise estimator, --polish)", gset_table(args.graphs))]
    text = ("threads: 1 (main.py's default)\n\n"
            + "\n\n".join(f"## {t}\n\n{b}" for t, b in sections) + "\n")
    print(text)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "benchmark.md"), "w") as f:
        f.write(text)


def whole_gset(parser, args):
    """``--gset-dir DIR --out-dir OUT``: gset_all.run; bad input one line and exit 2."""
    from MAXCUT import gset_all
    if args.gset_dir is None or args.out_dir is None:
        parser.error("--gset-dir and --out-dir go together")
    if not args.out_dir.strip() or not args.gset_dir.strip():
        parser.error(f"--{'out' if not args.out_dir.strip() else 'gset'}-dir is empty: name a folder")
    if not (args.budget > 0 and args.jobs >= 1 and args.tabu >= 0):
        parser.error("--budget must be > 0, --jobs >= 1 and --tabu >= 0")
    only = [g for g in (args.only or "").split(",") if g] or None
    try:
        gset_all.run(args.gset_dir, args.out_dir, only, args.budget, args.jobs, args.tabu)
    except gset_all.BenchmarkError as e:
        parser.error(str(e))


# ---------------------------------------------------------------------------------------------------------
# --contended: the default experiment idle, beside busy processes, and two seeds side by side.

BUSY_LOOP = "while True: pass"          # one single-threaded busy process


def _timed_runs(argvs, key, busy):
    """Run ``main.py`` once per argument list in ``argvs``, all at once, beside ``busy`` busy processes; return
    each run's ``results.json[key]`` (seconds). A failing run ends the benchmark with its own message."""
    import json
    import subprocess
    import tempfile
    hogs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(busy)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            outs = [os.path.join(tmp, str(i)) for i in range(len(argvs))]
            procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "main.py"), *a, "--out-dir", o,
                                       "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                     for a, o in zip(argvs, outs)]
            for p in procs:
                _, err = p.communicate()
                if p.returncode:
                    why = err.strip().splitlines()[-1] if err.strip() else p.returncode
                    sys.exit(f"benchmark: main.py failed: {why}")
            times = []
            for o in outs:
                with open(os.path.join(o, "results.json")) as f:
                    times.append(json.load(f)[key])
            return times
    finally:
        for h in hogs:
            h.kill()
            h.wait()


def contended_table(experiments, repeats, threads=None):
    """For each ``(label, argv, key)``: the time ``results.json[key]`` idle, beside one and two busy processes,
    and for two runs of different seeds started together (the slower of the two), ``repeats`` times each;
    median [min-max] and the ratio of medians to idle, against the targets 2x, 2.5x and 1.3x."""
    import statistics
    extra = ["--threads", str(threads)] if threads else []
    head = ("| experiment | idle (s) | beside 1 busy (s) | ratio | beside 2 busy (s) | ratio "
            "| two seeds at once (s) | ratio | targets (2x / 2.5x / 1.3x) |")
    lines = [head, "|" + "---|" * 9]
    for label, argv, key in experiments:
        argv = [*argv, *extra]
        cells = {}
        for name, busy, runs in (("idle", 0, [argv]), ("busy1", 1, [argv]), ("busy2", 2, [argv]),
                                 ("seeds", 0, [[*argv, "--seed", "1"], [*argv, "--seed", "2"]])):
            cells[name] = [max(_timed_runs(runs, key, busy)) for _ in range(repeats)]
        med = {k: statistics.median(v) for k, v in cells.items()}
        ratio = {k: med[k] / med["idle"] for k in med}
        ok = [ratio["busy1"] <= 2.0, ratio["busy2"] <= 2.5, ratio["seeds"] <= 1.3]

        def cell(k):
            return f"{med[k]:.2f} [{min(cells[k]):.2f}-{max(cells[k]):.2f}]"
        lines.append(f"| {label} | {cell('idle')} | {cell('busy1')} | {ratio['busy1']:.2f}x | {cell('busy2')} | "
                     f"{ratio['busy2']:.2f}x | {cell('seeds')} | {ratio['seeds']:.2f}x | "
                     f"{' / '.join('met' if o else 'MISSED' for o in ok)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
