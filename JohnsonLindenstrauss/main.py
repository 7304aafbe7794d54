"""What ``python JohnsonLindenstrauss/main.py`` reproduces: Section 5.2 of the paper, a Johnson-Lindenstrauss
projection learned by derandomising a Gaussian distribution over k x d matrices. One line per experiment:

--experiment fig7     (default) Fig. 7 as the authors ran it (App. G): 100 unit vectors in R^500, k = 30, Adam on
                      the largest distortion of 20 sampled matrices; --target pairwise, --objective surrogate (Eq. 9)
--experiment ksweep   every method's max distortion against k, for norms and pairwise distances
--experiment theorem  Theorem 5.5 in its regime: the smoothed union bound descended, the mean matrix certified

``python JohnsonLindenstrauss/main.py --experiment NAME --help`` lists that experiment's options.
"""
import os
import sys

if __name__ == "__main__":     # run as a script: the repository root on the path; a Ctrl-C or SIGTERM while the
    import signal              # libraries load ends with one line, nothing written
    for _s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_s, lambda s, f: (sys.stderr.write("main.py: stopped while starting; nothing written\n"),
                                        os._exit(128 + s)))
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from JohnsonLindenstrauss import cli, experiments as ex

HERE = os.path.dirname(os.path.abspath(__file__))
# which experiment runs what: name -> (its config class, run, draw, summary)
EXPERIMENTS = {"fig7": (ex.Fig7Config, ex.run_fig7, ex.draw_fig7, ex.summary_fig7),
               "theorem": (ex.TheoremConfig, ex.run_theorem, ex.draw_theorem, ex.summary_theorem),
               "ksweep": (ex.KsweepConfig, ex.run_ksweep, ex.draw_ksweep, ex.summary_ksweep)}


def command():
    """What runs: the experiments, their errors, and where outputs go (read at each call, so tests may move it)."""
    return cli.Command(
        EXPERIMENTS, "JohnsonLindenstrauss", "fig7", __doc__, HERE,
        experiment_help="fig7: one run at --k (the paper's); ksweep: every method against k; theorem: Theorem 5.5 "
                        "in its regime (default: fig7)",
        out_dir_help="output folder (default: JohnsonLindenstrauss/results/fig7/ for the paper's run, else "
                     "results/<experiment>-<data>[-<hash8>]-<target>[-<objective>]/; -quick added for --quick)",
        errors=ex.RUN_ERRORS, hint=ex.hint)


def parse_args(argv=None):
    """``(experiment, options)``: the options given, by field name (cli.parse_args)."""
    return cli.parse_args(command(), argv)


def main(argv=None):
    """Run the experiment the command line names (cli.main); returns its results."""
    return cli.main(command(), argv)


if __name__ == "__main__":
    main()
    for _s in (signal.SIGINT, signal.SIGTERM):   # done, and said so: a signal while Python shuts down changes nothing
        signal.signal(_s, signal.SIG_IGN)
