"""Section 5.1 of the paper: Goemans-Williamson rounding derandomised by gradient descent (Fig. 5).

``python MAXCUT/main.py`` reproduces Fig. 5 as the authors ran it (App. F): their G(15, 0.6) graph, their
spectral "GW vectors", their score-function update rule and schedule, optimisation seed 43.
``--graph FILE`` runs on a G-set/rudy file or an edge list, by default with a real GW SDP embedding
(Burer-Monteiro) and the pathwise estimator of the smoothed objective.
``--experiment theorem``: Theorem 5.2 with its own algorithm, perturbed gradient descent on the exact smoothed
objective from plain GW, each end point's stationarity and the theorem's chain.
"""
import os
import sys

if __name__ == "__main__":     # run as a script: the repository root on the path; a Ctrl-C or SIGTERM while
    import signal              # the libraries load ends with one line, nothing written
    for _s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_s, lambda s, f: (sys.stderr.write("main.py: stopped while starting; nothing written\n"),
                                        os._exit(128 + s)))
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from MAXCUT import cli, experiments as ex

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE, DEFAULT = "MAXCUT", "derandomise"

EXPERIMENTS = {     # name -> (its config class: the options and defaults, run, draw, one-line summary)
    "derandomise": (ex.MaxcutConfig, ex.run, ex.draw, ex.summary),
    "theorem": (ex.TheoremConfig, ex.run_theorem, ex.draw_theorem, ex.summary_theorem),
}


def parse_args(argv=None):
    """``(experiment, options)``: the options given, by field name (``(None, {"plot_only": DIR})`` for
    ``--plot-only``); an option of another experiment ends in one line and exit status 2."""
    return cli.parse_args(argv, EXPERIMENTS, PACKAGE, __doc__, DEFAULT)


def main(argv=None):
    """Run the experiment ``argv`` names into its run folder; returns its results."""
    return cli.main(argv, EXPERIMENTS, PACKAGE, __doc__, DEFAULT, os.path.join(HERE, "results"), ex.ERRORS)


if __name__ == "__main__":
    main()
    for _s in (signal.SIGINT, signal.SIGTERM):   # done, and said so: a signal while Python shuts down changes nothing
        signal.signal(_s, signal.SIG_IGN)
