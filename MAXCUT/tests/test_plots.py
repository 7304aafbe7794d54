"""Each figure, from a small synthetic history: a labelled series for everything the README compares, legends
outside the data."""
import matplotlib.pyplot as plt
import numpy as np

from MAXCUT import plot


def labels(fig):
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_cut_figure_shows_every_comparison_and_every_curve_whole():
    step = np.arange(1, 101)
    sampled, mean = np.linspace(90, 110, 100), np.linspace(95, 112, 100)
    levels = [("gw", "GW expectation", 100.0), ("best_of_k", "best of 1000 GW roundings", 105.0),
              ("polished", "polished (one-flip local search)", 115.0), ("reference", "best known cut", 118.0),
              ("sdp", "SDP value (upper bound)", 125.0)]
    fig = plot.plot_cut(step, sampled, mean, levels)
    got = labels(fig)
    assert got[:2] == ["sampled hyperplanes (mean cut)", "derandomised: the cut of sign($Vm$)"]
    for _, label, value in levels:
        assert f"{label}: {value:.6g}" in got
    lo, hi = fig.axes[0].get_ylim()
    assert lo < 90 and hi > 125                       # every curve and level whole
    leg, ax = fig.axes[0].get_legend().get_window_extent(), fig.axes[0].get_window_extent()
    assert leg.x0 >= ax.x1                            # the legend beside the axes, not on the data
    fig = plot.plot_cut(step, sampled, mean, [("polished", "polished", None), ("gw", "GW expectation", 100.0)])
    assert len(labels(fig)) == 3                      # a level without a value is left out
    plt.close("all")


def test_sigma_figure_names_both_quantities():
    step = np.arange(1, 51)
    fig = plot.plot_sigma(step, np.geomspace(1, 0.01, 50), np.geomspace(10, 0.001, 50))
    assert "sigma" in fig.axes[0].get_ylabel() and r"\|m\|" in fig.axes[1].get_ylabel()
    assert labels(fig) == [r"$\max_i \sigma_i$", r"$\max_i \sigma_i / \|m\|$"]
    plt.close("all")


def test_titles_name_the_graph_and_values_read_at_two_decimals():
    step = np.arange(1, 11)
    title = "G14: n = 800, 4694 edges; sdp vectors, pathwise estimator"
    fig = plot.plot_cut(step, np.ones(10), np.ones(10), [("sdp", "SDP upper bound (certified)", 42.7279)], title)
    assert fig.axes[0].get_title() == title and "SDP upper bound (certified): 42.73" in labels(fig)
    assert plot.plot_sigma(step, np.ones(10), np.ones(10), title)._suptitle.get_text() == title
    curves = [("δ=0.03, λ=0.0001", {"cut": np.ones(5), "sigma_max": np.ones(5), "sigma_over_m": np.ones(5)}, 0.5)]
    cut_fig, sigma_fig = plot.plot_theorem(curves, [], title)
    assert cut_fig.axes[0].get_title() == title and sigma_fig._suptitle.get_text() == title
    assert plot.short(31.0) == "31" and plot.short(11624.375) == "11624.38" and plot.short(-0.5) == "-0.5"
    plt.close("all")


def test_sigma_panel_shows_the_scale_the_authors_rule_draws_with():
    """The authors' update draws with max σ + 0.5 (App. F): the σ panel plots it beside max σ when given."""
    from MAXCUT.plot import plot_sigma
    step = np.arange(4)
    sigma = np.array([1.0, 0.5, 0.2, 0.1])
    fig = plot_sigma(step, sigma, sigma / 2, "t", sigma + 0.5)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2
    np.testing.assert_array_equal(lines[1].get_ydata(), sigma + 0.5)
    assert len(plot_sigma(step, sigma, sigma / 2).axes[0].get_lines()) == 1
    plt.close("all")
