"""The command line behind ``main.py``, repeated on purpose in each folder: one parser per experiment built from
its config dataclass, ``--plot-only``, and running an experiment into a run folder. Nothing here is part of the
paper; what runs what is ``main.EXPERIMENTS`` (name -> config class, run, draw, summary)."""
import argparse
import dataclasses
import json
import math
import os
import sys
import time
import zipfile

from MAXCUT import utils

RUN_OPTIONS = ("device", "threads", "out_dir", "quick", "no_progress")
MAX_SEED = 2 ** 29 - 1     # torch's CPU generator reads a seed's low 32 bits: below 2^29 no two streams coincide


def number(kind, lo=-math.inf, hi=math.inf, open=False):
    """An argparse type: a finite ``kind`` (int or float) in [lo, hi] ((lo, hi) when ``open``)."""
    def parse(s):
        try:
            v = kind(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{s!r} is not {'an integer' if kind is int else 'a number'}")
        if not (math.isfinite(v) and ((lo < v < hi) if open else (lo <= v <= hi))):
            raise argparse.ArgumentTypeError(f"{s} is not allowed; it must lie in {'(' if open else '['}{lo:g}, "
                                             f"{hi:g}{')' if open else ']'}")
        return v
    return parse


class Parser(argparse.ArgumentParser):
    """Bad input: one line naming the problem, exit status 2. Only the options given enter the namespace."""

    def __init__(self, **kw):
        super().__init__(prog="main.py", argument_default=argparse.SUPPRESS, allow_abbrev=False,
                         formatter_class=argparse.RawDescriptionHelpFormatter, **kw)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")

    def add_config(self, cls):
        """One option per field of the dataclass ``cls`` that has a help text (``--lr-mean`` for ``lr_mean``)."""
        for f in dataclasses.fields(cls):
            m, name = f.metadata, "--" + f.name.replace("_", "-")
            if "help" not in m:
                continue
            said = "paper" in m["help"] or "default" in m["help"] or f.default is None or f.default is False
            help = m["help"] + ("" if said else f" (default: {f.default})")
            if f.type is bool:
                self.add_argument(name, action="store_true", help=help)
            elif "choices" in m or f.type is str:
                self.add_argument(name, choices=m.get("choices"), help=help)
            else:
                check = number(m.get("kind", int if f.type is int else float), m.get("lo", -math.inf),
                               m.get("hi", math.inf), m.get("open", False))
                self.add_argument(name, type=check, nargs=m.get("nargs"), metavar=m.get("metavar"), help=help)

    def add_run_options(self, seed, package):
        """The options every run has; ``--seed`` where the experiment draws at random (``seed``: its help on the
        default, None for an experiment that takes no seed, which its --help then says)."""
        a, cores = self.add_argument, utils.available_cores()
        if seed:
            a("--seed", type=number(int, 0, MAX_SEED), help=f"seed of every random draw ({seed})")
        else:
            self.epilog = "This experiment draws nothing at random: it takes no --seed."
        a("--device", choices=("auto", "cpu", "cuda"), help="where torch computes (default: auto)")
        a("--threads", type=number(int, 1, 4 * cores), help="CPU threads (default 1: Fig. 5 is as fast on one "
          "thread as on two idle, and 3x slower on two beside a busy process)")
        a("--out-dir", help=f"output folder (default: {package}/results/fig5/ for the paper's run, else "
          "results/<experiment>-<graph file stem>-<content hash>/; -quick added for --quick)")
        a("--quick", action="store_true", help="the same run, shortened (tests, CI); writes every output")
        a("--no-progress", action="store_true", help="no progress bar")


def fail(message, status):
    """One line on stderr and exit ``status``."""
    print(f"main.py: {message}", file=sys.stderr)
    sys.exit(status)


def build_parser(experiments, experiment, package, description, default):
    """The parser of one experiment: its config's fields, the run options and ``--experiment``."""
    cls = experiments[experiment][0]
    p = Parser(description=description)
    p.add_argument("--experiment", choices=experiments, help=f"the experiment (default: {default})")
    p.add_argument("--plot-only", metavar="RESULTS_DIR", help="redraw the figures of an earlier run (any "
                   "experiment) from the files it saved there, without computing; takes no other option")
    p.add_config(cls)
    p.add_run_options(next((f.metadata.get("seed_help", f"default: {f.default}") for f in dataclasses.fields(cls)
                            if f.name == "seed"), None), package)
    return p


def parse_args(argv, experiments, package, description, default):
    """``(experiment, options)``: the options given on the command line, by field name. An option of another
    experiment, or one given with ``--plot-only``, ends in one line and exit status 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    pre = Parser(add_help=False)
    pre.add_argument("--experiment", choices=experiments)
    pre.add_argument("--plot-only")
    first, rest = pre.parse_known_args(argv)
    if hasattr(first, "plot_only"):
        if rest or hasattr(first, "experiment"):
            pre.error(f"--plot-only redraws an earlier run's figures and takes no other option (got "
                      f"{(rest or ['--experiment'])[0]})")
        return None, {"plot_only": first.plot_only}
    experiment = getattr(first, "experiment", default)
    parser = build_parser(experiments, experiment, package, description, default)
    args, extra = parser.parse_known_args(argv)
    if extra:
        name = extra[0].split("=")[0]
        owners = [e for e in experiments if e != experiment
                  and name in build_parser(experiments, e, package, description, default)._option_string_actions]
        parser.error(f"{name} does not apply to --experiment {experiment}"
                     + (f" (it is an option of --experiment {' / '.join(owners)})" if owners else ""))
    return experiment, {k: v for k, v in vars(args).items() if k != "experiment"}


def read_json(path):
    """A JSON file of a run folder; a pipe, device or folder of that name is refused, never opened."""
    if not os.path.isfile(path):
        raise ValueError(f"{os.path.basename(path)} is missing or not a regular file")
    with open(path) as f:
        return json.load(f)


def plot_only(folder, experiments, package, writer):
    """Redraw the figures of the run saved in ``folder`` from its ``config.json``, ``results.json`` and arrays.
    Only figures the run wrote (its manifest) are replaced; the manifest is brought up to date."""
    try:
        config, res = (read_json(os.path.join(folder, name)) for name in ("config.json", "results.json"))
        if not isinstance(config, dict) or "package" not in config:
            raise ValueError("its config.json names no package: an older version wrote it, rerun the experiment")
        if config["package"] != package:
            raise ValueError(f"a run of {config['package']}, not of {package}/main.py")
        if not isinstance(res, dict):
            raise ValueError("its results.json is not a run's results")
        draw = experiments[config["experiment"]][2]
        try:
            utils.redraw(folder, lambda: draw(folder, res), writer)
        except (KeyboardInterrupt, utils.Terminated) as e:
            fail(f"{'interrupted' if isinstance(e, KeyboardInterrupt) else 'terminated'} while redrawing; the "
                 "figures redrawn so far replaced the run's own (its manifest says which)",
                 130 if isinstance(e, KeyboardInterrupt) else 143)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, EOFError, RecursionError,
            zipfile.BadZipFile) as e:
        fail(f"error: --plot-only {folder}: cannot redraw its figures ({e.__class__.__name__}: {e})", 2)
    print(f"redrew the figures of {config['experiment']} (.png, .pdf) in {folder}")
    return res


def main(argv, experiments, package, description, default, results_dir, errors=None):
    """The command line: one line and a status for every way it can end (2 bad input, 130 Ctrl-C, 143
    SIGTERM), never a traceback for those. ``errors``: ``{exception class: hint(config) -> str}``, each ending
    the run with one line and exit status 2."""
    utils.take_signals()
    try:
        return run(argv, experiments, package, description, default, results_dir, errors or {})
    except KeyboardInterrupt:
        fail("interrupted; nothing written", 130)
    except utils.Terminated:
        fail("terminated; nothing written", 143)


def run(argv, experiments, package, description, default, results_dir, errors):
    """Parse ``argv``, read the graph and check every size before any work, run the experiment into a staging
    folder and move it in (see :class:`utils.RunFolder`)."""
    writer = f"StructureDiscovery {package}/main.py"
    experiment, opts = parse_args(argv, experiments, package, description, default)
    if experiment is None:
        return plot_only(opts["plot_only"], experiments, package, writer)
    cls, run_experiment, _, summary = experiments[experiment]
    run_opts = {k: opts.pop(k) for k in RUN_OPTIONS if k in opts}
    if "out_dir" in run_opts and not run_opts["out_dir"].strip():
        fail("error: --out-dir is empty: name a folder (or leave the option out for the default)", 2)
    try:                            # the graph file is read, and every size checked, before any work
        cfg = cls(**opts)
        device = utils.resolve_device(run_opts.get("device", "auto"))
        graph, n, m = cfg.read_graph()
        inputs = [(cfg.graph, utils.sha256_of(cfg.graph))] if getattr(cfg, "graph", None) else []
        cfg = cfg.quick(n, m) if run_opts.get("quick") else cfg
        problem = utils.memory_problem(cfg.memory(n, m), f"{n} nodes, about {m:.0f} edges", device)
        if problem:
            raise ValueError(problem)
        graph = cfg.make_graph(graph)
    except ValueError as e:
        fail(f"error: {e}", 2)
    out = run_opts.get("out_dir") or os.path.join(results_dir, cfg.folder_name()
                                                  + ("-quick" if run_opts.get("quick") else ""))
    try:
        folder = utils.RunFolder(out, writer)
    except ValueError as e:
        fail(f"error: {e}", 2)
    except OSError as e:
        fail(f"error: --out-dir {out}: cannot write there ({e.strerror or e})", 2)
    threads = run_opts.get("threads", 1)
    utils.set_threads(threads)
    t0 = time.perf_counter()
    try:
        res = run_experiment(cfg, graph, folder.path, device, progress=not run_opts.get("no_progress"))
        res["wall_s"] = time.perf_counter() - t0
        utils.write_json(os.path.join(folder.path, "results.json"), res)
        used = {"device": str(device), "threads": threads, "out_dir": folder.final,
                "quick": bool(run_opts.get("quick")), "no_progress": bool(run_opts.get("no_progress"))}
        utils.write_config(folder.path, experiment, {**cfg.as_used(n), **used}, device, inputs)
        utils.raise_swallowed(handled=res["interrupted"])
        where = folder.commit(res["interrupted"])
    except BaseException as e:
        folder.abandon()
        if isinstance(e, KeyboardInterrupt):
            fail(f"interrupted; nothing written ({out} is as it was)", 130)
        if isinstance(e, utils.Terminated):
            fail(f"terminated; nothing written ({out} is as it was)", 143)
        if isinstance(e, OSError):
            fail(f"error: cannot write the outputs ({e.strerror or e}); {out} is as it was", 1)
        hint = next((h for cls, h in errors.items() if isinstance(e, cls)), None)
        if hint is not None:
            fail(f"error: {e}; {hint(cfg)}", 2)
        raise
    line = f"{summary(res)}; total {res['wall_s']:.1f} s -> {where}"
    if res["interrupted"]:
        fail(f"interrupted: {line} ({out} is as it was)", 130)
    print(line + (f" ({out} held others' files by the end, so it was left as it was)" if where != folder.final
                  else ""))
    return res
