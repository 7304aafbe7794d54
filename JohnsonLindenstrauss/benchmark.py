"""Johnson-Lindenstrauss benchmark (paper Sec. 5.2): prints the reproduction's targets as tables.

1. The paper's configuration (uniform, n=100, d=500, k=30, norms, 5000 steps): the fast path (train_fast.py,
   through train.optimise) against the plain loop ``train.optimise_plain`` (draw G: (20, 30, 500), form
   A = M + σG, autograd, torch's Adam).
2. Every dataset and target (held-out points: 100), learned projection against the standard ones.

3. ``--contended``: the default run (Fig. 7) idle, beside one and two busy processes, and two seeds side by
   side, each in a fresh process.

    python JohnsonLindenstrauss/benchmark.py [--skip-reference]
    python JohnsonLindenstrauss/benchmark.py --contended [--repeats 3] [--threads N]

Writes the tables to JohnsonLindenstrauss/results/benchmark.md as well. Times: wall-clock seconds here.
"""
import argparse
import math
import os
import signal
import sys
import time

if __name__ == "__main__":     # run as a script: the repository root on the path; a Ctrl-C or SIGTERM while the
    for _s in (signal.SIGINT, signal.SIGTERM):   # libraries load ends with one line, nothing written
        signal.signal(_s, lambda s, f: (sys.stderr.write("benchmark.py: stopped while starting; nothing written\n"),
                                        os._exit(128 + s)))
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch

from JohnsonLindenstrauss.data import load_points
from JohnsonLindenstrauss.main import main as run_main
from JohnsonLindenstrauss.model import JLConfig
from JohnsonLindenstrauss.targets import make_targets, matrix_distortion
from JohnsonLindenstrauss.train import optimise, optimise_plain
from JohnsonLindenstrauss.utils import set_threads, take_signals

HERE = os.path.dirname(os.path.abspath(__file__))


def speed_table():
    X, _ = load_points("uniform", 100, 0, 500, 0)
    X32, T64 = torch.as_tensor(X, dtype=torch.float32), make_targets(torch.as_tensor(X), "norms")
    cfg = JLConfig()
    rows = ["| implementation | steps | time (s) | max distortion of M (last) | of M (best iterate) |",
            "|---|---|---|---|---|"]
    t = time.perf_counter()
    M, steps = optimise_plain(make_targets(X32, "norms"), cfg, torch.Generator().manual_seed(0))
    s_ref = time.perf_counter() - t
    last = matrix_distortion(M.double().numpy() / math.sqrt(cfg.k), T64)
    rows.append(f"| train.optimise_plain (plain autograd, direct G, float32) | {steps} | {s_ref:.1f} | "
                f"{last:.4f} | – |")
    t = time.perf_counter()
    h = optimise(make_targets(X32, "norms"), cfg, torch.Generator().manual_seed(0), progress=False)
    s_ours = time.perf_counter() - t
    ours = [matrix_distortion(h[key].double().numpy() / math.sqrt(cfg.k), T64) for key in ("M_last", "M")]
    rows.append(f"| train.optimise, fast (train_fast.py: G Xᵀ as Z Lᵀ, one sync per step) | {h['steps_run']} | "
                f"{s_ours:.1f} | {ours[0]:.4f} | {ours[1]:.4f} |")
    return "\n".join(rows) + f"\n\nspeed-up {s_ref / s_ours:.1f}x"


def datasets_table():
    """Every dataset x target x objective: the learned matrix beside every baseline, each baseline at its fixed
    scale / at its best scalar (chosen on the training targets, applied unchanged to the held-out ones)."""
    head = ("| data | target | objective | learned: train / held-out | Gaussian mean | Gaussian best of 1000 | "
            "orthogonal mean | sparse mean | uncentred SVD | centred PCA | held-out: Gaussian mean | held-out: "
            "Gaussian best | held-out: SVD | σ final | time (s) |")
    out = [head, "|" + "---|" * 15]
    runs = [(data, target, "max") for data in ("uniform", "gaussian", "digits") for target in ("norms", "pairwise")]
    runs += [("uniform", "norms", "surrogate"), ("uniform", "pairwise", "surrogate")]
    for data, target, objective in runs:
        r = run_main(["--data", data, "--target", target, "--objective", objective, "--holdout", "100",
                      "--no-progress", "--out-dir", os.path.join(HERE, "results", "benchmark",
                                                                 f"{data}_{target}_{objective}")])
        f, b, hf, hb = r["fixed_scale"], r["best_scale"], r["holdout"]["fixed_scale"], r["holdout"]["best_scale"]

        def two(fixed, best, m):
            return f"{fixed[m]:.3f} / {best[m]:.3f}"
        cells = [two(f, b, m) for m in ("gaussian_mean", "gaussian_min", "orthogonal_mean", "sparse_mean", "svd",
                                        "pca_centred")] + [two(hf, hb, m) for m in ("gaussian_mean", "gaussian_min",
                                                                                      "svd")]
        out.append(f"| {data} (d={r['d']}) | {target} | {objective} | {r['max_distortion']:.4f} / "
                   f"{r['holdout_max_distortion']:.3f} | " + " | ".join(cells) +
                   f" | {r['sigma_final']:.3g} | {r['wall_s']:.1f} |")
    return ("n = 100 training points, 100 held-out points, k = 30, 5000 steps, seed 0; 'max distortion' over\n"
            "the training targets (norms: 100 points; pairwise: 4950 pairs) and over the held-out targets\n"
            "(norms: the 100 new points; pairwise: the 14950 pairs that involve a new point). Each baseline: at its\n"
            "fixed scale / at its best scalar (chosen on the training targets; the same scalar held out). Gaussian\n"
            "best: the draw best on the training targets (held out: that draw). SVD and PCA: fixed scale = unit\n"
            "mean square on the training targets.\n\n" + "\n".join(out))


def _stop(signum, frame):
    """Ctrl-C or SIGTERM ends the benchmark (an optimiser's own Ctrl-C handling would end only its run)."""
    print(f"benchmark.py: {'interrupted' if signum == signal.SIGINT else 'terminated'}", file=sys.stderr)
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
    p.add_argument("--skip-reference", action="store_true", help="skip the speed comparison")
    p.add_argument("--contended", action="store_true", help="only the timings idle / beside busy processes")
    p.add_argument("--repeats", type=int, default=3, help="--contended: runs per condition")
    p.add_argument("--threads", type=int, default=None, help="--contended: pass --threads N to main.py")
    args = p.parse_args(argv)
    if args.contended:
        print(contended_table([("Fig. 7 (optimize_s)", [], "optimize_s")], args.repeats, args.threads))
        return
    set_threads(1)                       # as main.py
    sections = [] if args.skip_reference else [("Paper configuration: speed", speed_table())]
    sections.append(("Datasets × targets", datasets_table()))
    text = f"threads: {torch.get_num_threads()}\n\n" + "\n\n".join(f"## {t}\n\n{b}" for t, b in sections) + "\n"
    print(text)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "benchmark.md"), "w") as f:
        f.write(text)


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
                    last = err.strip().splitlines()[-1] if err.strip() else p.returncode
                    sys.exit(f"benchmark: main.py failed: {last}")
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
