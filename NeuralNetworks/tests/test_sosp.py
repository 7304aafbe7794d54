"""Tests of the lemma's measurement at stationary points (quadrature.py, population.py, certify.py, search.py,
sosp.py): quadrature, exact derivatives,
Stein's identity, the certificate and its inequality, a small sweep, the experiment's outputs."""
import json
import math

import numpy as np
import pytest
import torch

from NeuralNetworks.main import main
from NeuralNetworks.certify import lambda_min, stein_residual
from NeuralNetworks.population import Population, initial_point
from NeuralNetworks.quadrature import complete_frame, gauss_hermite_nodes
from NeuralNetworks.search import certified_point
from NeuralNetworks.sosp import steps_to_collapse, sweep

F64 = torch.float64


def _population(h=6, d=2, k=1, lam=1e-3, frozen=False, nodes=(60, 60), activation="smooth_relu", seed=0):
    g = torch.Generator().manual_seed(seed)
    U = torch.linalg.qr(torch.randn(d, k, generator=g, dtype=F64))[0]
    a = torch.randn(h, generator=g, dtype=F64) / h
    b0 = torch.randn(h, generator=g, dtype=F64) / h
    Th = torch.cat([torch.randn(h, d, generator=g, dtype=F64) / d ** 0.5, b0[:, None]], 1)
    return Population.build(U, a, b0, lam, frozen, nodes, offset=0.3, activation=activation), Th


@pytest.mark.parametrize("d", [1, 2, 3])
def test_quadrature_matches_closed_forms(d):
    """E[exp(<w, x>)] = exp(|w|²/2) and E[<w, x>^4] = 3 |w|^4 under N(0, I_d), on a rotated frame."""
    g = torch.Generator().manual_seed(1)
    frame = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=F64))[0]
    X, q = gauss_hermite_nodes([30] * d, frame)
    w = torch.randn(d, generator=g, dtype=F64) * 0.7
    assert float(q.sum()) == pytest.approx(1.0, abs=1e-14)
    assert float(q @ torch.exp(X @ w)) == pytest.approx(math.exp(float(w @ w) / 2), rel=1e-13)
    assert float(q @ (X @ w) ** 4) == pytest.approx(3 * float(w @ w) ** 2, rel=1e-13)


def test_complete_frame_is_orthonormal_and_keeps_U():
    U = torch.linalg.qr(torch.randn(3, 2, dtype=F64, generator=torch.Generator().manual_seed(2)))[0]
    Q = complete_frame(U)
    torch.testing.assert_close(Q.T @ Q, torch.eye(3, dtype=F64), atol=1e-14, rtol=0)
    torch.testing.assert_close(Q[:, :2], U, atol=0, rtol=0)


@pytest.mark.parametrize("activation", ["smooth_relu", "tanh"])
@pytest.mark.parametrize("frozen", [False, True])
def test_gradient_hessian_and_hvp_equal_autograd(activation, frozen):
    pop, Th = _population(frozen=frozen, nodes=(12, 12), activation=activation)
    h, d = Th.shape[0], Th.shape[1] - 1

    def g(T):
        W, b = T[:, :-1], (pop.b0 if frozen else T[:, -1])
        S = pop.act(pop.X @ W.T + b)[0]
        return pop.q @ (S @ pop.a - pop.y) ** 2 + 0.5 * pop.lam * (W ** 2).sum()

    keep = torch.ones(h, d + 1, dtype=torch.bool)
    keep[:, -1] = not frozen
    T = Th.clone().requires_grad_()
    ref = torch.autograd.grad(g(T), T)[0] * keep
    torch.testing.assert_close(pop.grad_g(Th), ref, rtol=1e-12, atol=1e-14)
    H = torch.autograd.functional.hessian(g, Th).reshape(Th.numel(), Th.numel())[keep.ravel()][:, keep.ravel()]
    torch.testing.assert_close(pop.hessian(Th), H, rtol=1e-10, atol=1e-14)
    V = torch.randn(Th.shape, generator=torch.Generator().manual_seed(3), dtype=F64)
    hv = pop.hvp(Th, V)
    torch.testing.assert_close(hv[keep], H @ V[keep], rtol=1e-10, atol=1e-14)
    assert not frozen or float(hv[:, -1].abs().max()) == 0.0
    # ... and against finite differences of the gradient (central, float64)
    eps = 1e-6
    fd = (pop.grad_g(Th + eps * V * keep) - pop.grad_g(Th - eps * V * keep)) / (2 * eps)
    torch.testing.assert_close(hv, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("activation", ["smooth_relu", "tanh"])
@pytest.mark.parametrize("d,k", [(2, 1), (3, 1), (3, 2)])
def test_stein_identity_at_random_points(activation, d, k):
    """∇_W L · P⊥ = H_b W P⊥ at any (W, b), to 1e-10, once the rule resolves the integrand."""
    pop, Th = _population(h=5, d=d, k=k, nodes=(60, 60) if d == 2 else (40, 40), activation=activation, seed=d + k)
    G = pop.value_and_grad(Th)[2][:, :-1]
    assert float(G.abs().max()) > 1e-4                 # the two sides are not trivially zero
    assert stein_residual(pop, Th) < 1e-10


@pytest.mark.parametrize("smallest", [-5e-12, 3e-11, 2e-4, -1e-6, -0.3])
def test_dense_smallest_eigenvalue_is_lapacks(smallest):
    """The shift-invert path (Cholesky of H + 1e-9 I exists: λ_min > -1e-9) and the LAPACK path (it does not)
    give LAPACK's smallest eigenvalue, with near-zero clusters as at the certified points; H v = λ v."""
    from NeuralNetworks.certify import _dense_lambda_min
    g = torch.Generator().manual_seed(3)
    n = 300
    Q = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=F64))[0]
    ev = smallest + torch.cat([torch.tensor([0, 2e-12, 1e-10, 5e-10], dtype=F64),
                               torch.rand(n - 4, generator=g, dtype=F64) * 10 + 1e-6])
    H = (Q * ev) @ Q.T
    H = (H + H.T) / 2
    lam, v = _dense_lambda_min(H, vector=True)
    assert lam == pytest.approx(float(torch.linalg.eigvalsh(H)[0]), abs=1e-13)
    assert abs(lam - smallest) < 1e-13
    torch.testing.assert_close(H @ torch.as_tensor(v), lam * torch.as_tensor(v), rtol=0, atol=1e-12)
    assert _dense_lambda_min(H, vector=False)[0] == pytest.approx(lam, abs=1e-13)


def test_lanczos_and_dense_smallest_eigenvalue_agree():
    pop, Th = _population(h=40, nodes=(30, 30))
    dense, v = lambda_min(pop, Th)
    lanczos, _ = lambda_min(pop, Th, dense_limit=0)
    assert lanczos == pytest.approx(dense, abs=1e-12)
    vt = torch.as_tensor(v)                            # an eigenvector: H v = λ v
    torch.testing.assert_close(pop.hvp(Th, vt), dense * vt, rtol=0, atol=1e-12)


def test_certified_point_obeys_the_lemma():
    """Width 16: a minimum (λ_min ≥ -1e-9), gradient ≤ 1e-8, Stein residual ≈ 0, and ‖W⊥‖ below the bound
    ‖∇_W g‖ / (λ + λ_min(H_b)) -- the lemma's inequality, checked on the point itself."""
    Th0, a = initial_point(0, 2, 16)
    U = torch.full((2, 1), 2 ** -0.5, dtype=F64)
    pop = Population.build(U, a, Th0[:, -1].clone(), 1e-3, False, (40, 40))
    pt = certified_point(pop, Th0)
    assert pt["grad_norm"] < 1e-8 and pt["lam_min_hessian"] > -1e-9 and pt["stein_residual"] < 1e-12
    assert pt["quad_change"] < 1e-10 and pt["lam_min_hb"] > -1e-9
    assert pt["aposteriori_bound"] is not None and pt["perp_norm"] <= pt["aposteriori_bound"]
    assert pt["aposteriori_bound"] <= pt["lemma_bound"]            # Lemma 3.1's, with the measured curvature
    assert pt["perp_ratio"] < 1e-5


def test_small_sweep_bias_trained_removes_W_perp():
    rows, _, _, _ = sweep([1e-3, 1e-2, 1e-1], [0], width=64, modes=(False,))
    assert len(rows) == 3
    for r in rows:
        assert r["perp_ratio"] <= 1e-5 and r["lam_min_hessian"] > -1e-9 and r["grad_norm"] < 1e-7
        assert r["perp_norm"] <= r["aposteriori_bound"] <= r["lemma_bound"]
    W0 = initial_point(0, 2, 64)[0][:, :2]
    u = torch.full((2, 1), 2 ** -0.5, dtype=F64)
    assert float(torch.linalg.matrix_norm(W0 - W0 @ u @ u.T) / torch.linalg.matrix_norm(W0)) > 0.5   # far from it


def test_steps_to_collapse_is_the_first_hit():
    step = np.array([0, 10, 20, 30, 40])
    assert steps_to_collapse(step, np.array([0.5, 0.2, 0.005, 0.02, 0.001]), 0.0, 0.01) == 20
    assert steps_to_collapse(step, np.array([0.5, 0.4, 0.3, 0.2, 0.1]), 0.0, 0.01) is None
    assert steps_to_collapse(step, np.array([0.5, 0.4, 0.3, 0.2, 0.1]), 0.095, 0.01) == 40


def test_quick_sosp_writes_every_output(tmp_path):
    res = main(["--experiment", "sosp", "--quick", "--lam-grid", "1e-2", "1e-1", "2", "--steps", "300",
                "--no-progress", "--out-dir", str(tmp_path)])
    for name in ["sosp.png", "sosp.pdf", "sosp.csv", "sosp.md", "sosp_points.npz", "sosp_pgd.npz", "results.json",
                 "config.json"]:
        assert (tmp_path / name).stat().st_size > 0, name
    saved = json.load(open(tmp_path / "results.json"))
    assert saved["trained_max_perp_ratio"] == res["trained_max_perp_ratio"] <= 1e-5
    lines = (tmp_path / "sosp.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + len(saved["points"])
    pts = np.load(tmp_path / "sosp_points.npz")
    assert pts["W"].shape == (len(saved["points"]), 64, 2)
    from NeuralNetworks.tests.test_run import assert_plot_only_redraws
    assert_plot_only_redraws(tmp_path)
    # the saved points re-check: rebuild the objective and recompute the gradient
    i = int(np.argmax(pts["bias_trained"]))
    pop = Population.build(torch.as_tensor(pts["U"]), torch.as_tensor(pts["a"][i]), torch.as_tensor(pts["b"][i]),
                           float(pts["lam"][i]), False, (saved["points"][i]["nodes_par"],
                                                         saved["points"][i]["nodes_perp"]))
    Th = torch.cat([torch.as_tensor(pts["W"][i]), torch.as_tensor(pts["b"][i])[:, None]], 1)
    assert float(torch.linalg.matrix_norm(pop.grad_g(Th))) == pytest.approx(saved["points"][i]["grad_norm"], rel=1e-3)


def test_sweep_in_worker_processes_equals_one_process():
    """Two worker processes (and a job beside the points) give the points of the one-process sweep, bit for bit,
    in the same order."""
    kw = dict(width=12, modes=(False, True), extra_lams=[3e-2])
    one, _, _, none = sweep([1e-2, 1e-1], [0, 1], **kw)
    two, _, stopped, (side, seconds) = sweep([1e-2, 1e-1], [0, 1], workers=2, beside=(math.hypot, (3.0, 4.0)), **kw)
    assert none is None and not stopped and side == 5.0 and seconds >= 0
    assert [(r["seed"], r["lam"], r["bias"]) for r in one] == [(r["seed"], r["lam"], r["bias"]) for r in two]
    assert len(one) == 10 and one[-1]["lam"] == 3e-2 and one[-1]["seed"] == 0
    for a, b in zip(one, two):
        assert torch.equal(a["theta"], b["theta"]) and a["g"] == b["g"]


def _written_types(tmp_path, points):
    """``experiments._write_points`` on certificate dicts; returns the CSV's rows."""
    import csv
    from NeuralNetworks.experiments import _write_points
    rows = [{"seed": 0, "lam": 1e-5, "bias": "frozen", "theta": torch.zeros(3, 3, dtype=F64),
             "a": torch.zeros(3, dtype=F64), "perp_ratio": 0.5, "perp_norm": 1.0, "par_norm": 1.0,
             "aposteriori_bound": None, "lemma_bound": None, "grad_w_norm": 1e-9, "lam_min_hb": -1e-3,
             "stein_residual": 1e-13, "g": 0.1, "loss": 0.1, "nodes_par": 90, "nodes_perp": 8,
             "quad_capped": False, "quad_change": 1e-12, "nfev": 10, "escapes": 0, "seconds": 1.0, **p}
            for p in points]
    _write_points(str(tmp_path), rows, torch.eye(2, 1, dtype=F64), 1.0)
    return list(csv.DictReader(open(tmp_path / "sosp.csv")))


def test_a_point_whose_quadrature_did_not_converge_is_uncertified(tmp_path):
    """The issue's point (sosp --width 200 --a-init constant --offset 1, λ = 1e-5, bias frozen): the rule at the
    node cap (681 x 40), quad_change 1.6e-5, ‖∇g‖ 8.9e-9 on its rule but 3.3e-6 on the check rule. Whatever its
    λ_min, it is no minimum; each failed check is named. A point passing every check is one; one failing only the
    check rule's gradient is not; λ_min -7.3e-10 passes the stated -1e-9 tolerance (the label says so, no more)."""
    ok = {"grad_norm": 5e-9, "grad_norm_fine": 6e-9, "lam_min_hessian": 1e-7}
    issue = {"grad_norm": 8.9e-9, "grad_norm_fine": 3.3e-6, "lam_min_hessian": 2e-8, "quad_change": 1.6e-5,
             "quad_capped": True, "nodes_par": 681, "nodes_perp": 40}
    rows = _written_types(tmp_path, [ok, issue, {**ok, "grad_norm_fine": 2e-8}, {**ok, "lam_min_hessian": -7.3e-10},
                                     {**ok, "lam_min_hessian": -1e-3}, {**ok, "lam_min_hessian": math.nan}])
    assert [r["type"] for r in rows] == ["minimum", "uncertified", "uncertified", "minimum", "saddle", "uncertified"]
    assert rows[5]["reason"] == "lam_min not computed"         # an unknown curvature is no saddle either
    assert rows[0]["reason"] == "" and rows[3]["reason"] == ""
    why = rows[1]["reason"]
    assert "3.3e-06 > 1e-08 on the check rule" in why and "node cap (681x40)" in why and "quad_change 1.6e-05" in why
    assert rows[2]["reason"] == "grad 2e-08 > 1e-08 on the check rule" and "lam_min -0.001" in rows[4]["reason"]


def test_certified_point_at_the_node_cap_reports_it(monkeypatch):
    """A search whose rule the node cap stops (here a cap of 12 nodes per axis, where 12 do not resolve g to
    1e-10) is flagged ``quad_capped`` and typed uncertified, with the reason; the same point with the cap lifted
    is a minimum with the gradient small on both rules."""
    from NeuralNetworks import quadrature
    from NeuralNetworks.certify import point_type
    Th0, a = initial_point(0, 2, 4, "constant")
    U = torch.full((2, 1), 2 ** -0.5, dtype=F64)
    pop = Population.build(U, a, Th0[:, -1].clone(), 1e-2, False, (8, 8), offset=1.0)
    monkeypatch.setattr(quadrature, "MAX_NODES", 12)
    capped = certified_point(pop, Th0)
    assert capped["quad_capped"] and capped["nodes_par"] <= 12
    kind, why = point_type(capped)
    assert kind == "uncertified" and "node cap" in why
    monkeypatch.setattr(quadrature, "MAX_NODES", 640)
    fine = certified_point(pop, Th0)
    assert not fine["quad_capped"] and point_type(fine) == ("minimum", "")
    assert fine["grad_norm_fine"] <= 1e-8 and fine["quad_change"] < 1e-10
