"""Johnson-Lindenstrauss benchmark (paper Sec. 5.2): prints the reproduction's targets as tables.

1. The paper's configuration (uniform, n=100, d=500, k=30, norms, 5000 steps): our optimiser against a
   straightforward implementation of the same steps (draw G: (20, 30, 500), form A = M + σG, multiply by Xᵀ).
2. Every dataset and target (held-out points: 100), learned projection against the standard ones.

    python JohnsonLindenstrauss/benchmark.py [--skip-reference]

Writes the tables to JohnsonLindenstrauss/results/benchmark.md as well. Times: wall-clock seconds here.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from JohnsonLindenstrauss.main import main as run_main  # noqa: E402
from JohnsonLindenstrauss.model import load_points, make_targets, matrix_distortion  # noqa: E402
from JohnsonLindenstrauss.train import JLConfig, optimise  # noqa: E402
from JohnsonLindenstrauss.utils import write_text  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def straightforward(X, cfg, generator):
    """The authors' steps written plainly: sample the matrices, multiply, take the max, Adam. Returns the
    final M and the number of steps run."""
    k, d = cfg.k, X.shape[1]
    M = torch.zeros(k, d, requires_grad=True)
    log_var = torch.zeros((), requires_grad=True)
    opt = torch.optim.Adam([M, log_var], lr=cfg.lr)
    for t in range(cfg.steps):
        A = M + (0.5 * log_var).exp() * torch.randn(cfg.batch, k, d, generator=generator)
        loss = (((A @ X.T) ** 2).sum(1) / k - 1).abs().max()
        if loss.item() < cfg.tol:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return M.detach(), t + 1


def speed_table():
    X, _ = load_points("uniform", 100, 0, 500, 0)
    X32, T64 = torch.as_tensor(X, dtype=torch.float32), make_targets(torch.as_tensor(X), "norms")
    cfg = JLConfig()
    rows = ["| implementation | steps | time (s) | max distortion of M (last) | of M (best iterate) |", "|---|---|---|---|---|"]
    t = time.perf_counter()
    M, steps = straightforward(X32, cfg, torch.Generator().manual_seed(0))
    s_ref = time.perf_counter() - t
    last = matrix_distortion(M.double().numpy() / math.sqrt(cfg.k), T64)
    rows.append(f"| straightforward (direct G, float32) | {steps} | {s_ref:.1f} | {last:.4f} | – |")
    t = time.perf_counter()
    h = optimise(make_targets(X32, "norms"), cfg, torch.Generator().manual_seed(0), progress=False)
    s_ours = time.perf_counter() - t
    ours = [matrix_distortion(h[key].double().numpy() / math.sqrt(cfg.k), T64) for key in ("M_last", "M")]
    rows.append(f"| ours (G Xᵀ sampled as Z Lᵀ, one sync per step) | {h['steps_run']} | {s_ours:.1f} | "
                f"{ours[0]:.4f} | {ours[1]:.4f} |")
    return "\n".join(rows) + f"\n\nspeed-up {s_ref / s_ours:.1f}x"


def datasets_table():
    head = ("| data | target | objective | learned (train) | held-out | Gaussian mean | Gaussian min | orthogonal "
            "| sparse | PCA | held-out Gaussian mean | held-out PCA | σ final | time (s) |")
    out = [head, "|" + "---|" * 14]
    runs = [(data, target, "max") for data in ("uniform", "gaussian", "digits") for target in ("norms", "pairwise")]
    runs += [("uniform", "norms", "surrogate"), ("uniform", "pairwise", "surrogate")]
    for data, target, objective in runs:
        r = run_main(["--data", data, "--target", target, "--objective", objective, "--holdout", "100",
                      "--no-progress", "--out-dir", os.path.join(HERE, "results", "benchmark",
                                                                 f"{data}_{target}_{objective}")])
        h = r["holdout"]
        out.append(f"| {data} (d={r['d']}) | {target} | {objective} | {r['max_distortion']:.4f} | "
                   f"{r['holdout_max_distortion']:.3f} | {r['gaussian_mean']:.3f} | {r['gaussian_min']:.3f} | "
                   f"{r['orthogonal_mean']:.3f} | {r['sparse_mean']:.3f} | {r['pca']:.3f} | {h['gaussian_mean']:.3f} | "
                   f"{h['pca']:.3f} | {r['sigma_final']:.3g} | {r['wall_s']:.1f} |")
    return ("n = 100 training points, 100 held-out points, k = 30, 5000 steps, seed 0; 'max distortion' over\n"
            "the training targets (norms: 100 points; pairwise: 4950 pairs) and over the held-out targets\n"
            "(norms: the 100 new points; pairwise: the 14950 pairs that involve a new point).\n\n" + "\n".join(out))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--skip-reference", action="store_true", help="skip the speed comparison")
    args = p.parse_args(argv)
    sections = [] if args.skip_reference else [("Paper configuration: speed", speed_table())]
    sections.append(("Datasets × targets", datasets_table()))
    text = f"threads: {torch.get_num_threads()}\n\n" + "\n\n".join(f"## {t}\n\n{b}" for t, b in sections) + "\n"
    print(text)
    write_text(os.path.join(HERE, "results", "benchmark.md"), text)


if __name__ == "__main__":
    main()
