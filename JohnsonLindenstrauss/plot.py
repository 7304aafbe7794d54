"""Figures of Sec. 5.2: Fig. 7 (distortion and σ per iteration, beside every baseline) and the k-sweep.

Functions take arrays and return a matplotlib figure; saving happens in experiments.py.
"""
import matplotlib
import matplotlib.pyplot as plt
import numpy as np

matplotlib.use("Agg")


def legend_outside(ax, **kw):
    """The legend to the right of the axes, where it covers no data."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8, **kw)


LEVEL_STYLES = [("k", "--"), ("C3", ":"), ("C3", "-"), ("C4", "-."), ("C5", (0, (1, 3))), ("C2", "-"),
                ("C6", (0, (5, 2, 1, 2)))]


def plot_distortion(sampled_max, mean_max, levels, target_label, holdout=None, reported=None, title=None):
    """Max distortion per iteration of the sampled batch and of the mean matrix ``M``, against the baselines'
    ``levels`` (``(label, value)``: Gaussian mean and best, orthogonal, sparse, SVD, PCA, each value in the
    legend) and, given ``holdout = (steps, values)``, ``M``'s max distortion on the held-out targets.
    ``reported = (step, value, last value)``: the best training iterate (the reported one) and the last, marked."""
    step = np.arange(1, len(sampled_max) + 1)
    fig, ax = plt.subplots(figsize=(7.5, 4))
    ax.plot(step, sampled_max, lw=0.8, alpha=0.7, label="sampled matrices (max over the batch)")
    ax.plot(step, mean_max, lw=1.2, label=r"mean matrix $M$ (learned)")
    if holdout is not None:
        ax.plot(holdout[0], holdout[1], lw=1.2, color="C1", ls="--", label=r"mean matrix $M$ on held-out points")
    if reported is not None:
        (best, value, last), n = reported, len(mean_max)
        ax.plot([best], [value], ls="none", marker="*", ms=12, color="C1", mec="k", zorder=5,
                label=f"reported: best training iterate (step {best}): {value:.2g}")
        ax.plot([n], [last], ls="none", marker="o", ms=6, mfc="none", color="k", zorder=5,
                label=f"last iterate (step {n}): {last:.2g}")
    for (label, value), (color, ls) in zip(levels, LEVEL_STYLES):
        ax.axhline(value, color=color, ls=ls, lw=1, label=f"{label}: {value:.3g}")
    ax.set(xlabel="iteration", ylabel=f"max distortion |‖Ax‖²/k − 1| ({target_label})", yscale="log")
    if title:
        ax.set_title(title, fontsize=10)
    legend_outside(ax)
    return fig


def plot_sigma(sigma_max, objective="max", title=None):
    """The spread σ of the distribution per iteration (log scale): one scalar for the authors' objective, the
    largest per-entry σ for the surrogate."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    what = r"$\sigma$ (one scalar)" if objective == "max" else r"$\max_{ij} \sigma_{ij}$"
    ax.plot(np.arange(1, len(sigma_max) + 1), sigma_max, label=what)
    ax.set(xlabel="iteration", ylabel=what + " of the Gaussian over matrices", yscale="log")
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=30))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_ksweep(rows, targets, eps, jl_bound, title=None):
    """Max distortion against k (log y), one panel per target: one colour per method, each baseline at its best
    scalar (solid) and its fixed scale (dotted), training targets with markers and held-out ones dashed, the ε
    line; the JL bound's k in the title (usually far beyond the grid). An exact projection (distortion 0 up to
    rounding: SVD and PCA from k >= rank, orthogonal at k = d) is drawn at the floor 1e-6, labelled as such."""
    from JohnsonLindenstrauss.ksweep import BASELINE_LABELS, LABELS, METHODS
    family = ["learned", "learned_best", *BASELINE_LABELS]
    fig, axes = plt.subplots(1, len(targets), figsize=(5.6 * len(targets), 4.6), squeeze=False)
    for ax, target in zip(axes[0], targets):
        for m in METHODS:
            pts = sorted((r["k"], r["max_distortion"], r["holdout_max_distortion"]) for r in rows
                         if r["target"] == target and r["method"] == m)
            ks, fixed = [p[0] for p in pts], m in BASELINE_LABELS
            color = f"C{family.index(m.removesuffix('_best_scale'))}"
            ax.plot(ks, [max(p[1], 1e-6) for p in pts], marker="" if fixed else "o", ms=3, color=color,
                    ls=":" if fixed else "-", lw=0.9 if fixed else 1.4, label=LABELS[m])
            if pts and all(p[2] is not None for p in pts) and not fixed:
                ax.plot(ks, [max(p[2], 1e-6) for p in pts], ls="--", color=color, lw=0.9)
        ax.axhline(eps, color="k", lw=0.8, ls=":", label=f"ε = {eps:g}")
        ax.axhline(1e-6, color="0.6", lw=0.6)
        ax.text(0.02, 1.3e-6, "exact (≤ 1e-6)", fontsize=7, color="0.4", ha="left", transform=ax.get_yaxis_transform())
        held = any(r["holdout_max_distortion"] is not None for r in rows)
        ax.set(xscale="log", yscale="log", xlabel="target dimension k",
               ylabel="max distortion" + (" (dashed: held-out, best scalar)" if held else ""),
               title=f"{target} (JL bound: k ≥ {jl_bound})")
    legend_outside(axes[0][-1])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_theorem(max_distortion, sigma_max, objective, eps, allowance, holdout, title=None):
    """Theorem 5.5's descent: the mean matrix's max distortion per step against ε and ε + τ (and its held-out
    value at the end); max |σ| and the objective per step (log scales)."""
    step = np.arange(1, len(max_distortion) + 1)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8))
    a1.plot(step, max_distortion, label=r"mean matrix $M$: max distortion (training points)")
    a1.axhline(eps, color="k", ls="--", lw=1, label=rf"$\varepsilon$ = {eps:g}")
    a1.axhline(eps + allowance, color="C3", ls=":", lw=1, label=rf"$\varepsilon + \tau$ = {eps + allowance:g}")
    if holdout is not None:
        a1.axhline(holdout, color="C1", ls="-.", lw=1, label=f"end point on held-out points: {holdout:.3f}")
    a1.set(xlabel="gradient step", ylabel="max distortion of $M$", xscale="log", yscale="log")
    a2.plot(step, np.where(sigma_max > 0, sigma_max, np.nan), color="C2", label=r"$\max_{ij} |\sigma_{ij}|$")
    a2.plot(step, np.where(objective > 0, objective, np.nan), color="C4", label="objective (union bound + penalty)")
    a2.axhline(1.0, color="C4", ls=":", lw=1, label="1: below it at σ = 0, every distortion is below ε + τ")
    a2.set(xlabel="gradient step", ylabel="value", xscale="log", yscale="log")
    for ax in (a1, a2):
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
