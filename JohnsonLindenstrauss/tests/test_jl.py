"""Tests of Section 5.2 (Johnson-Lindenstrauss): distortions, sampling shortcut, surrogate gradient,
optimisation, outputs and bad input."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from JohnsonLindenstrauss.data import load_points
from JohnsonLindenstrauss.main import main
from JohnsonLindenstrauss.tests.test_run import assert_plot_only_redraws
from JohnsonLindenstrauss.model import JLConfig, distortion, ratios, surrogate_loss
from JohnsonLindenstrauss.sampler import GaussianSampler
from JohnsonLindenstrauss.targets import holdout_pairs, make_targets, matrix_distortion
from JohnsonLindenstrauss.train import optimise

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_orthogonal_matrix_has_zero_distortion_on_its_row_space():
    g = torch.Generator().manual_seed(0)
    d, k = 40, 6
    Q = torch.linalg.qr(torch.randn(d, k, generator=g, dtype=torch.float64)).Q.T      # (k, d) orthonormal rows
    A = math.sqrt(k) * Q
    pts = torch.randn(25, k, generator=g, dtype=torch.float64) @ Q                    # in the row space
    pts = pts / pts.norm(dim=1, keepdim=True)
    for kind, count in (("norms", 25), ("pairwise", 300)):   # differences of row-space points stay in it
        T = make_targets(pts, kind)
        torch.testing.assert_close(T.values(A @ T.X.T, k), torch.zeros(count, dtype=torch.float64),
                                   rtol=0, atol=1e-12)
    # a direction orthogonal to the row space is lost entirely: distortion 1
    v = torch.randn(d, generator=g, dtype=torch.float64)
    v = v - Q.T @ (Q @ v)
    assert distortion(ratios((A @ (v / v.norm()))[:, None], k)).item() == pytest.approx(1.0)


def test_pairwise_targets_are_normalised_differences():
    X = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]], dtype=torch.float64)
    T = make_targets(X, "pairwise")
    diff = X[T.pairs[:, 0]] - X[T.pairs[:, 1]]
    dense = diff / diff.norm(dim=1, keepdim=True)                       # the targets, formed directly
    assert dense.shape == (3, 3)
    torch.testing.assert_close(dense.norm(dim=1), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(dense[0], torch.tensor([1.0, -1.0, 0], dtype=torch.float64) / math.sqrt(2))
    A = torch.randn(2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(T.values(A @ X.T, 2), distortion(ratios(A @ dense.T, 2)))   # Gram route = direct
    assert holdout_pairs(3, 2).tolist() == [[0, 3], [0, 4], [1, 3], [1, 4], [2, 3], [2, 4], [3, 4]]


def test_gaussian_shortcut_matches_direct_product_in_distribution():
    """Rows of G Xᵀ are N(0, X Xᵀ): the Cholesky shortcut and the direct product agree in mean and
    covariance (200 000 rows each; tolerance 0.02 on entries of size ~1, about 9 standard errors)."""
    X, _ = load_points("uniform", 6, 0, 30, 0)
    X = torch.as_tensor(X)
    C = X @ X.T
    for mode in ("shortcut", "direct"):
        s = GaussianSampler(X, mode)
        assert s.shortcut == (mode == "shortcut")
        rows = s.sample(2000, 100, torch.Generator().manual_seed(1)).reshape(-1, 6)
        torch.testing.assert_close(rows.mean(0), torch.zeros(6, dtype=torch.float64), rtol=0, atol=0.01)
        torch.testing.assert_close(rows.T @ rows / len(rows), C, rtol=0, atol=0.02)


def test_singular_gram_matrix_uses_a_square_root():
    X = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    s = GaussianSampler(X, "shortcut")
    torch.testing.assert_close(s.L @ s.L.T, X @ X.T, rtol=0, atol=1e-12)


def test_surrogate_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(0)
    X = torch.as_tensor(load_points("gaussian", 5, 0, 8, 0)[0])
    T = make_targets(X, "pairwise")
    G = torch.randn(4, 3, 8, generator=g, dtype=torch.float64)
    M = (0.5 * torch.randn(3, 8, generator=g, dtype=torch.float64)).requires_grad_(True)
    lv = (0.2 * torch.randn(3, 8, generator=g, dtype=torch.float64)).requires_grad_(True)

    def f(M_, lv_):
        sigma = (0.5 * lv_).exp()
        D = T.distortions((M_ + sigma * G) @ X.T, 3)
        return surrogate_loss(D, sigma, eps=0.5, lam=0.01, weights=T.weights)

    gM, gl = torch.autograd.grad(f(M, lv), [M, lv])
    h = 1e-6
    for p, grad in ((M, gM), (lv, gl)):
        fd = torch.zeros_like(p)
        with torch.no_grad():
            for idx in np.ndindex(*p.shape):
                p[idx] += h
                up = f(M, lv).item()
                p[idx] -= 2 * h
                down = f(M, lv).item()
                p[idx] += h
                fd[idx] = (up - down) / (2 * h)
        torch.testing.assert_close(grad, fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("kind", ["norms", "pairwise"])
def test_max_objective_gradient_is_autograds(kind):
    """The authors' objective for 3 runs x 4 sampled matrices: the loss (largest distortion per run) and its
    gradient in M and in the log-variance, written out in _max_step, equal autograd through the max."""
    from JohnsonLindenstrauss.train_fast import _max_step
    g = torch.Generator().manual_seed(0)
    X = torch.randn(12, 30, generator=g, dtype=torch.float64)
    X = X / X.norm(dim=1, keepdim=True)
    T = make_targets(X, kind)
    R, B, k = 3, 4, 5
    M = (torch.randn(R, k, 30, generator=g, dtype=torch.float64) * 0.3).requires_grad_()
    log_var = torch.randn(R, generator=g, dtype=torch.float64).requires_grad_()
    noise = torch.randn(R, B, k, 30, generator=g, dtype=torch.float64) @ X.T
    sigma = (0.5 * log_var).exp()
    Y = M[:, None] @ X.T + sigma.view(R, 1, 1, 1) * noise
    loss = T.distortions(Y, k).reshape(R, -1).max(1).values
    gM, glv = torch.autograd.grad(loss.sum(), [M, log_var])
    value, gM2, gsigma = _max_step(T, X, Y.detach(), noise, k)
    torch.testing.assert_close(value, loss.detach(), rtol=0, atol=1e-13)
    torch.testing.assert_close(gM2, gM, rtol=0, atol=1e-13)
    torch.testing.assert_close(gsigma * sigma.detach() / 2, glv, rtol=0, atol=1e-13)
    assert float(gM.abs().max()) > 1e-3


@pytest.mark.parametrize("kind", ["norms", "pairwise"])
def test_fast_optimiser_equals_the_plain_autograd_reference(kind):
    """With n >= d the fast path draws G itself, so train_fast.MaxSteps (written-out gradient, own Adam, batched runs)
    and optimise_plain (autograd, torch's Adam) take the same steps: in float64 the same M after 200 steps."""
    from JohnsonLindenstrauss.train import optimise_plain
    X = torch.randn(40, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    T = make_targets(X / X.norm(dim=1, keepdim=True), kind)
    cfg = JLConfig(k=4, steps=200, tol=1e-6)
    M_ref, steps = optimise_plain(T, cfg, torch.Generator().manual_seed(3))
    h = optimise(T, cfg, torch.Generator().manual_seed(3), progress=False)
    assert steps == h["steps_run"] == 200
    torch.testing.assert_close(h["M_last"], M_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["norms", "pairwise"])
def test_runs_batched_equal_runs_alone(kind):
    """Several seeds as one batch: each run's history and matrices equal those of the same seed run alone
    (each run draws from its own generator; a run that stops early keeps its matrix while the others go on)."""
    X, _ = load_points("uniform", 30, 0, 60, 0)
    T = make_targets(torch.as_tensor(X, dtype=torch.float32), kind)
    cfg = JLConfig(k=6, steps=250, tol=0.905 if kind == "norms" else 0.0)
    batch = optimise(T, cfg, [torch.Generator().manual_seed(s) for s in (0, 1, 2)], progress=False)
    for s, run in zip((0, 1, 2), batch):
        alone = optimise(T, cfg, torch.Generator().manual_seed(s), progress=False)
        assert run["steps_run"] == alone["steps_run"]
        np.testing.assert_allclose(run["sampled_max"], alone["sampled_max"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(run["mean_max"], alone["mean_max"], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(run["M"], alone["M"], rtol=1e-4, atol=1e-6)
    if kind == "norms":
        assert len({r["steps_run"] for r in batch}) > 1         # some run stopped before the others


def test_a_run_that_never_beats_zero_leaves_its_batch_mates_alone():
    """k = 1, pairs: seed 0's iterates never beat M = 0, seed 1's do. Batched, seed 0 carries the error and keeps
    M = 0 while seed 1 keeps its own better matrix; alone, seed 0 raises it."""
    from JohnsonLindenstrauss.model import NoImprovementError
    X, _ = load_points("uniform", 100, 0, 500, 0)
    T = make_targets(torch.as_tensor(X, dtype=torch.float32), "pairwise")
    cfg = JLConfig(k=1, steps=200)
    zero, moved = optimise(T, cfg, [torch.Generator().manual_seed(s) for s in (0, 1)], progress=False)
    assert isinstance(zero["no_improvement"], NoImprovementError) and float(zero["M"].abs().max()) == 0.0
    assert "no_improvement" not in moved and moved["mean_max"].min() < moved["mean_max"][0]
    assert float(moved["M"].abs().max()) > 0
    with pytest.raises(NoImprovementError):
        optimise(T, cfg, torch.Generator().manual_seed(0), progress=False)


def test_short_default_run_shrinks_sigma_and_beats_best_gaussian():
    """The paper's setting for 1000 of its 5000 steps (float32, as main.py optimises): sigma falls steadily
    from 1 (to 0.25 here; 0.013 after 5000 steps), and the mean matrix M beats the best of 200 standard
    Gaussian matrices on the norms it was trained on by more than 3x."""
    from JohnsonLindenstrauss.baselines import Points, gaussian_baseline
    X, _ = load_points("uniform", 100, 0, 500, 0)
    T = make_targets(torch.as_tensor(X), "norms")
    h = optimise(T.to(torch.float32), JLConfig(steps=1000), torch.Generator().manual_seed(0), progress=False)
    s = h["sigma_max"]
    assert s[0] == 1.0 and s[-1] < 0.3
    assert s[999] < 0.8 * s[750] < 0.8 * 0.8 * s[500] < 0.8 ** 3 * s[250]
    pts = Points(T.X, T, slice(None))
    best_gaussian = gaussian_baseline(pts, 30, 200, torch.Generator().manual_seed(1))["fixed"].min()
    learned = matrix_distortion(h["M"].double().numpy() / math.sqrt(30), T)
    assert learned == pytest.approx(h["mean_max"].min(), rel=1e-4)   # the returned M is the best iterate
    assert learned < best_gaussian / 3


def _outputs(d, figure="fig7"):
    """Every output; the figures are Fig. 7's in the paper's setting, ``jl_*`` otherwise."""
    for name in [f"{figure}_distortion.png", f"{figure}_distortion.pdf", f"{figure}_sigma.png", f"{figure}_sigma.pdf",
                 "results.json", "config.json", "history.npz", "projection.npy"]:
        assert (d / name).stat().st_size > 0, name


def test_quick_run_writes_every_output_and_projection_reproduces(tmp_path):
    res = main(["--quick", "--no-progress", "--holdout", "20", "--out-dir", str(tmp_path)])
    _outputs(tmp_path)
    saved = json.load(open(tmp_path / "results.json"))
    for key in ["max_distortion", "holdout_max_distortion", "gaussian_mean", "gaussian_min", "orthogonal_mean",
                "sparse_mean", "svd_best_scale", "best_scale", "fixed_scale", "jl_min_dim", "sigma_final", "steps_run",
                "optimize_s", "wall_s"]:
        assert key in saved
    assert saved["jl_min_dim"] == 3947
    assert json.load(open(tmp_path / "config.json"))["threads"] == 1      # the default: one CPU thread
    assert_plot_only_redraws(tmp_path)
    P = np.load(tmp_path / "projection.npy")
    assert P.shape == (30, 500)
    X, Xh = load_points("uniform", 100, 20, 500, 0)
    assert np.abs(((P @ X.T) ** 2).sum(0) - 1).max() == pytest.approx(res["max_distortion"], rel=1e-9)
    assert matrix_distortion(P, make_targets(torch.as_tensor(Xh), "norms")) == pytest.approx(
        saved["holdout_max_distortion"], rel=1e-9)


def test_quick_pairwise_surrogate_on_a_npy_file(tmp_path):
    rng = np.random.default_rng(0)
    f = tmp_path / "pts.npy"
    np.save(f, rng.standard_normal((40, 20)))
    res = main(["--data", str(f), "--n", "30", "--holdout", "10", "--k", "8", "--target", "pairwise",
                "--objective", "surrogate", "--quick", "--no-progress", "--out-dir", str(tmp_path / "o")])
    _outputs(tmp_path / "o", "jl")
    assert res["n"] == 30 and res["targets"] == 30 * 29 // 2
    # every reported number recomputed here from the saved projection and the file, by brute force over pairs
    P, X = np.load(tmp_path / "o" / "projection.npy"), np.load(f)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    assert P.shape == (8, 20)

    def pair_distortions(pairs):
        diff = np.array([X[i] - X[j] for i, j in pairs])
        diff /= np.linalg.norm(diff, axis=1, keepdims=True)
        return np.abs((diff @ P.T) ** 2 @ np.ones(8) - 1)
    train = pair_distortions([(i, j) for i in range(30) for j in range(i + 1, 30)])
    held = pair_distortions([(i, j) for j in range(30, 40) for i in range(j)])
    assert res["max_distortion"] == pytest.approx(train.max(), rel=1e-9)
    assert res["fraction_above_eps"] == pytest.approx(np.mean(train > 0.1), abs=1e-12)
    assert res["holdout_max_distortion"] == pytest.approx(held.max(), rel=1e-9)


BAD = {
    "empty.npy": None,                     # a zero-byte file
    "archive.npy": "npz",                  # an .npz archive under a .npy name
    "norows.npy": np.zeros((0, 5)),
    "3d.npy": np.zeros((2, 3, 4)),
    "nan.npy": np.array([[1.0, np.nan], [1.0, 2.0]]),
    "zero.npy": np.array([[1.0, 2.0], [0.0, 0.0]]),
}


@pytest.mark.parametrize("argv,expect", [
    (["--k", "0"], "--k"), (["--k", "501"], "larger than"), (["--threads", "0"], "--threads"),
    (["--eps", "0.2"], "--objective surrogate only"), (["--tau", "0.3"], "--tau"), (["--lam", "0.5"], "--lam"),
    (["--objective", "surrogate", "--tol", "0.1"], "--objective max only"), (["--lam", "-1"], "--lam"),
    (["--n", "1", "--target", "pairwise"], "pairwise"),
    (["--data", "/nonexistent.npy"], "no such file"), (["--data", "3d.npy"], "2-d"),
    (["--data", "nan.npy"], "NaN"), (["--data", "zero.npy"], "row 1 is zero"), (["--data", "weird"], "weird"),
    (["--data", "empty.npy"], "not a readable .npy"), (["--data", "archive.npy"], ".npz archive"),
    (["--data", "norows.npy"], "at least one row"), (["--batch", "100000000000"], "GiB"),
    (["--n", "100000000000"], "GiB"), (["--target", "pairwise", "--n", "3000000"], "GiB"),
    (["--data", "nan.npy", "--d", "30"], "--d sets the dimension")])           # a file has its own d
def test_bad_input(tmp_path, argv, expect, capsys):
    for name, arr in BAD.items():
        if arr is None:
            (tmp_path / name).write_bytes(b"")
        elif isinstance(arr, str):
            with open(tmp_path / name, "wb") as f:
                np.savez(f, a=np.ones((3, 3)))
        else:
            np.save(tmp_path / name, arr)
    argv = [str(tmp_path / a) if a in BAD else a for a in argv]
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main([*argv, "--out-dir", str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and expect in err
    assert not out.exists()


def test_bad_input_from_the_command_line(tmp_path):
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, os.path.join(ROOT, "JohnsonLindenstrauss", "main.py"), "--k", "0",
                        "--out-dir", str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [p.stderr.strip()]
    assert "--k" in p.stderr and "Traceback" not in p.stderr and not out.exists()


def test_baselines_have_their_own_streams(tmp_path):
    """The baselines do not depend on how many steps the optimiser ran (each has its own generator)."""
    a = main(["--quick", "--steps", "5", "--no-progress", "--out-dir", str(tmp_path / "a")])
    b = main(["--quick", "--steps", "60", "--no-progress", "--out-dir", str(tmp_path / "b")])
    assert a["steps_run"] != b["steps_run"]
    for key in ("gaussian_mean", "gaussian_min", "orthogonal_mean", "sparse_mean", "svd_best_scale", "fixed_scale"):
        assert a[key] == b[key], key


def test_huge_entries_tiny_sizes_and_overshooting_steps(tmp_path, capsys):
    """Entries of 1e300 are normalised without overflow (the same points as the data divided by 1e300);
    d = k = 1 runs; a step size so large that no iterate beats M = 0 is one line and exit 2, not 'distortion 1'."""
    X = np.random.default_rng(0).random((30, 12))
    np.save(tmp_path / "small.npy", X)
    np.save(tmp_path / "huge.npy", X * 1e300)
    a, b = (main(["--data", str(tmp_path / f"{name}.npy"), "--k", "4", "--quick", "--no-progress", "--out-dir",
                  str(tmp_path / out)]) for name, out in (("small", "a"), ("huge", "b")))
    for key in ("max_distortion", "gaussian_mean", "orthogonal_mean", "sparse_mean", "svd_best_scale"):
        assert math.isfinite(b[key]) and b[key] == pytest.approx(a[key], rel=1e-9), key
    r = main(["--d", "1", "--k", "1", "--n", "10", "--quick", "--no-progress", "--out-dir", str(tmp_path / "c")])
    assert r["orthogonal_mean"] == pytest.approx(0, abs=1e-12) and math.isfinite(r["max_distortion"])
    with pytest.raises(SystemExit) as e:
        main(["--lr", "1e6", "--quick", "--no-progress", "--out-dir", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "smaller --lr" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()


def test_smallest_k_rule_on_a_hand_made_curve():
    from JohnsonLindenstrauss.ksweep import default_grid, smallest_k
    assert smallest_k([1, 2, 4, 8], [0.5, 0.08, 0.12, 0.05], 0.1) == 2      # the first k that meets eps
    assert smallest_k([1, 2, 4, 8], [0.5, 0.3, 0.12, 0.1], 0.1) == 8        # at most eps counts
    assert smallest_k([1, 2], [0.5, None], 0.1) is None and smallest_k([], [], 0.1) is None
    assert default_grid(500) == [1, 2, 4, 8, 16, 32, 64, 128, 256, 500] and default_grid(64) == [1, 2, 4, 8, 16, 32, 64]


def test_short_ksweep_learned_beats_the_best_gaussian_and_numbers_recompute(tmp_path):
    """On the paper's data (uniform, n = 100, d = 500), norms: at every k of a short sweep the learned matrix is
    at or below the best of 100 Gaussian draws; every learned distortion, train and held-out, is recomputed here
    from the saved matrix with numpy alone; the smallest-k table follows from the rows."""
    from JohnsonLindenstrauss.ksweep import METHODS, smallest_k
    out = tmp_path / "ks"
    res = main(["--experiment", "ksweep", "--target", "norms", "--k-grid", "4", "16", "--steps", "1500",
                "--seeds", "2", "--draws", "100", "--holdout", "20", "--no-progress", "--out-dir", str(out)])
    assert res["targets"] == ["norms"] and res["grid"] == [4, 16] and res["jl_bound"] == 3947
    rows = {(r["k"], r["method"]): r for r in res["rows"]}
    X, Xh = load_points("uniform", 100, 20, 500, 0)
    saved = np.load(out / "ksweep_projections.npz")
    for k in (4, 16):
        Ps = saved[f"norms_k{k}_seeds"]                  # every seed's learned matrix, (seeds, k, d)
        assert Ps.shape == (2, k, 500)
        train = np.abs(((X @ Ps.transpose(0, 2, 1)) ** 2).sum(2) - 1).max(1)
        held = np.abs(((Xh @ Ps.transpose(0, 2, 1)) ** 2).sum(2) - 1).max(1)
        assert (train <= rows[(k, "gaussian_min")]["max_distortion"]).all()      # every seed
        assert rows[(k, "learned")]["max_distortion"] == pytest.approx(train.mean(), rel=1e-9)
        assert rows[(k, "learned")]["holdout_max_distortion"] == pytest.approx(held.mean(), rel=1e-9)
        best = int(np.argmin(train))
        np.testing.assert_array_equal(saved[f"norms_k{k}"], Ps[best])
        assert rows[(k, "learned_best")]["max_distortion"] == pytest.approx(train[best], rel=1e-9)
        assert rows[(k, "learned_best")]["holdout_max_distortion"] == pytest.approx(held[best], rel=1e-9)
    for m in METHODS:
        assert res["smallest_k"]["norms"][m] == smallest_k(
            [4, 16], [rows[(k, m)]["max_distortion"] for k in (4, 16)], res["eps"])
    csv = (out / "ksweep.csv").read_text().splitlines()
    assert len(csv) == 1 + 2 * len(METHODS) and csv[0].startswith("target,k,method")
    assert json.load(open(out / "results.json"))["smallest_k"] == res["smallest_k"]
    assert_plot_only_redraws(out)


def test_ksweep_takes_data_of_any_dimension(tmp_path):
    """The sweep has no --k: data of dimension 5 (below Fig. 7's k = 30) is swept over its own grid up to d."""
    np.save(tmp_path / "low.npy", np.random.default_rng(1).standard_normal((20, 5)))
    res = main(["--experiment", "ksweep", "--data", str(tmp_path / "low.npy"), "--k-grid", "2", "5", "--quick",
                "--no-progress", "--out-dir", str(tmp_path / "o")])
    assert res["d"] == 5 and res["grid"] == [2, 5]
    at_d = {r["method"]: r["max_distortion"] for r in res["rows"] if r["k"] == 5 and r["target"] == "norms"}
    assert at_d["pca_centred"] == pytest.approx(0, abs=1e-9)        # k = d: PCA is a rotation
    assert at_d["svd"] == pytest.approx(0, abs=1e-9) and at_d["svd_best_scale"] == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize("argv,expect", [
    (["--experiment", "ksweep", "--k-grid", "0"], "--k-grid"),
    (["--experiment", "ksweep", "--k-grid", "501"], "[1, d = 500]"),
    (["--experiment", "ksweep", "--k-grid"], "--k-grid"), (["--experiment", "ksweep", "--eps", "1.5"], "(0, 1)"),
    (["--k-grid", "4", "8"], "--k-grid does not apply"), (["--experiment", "ksweep", "--k", "8"], "--k does not"),
    (["--experiment", "ksweep", "--objective", "max"], "--objective does not"), (["--seeds", "2"], "--seeds does"),
    (["--data", "digits", "--d", "30"], "--d sets the dimension of generated data"),
    (["--experiment", "ksweep", "--seeds", "0"], "--seeds")])
def test_ksweep_bad_arguments(tmp_path, argv, expect, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main([*argv, "--out-dir", str(out)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and expect in err and not out.exists()
