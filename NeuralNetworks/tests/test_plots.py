"""Each figure, from a small synthetic history: it carries a labelled series for everything its README section
compares (labels, not pixels), and its legends sit outside the axes' data area."""
import matplotlib.pyplot as plt
import numpy as np

from NeuralNetworks import plot


def labels(fig):
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def assert_legends_clear_of_data(fig):
    """No legend overlaps the data area of its axes (the bounding box of the plotted data)."""
    fig.canvas.draw()
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is None:
            continue
        box, area = leg.get_window_extent(), ax.get_window_extent()
        inside = box.x0 < area.x1 and box.x1 > area.x0 and box.y0 < area.y1 and box.y1 > area.y0
        if inside:      # a legend inside the axes must miss every plotted point
            for line in ax.get_lines():
                xy = ax.transData.transform(np.column_stack(line.get_data()).astype(float))
                xy = xy[np.isfinite(xy).all(1)]
                assert not ((xy[:, 0] > box.x0) & (xy[:, 0] < box.x1) & (xy[:, 1] > box.y0)
                            & (xy[:, 1] < box.y1)).any(), ax.get_title()


def test_fig3_weights_in_the_plane_and_as_norms_with_a_colour_bar():
    rng = np.random.default_rng(0)
    snaps, steps = rng.standard_normal((5, 40, 2)), np.array([0, 10, 100, 1000, 20000])
    fig = plot.plot_weights(snaps, np.array([[1.0], [1.0]]) / np.sqrt(2), steps)
    assert "span($u$)" in labels(fig) and len(fig.axes) == 2 and "step" in fig.axes[1].get_ylabel()
    assert "initial weights (step 0)" in labels(fig) and "final weights (step 20000)" in labels(fig)
    init, final = fig.axes[0].collections[1].get_offsets(), fig.axes[0].collections[2].get_offsets()
    np.testing.assert_array_equal(init, snaps[0, ::10]), np.testing.assert_array_equal(final, snaps[-1, ::10])
    assert "d = 2, k = 1, width 40, 20000 steps" in fig.axes[0].get_title()
    assert_legends_clear_of_data(fig)
    U = np.linalg.qr(rng.standard_normal((5, 2)))[0]
    fig = plot.plot_weights(rng.standard_normal((5, 40, 5)), U, steps)      # k = 2: norms inside / outside
    ax = fig.axes[0]
    assert "inside span" in ax.get_xlabel() and "outside span" in ax.get_ylabel()
    pts = ax.collections[0].get_offsets()
    assert (pts >= 0).all() and pts.shape == (5 * 4, 2)
    plt.close("all")


def test_fig3_perp_fig2_and_the_claims_figures():
    step = np.arange(0, 1001, 100)
    fig = plot.plot_perp(step, np.exp(-step / 500), np.ones(len(step)), np.exp(-step / 1000),
                         plot.fig3_setting(np.ones((2, 1)), 1000, 1000))
    assert any("weight decay alone" in t for t in labels(fig))
    assert "teacher tanh<x, u>, d = 2, k = 1, width 1000, 1000 steps" in fig._suptitle.get_text()
    assert_legends_clear_of_data(fig)
    fig = plot.plot_fig2(np.geomspace(1e-4, 10, 9), np.linspace(0.4, 0, 9), np.zeros(9), "smooth_relu")
    assert labels(fig) == ["bias frozen at 0", "bias trained"]
    title = fig.axes[0].get_title()
    assert "one neuron" in title and "9 values of" in title and "E[(s(wx+b) - 1)^2]" in title
    assert_legends_clear_of_data(fig)
    rows = [{"row": "base", "claim": "–", "perp_init": [15.0], "perp_final": [5.2], "null": [5.6]},
            {"row": "Adam", "claim": "(e)", "perp_init": [15.0], "perp_final": [0.3], "null": [0.0]}]
    fig = plot.plot_claims_end(rows, "k = 2 directions in d = 20")
    assert "k = 2 directions in d = 20" in fig.axes[0].get_title()
    assert labels(fig) == ["at init", "null: same optimiser, no loss gradient on W⊥", "end of training"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["base", "(e) Adam"]
    assert_legends_clear_of_data(fig)
    plt.close("all")


def test_sosp_figures():
    points = [{"lam": lam, "bias": b, "perp_ratio": r, "perp_norm": r, "par_norm": 1.0,
               "aposteriori_bound": 2 * r, "type": "minimum"} for lam in (1e-3, 1e-2) for b, r in (("trained", 1e-7),
                                                                                            ("frozen", 0.6))]
    points.append({**points[0], "type": "uncertified", "perp_ratio": 0.3})       # drawn apart, never counted
    pgd = [{"lam": lam, "bias": b, "ratio_end": 0.01, "steps_to_collapse": int(5 / lam),
            "decay_only_steps": int(5 / lam), "one_over_lr_lam": 1 / lam} for lam in (1e-3, 1e-2)
           for b in ("trained", "frozen")]
    fig = plot.plot_sosp(points, pgd, 0.01, "width 1000, d = 2, k = 1")
    assert "width 1000, d = 2, k = 1" in fig.axes[0].get_title()
    got = labels(fig)
    for want in ("certified point, bias trained", "certified point, bias frozen", "PGD, bias trained",
                 "weight decay alone (predicted)", "not certified (sosp.csv 'reason')"):
        assert want in got
    assert any("coincide" in t.get_text() for t in fig.axes[1].texts)       # the finding, said on the figure
    assert_legends_clear_of_data(fig)
    fig = plot.plot_sosp_bias(points, "offset 1")
    assert "bias frozen: largest over seeds" in labels(fig) and "bias trained: largest over seeds" in labels(fig)
    assert_legends_clear_of_data(fig)
    plt.close("all")
