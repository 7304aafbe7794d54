"""``--experiment theorem`` (Theorem 5.5 in its regime): the premise computed exactly, the common-random-numbers
objective's derivatives, a certified end point, and the command line."""
import json
import math

import torch

from JohnsonLindenstrauss.main import main
from JohnsonLindenstrauss.tests.test_run import QUICK, assert_plot_only_redraws, exits
from JohnsonLindenstrauss.theorem import (TheoremSettings, _lambda_min, descend, distortions, initial_objective,
                                          objective, premise_k, smooth_indicator)

F64 = dict(dtype=torch.float64)
KEYS = ("k", "eps", "initial_objective", "sigma_max", "max_distortion", "max_distortion_holdout", "allowance")


def test_initial_objective_is_the_chi_square_expectation_and_premise_k_the_smallest():
    """At M = 0, σ = 1, ‖Gx‖²/k is χ²_k/k for a unit x: the quadrature against 10⁶ draws; and k = 59 is the
    first k for n = 100, ε = 0.5, τ = 0.1 (58 is not)."""
    g = torch.Generator().manual_seed(0)
    for k in (10, 59):
        u = (torch.randn(1_000_000, k, generator=g, **F64) ** 2).mean(1)
        h = smooth_indicator(((u - 1).abs() - 0.5) / 0.1)
        assert abs(initial_objective(1, k, 0.5, 0.1) - float(h.mean())) <= 4 * float(h.std()) / 1000
    assert premise_k(100, 0.5, 0.1, 500) == 59
    assert initial_objective(100, 58, 0.5, 0.1) >= 1 > initial_objective(100, 59, 0.5, 0.1)


def _small(seed=0, n=4, k=3, d=5, S=4):
    g = torch.Generator().manual_seed(seed)
    X = torch.nn.functional.normalize(torch.rand(n, d, generator=g, **F64), dim=1)
    G = torch.randn(S, k, d, generator=g, **F64)
    x = torch.cat([torch.randn(k * d, generator=g, **F64), 0.5 + torch.rand(k * d, generator=g, **F64)])
    return X, G, x, k, d


def test_objective_gradient_and_lanczos_equal_finite_differences_and_the_dense_hessian():
    X, G, x, k, d = _small()

    def fun(th):
        return objective(th[:k * d].view(k, d), th[k * d:].view(k, d), G, X, 0.5, 0.3, 1e-2)
    grad = torch.autograd.functional.jacobian(fun, x)
    eye, h = torch.eye(len(x), **F64), 1e-6
    fd = torch.stack([(fun(x + h * eye[i]) - fun(x - h * eye[i])) / (2 * h) for i in range(len(x))])
    torch.testing.assert_close(grad, fd, rtol=1e-6, atol=1e-8)
    assert float(grad.abs().max()) > 1e-2
    dense = torch.linalg.eigvalsh(torch.autograd.functional.hessian(fun, x))[0]
    assert abs(_lambda_min(fun, x, 1e-12) - float(dense)) <= 1e-8 * max(1.0, abs(float(dense)))


def test_descent_ends_certified_with_the_variances_gone_and_the_mean_within_the_allowance():
    """n = 10 unit points in R^60, ε = 0.5, τ = 0.1, k the premise's: the end point is second-order, every σ is
    below 1e-6, and the mean matrix's distortions are below ε + τ (the objective at σ = 0 is below 1)."""
    X = torch.nn.functional.normalize(torch.rand(10, 60, generator=torch.Generator().manual_seed(1), **F64), dim=1)
    k = premise_k(10, 0.5, 0.1, 60)
    r = descend(X, k, TheoremSettings(samples=8), 0, progress=False)
    assert r["status"] == "stationary" and r["grad_norm"] <= 1e-9 and r["lam_min_hessian"] >= -1e-6
    assert float(r["sigma"].abs().max()) <= 1e-6
    D = distortions(r["M"], X)
    at_mean = float(smooth_indicator((D - 0.5) / 0.1).sum())
    assert at_mean < 1 and float(D.max()) <= 0.6
    assert r["history"]["objective"][-1] < r["history"]["objective"][0]


def test_command_line_quick_run_and_refusals(tmp_path, capsys):
    out = tmp_path / "out"
    main(["--experiment", "theorem", "--n", "10", "--d", "60", "--holdout", "10", *QUICK, "--out-dir", str(out)])
    res = json.load(open(out / "results.json"))
    assert all(k in res and res[k] is not None for k in KEYS) and res["premise"] and res["k"] == premise_k(10, 0.5,
                                                                                                          0.1, 60)
    assert math.isfinite(res["lam_min_hessian"]) and (out / "jl_theorem.png").exists()
    assert_plot_only_redraws(out)
    assert "--eps" in exits(["--experiment", "theorem", "--eps", "0"], 2, capsys)
    assert "--lam" in exits(["--experiment", "theorem", "--lam", "-1"], 2, capsys)
    assert "--tau" in exits(["--experiment", "theorem", "--tau", "0.6"], 2, capsys)
    assert "larger than the data dimension" in exits(["--experiment", "theorem", "--k", "600", *QUICK], 2, capsys)
    assert "--batch does not apply" in exits(["--experiment", "theorem", "--batch", "3"], 2, capsys)
    assert "premise fails" in exits(["--experiment", "theorem", "--data", "digits", "--n", "1000", "--eps", "0.1",
                                     "--tau", "0.05", *QUICK], 2, capsys)


def test_a_non_finite_objective_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    from JohnsonLindenstrauss import theorem
    real = theorem.objective
    calls = []

    def poisoned(*args):
        calls.append(1)
        return real(*args) * (math.nan if len(calls) > 3 else 1.0)
    monkeypatch.setattr(theorem, "objective", poisoned)
    err = exits(["--experiment", "theorem", "--n", "10", "--d", "60", "--holdout", "0", *QUICK, "--out-dir",
                 str(tmp_path / "out")], 2, capsys)
    assert "non-finite" in err and "--lr" not in err and not (tmp_path / "out").exists()


def test_a_stationary_bad_point_passes_the_second_order_test_but_is_not_certified():
    """F is flat where every distortion is beyond ε + τ: M = 0, σ = 0 (every distortion 1) has ∇F = 0 and
    λ_min = 0, so a second-order test passes it -- the guarantee check does not. Nor does a mean with one point
    distorted just past ε + τ, while the same mean pulled just inside passes."""
    from JohnsonLindenstrauss.certificate import guarantee
    X, G, _, k, d = _small(n=6, k=3, d=5, S=4)

    def fun(th):
        return objective(th[:k * d].view(k, d), th[k * d:].view(k, d), G, X, 0.5, 0.1, 1e-6)
    bad = torch.zeros(2 * k * d, **F64)
    (g,) = torch.autograd.grad(fun(bad.requires_grad_(True)), bad)
    assert float(g.norm()) == 0.0 and _lambda_min(fun, bad.detach(), 1e-12) >= -1e-12
    ok, at_mean, worst = guarantee(torch.zeros(k, d, **F64), X, 0.5, 0.1)
    assert not ok and worst == 1.0 and at_mean == 6.0
    Q = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(3), **F64))[0][:k]
    M = Q * (k ** 0.5)                                      # u_i = ‖Q x_i‖² ∈ [0, 1]: distortions 1 − ‖Q x_i‖²
    D = distortions(M, X)
    for target, passes in ((0.61, False), (0.59, True)):   # rescale so the worst distortion is `target`
        Mc = M * ((1 - target) / (1 - float(D.max()))) ** 0.5
        assert abs(float(distortions(Mc, X).max()) - target) < 1e-12
        assert guarantee(Mc, X, 0.5, 0.1)[0] is passes


def test_the_premise_is_checked_on_the_objective_that_is_descended():
    """On Fig. 7's points with 32 draws, k = 59 satisfies the exact premise (0.962) but the descended objective
    starts at 1.48 > 1 -- so the default k moves up to the first k where it starts below 1 too; the run reports
    both starts, and its guarantee chain: F from below 1 down, monotone, the mean within ε + τ."""
    from JohnsonLindenstrauss.data import load_points
    from JohnsonLindenstrauss.theorem import descended_k, start_objective
    X = torch.as_tensor(load_points("uniform", 100, 0, 500, 0)[0], **F64)
    cfg = TheoremSettings()
    assert initial_objective(100, 59, 0.5, 0.1) < 1 <= start_objective(X, 59, cfg, 0)
    k, tried = descended_k(X, cfg, 0, 59)
    assert k > 59 and start_objective(X, k, cfg, 0) < 1 and list(tried) == list(range(59, k + 1))
    assert all(v >= 1 for j, v in tried.items() if j < k) and tried[k] == start_objective(X, k, cfg, 0)
    G = torch.randn(32, k, 500, generator=torch.Generator().manual_seed(0), **F64)   # the run's draws, by hand
    u = ((G @ X.T) ** 2).sum(1) / k
    by_hand = float(smooth_indicator(((u - 1).abs() - 0.5) / 0.1).mean(0).sum()) + 1e-6 * k * 500
    assert start_objective(X, k, cfg, 0) == torch.tensor(by_hand, **F64).item()


def test_quick_run_reports_the_guarantee_chain_and_outside_the_theorem(tmp_path):
    out = tmp_path / "out"
    res = main(["--experiment", "theorem", "--n", "10", "--d", "60", "--holdout", "0", *QUICK, "--out-dir", str(out)])
    p = res["points"][0]
    assert res["initial_objective_descended"] == p["objective_start"] < 1 and not res["outside_theorem"]
    assert p["monotone"] and p["objective_end"] <= p["objective_start"] and p["chain"]
    assert p["within_bound"] == (p["max_distortion"] < 0.6) and p["certified"] == (p["chain"] and p["within_bound"])
    assert p["certified"]
    assert res["status"] == "stationary" and p["stationary"]
    low = main(["--experiment", "theorem", "--n", "10", "--d", "60", "--holdout", "0", "--k", "2", *QUICK,
                "--out-dir", str(tmp_path / "low")])
    assert low["k"] == 2 and not low["premise"] and low["outside_theorem"] and not low["points"][0]["chain"]
    assert not low["points"][0]["certified"]
