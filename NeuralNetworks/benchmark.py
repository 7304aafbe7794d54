"""NeuralNetworks benchmark: the batched claims grid against running the same (row, seed) runs one by one,
the Fig. 3 training loop against an autograd loop written to the paper's description, and (``--contended``)
Fig. 3 idle, beside busy processes and two seeds side by side.

    python NeuralNetworks/benchmark.py [--steps 1000] [--seeds 3]
    python NeuralNetworks/benchmark.py --contended [--repeats 3] [--threads N]
    python NeuralNetworks/benchmark.py --profile [--steps 20000]

Both sides of the grid comparison run the same rows, seeds and steps (every run draws its data from its own
generator, so the batched and one-by-one results agree, which the script also checks). Wall-clock seconds on
this machine, one CPU thread unless ``--threads`` says otherwise (the project's policy; see README).
"""
import os
import sys

if __name__ == "__main__":     # run as a script: the repository root on the path; a Ctrl-C or SIGTERM while
    import signal              # the libraries load ends with one line, nothing written
    for _s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_s, lambda s, f: (sys.stderr.write("benchmark.py: stopped while starting; nothing written\n"),
                                        os._exit(128 + s)))
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import signal
import time

import numpy as np
import torch

from NeuralNetworks.claims import ROWS, run_claims
from NeuralNetworks.cli import Parser, number
from NeuralNetworks.model import Teacher, init_student, make_subspace
from NeuralNetworks.train import TrainConfig, pgd
from NeuralNetworks.train_fast import train
from NeuralNetworks.utils import set_threads, take_signals

HERE = os.path.dirname(os.path.abspath(__file__))


def fig3_loops(seed):
    """Seconds of Fig. 3's 20 000 PGD steps by ``train_fast.train`` and by ``train.pgd`` (the same algorithm by
    plain autograd), from the same init and data stream."""
    out = []
    for fn in (train, pgd):
        g = torch.Generator().manual_seed(seed)
        s = init_student(1, 2, 1000, 1, g)
        t = time.perf_counter()
        fn(s, Teacher(make_subspace(2, 1, g)), TrainConfig(steps=20_000), g, **({"progress": False} if fn is train
                                                                               else {}))
        out.append(time.perf_counter() - t)
    return out


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
    p = Parser(description=__doc__)
    p.add_argument("--steps", type=number(int, 1, 10**9), default=None,
                   help="steps per run of the grid comparison (default 1000; the claims grid uses 10 000), or of "
                        "--profile (default 20 000, the Fig. 3 run)")
    p.add_argument("--seeds", type=number(int, 1, 10**9), default=3)
    p.add_argument("--contended", action="store_true", default=False,
                   help="time Fig. 3 (python NeuralNetworks/main.py) idle, beside 1 and 2 busy processes, and two "
                        "seeds side by side, in fresh processes")
    p.add_argument("--repeats", type=number(int, 1, 10**9), default=3, help="--contended: runs per condition")
    p.add_argument("--profile", action="store_true", default=False,
                   help="where a Fig. 3 training step's time goes: torch's profiler over --steps steps "
                        "(default 20 000)")
    p.add_argument("--threads", type=number(int, 1, 10**9), default=None,
                   help="--contended: pass --threads N to main.py; "
                   "otherwise: threads of this process (default 1)")
    args = p.parse_args(argv)
    if args.contended:
        print(contended_table([("Fig. 3 (optimize_s)", [], "optimize_s")], args.repeats, args.threads))
        return
    set_threads(args.threads or 1)
    if args.profile:
        print(profile_fig3(args.steps or 20_000))
        return
    args.steps = args.steps or 1000
    cpu, seeds = torch.device("cpu"), list(range(args.seeds))
    t = time.perf_counter()
    batched = run_claims(seeds, 20, 2, args.steps, 1.0, cpu)
    t_batched = time.perf_counter() - t
    t = time.perf_counter()
    single = [run_claims([s], 20, 2, args.steps, 1.0, cpu, rows=[r])[0] for r in ROWS for s in seeds]
    t_single = time.perf_counter() - t
    diff = max(float(np.max(np.abs(b["ratio_final"][i] - single[j * args.seeds + i]["ratio_final"])))
               for j, b in enumerate(batched) for i in range(args.seeds))
    print(f"claims grid, {len(ROWS)} rows x {args.seeds} seeds x {args.steps} steps, "
          f"threads {torch.get_num_threads()}:")
    print(f"  batched by architecture: {t_batched:.1f} s; one run at a time: {t_single:.1f} s; "
          f"speed-up {t_single / t_batched:.1f}x; largest difference in final ||W_perp||/||W||: {diff:.1e}")
    ours, plain = zip(*[fig3_loops(rep) for rep in range(FIG3_PAIRS)])   # alternating: a drift hits both
    ratios = [p / o for p, o in zip(plain, ours)]
    print(f"Fig. 3 training loop, 20 000 steps, width 1000, {torch.get_num_threads()} thread(s), {FIG3_PAIRS} runs "
          f"each, alternating: train_fast.train {np.median(ours):.2f} s [{min(ours):.2f}-{max(ours):.2f}], "
          f"train.pgd (plain autograd) {np.median(plain):.2f} s [{min(plain):.2f}-{max(plain):.2f}]; ratio of each "
          f"pair: median {np.median(ratios):.2f}x [{min(ratios):.2f}-{max(ratios):.2f}] (target 3x)")


FIG3_PAIRS = 5


def profile_fig3(steps: int, top: int = 12) -> str:
    """Where Fig. 3's training step goes (width 1000, batch 50, the paper's settings, ``steps`` steps): the run's
    time without the profiler, then, from a second run under torch's profiler, the operators with the most time
    of their own, in microseconds a step and as a share of the unprofiled step; the remainder is Python (the
    loop, each call's argument parsing and dispatch) and the profiler's own cost."""
    from torch.profiler import ProfilerActivity, profile

    def run():
        g = torch.Generator().manual_seed(0)
        s, teacher = init_student(1, 2, 1000, 1, g), Teacher(make_subspace(2, 1, g))
        t = time.perf_counter()
        train(s, teacher, TrainConfig(steps=steps), g, progress=False)
        return (time.perf_counter() - t) / steps * 1e6
    wall = run()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    lines = [f"Fig. 3 training, {steps} steps, {torch.get_num_threads()} thread(s): {wall:.0f} us a step without "
             "the profiler; operators by their own time under it:",
             "| operator | calls a step | us a step | share of the step |", "|---|---|---|---|"]
    for e in rows[:top]:
        us = e.self_cpu_time_total / steps
        lines.append(f"| {e.key} | {e.count / steps:.2f} | {us:.1f} | {us / wall:.0%} |")
    ops = sum(e.self_cpu_time_total for e in rows) / steps
    lines.append(f"| all operators | | {ops:.1f} | {ops / wall:.0%} |")
    return "\n".join(lines)


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
