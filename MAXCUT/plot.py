"""Fig. 5 of the paper (Sec. 5.1): cut value and sigma per iteration of the derandomisation.

Functions take arrays and return a matplotlib figure; saving happens in main.py.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_cut(step, cut_sampled, cut_mean, gw_expected, optimum=None, optimum_label="optimum",
             sdp_value=None):
    """Cut per iteration: mean of sampled hyperplanes, the deterministic cut of ``m``, the GW
    expectation of the embedding, and (dashed) the optimum or best known cut."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(step, cut_sampled, lw=0.8, alpha=0.8, label="sampled hyperplanes (mean)")
    ax.plot(step, cut_mean, lw=1.2, label=r"deterministic cut of $m$")
    ax.axhline(gw_expected, color="C2", lw=1, label="GW expectation")
    if optimum is not None:
        ax.axhline(optimum, color="k", ls="--", lw=1, label=optimum_label)
    if sdp_value is not None:
        ax.axhline(sdp_value, color="C3", ls=":", lw=1, label="SDP value (upper bound)")
    lo = np.nanmin(np.concatenate([np.asarray(cut_sampled), [gw_expected]]))
    hi = max(v for v in (np.nanmax(cut_mean), optimum, sdp_value) if v is not None)
    ax.set(xlabel="iteration", ylabel="cut value", ylim=(lo - 0.02 * (hi - lo + 1), hi + 0.05 * (hi - lo + 1)))
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_sigma(step, sigma_max, sigma_relative):
    """Largest sigma per iteration and the scale-free ``max sigma / |m|`` (log scale)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    ax.plot(step, sigma_max, label=r"max $\sigma$")
    ax.plot(step, sigma_relative, label=r"max $\sigma$ / $\|m\|$")
    ax.set(xlabel="iteration", ylabel=r"$\sigma$", yscale="log")
    ax.legend(fontsize=8)
    return fig
