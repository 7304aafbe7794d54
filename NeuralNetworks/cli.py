"""The command line behind ``main.py``, repeated on purpose in each folder: one parser per experiment built from
its config dataclass, ``--plot-only``, and running an experiment into a run folder. Nothing here is part of the
paper; what runs what is ``main.EXPERIMENTS`` (name -> config class, run, draw, summary)."""
import argparse
import dataclasses
import inspect
import json
import math
import os
import sys
import time
import zipfile

from NeuralNetworks import utils

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
        """One option per field of the dataclass ``cls`` that has a help text (``--lr-bias`` for ``lr_bias``)."""
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
        """``seed``: what ``--seed`` seeds, or None for an experiment that draws nothing at random (no --seed)."""
        a, cores = self.add_argument, utils.available_cores()
        if seed:
            a("--seed", type=number(int, 0, MAX_SEED), help=f"{seed} (default: 0, every run in the README)")
        a("--device", choices=("auto", "cpu", "cuda"), help="where torch computes (default: auto)")
        a("--threads", type=number(int, 1, 4 * cores), help="CPU threads (default 1: a step's kernels are too "
          "small to share; sosp: one worker process per core from width 128)")
        a("--out-dir", help=f"output folder (default: {package}/results/<experiment>/, <experiment>-quick/ with "
          "--quick); a folder is replaced only where it holds exactly an earlier run (its MANIFEST.json)")
        a("--quick", action="store_true", help="the same run, shortened (tests, CI); writes every output")
        a("--no-progress", action="store_true", help="no progress bar")


def fail(message, status):
    """One line on stderr and exit ``status``."""
    print(f"main.py: {message}", file=sys.stderr)
    sys.exit(status)


def build_parser(experiments, experiment, package, description, default):
    """The parser of one experiment: its config's fields, the run options and ``--experiment``."""
    cls = experiments[experiment][0]
    seed = next((f.metadata["seed"] for f in dataclasses.fields(cls) if f.name == "seed"), None)
    p = Parser(description=description, epilog=None if seed else f"--experiment {experiment} draws nothing at "
               "random (exact expectations), so it takes no --seed.")
    p.add_argument("--experiment", choices=experiments, help=f"which experiment to run (default: {default})")
    p.add_argument("--plot-only", metavar="RESULTS_DIR", help="redraw the figures of an earlier run (any "
                   "experiment) from the files it saved there, without computing; takes no other option")
    p.add_config(cls)
    p.add_run_options(seed, package)
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
                     + (f" (it is an option of --experiment {' / '.join(owners)})" if owners else "")
                     + (f": {parser.epilog}" if name == "--seed" and parser.epilog else ""))
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
    SIGTERM), never a traceback for those. ``errors``: ``{exception class: hint}``, each ending the run with
    one line and exit status 2."""
    utils.take_signals()
    try:
        return run(argv, experiments, package, description, default, results_dir, errors or {})
    except KeyboardInterrupt:
        fail("interrupted; nothing written", 130)
    except utils.Terminated:
        fail("terminated; nothing written", 143)


def run(argv, experiments, package, description, default, results_dir, errors):
    """Parse ``argv``, run the experiment into a staging folder and move it in (see :class:`utils.RunFolder`)."""
    writer = f"StructureDiscovery {package}/main.py"
    experiment, opts = parse_args(argv, experiments, package, description, default)
    if experiment is None:
        return plot_only(opts["plot_only"], experiments, package, writer)
    cls, run_experiment, _, summary = experiments[experiment]
    run_opts = {k: opts.pop(k) for k in RUN_OPTIONS if k in opts}
    if "out_dir" in run_opts and not run_opts["out_dir"].strip():
        fail("error: --out-dir is empty: name a folder (or leave the option out for the default)", 2)
    try:
        cfg = cls(**opts)
        cfg = cfg.quick(opts) if run_opts.get("quick") else cfg
        device = utils.resolve_device(run_opts.get("device", "auto"))
    except ValueError as e:
        fail(f"error: {e}", 2)
    problem = utils.memory_problem(cfg.memory(), f"--experiment {experiment}", device, getattr(cfg, "SHRINK", None))
    if problem:
        fail(f"error: {problem}", 2)
    threads = run_opts.get("threads") or (cfg.default_threads() if hasattr(cfg, "default_threads") else 1)
    out = run_opts.get("out_dir") or os.path.join(results_dir, experiment + ("-quick" if run_opts.get("quick")
                                                                              else ""))
    try:
        folder = utils.RunFolder(out, writer)
    except ValueError as e:
        fail(f"error: {e}", 2)
    except OSError as e:
        fail(f"error: --out-dir {out}: cannot write there ({e.strerror or e})", 2)
    utils.set_threads(threads)
    extra = {"workers": threads} if "workers" in inspect.signature(run_experiment).parameters else {}
    t0 = time.perf_counter()
    try:
        res = run_experiment(cfg, folder.path, device, progress=not run_opts.get("no_progress"), **extra)
        res["wall_s"] = time.perf_counter() - t0
        utils.write_json(os.path.join(folder.path, "results.json"), res)
        used = {**dataclasses.asdict(cfg), "device": device.type, "threads": threads, "out_dir": folder.final,
                "quick": bool(run_opts.get("quick")), "no_progress": bool(run_opts.get("no_progress"))}
        utils.write_config(folder.path, experiment, used, device)     # every option as used: defaults resolved
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
            fail(f"error: {e}; {hint}", 2)
        raise
    line = f"{summary(res)}; {res['wall_s']:.1f} s -> {where}"
    if res["interrupted"]:
        fail(f"interrupted: {line} ({out} is as it was)", 130)
    print(line + (f" ({out} held others' files by the end, so it was left as it was)" if where != folder.final
                  else ""))
    return res
