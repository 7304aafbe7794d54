"""How small can k be? The max distortion of every method against the target dimension k (``--experiment ksweep``).

For each target (norms, pairwise distances) and each k of a grid: the learned mean matrix (the authors'
objective, as in Fig. 7; the mean over ``--seeds`` runs, optimised as one batch, and the run best on the
training targets), Gaussian matrices (mean and best of ``draws``), orthogonal projections, sparse random
projections (scikit-learn), the top-k SVD of the uncentred targets and centred PCA -- each baseline from its own
random stream, at its fixed scale and at its best scalar (baselines.py) -- on the training targets and,
when there is a holdout, on held-out ones. For each method, the smallest k of the grid whose max distortion is at
most ε, beside the JL bound's k (scikit-learn's ``johnson_lindenstrauss_min_dim``).
"""
import math

BASELINE_LABELS = {"gaussian_min": "Gaussian, best of N", "gaussian_mean": "Gaussian, mean",
                   "orthogonal_mean": "orthogonal, mean", "sparse_mean": "sparse (scikit-learn), mean",
                   "svd": "top-k SVD (uncentred)", "pca_centred": "PCA (centred)"}
METHODS = ("learned", "learned_best", *BASELINE_LABELS, *(m + "_best_scale" for m in BASELINE_LABELS))
LABELS = {"learned": "learned (derandomised), mean over seeds", "learned_best": "learned, best seed (on training)",
          **{m: f"{v}, fixed scale" for m, v in BASELINE_LABELS.items()},
          **{m + "_best_scale": f"{v}, best scalar" for m, v in BASELINE_LABELS.items()}}


def default_grid(d: int) -> list[int]:
    """1, 2, 4, ..., below d, and d itself."""
    return sorted({2 ** i for i in range(int(math.log2(d)) + 1) if 2 ** i < d} | {d})


def smallest_k(ks, values, eps):
    """The smallest k of the grid whose value is at most ``eps`` (None if none is): ``ks`` and ``values`` in the
    same order. The distortion of a learned matrix need not fall monotonically in k: this is the first k that
    meets ε, not the point past which every k does."""
    ok = [k for k, v in zip(ks, values) if v is not None and v <= eps]
    return min(ok) if ok else None


def table(rows, targets, eps):
    """``{target: {method: smallest k}}`` from the rows (dicts with ``target, k, method, max_distortion``)."""
    out = {}
    for t in targets:
        out[t] = {}
        for m in METHODS:
            pts = sorted((r["k"], r["max_distortion"]) for r in rows if r["target"] == t and r["method"] == m)
            out[t][m] = smallest_k([k for k, _ in pts], [v for _, v in pts], eps)
    return out


def to_csv(rows) -> str:
    keys = ["target", "k", "method", "max_distortion", "holdout_max_distortion"]
    lines = [",".join(keys)]
    for r in rows:
        lines.append(",".join("" if r.get(k) is None else (f"{r[k]:.6g}" if isinstance(r[k], float) else str(r[k]))
                              for k in keys))
    return "\n".join(lines) + "\n"


def to_markdown(res) -> str:
    """The smallest-k table: one row per method, one column per target."""
    targets = res["targets"]
    head = "| method | " + " | ".join(f"smallest k, {t} (ε = {res['eps']:g})" for t in targets) + " |"
    lines = [head, "|" + "---|" * (len(targets) + 1)]
    for m in METHODS:
        cells = [str(res["smallest_k"][t][m]) if res["smallest_k"][t][m] is not None else f"> {max(res['grid'])}"
                 for t in targets]
        lines.append(f"| {LABELS[m]} | " + " | ".join(cells) + " |")
    lines.append("| JL bound (scikit-learn) | " + " | ".join(str(res["jl_bound"]) for _ in targets) + " |")
    return "\n".join(lines) + "\n"
