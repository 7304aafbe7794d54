"""Section 4 of the paper: structure discovery in neural networks.

``python NeuralNetworks/main.py`` reproduces Fig. 3 with the authors' settings (App. E): a width-1000
two-layer student with activation 1/2 log(1 + e^{2z}) trained by perturbed gradient descent on the
single-index teacher tanh(<x, u>), u = (1, 1)/sqrt(2). The other experiments (``--experiment NAME``):
  fig2         the one-neuron toy of Fig. 2: minimisers against lambda, bias frozen and trained
  claims       the claims (a)-(e) along PGD runs on a multi-index teacher, each against its null
  sosp         Lemma 3.1 at certified stationary points of the population objective, and PGD beside them
  sosp-claims  the claims at certified points, the lemma along exact GD, and App. B's algorithms
  dimension    Fig. 3's PGD at d = 2 ... 512, tanh and He_4 teachers: is span(U) recovered, or only W_perp -> 0?
``python NeuralNetworks/main.py --experiment NAME --help`` lists that experiment's options.
"""
import os
import sys

if __name__ == "__main__":     # run as a script: the repository root on the path; a Ctrl-C or SIGTERM while
    import signal              # the libraries load ends with one line, nothing written
    for _s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_s, lambda s, f: (sys.stderr.write("main.py: stopped while starting; nothing written\n"),
                                        os._exit(128 + s)))
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from NeuralNetworks import cli, experiments as ex

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE, DEFAULT = "NeuralNetworks", "fig3"

EXPERIMENTS = {     # name -> (its config class: the options and defaults, run, draw, one-line summary)
    "fig3": (ex.Fig3Config, ex.run_fig3, ex.draw_fig3, ex.summary_fig3),
    "fig2": (ex.Fig2Config, ex.run_fig2, ex.draw_fig2, ex.summary_fig2),
    "claims": (ex.ClaimsConfig, ex.run_claims, ex.draw_claims, ex.summary_claims),
    "sosp": (ex.SospConfig, ex.run_sosp, ex.draw_sosp, ex.summary_sosp),
    "sosp-claims": (ex.SospClaimsConfig, ex.run_sosp_claims, ex.draw_sosp_claims, ex.summary_sosp_claims),
    "dimension": (ex.DimensionConfig, ex.run_dimension, ex.draw_dimension, ex.summary_dimension),
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
