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
