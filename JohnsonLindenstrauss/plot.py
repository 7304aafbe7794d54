"""Fig. 7 of the paper (Sec. 5.2): distortion and sigma per iteration.

Functions take arrays and return a matplotlib figure; saving happens in main.py.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_distortion(sampled_max, mean_max, gaussian_mean, gaussian_min, target_label):
    """Max distortion per iteration for the sampled batch and for the mean matrix ``M``, against the mean
    and the minimum max-distortion of standard Gaussian matrices."""
    step = np.arange(1, len(sampled_max) + 1)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(step, sampled_max, lw=0.8, alpha=0.7, label="sampled matrices (max over batch)")
    ax.plot(step, mean_max, lw=1.2, label=r"mean matrix $M$")
    ax.axhline(gaussian_mean, color="k", ls="--", lw=1, label="Gaussian: mean of 1000 draws")
    ax.axhline(gaussian_min, color="C3", ls=":", lw=1, label="Gaussian: best of 1000 draws")
    ax.set(xlabel="iteration", ylabel=f"max distortion ({target_label})", yscale="log")
    ax.legend(fontsize=8)
    return fig


def plot_sigma(sigma_max):
    """Largest standard deviation of the distribution per iteration (log scale)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    ax.plot(np.arange(1, len(sigma_max) + 1), sigma_max)
    ax.set(xlabel="iteration", ylabel=r"max $\sigma$", yscale="log")
    return fig


def plot_ksweep(rows, targets, eps, jl_bound):
    """Max distortion against k (log y), one panel per target: one curve per method, training targets solid and
    held-out ones dashed, the ε line; the JL bound's k in the title (usually far beyond the grid). An exact
    projection (distortion 0 up to rounding: PCA from k >= n, orthogonal at k = d) is drawn at the floor 1e-6,
    which the axis labels as such."""
    from JohnsonLindenstrauss.ksweep import LABELS, METHODS
    fig, axes = plt.subplots(1, len(targets), figsize=(5.6 * len(targets), 4.2), squeeze=False)
    for ax, target in zip(axes[0], targets):
        for i, m in enumerate(METHODS):
            pts = sorted((r["k"], r["max_distortion"], r["holdout_max_distortion"]) for r in rows
                         if r["target"] == target and r["method"] == m)
            ks = [p[0] for p in pts]
            ax.plot(ks, [max(p[1], 1e-6) for p in pts], marker="o", ms=3, color=f"C{i}", label=LABELS[m])
            if all(p[2] is not None for p in pts):
                ax.plot(ks, [max(p[2], 1e-6) for p in pts], ls="--", color=f"C{i}", lw=1)
        ax.axhline(eps, color="k", lw=0.8, ls=":", label=f"ε = {eps:g}")
        ax.axhline(1e-6, color="0.6", lw=0.6)
        ax.text(0.02, 1.3e-6, "exact (≤ 1e-6)", fontsize=7, color="0.4", ha="left", transform=ax.get_yaxis_transform())
        ax.set(xscale="log", yscale="log", xlabel="k", ylabel="max distortion",
               title=f"{target} (JL bound: k ≥ {jl_bound})")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
