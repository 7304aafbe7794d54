"""Figures of Section 4: Fig. 3 (weights collapsing onto span(u)) and the W_perp curve.

Every function takes arrays and returns a matplotlib figure; nothing is shown or saved here.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import math  # noqa: E402

import numpy as np  # noqa: E402


def plane_coordinates(W: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Coordinates of weight vectors in the plane (u, v), ``v`` a fixed unit vector orthogonal to u.

    ``W: (..., d)``, ``u: (d,)`` unit. For ``d = 2`` this is the plane itself, rotated so that u is
    the first axis. Returns ``(..., 2)``."""
    d = u.shape[0]
    e = np.zeros(d)
    e[int(np.argmin(np.abs(u)))] = 1.0
    v = e - (e @ u) * u
    v /= np.linalg.norm(v)
    return np.stack([W @ u, W @ v], axis=-1)


def plot_weights(snapshots: np.ndarray, u: np.ndarray, every: int = 10):
    """Fig. 3: trajectories of every ``every``-th neuron, red (init) to blue (trained).

    ``snapshots: (S, h, d)`` first-layer weights at increasing steps; ``u: (d,)``."""
    S = snapshots.shape[0]
    sel = snapshots[:, ::every, :]
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    if snapshots.shape[2] == 2:
        pts, xlabel, ylabel = sel, "$w_1$", "$w_2$"
        line = np.outer(np.linspace(-1, 1, 2), u)
    else:
        pts, xlabel, ylabel = plane_coordinates(sel, u), r"$\langle w, u\rangle$", r"$\langle w, v\rangle$, $v \perp u$"
        line = np.array([[-1.0, 0.0], [1.0, 0.0]])
    colors = plt.cm.coolwarm_r(np.linspace(0, 1, S))
    for s in range(S):
        ax.scatter(pts[s, :, 0], pts[s, :, 1], s=6, color=colors[s], alpha=0.8, linewidths=0)
    lim = 1.05 * np.abs(pts).max()
    ax.plot(line[:, 0] * 2 * lim, line[:, 1] * 2 * lim, "k--", lw=1, label=r"span($u$)")
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel=xlabel, ylabel=ylabel, aspect="equal",
           title=f"first-layer weights, every {every}th neuron (red: init, blue: trained)")
    ax.title.set_fontsize(9)
    ax.legend(loc="upper left")
    return fig


def plot_perp(steps: np.ndarray, perp: np.ndarray, wnorm: np.ndarray, decay_only: np.ndarray):
    """``||W_perp||_F`` and ``||W_perp||_F / ||W||_F`` against step (log x), with the
    weight-decay-only curve ``(1 - lr lam)^t ||W_perp(0)||_F`` dashed."""
    x = steps + 1
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(x, perp, label=r"$\|W_\perp\|_F$ (trained)")
    a1.plot(x, decay_only, "k--", label="weight decay alone")
    a1.set(xscale="log", yscale="log", xlabel="step + 1", ylabel=r"$\|W_\perp\|_F$")
    a1.legend()
    a2.plot(x, perp / wnorm, color="C1")
    a2.set(xscale="log", xlabel="step + 1", ylabel=r"$\|W_\perp\|_F / \|W\|_F$", ylim=(0, None))
    fig.tight_layout()
    return fig


def plot_fig2(lams, w_frozen, w_trained, activation):
    """Fig. 2: ``|w*|`` against ``λ`` with the bias frozen at 0 and with the bias trained."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(lams, w_frozen, "o-", ms=3, label="bias frozen at 0")
    ax.plot(lams, w_trained, "s-", ms=3, label="bias trained")
    ax.set(xscale="log", xlabel=r"$\lambda$", ylabel=r"$|w^*|$",
           title=f"minimiser of E[(s(wx+b) - 1)^2] + lambda w^2, s = {activation}")
    ax.title.set_fontsize(9)
    ax.legend()
    return fig


def plot_claims(results, lr):
    """One panel per row: ``‖W⊥‖_F`` against step (mean over seeds, band = min..max), with what the
    regulariser alone would give dashed ((1 - lr lam)^t for GD/PGD; for Adam a cross at the end)."""
    n = len(results)
    cols = 4
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), sharex=True)
    for ax, res in zip(axes.flat, results):
        x = res["step"] + 1
        h = res["perp_history"]
        ax.plot(x, h.mean(1), color="C0")
        ax.fill_between(x, h.min(1), h.max(1), color="C0", alpha=0.25, lw=0)
        setting, row = res["row"].setting, res["row"]
        if setting["optimizer"] == "adam":   # no closed form: the simulated end point only
            ax.plot(x[-1], np.mean(res["decay_only"]), "kx", ms=6)
        else:
            ax.plot(x, (1 - lr * setting["lam"]) ** res["step"] * h[0].mean(), "k--", lw=0.8)
        ax.set(xscale="log", title=f"{row.claim} {row.name}" if row.claim.startswith("(") else row.name)
        ax.title.set_fontsize(8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.supylabel(r"$\|W_\perp\|_F$ (dashed / x: the regulariser alone)", fontsize=9)
    fig.supxlabel("step + 1", fontsize=9)
    fig.tight_layout()
    return fig


def plot_sosp(points, pgd, tol):
    """Left: ``‖W⊥‖/‖W‖`` at the certified stationary points against ``λ`` (bias trained / frozen, every seed),
    the lemma's bound for the trained points, and where the PGD runs end. Right: PGD steps until the ratio is
    within ``tol`` of the certified value, against ``1/(lr λ)`` and the regulariser-alone prediction.
    ``points``: dicts with ``lam, bias, perp_ratio, perp_norm, par_norm, bound``; ``pgd``: dicts with ``lam,
    bias, ratio_end, steps_to_collapse, decay_only_steps, one_over_lr_lam``."""
    floor = 1e-16
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    style = {"trained": ("C0", "o"), "frozen": ("C3", "s")}
    for bias, (c, m) in style.items():
        pts = [p for p in points if p["bias"] == bias]
        a1.scatter([p["lam"] for p in pts], [max(p["perp_ratio"], floor) for p in pts], color=c, marker=m,
                   facecolors="none", label=f"certified point, bias {bias}")
        runs = sorted((r for r in pgd if r["bias"] == bias), key=lambda r: r["lam"])
        a1.plot([r["lam"] for r in runs], [r["ratio_end"] for r in runs], color=c, ls=":", marker="x",
                label=f"PGD after the last step, bias {bias}")
    bnd = [(p["lam"], p["bound"] / math.hypot(p["perp_norm"], p["par_norm"])) for p in points
           if p["bias"] == "trained" and p["bound"] is not None]
    if bnd:
        a1.scatter(*zip(*bnd), color="C0", marker="_", s=80, label=r"bound $\|\nabla_W g\|/(\lambda+\lambda_{min}(H_b))$ / $\|W\|$")
    a1.set(xscale="log", yscale="log", xlabel=r"$\lambda$", ylabel=r"$\|W_\perp\|_F / \|W\|_F$",
           title="stationary points of the population objective")
    a1.legend(fontsize=7, framealpha=0.7)
    for bias, (c, m) in style.items():
        runs = sorted((r for r in pgd if r["bias"] == bias and r["steps_to_collapse"] is not None),
                      key=lambda r: r["lam"])
        a2.plot([r["lam"] for r in runs], [max(r["steps_to_collapse"], 1) for r in runs], color=c, marker=m,
                label=f"PGD, bias {bias} (to its own certified ratio)")
    dec = sorted((r["lam"], r["decay_only_steps"]) for r in pgd if r["bias"] == "trained"
                 and r["decay_only_steps"] is not None)
    if dec:
        a2.plot(*zip(*dec), "k--", lw=1, label="regulariser alone")
    lams = np.array(sorted({r["lam"] for r in pgd}))
    a2.plot(lams, 1 / lams, color="0.6", lw=1, label=r"$1/(\mathrm{lr}\,\lambda)$")
    a2.set(xscale="log", yscale="log", xlabel=r"$\lambda$", ylabel="steps (0 drawn at 1)",
           title=f"PGD steps until the ratio is within {tol:g} of the certified value")
    a2.title.set_fontsize(9)
    a2.legend(fontsize=7)
    fig.tight_layout()
    return fig
