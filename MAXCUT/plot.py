"""Figures of Sec. 5.1: the cut and the spread of the hyperplane per iteration of the derandomisation (Fig. 5 for
the authors' graph), beside the baselines that give them meaning.

Functions take arrays and return a matplotlib figure; saving happens in experiments.py.
"""
import matplotlib
import matplotlib.pyplot as plt
import numpy as np

matplotlib.use("Agg")      # figures are files


def legend_outside(ax, **kw):
    """The legend to the right of the axes, where it covers no data."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8, **kw)


LEVELS = {"gw": ("C2", "-"), "best_of_k": ("C4", "-."), "polished": ("C5", ":"), "reference": ("k", "--"),
          "sdp": ("C3", (0, (1, 3))), "conditional": ("C8", (0, (5, 2, 1, 2)))}   # each level's colour, line style


def short(value):
    """A level's value as a reader wants it: at most two decimals, no trailing zeros (42.7279 -> 42.73)."""
    return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) < 1e15 else f"{value:.6g}"


def plot_cut(step, cut_sampled, cut_mean, levels, title=None):
    """Cut per iteration: the mean over sampled hyperplanes and the deterministic cut of ``m``, against the
    horizontal ``levels``, ``(kind, label, value)`` with ``kind`` a key of :data:`LEVELS` (value None: skipped):
    GW expectation, best of k roundings, polished cut, optimum or best known cut, SDP bound. The y-range shows
    every curve and level whole. ``title``: the graph and its key settings."""
    fig, ax = plt.subplots(figsize=(7.5, 4))
    ax.plot(step, cut_sampled, lw=0.8, alpha=0.8, label="sampled hyperplanes (mean cut)")
    ax.plot(step, cut_mean, lw=1.2, label=r"derandomised: the cut of sign($Vm$)")
    _levels_and_range(ax, levels, [cut_sampled, cut_mean])
    ax.set(xlabel="iteration")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def _levels_and_range(ax, levels, curves):
    """The horizontal ``levels`` (``(kind, label, value)``, None skipped), a y-range that shows them and every
    curve whole, the cut's y-label and the legend outside."""
    shown = [(kind, label, value) for kind, label, value in levels if value is not None]
    for kind, label, value in shown:
        color, ls = LEVELS[kind]
        ax.axhline(value, color=color, ls=ls, lw=1, label=f"{label}: {short(value)}")
    values = np.concatenate([np.asarray(c, float).ravel() for c in curves] + [[v for *_, v in shown]])
    lo, hi = np.nanmin(values), np.nanmax(values)
    pad = 0.04 * (hi - lo) + 0.5
    ax.set(ylabel="cut value (total weight of cut edges)", ylim=(lo - pad, hi + pad))
    legend_outside(ax)


def plot_sigma(step, sigma_max, sigma_relative, title=None, step_scale=None):
    """Left: the largest coordinate of σ per iteration (and ``step_scale``, the scale the authors' update draws
    with, ``max σ + 0.5``, where given); right: the scale-free ``max σ / ‖m‖`` (log scales)."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    a1.plot(step, sigma_max, label=r"$\max_i \sigma_i$")
    if step_scale is not None and len(step_scale) == len(step):
        a1.plot(step, step_scale, color="C2", ls="--", label=r"$\max_i \sigma_i + 0.5$: the scale each step draws with")
    a1.set(xlabel="iteration", ylabel=r"$\max_i \sigma_i$ (spread of the hyperplane)", yscale="log")
    a2.plot(step, sigma_relative, color="C1", label=r"$\max_i \sigma_i / \|m\|$")
    a2.set(xlabel="iteration", ylabel=r"$\max_i \sigma_i \,/\, \|m\|$", yscale="log")
    for ax in (a1, a2):
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


POINT_COLOURS = ("C0", "C1", "C6", "C7", "C8", "C9")    # the descents: none of the levels' colours


def plot_theorem(curves, levels, title=None):
    """Theorem 5.2's descents: ``curves`` is ``(label, {"cut", "sigma_max", "sigma_over_m"} per step, bound)`` per
    (δ, λ). Returns two figures: the cut of sign(Vm) per step (each descent's bound dashed in its colour) against
    the horizontal ``levels`` (as :func:`plot_cut`); and max |σ| and ‖σ‖/‖m‖ per step (log scales)."""
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for k, (label, h, bound) in enumerate(curves):
        colour = POINT_COLOURS[k % len(POINT_COLOURS)]
        ax.plot(np.arange(1, len(h["cut"]) + 1), h["cut"], color=colour, lw=1.2, label=f"{label}: cut of sign($Vm$)")
        ax.axhline(bound, color=colour, ls="--", lw=0.8, label=f"{label}: the theorem's bound {short(bound)}")
    _levels_and_range(ax, levels, [h["cut"] for _, h, _ in curves] + [[b for *_, b in curves]])
    ax.set(xlabel="gradient step", xscale="log")
    if title:
        ax.set_title(title, fontsize=10)
    fig2, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, (label, h, _) in enumerate(curves):
        step = np.arange(1, len(h["cut"]) + 1)
        for ax2, q in ((a1, "sigma_max"), (a2, "sigma_over_m")):
            v = np.asarray(h[q], float)
            ax2.plot(step, np.where(v > 0, v, np.nan), color=POINT_COLOURS[k % len(POINT_COLOURS)], label=label)
    a1.set(xlabel="gradient step", ylabel=r"$\max_k |\sigma_k|$ (spread of the hyperplane)", yscale="log")
    a2.set(xlabel="gradient step", ylabel=r"$\|\sigma\| \,/\, \|m\|$", yscale="log")
    for ax2 in (a1, a2):
        ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8, ncol=2)
    if title:
        fig2.suptitle(title, fontsize=10)
    fig2.tight_layout()
    return fig, fig2



def plot_theorem_deltas(points, gw, title=None):
    """The smoothing's effect (``--deltas``): per λ against δ (log scale), the cut of sign(Vm) at the end of each
    descent (open markers: not certified) with the GW expectation; the start value C_δ(0, 1) / GW with the
    expansion 1 − Kδ²/GW (``smoothing_loss_predicted``); the steps and seconds of each descent."""
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(13, 3.8))
    for k, lam in enumerate(sorted({p["lam"] for p in points}, reverse=True)):
        pts = sorted((p for p in points if p["lam"] == lam), key=lambda p: p["delta"])
        d = np.array([p["delta"] for p in pts])
        colour = POINT_COLOURS[k % len(POINT_COLOURS)]
        ok = np.array([p["certified"] for p in pts])
        cut = np.array([p["cut"] for p in pts])
        a1.plot(d, cut, color=colour, lw=1, label=f"λ={lam:g}: cut of sign($Vm$)")
        a1.scatter(d[ok], cut[ok], color=colour, s=22)
        a1.scatter(d[~ok], cut[~ok], facecolors="none", edgecolors=colour, s=22)
        a3.plot(d, [p["steps"] for p in pts], "o-", color=colour, label=f"λ={lam:g}: steps")
        a3.plot(d, [p["seconds"] for p in pts], "s--", color=colour, label=f"λ={lam:g}: seconds")
    one = sorted({p["delta"]: p for p in points}.values(), key=lambda p: p["delta"])
    d = np.array([p["delta"] for p in one])
    a1.axhline(gw, color=LEVELS["gw"][0], ls=LEVELS["gw"][1], lw=1, label=f"GW expectation {short(gw)}")
    a2.plot(d, [p["start_smoothed_cut"] / gw for p in one], "o-", color="k", label=r"$C_\delta(0, 1)$ / GW")
    a2.plot(d, [1 - p["smoothing_loss_predicted"] / gw for p in one], ":", color="C3",
            label=r"$1 - K\delta^2/\mathrm{GW}$")
    a1.set(xlabel="δ (width of the smooth step)", ylabel="cut (weight)", xscale="log")
    a2.set(xlabel="δ", ylabel=r"$C_\delta(0, 1)$ / GW expectation", xscale="log")
    a3.set(xlabel="δ", ylabel="steps / seconds per descent", xscale="log", yscale="log")
    for ax in (a1, a2, a3):
        ax.set_xticks(d, [f"{x:g}" for x in d])
        ax.minorticks_off()
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8, ncol=2)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig

GSET_MARKS = {"gw_expectation": ("GW expectation", dict(marker="x", s=14, alpha=0.6)),
              "conditional_expectations": ("conditional expectations", dict(marker="D", s=14)),
              "derandomised": ("derandomised", dict(marker="o", s=22)),
              "one_flip": ("one-flip (baseline)", dict(marker="o", s=22)),
              "polished": ("polished (tabu search)", dict(marker="^", s=18))}


def _gset_style(col, colour):
    """A result's marker in ``colour``: a cross, an open circle (derandomised) or a filled marker."""
    if col == "gw_expectation":
        return {"color": colour, **GSET_MARKS[col][1]}
    return {"edgecolors": colour, "facecolors": "none" if col == "derandomised" else colour, **GSET_MARKS[col][1]}


def plot_gset_all(rows):
    """The whole G-set: % of the best known cut against the number of nodes (log scale); colour: the graph
    family; marker: GW expectation (x), conditional expectations (diamond), derandomised (open circle), one-flip
    (filled), polished (triangle)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    done = [r for r in rows if r["status"] == "ok" and r["best_known"]]
    for i, fam in enumerate(sorted({r["family"] for r in done})):
        rs = [r for r in done if r["family"] == fam]
        n = np.array([r["nodes"] for r in rs], dtype=float)
        best = np.array([r["best_known"] for r in rs], dtype=float)
        for col in GSET_MARKS:
            vals = np.array([np.nan if r.get(col) is None else r[col] for r in rs], dtype=float)
            ax.scatter(n, 100 * vals / best, **_gset_style(col, f"C{i}"))
        ax.scatter([], [], color=f"C{i}", marker="s", label=fam)
    for col, (label, _) in GSET_MARKS.items():
        ax.scatter([], [], label=label, **_gset_style(col, "k"))
    ax.axhline(100, color="k", lw=0.8, ls="--")
    ax.set(xscale="log" if done else "linear", xlabel="nodes", ylabel="% of best known cut")
    legend_outside(ax, ncol=1)
    return fig
