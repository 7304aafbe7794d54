"""Figures of Section 4: Fig. 3, Fig. 2, the claims grid, and the certified stationary points.

Every function takes arrays and returns a matplotlib figure; nothing is shown or saved here.
"""
import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from NeuralNetworks.model import perp_part

matplotlib.use("Agg")          # files only, whatever MPLBACKEND says


def legend_outside(ax, **kw):
    """The legend to the right of the axes, where it covers no data."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8, **kw)


def fig3_setting(U, width, steps):
    """The key settings of a Fig. 3 run, for its titles: the teacher, d, k, width, steps."""
    d, k = U.shape
    teacher = "tanh<x, u>" if k == 1 else "mean_j tanh<x, u_j>"
    return f"teacher {teacher}, d = {d}, k = {k}, width {width}, {int(steps)} steps"


def plot_weights(snapshots: np.ndarray, U: np.ndarray, steps: np.ndarray, every: int = 10):
    """Fig. 3: every ``every``-th neuron's first-layer weights at the recorded steps, coloured by step; the
    initial weights ringed, the final ones black-edged.

    ``snapshots: (S, h, d)`` at ``steps: (S,)``; ``U: (d, k)`` orthonormal. For d = 2 and k = 1 (the paper's):
    the weight vectors in the plane with the line span(u). Otherwise, whatever k: each neuron's
    ``‖w∥‖`` (inside span(U)) against ``‖w⊥‖`` (outside), so the collapse is the fall to the x-axis."""
    sel = snapshots[:, ::every, :]
    S, h = sel.shape[:2]
    plane = sel.shape[2] == 2 and U.shape[1] == 1
    fig, ax = plt.subplots(figsize=(6.2, 5.2))
    if plane:
        x, y = sel[..., 0], sel[..., 1]
        labels = ("$w_1$", "$w_2$")
    else:
        x, y = np.linalg.norm(sel @ U, axis=-1), np.linalg.norm(perp_part(sel, U), axis=-1)
        labels = (r"$\|w_\parallel\|$ (inside span($U$))", r"$\|w_\perp\|$ (outside span($U$))")
    color = np.repeat(np.asarray(steps, dtype=float) + 1, h).reshape(S, h)
    sc = ax.scatter(x.ravel(), y.ravel(), c=color.ravel(), s=6, cmap="coolwarm_r", linewidths=0, alpha=0.85,
                    norm=matplotlib.colors.LogNorm(1, max(color.max(), 2)), label="neuron weights")
    fig.colorbar(sc, ax=ax, label="training step + 1 (red: init, blue: trained)")
    ax.scatter(x[0], y[0], s=22, facecolors="none", edgecolors="C3", linewidths=0.8,
               label=f"initial weights (step {int(steps[0])})")
    ax.scatter(x[-1], y[-1], s=22, color="C0", edgecolors="k", linewidths=0.8,
               label=f"final weights (step {int(steps[-1])})")
    if plane:
        lim = 1.05 * max(np.abs(x).max(), np.abs(y).max())
        u = U[:, 0]
        ax.plot([-2 * lim * u[0], 2 * lim * u[0]], [-2 * lim * u[1], 2 * lim * u[1]], "k--", lw=1,
                label=r"span($u$)")
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
    else:
        ax.set(xlim=(0, None), ylim=(0, None))
    ax.set(xlabel=labels[0], ylabel=labels[1], title=f"Fig. 3: first-layer weights, every {every}th neuron\n"
           + fig3_setting(U, snapshots.shape[1], steps[-1]))
    ax.title.set_fontsize(9)
    ax.legend(loc="lower right" if plane else "upper right", fontsize=8, framealpha=0.9)
    return fig


def plot_perp(steps: np.ndarray, perp: np.ndarray, wnorm: np.ndarray, decay_only: np.ndarray, setting=""):
    """``‖W⊥‖_F`` against step with the weight-decay-only curve ``(1 − lr λ)^t ‖W⊥(0)‖_F`` (left), and
    ``‖W⊥‖_F / ‖W‖_F`` (right); log x. ``setting``: the run's, for the title (:func:`fig3_setting`)."""
    x = steps + 1
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(x, perp, label=r"$\|W_\perp\|_F$, trained")
    a1.plot(x, decay_only, "k--", label=r"weight decay alone, $(1-\mathrm{lr}\,\lambda)^t\,\|W_\perp(0)\|_F$")
    a1.set(xscale="log", yscale="log", xlabel="training step + 1", ylabel=r"$\|W_\perp\|_F$")
    a1.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize=8)
    a2.plot(x, perp / wnorm, color="C1", label=r"$\|W_\perp\|_F / \|W\|_F$")
    a2.set(xscale="log", xlabel="training step + 1", ylabel=r"$\|W_\perp\|_F / \|W\|_F$", ylim=(0, None))
    a2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize=8)
    fig.suptitle(f"Fig. 3: the part of W outside span(U) during training; {setting}".rstrip("; "), fontsize=9)
    fig.tight_layout()
    return fig


def plot_fig2(lams, w_frozen, w_trained, activation):
    """Fig. 2: ``|w*|`` against ``λ`` with the bias frozen at 0 and with the bias trained."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(lams, w_frozen, "o-", ms=3, label="bias frozen at 0")
    ax.plot(lams, w_trained, "s-", ms=3, label="bias trained")
    name = {"smooth_relu": r"$\frac{1}{2}\log(1+e^{2z})$"}.get(activation, activation)
    ax.set(xscale="log", xlabel=r"weight decay $\lambda$", ylabel=r"$|w^*|$ (the minimiser)",
           title=r"Fig. 2, one neuron, $x \sim N(0, 1)$: the minimiser of $E[(s(wx+b) - 1)^2] + \lambda w^2$"
           + f"\n$s$ = {name}, {len(lams)} values of " + r"$\lambda$")
    ax.title.set_fontsize(9)
    legend_outside(ax)
    return fig


def plot_claims(results, setting=""):
    """One panel per row: ``‖W⊥‖_F`` against step (mean over seeds, band = min..max), its null dashed (the same
    optimiser without the loss's gradient on W⊥; claims.null_config). ``setting``: the grid's, for the title."""
    n = len(results)
    cols = 4
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), sharex=True)
    for ax, res in zip(axes.flat, results):
        x = res["step"] + 1
        h = res["perp_history"]
        ax.plot(x, h.mean(1), color="C0")
        ax.fill_between(x, h.min(1), h.max(1), color="C0", alpha=0.25, lw=0)
        row = res["row"]
        ax.plot(x, res["null_history"].mean(1), "k--", lw=0.8)
        ax.set(xscale="log", title=f"{row.claim} {row.name}" if row.claim.startswith("(") else row.name)
        ax.title.set_fontsize(8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.supylabel(r"$\|W_\perp\|_F$ (dashed: the null)", fontsize=9)
    fig.supxlabel("step + 1", fontsize=9)
    fig.suptitle(f"claims grid along training runs; {setting}".rstrip("; "), fontsize=9)
    fig.tight_layout()
    return fig


def plot_claims_end(rows, setting=""):
    """Per row of the claims grid: ``‖W⊥‖_F`` at the end of training against its null (the same optimiser
    without the loss's gradient on W⊥; means over seeds; a line joins the two), and at init. ``rows``: dicts with
    ``row``, ``claim``, ``perp_init``, ``perp_final``, ``null`` (per-seed lists)."""
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    end = np.array([np.mean(r["perp_final"]) for r in rows])
    alone = np.array([np.mean(r["null"]) for r in rows])
    init = np.array([np.mean(r["perp_init"]) for r in rows])
    ax.hlines(y, np.minimum(end, alone), np.maximum(end, alone), color="0.7", lw=2)
    ax.scatter(init, y, marker="|", color="0.4", s=80, label="at init")
    ax.scatter(alone, y, marker="s", color="k", s=22, label="null: same optimiser, no loss gradient on W⊥")
    ax.scatter(end, y, marker="o", color="C0", s=26, label="end of training")
    ax.set_yticks(y, [f"{r['claim']} {r['row']}" if r["claim"].startswith("(") else r["row"] for r in rows],
                  fontsize=8)
    ax.set(xlabel=r"$\|W_\perp\|_F$ (mean over seeds)", xlim=(0, None),
           title=f"claims grid: what the loss adds to its null's collapse\n{setting}".rstrip())
    ax.title.set_fontsize(9)
    legend_outside(ax)
    return fig


FLOOR = 1e-16      # ratios drawn on a log axis: an exact 0 is drawn here


def plot_sosp(points, pgd, tol, setting=""):
    """Left: ``‖W⊥‖/‖W‖`` at the certified stationary points against ``λ`` (bias trained / frozen, every seed),
    the a-posteriori bound for the trained points, and where the PGD runs end; points not certified (type other
    than ``minimum``) as grey crosses, apart. Right: PGD steps until the ratio is
    within ``tol`` of the certified value, against ``1/(lr λ)`` and the regulariser-alone prediction.
    ``points``: dicts with ``lam, bias, type, perp_ratio, perp_norm, par_norm, aposteriori_bound``; ``pgd``: dicts
    with ``lam, bias, ratio_end, steps_to_collapse, decay_only_steps, one_over_lr_lam``."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.2))
    style = {"trained": ("C0", "o"), "frozen": ("C3", "s")}
    points, others = _certified(points)
    if others:
        a1.scatter([p["lam"] for p in others], [max(p["perp_ratio"], FLOOR) for p in others], color="0.5",
                   marker="x", label="not certified (sosp.csv 'reason')")
    for bias, (c, m) in style.items():
        pts = [p for p in points if p["bias"] == bias]
        a1.scatter([p["lam"] for p in pts], [max(p["perp_ratio"], FLOOR) for p in pts], color=c, marker=m,
                   facecolors="none", label=f"certified point, bias {bias}")
        runs = sorted((r for r in pgd if r["bias"] == bias), key=lambda r: r["lam"])
        a1.plot([r["lam"] for r in runs], [r["ratio_end"] for r in runs], color=c, ls=":", marker="x",
                label=f"PGD after its last step, bias {bias}")
    bnd = [(p["lam"], p["aposteriori_bound"] / math.hypot(p["perp_norm"], p["par_norm"])) for p in points
           if p["bias"] == "trained" and p["aposteriori_bound"] is not None]
    if bnd:
        a1.scatter(*zip(*bnd), color="C0", marker="_", s=80,
                   label="a-posteriori bound on it (Stein), bias trained\n"
                   + r"$\|\nabla_W g\|/(\lambda+\lambda_{min}(H_b))/\|W\|$")
    a1.set(xscale="log", yscale="log", xlabel=r"weight decay $\lambda$", ylabel=r"$\|W_\perp\|_F / \|W\|_F$",
           title=f"stationary points of the population objective\n{setting}".rstrip())
    a1.title.set_fontsize(9)
    legend_outside(a1)
    for bias, (c, m) in style.items():
        runs = sorted((r for r in pgd if r["bias"] == bias and r["steps_to_collapse"] is not None),
                      key=lambda r: r["lam"])
        a2.plot([r["lam"] for r in runs], [max(r["steps_to_collapse"], 1) for r in runs], color=c, marker=m,
                label=f"PGD, bias {bias}")
    dec = sorted((r["lam"], r["decay_only_steps"]) for r in pgd if r["bias"] == "trained"
                 and r["decay_only_steps"] is not None)
    if dec:
        a2.plot(*zip(*dec), "k--", lw=1, label="weight decay alone (predicted)")
    lams = np.array(sorted({r["lam"] for r in pgd}))
    a2.plot(lams, 1 / lams, color="0.6", lw=1, label=r"$1/(\mathrm{lr}\,\lambda)$")
    trained = {r["lam"]: r["steps_to_collapse"] for r in pgd if r["bias"] == "trained"}
    close = [abs(trained[lam] / d - 1) <= 0.15 for lam, d in dec if trained.get(lam)]
    if close and all(close):
        a2.text(0.03, 0.04, "PGD (bias trained) and weight decay alone coincide:\n"
                "W⊥ collapses at the regulariser's rate", transform=a2.transAxes, fontsize=7.5, va="bottom")
    a2.set(xscale="log", yscale="log", xlabel=r"weight decay $\lambda$",
           ylabel=f"PGD steps until within {tol:g}\nof the certified ratio")
    a2.set_title("how long PGD takes to get there", fontsize=9)
    legend_outside(a2)
    fig.tight_layout()
    return fig


def _certified(points):
    """``sosp`` points split into the certified (type ``minimum``) and the others (drawn apart, never counted)."""
    return [p for p in points if p["type"] == "minimum"], [p for p in points if p["type"] != "minimum"]


def plot_sosp_bias(points, title):
    """The network-scale Fig. 2: ``‖W⊥‖/‖W‖`` at the certified points against ``λ``, bias frozen against bias
    trained (every seed as a dot, the largest over seeds as a line; exact zeros drawn at ``FLOOR``)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    points, others = _certified(points)
    if others:
        ax.scatter([p["lam"] for p in others], [max(p["perp_ratio"], FLOOR) for p in others], color="0.5",
                   marker="x", s=20, label="not certified (sosp.csv 'reason')")
    for bias, (c, m) in {"frozen": ("C3", "s"), "trained": ("C0", "o")}.items():
        pts = [p for p in points if p["bias"] == bias]
        if not pts:
            continue
        lams = sorted({p["lam"] for p in pts})
        worst = [max(max(p["perp_ratio"], FLOOR) for p in pts if p["lam"] == lam) for lam in lams]
        ax.plot(lams, worst, color=c, lw=1.2, label=f"bias {bias}: largest over seeds")
        ax.scatter([p["lam"] for p in pts], [max(p["perp_ratio"], FLOOR) for p in pts], color=c, marker=m,
                   facecolors="none", s=20, label=f"bias {bias}: each seed")
    ax.set(xscale="log", yscale="log", xlabel=r"weight decay $\lambda$",
           ylabel=r"$\|W_\perp\|_F / \|W\|_F$ at the certified point", title=title)
    ax.title.set_fontsize(9)
    legend_outside(ax)
    return fig


def plot_sosp_claims(points, setting=""):
    """``sosp-claims``: ‖W⊥‖/‖W‖ at every certified point, one column per row, bias trained and frozen side by
    side, coloured by λ; hollow markers for points that are not ε-SOSPs (saddles, searches not converged)."""
    rows = list(dict.fromkeys(p["row"] for p in points))
    lams = sorted({p["lam"] for p in points})
    colours = plt.cm.viridis(np.linspace(0, 0.85, len(lams)))
    fig, ax = plt.subplots(figsize=(10, 4.2))
    for i, row in enumerate(rows):
        for p in (p for p in points if p["row"] == row):
            x = i + (-0.17 if p["bias"] == "trained" else 0.17) + 0.05 * (lams.index(p["lam"]) - 1)
            c = colours[lams.index(p["lam"])]
            ok = p["type"] in ("minimum", "ε-SOSP")
            ax.scatter(x, max(p["perp_ratio"], 1e-17), s=22, marker="o" if p["bias"] == "trained" else "s",
                       facecolors=c if ok else "none", edgecolors=c)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)), rows, rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("‖W⊥‖ / ‖W‖ at the point")
    ax.set_title(f"certified points per claim: circles bias trained (left), squares frozen (right)\n{setting}"
                 .rstrip(), fontsize=9)
    for lam, c in zip(lams, colours):
        ax.scatter([], [], color=c, label=f"λ = {lam:g}")
    ax.scatter([], [], facecolors="none", edgecolors="k", label="not certified (saddle or uncertified)")
    legend_outside(ax)
    fig.tight_layout()
    return fig


def plot_lemma_paths(paths, lam, setting=""):
    """``sosp-claims`` paths: ‖W⊥‖ along exact GD against the regulariser alone and the H_b-rate prediction
    (left), and the Rayleigh rate ⟨W⊥, H_b W⊥⟩/‖W⊥‖² beside λ and H_b's spectrum (right)."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for i, p in enumerate(paths):
        c = f"C{i}"
        a1.plot(p["step"], p["perp_norm"] / p["perp_norm"][0], color=c, label=p["row"])
        a1.plot(p["step"], p["regulariser_alone"] / p["perp_norm"][0], color=c, ls=":", lw=1)
        a1.plot(p["step"], p["predicted"] / p["perp_norm"][0], color=c, ls="--", lw=1)
        a2.plot(p["step"], np.abs(p["rate"]), color=c, label=f"{p['row']}: |ρ|")
        a2.fill_between(p["step"], np.maximum(np.abs(p["hb_median"]), 1e-12), np.maximum(p["hb_max"], 1e-12),
                        color=c, alpha=0.08)
    if lam is not None:
        a2.axhline(lam, color="k", lw=1, ls=":", label=f"λ = {lam:g}")
    a1.set(xlabel="exact GD step", ylabel="‖W⊥(t)‖ / ‖W⊥(0)‖",
           title="measured (solid), regulariser alone (dotted), H_b rate (dashed)")
    a2.set(xlabel="exact GD step", yscale="log", ylabel="rate",
           title="Rayleigh rate of H_b on W⊥; band: median-max eig")
    a1.title.set_fontsize(9), a2.title.set_fontsize(9)
    a1.legend(fontsize=8), legend_outside(a2)
    fig.suptitle(f"Lemma 3.1 along exact gradient descent; {setting}".rstrip("; "), fontsize=9)
    fig.tight_layout()
    return fig


def plot_dimension(cells, setting=""):
    """Issue 39: each end-of-run quantity against d (log axis), one line per (teacher, k) (median over seeds,
    bars min..max): ‖W⊥‖/‖W‖ (null dashed), ‖W∥‖ (init dotted), the largest principal angle between span(U)
    and W's top-k right singular subspace (null dashed), test MSE over the constant predictor's (null dashed),
    and ‖W⊥‖ against the theory level (crosses: ρ^T‖W⊥(0)‖ plus the end point's minibatch noise; dotted:
    weight decay alone, ρ^T‖W⊥(0)‖), and the noise level alone."""
    panels = [("perp_ratio_final", "null_perp_ratio_final", None, r"$\|W_\perp\|_F/\|W\|_F$"),
              ("par_norm_final", None, "par_norm_init", r"$\|W_\parallel\|_F$ (dotted: init)"),
              ("max_angle_final", "null_max_angle_final", "max_angle_init", "largest principal angle (deg)"),
              ("mse_ratio", None, None, "test MSE / constant predictor's"),
              ("perp_norm_final", "null_perp_norm_final", "predicted_perp_norm",
               r"$\|W_\perp\|_F$ (x: theory, dotted: decay alone)"),
              ("stationary_perp_norm", None, None, r"noise level of $\|W_\perp\|_F$ (stationary)")]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    keys = sorted({(c["teacher"], c["k"]) for c in cells})
    for ax, (main, dashed, extra, label) in zip(axes.flat, panels):
        for i, (teacher, k) in enumerate(keys):
            cs = sorted((c for c in cells if (c["teacher"], c["k"]) == (teacher, k)), key=lambda c: c["d"])
            d = np.array([c["d"] for c in cs])
            med = np.array([c[main]["median"] for c in cs])
            err = np.abs(np.array([[c[main]["min"], c[main]["max"]] for c in cs]).T - med)
            ax.errorbar(d, med, yerr=err, color=f"C{i}", marker="o", ms=4, capsize=2, label=f"{teacher}, k = {k}")
            if dashed:
                ax.plot(d, [c[dashed]["median"] for c in cs], "--", color=f"C{i}", lw=1)
            if extra:
                style = dict(ls="", marker="x") if main == "perp_norm_final" else dict(ls=":")
                ax.plot(d, [c[extra]["median"] for c in cs], color=f"C{i}", lw=1, **style)
            if main == "perp_norm_final":
                ax.plot(d, [c["decay_only_perp_norm"]["median"] for c in cs], ":", color=f"C{i}", lw=1)
        ax.set(xscale="log", xlabel="input dimension d", ylabel=label)
        ax.set_xticks(sorted({c["d"] for c in cells}), [str(v) for v in sorted({c["d"] for c in cells})])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        if main in ("mse_ratio", "perp_norm_final", "stationary_perp_norm", "par_norm_final"):
            ax.set_yscale("log")
    axes.flat[2].axhline(90, color="0.6", lw=0.6)
    axes.flat[3].axhline(1, color="0.6", lw=0.6)
    legend_outside(axes.flat[2])
    fig.suptitle(f"Fig. 3's PGD against d (dashed: the null, no loss gradient on W⊥); {setting}", fontsize=10)
    fig.tight_layout()
    return fig
