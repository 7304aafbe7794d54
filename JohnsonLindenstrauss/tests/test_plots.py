"""Each figure, from a small synthetic history: a labelled series for everything the README compares, legends
outside the data."""
import matplotlib.pyplot as plt
import numpy as np

from JohnsonLindenstrauss import plot


def labels(fig):
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_fig7_distortion_against_every_baseline_and_the_holdout():
    levels = [("Gaussian: mean of the draws", 0.587), ("Gaussian: best of the draws", 0.326),
              ("orthogonal rows: mean", 0.556), ("sparse (scikit-learn): mean", 0.599), ("PCA", 0.473)]
    h = np.geomspace(1, 0.01, 200)
    fig = plot.plot_distortion(h * 1.5, h, levels, "norms", (np.arange(1, 201, 25), h[::25] * 3))
    got = labels(fig)
    assert "mean matrix $M$ on held-out points" in got
    for label, value in levels:
        assert f"{label}: {value:.3g}" in got
    leg, ax = fig.axes[0].get_legend().get_window_extent(), fig.axes[0].get_window_extent()
    assert leg.x0 >= ax.x1
    assert "held-out" not in " ".join(labels(plot.plot_distortion(h, h, levels, "norms")))
    plt.close("all")


def test_sigma_figure_says_what_sigma_is_and_labels_several_ticks():
    fig = plot.plot_sigma(np.geomspace(1, 0.013, 500), "max")
    ax = fig.axes[0]
    assert "one scalar" in ax.get_ylabel()
    fig.canvas.draw()
    lo, hi = ax.get_ylim()
    shown = [t for t in ax.get_yticklabels() if t.get_text() and lo <= t.get_position()[1] <= hi]
    assert len(shown) >= 4
    assert "max" in plot.plot_sigma(np.geomspace(1, 0.1, 10), "surrogate").axes[0].get_ylabel()
    plt.close("all")


def test_ksweep_figure_has_every_method_and_the_eps_line():
    from JohnsonLindenstrauss.ksweep import LABELS, METHODS
    rows = [{"target": t, "k": k, "method": m, "max_distortion": 1.0 / k, "holdout_max_distortion": None}
            for t in ("norms", "pairwise") for k in (1, 4, 16) for m in METHODS]
    fig = plot.plot_ksweep(rows, ["norms", "pairwise"], 0.1, 3947)
    got = labels(fig)
    assert [LABELS[m] for m in METHODS] + ["ε = 0.1"] == got
    assert "held-out" not in fig.axes[0].get_ylabel()
    plt.close("all")


def test_fig7_marks_the_reported_and_the_last_iterate_and_names_its_data():
    h = np.geomspace(1, 0.01, 200)
    fig = plot.plot_distortion(h * 1.5, h, [("Gaussian: mean of the draws", 0.587)], "norms",
                               reported=(180, 0.0081, 0.019), title="Fig. 7: uniform data, n = 100, d = 500, k = 30")
    got = labels(fig)
    assert "reported: best training iterate (step 180): 0.0081" in got and "last iterate (step 200): 0.019" in got
    assert fig.axes[0].get_title() == "Fig. 7: uniform data, n = 100, d = 500, k = 30"
    plt.close("all")


def test_every_run_figure_title_names_its_data_and_sizes(tmp_path, monkeypatch):
    from JohnsonLindenstrauss.main import main
    main(["--quick", "--no-progress", "--n", "20", "--d", "40", "--k", "4", "--steps", "5", "--draws", "5",
          "--out-dir", str(tmp_path / "f")])
    seen, real = [], plot.plot_distortion

    def spy(*a, **k):
        fig = real(*a, **k)
        seen.append((fig.axes[0].get_title(), labels(fig)))
        return fig
    monkeypatch.setattr(plot, "plot_distortion", spy)
    main(["--plot-only", str(tmp_path / "f")])
    [(title, got)] = seen
    assert title == "Fig. 7, norms, objective max: uniform data, n = 20, d = 40, k = 4"
    assert any(t.startswith("reported: best training iterate (step ") for t in got)
    plt.close("all")
