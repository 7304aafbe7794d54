"""The exact δ-smoothed expected cut (model.py): against Monte Carlo, its limits, its own quadrature refined, and
its gradient and Hessian against finite differences."""
import math

import pytest
import torch

from MAXCUT import optimizer
from MAXCUT.certificates import CERT_NODES, deterministic_derivatives, guarantee, stationarity
from MAXCUT.graphs import Graph, random_graph
from MAXCUT.gw import gw_expectation, solve_sdp
from MAXCUT.model import (cut_derivatives, edge_products, objective, sign, smooth_step, smoothed_cut,
                          step_expectation)
from MAXCUT.optimizer import DescentSettings, descend

F64 = dict(dtype=torch.float64)


def test_step_expectation_is_monte_carlos_and_has_the_deterministic_limit():
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([-0.3, 0.0, 0.05, 0.099, 0.5, 2.0], **F64)
    tau = torch.tensor([0.1, 1.0, 0.02, 0.001, 0.3, 1.5], **F64)
    draws = smooth_step(mu + tau * torch.randn(1_000_000, 1, generator=g, **F64), 0.1)
    err = draws.std(0) / 1000
    assert ((step_expectation(mu, tau, 0.1) - draws.mean(0)).abs() <= 4 * err + 1e-12).all()
    torch.testing.assert_close(step_expectation(mu, torch.zeros_like(mu), 0.1), smooth_step(mu, 0.1),
                               rtol=0, atol=1e-15)


def test_edge_products_are_monte_carlos_even_near_perfect_correlation():
    g = torch.Generator().manual_seed(1)
    E = 6
    mu = torch.randn(E, 2, generator=g, **F64) * 0.1
    C = (lambda A: A @ A.transpose(1, 2))(torch.randn(E, 2, 2, generator=g, **F64) * 0.3)
    for k, rho in enumerate((-0.9999, 0.9999)):
        C[k] = torch.tensor([[0.04, 0.04 * rho], [0.04 * rho, 0.04]], **F64)
    exact = edge_products(mu[:, 0], mu[:, 1], C[:, 0, 0], C[:, 1, 1], C[:, 0, 1], 0.1)
    XY = mu + (torch.linalg.cholesky(C) @ torch.randn(1_000_000, E, 2, 1, generator=g, **F64)).squeeze(-1)
    prod = smooth_step(XY[..., 0], 0.1) * smooth_step(XY[..., 1], 0.1)
    assert ((exact - prod.mean(0)).abs() <= 4 * prod.std(0) / 1000).all()
    finer, fine = (edge_products(mu[:, 0], mu[:, 1], C[:, 0, 0], C[:, 1, 1], C[:, 0, 1], 0.1, nodes=k)
                   for k in (64, 16))
    assert (fine - finer).abs().max() < 1e-13        # the rule converges: 16 nodes a piece agree with 64 to 1e-13,
    assert (exact - finer).abs().max() < 1e-11       # the default 8 to 1e-11 (near perfect correlation, the worst)


@pytest.fixture(scope="module")
def small_sdp():
    n, e, w = random_graph(40, 0.3, 3)
    V, _ = solve_sdp(n, e, w, torch.Generator().manual_seed(0), max_iter=300)
    return torch.as_tensor(V, **F64), torch.as_tensor(e), torch.as_tensor(w, **F64)


def test_doubling_the_nodes_moves_the_objective_by_less_than_1e_10(small_sdp):
    V, e, w = small_sdp
    g = torch.Generator().manual_seed(2)
    for scale in (1.0, 1e-2, 1e-5):
        m = torch.randn(V.shape[1], generator=g, **F64) * 0.05
        sigma = torch.rand(V.shape[1], generator=g, **F64) * scale
        for delta in (0.1, 0.01):
            f, f2 = smoothed_cut(V, e, w, m, sigma, delta), smoothed_cut(V, e, w, m, sigma, delta, nodes=32)
            assert abs(f - f2) <= 1e-10 * abs(f2), (scale, delta)


def test_limits_gw_expectation_and_the_deterministic_hyperplane(small_sdp):
    """m = 0, σ = 1, δ → 0: the GW expectation (the error is O(δ)); σ → 0: the smoothed cut of m itself."""
    V, e, w = small_sdp
    r = V.shape[1]
    gw = gw_expectation(V, e, w)
    for delta in (1e-2, 1e-3, 1e-4):
        gap = abs(smoothed_cut(V, e, w, torch.zeros(r, **F64), torch.ones(r, **F64), delta) - gw)
        assert gap <= 2 * delta * w.sum()
    m = torch.randn(r, generator=torch.Generator().manual_seed(3), **F64)
    s = smooth_step(V @ m, 0.1)
    det = 0.5 * (w * (1 - s[e[:, 0]] * s[e[:, 1]])).sum()
    torch.testing.assert_close(smoothed_cut(V, e, w, m, torch.full((r,), 1e-12, **F64), 0.1), det,
                               rtol=1e-10, atol=0)


def test_gradient_and_hessian_equal_finite_differences():
    n, e, w = random_graph(12, 0.5, 1)
    V = torch.nn.functional.normalize(torch.randn(n, 4, generator=torch.Generator().manual_seed(4), **F64), dim=1)
    e, w = torch.as_tensor(e), torch.as_tensor(w, **F64)
    theta = torch.cat([torch.randn(4, generator=torch.Generator().manual_seed(5), **F64) * 0.1,
                       torch.full((4,), 0.3, **F64)])

    def f(th):
        return smoothed_cut(V, e, w, th[:4], th[4:], 0.1)
    grad = torch.autograd.functional.jacobian(f, theta)
    hess = torch.autograd.functional.hessian(f, theta)
    h = 1e-5
    eye = torch.eye(8, **F64)
    fd = torch.stack([(f(theta + h * eye[k]) - f(theta - h * eye[k])) / (2 * h) for k in range(8)])
    fd2 = torch.stack([(torch.autograd.functional.jacobian(f, theta + h * eye[k])
                        - torch.autograd.functional.jacobian(f, theta - h * eye[k])) / (2 * h) for k in range(8)])
    torch.testing.assert_close(grad, fd, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(hess, fd2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(hess, hess.T, rtol=1e-10, atol=1e-12)
    assert float(grad.abs().max()) > 1e-2 and math.isfinite(float(hess.abs().max()))


def _point(r, seed, m_scale, s_scale):
    g = torch.Generator().manual_seed(seed)
    return torch.cat([torch.randn(r, generator=g, **F64) * m_scale, torch.rand(r, generator=g, **F64) * s_scale])


def test_chain_rule_derivatives_equal_autograd_through_the_whole_objective(small_sdp):
    """cut_derivatives' per-edge chain rule (blocks of edges, settled edges skipped) = autograd of smoothed_cut."""
    V, e, w = small_sdp
    r = V.shape[1]
    for seed, ms, ss in ((0, 0.1, 1.0), (1, 1.0, 0.05), (2, 3.0, 1e-3)):
        x = _point(r, seed, ms, ss)

        def f(th):      # 32 nodes: a settled edge's tail is then below 1e-16 in the autograd reference too
            return smoothed_cut(V, e, w, th[:r], th[r:], 0.1, nodes=32)
        c, grad, hess = cut_derivatives(V, e, w, x[:r], x[r:], 0.1, nodes=32, hessian=True, chunk=37)
        torch.testing.assert_close(c, f(x), rtol=1e-13, atol=0)
        torch.testing.assert_close(grad, torch.autograd.functional.jacobian(f, x), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(hess, torch.autograd.functional.hessian(f, x), rtol=1e-10, atol=1e-10)
        # the stationarity check's rule (16 nodes) against 64: the Hessian to 1e-11 of its largest entry
        h16, h64 = (cut_derivatives(V, e, w, x[:r], x[r:], 0.1, nodes=k, hessian=True)[2] for k in (16, 64))
        assert float((h16 - h64).abs().max()) <= 1e-11 * float(h64.abs().max()) + 1e-14


def test_settled_edges_cost_nothing_and_change_nothing(small_sdp):
    """Far from the hyperplane (σ tiny against the margins), every edge is settled: the cut of sign(Vm), no
    derivative; the quadrature over the same edges (32 nodes, below its own error) agrees to its tails."""
    V, e, w = small_sdp
    r = V.shape[1]
    m = torch.randn(r, generator=torch.Generator().manual_seed(7), **F64)
    keep = ((V @ m).abs() > 0.2)
    e = e[keep[e[:, 0]] & keep[e[:, 1]]]
    w = w[:len(e)]
    sigma = torch.full((r,), 1e-4, **F64)
    c, grad, hess = cut_derivatives(V, e, w, m, sigma, 0.1, hessian=True)
    s = torch.sign(V @ m)
    assert float(c) == float(0.5 * (w * (1 - s[e[:, 0]] * s[e[:, 1]])).sum())
    assert float(grad.abs().max()) == 0 and float(hess.abs().max()) == 0
    torch.testing.assert_close(smoothed_cut(V, e, w, m, sigma, 0.1, nodes=32), c, rtol=1e-14, atol=0)


def test_the_lemmas_identity_holds_at_every_point(small_sdp):
    """Stein for r = m + σ⊙z: ∂F/∂σ_k = σ_k (2λ + ∂²F/∂m_k²) everywhere, not only at stationary points (with the
    stationarity check's 16 nodes: the descent's 8 leave the Hessian ~1e-8 relative off, so the identity 3e-9 off)."""
    V, e, w = small_sdp
    r, total = V.shape[1], float(w.abs().sum())
    for seed, ms, ss, lam in ((0, 0.0, 1.0, 1e-3), (1, 0.3, 0.5, 1e-4), (2, 0.3, 0.1, 0.0)):
        x = _point(r, seed, ms, ss)
        f, g, h, _ = objective(V, e, w, x, 0.1, lam, total, hessian=True, nodes=CERT_NODES)
        predicted = x[r:] * (2 * lam + torch.diagonal(h[:r, :r]))
        assert float((g[r:] - predicted).abs().max()) <= 1e-10 * float(g[r:].abs().max() + 1e-3), seed
        assert float(g[r:].abs().max()) > 1e-4
        assert stationarity(V, e, w, x, 0.1, lam, total)["stein_residual"] <= 1e-10 * float(g.abs().max())


def test_descent_from_gw_ends_at_a_certified_point_above_the_bound(small_sdp):
    """The theorem on a 40-node graph: from m = 0, σ = 1, σ is optimised away (≤ 1e-6, and within the lemma's
    bound), the point is second-order, and the chain holds: F starts at F(0, 1) = −C_δ(0, 1)/W + λr, every accepted
    step lowers it, it ends lower, and the cut of sign(Vm) is at least C_δ(0, 1) − λ W r: certified."""
    V, e, w = small_sdp
    n, r = V.shape
    graph = Graph(n, e.numpy(), w.numpy(), "cpu")
    for delta, lam in ((0.1, 1e-3), (0.03, 1e-4)):
        d = descend(V, graph, e, w, delta, lam, DescentSettings(), torch.Generator().manual_seed(0), progress=False)
        assert d["status"] == "stationary" and d["grad_norm"] <= 1e-10 and d["lam_min_hessian"] >= -1e-6
        assert d["stationary"] and d["monotone"] and d["certified"]
        sigma, m = d["x"][r:], d["x"][:r]
        assert float(sigma.abs().max()) <= 1e-6 and float(sigma.abs().max()) <= d["sigma_bound"] * (1 + 1e-6)
        c0 = float(smoothed_cut(V, e, w, torch.zeros(r, **F64), torch.ones(r, **F64), delta))
        assert d["objective_start"] == pytest.approx(-c0 / graph.abs_total + lam * r, rel=1e-12)
        assert d["objective_end"] == d["history"]["objective"][-1] < d["objective_start"]
        cut = float(graph.cut(torch.where(V @ m >= 0, 1.0, -1.0).to(V.dtype)))
        assert d["cut"] == cut and d["bound"] == pytest.approx(c0 - lam * graph.abs_total * r, rel=1e-12)
        assert cut >= d["bound"]


def _margin_hyperplane_below(V, graph, bound, delta, seed):
    """A hyperplane m with every node at least 2δ from it (a random direction, scaled) whose cut is below
    ``bound``: the first of the seed's draws that cuts less."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(100):
        m = torch.randn(V.shape[1], generator=gen, **F64)
        m = m * (2 * delta / float((V @ m).abs().min()))
        cut = float(graph.cut(sign(V @ m)))
        if cut < bound:
            return m, cut
    raise AssertionError("no random hyperplane cuts below the bound")


def test_a_flat_hyperplane_below_the_bound_is_stationary_but_not_certified(small_sdp):
    """At σ = 0 with every node at least δ from the plane, F = −cut/W is locally constant: ∇F = 0 and λ_min(∇²F) =
    0, so the second-order test passes whatever the hyperplane cuts. The theorem's chain rejects one that cuts
    below the bound: there F > F(0, 1) (F ≤ F(0, 1) ⇔ cut ≥ C_δ(0, 1) − λWr), even with a monotone descent
    claimed."""
    V, e, w = small_sdp
    n, r = V.shape
    graph, delta, lam = Graph(n, e.numpy(), w.numpy(), "cpu"), 0.03, 1e-4
    total = graph.abs_total
    f0, _, _, c0 = objective(V, e, w, torch.cat([torch.zeros(r, **F64), torch.ones(r, **F64)]), delta, lam, total)
    bound = float(c0) - lam * total * r
    m, cut = _margin_hyperplane_below(V, graph, bound, delta, seed=0)
    x = torch.cat([m, torch.zeros(r, **F64)])
    st = stationarity(V, e, w, x, delta, lam, total)
    assert st["stationary"] and st["grad_norm"] == 0.0 and abs(st["lam_min_hessian"]) <= 1e-15
    f = float(objective(V, e, w, x, delta, lam, total)[0])
    assert f == pytest.approx(-cut / total, rel=1e-14) and f > float(f0)
    chain = guarantee(V, graph, m, lam, float(c0), float(f0), f, monotone=True)
    assert chain["cut"] == cut < chain["bound"] == pytest.approx(bound, rel=1e-14)
    assert not chain["descended"] and not chain["cut_at_least_bound"] and not chain["certified"]


def test_monotone_is_what_the_accepted_steps_did(small_sdp, monkeypatch):
    """``monotone`` is recorded as each step is accepted: a descent one of whose accepted steps goes uphill (the
    third is replaced by its reverse) is not certified, though it ends where F is lower and the cut above the
    bound."""
    V, e, w = small_sdp
    n, r = V.shape
    graph, armijo, calls = Graph(n, e.numpy(), w.numpy(), "cpu"), optimizer._armijo, []

    def uphill_once(V, edges, weights, x, f, g, eta, delta, lam, total, c):
        calls.append(1)
        if len(calls) != 3:
            return armijo(V, edges, weights, x, f, g, eta, delta, lam, total, c)
        fy, gy, _, cy = objective(V, edges, weights, x + 1e-2 * g, delta, lam, total)
        return x + 1e-2 * g, fy, gy, cy, eta
    monkeypatch.setattr(optimizer, "_armijo", uphill_once)
    d = descend(V, graph, e, w, 0.1, 1e-3, DescentSettings(), torch.Generator().manual_seed(0), progress=False)
    assert d["history"]["objective"][2] > d["history"]["objective"][1]
    assert d["objective_end"] < d["objective_start"] and d["cut"] >= d["bound"] and d["stationary"]
    assert not d["monotone"] and not d["certified"]


def test_a_point_still_random_or_a_vacuous_bound_is_not_certified(small_sdp):
    """Two loopholes of the chain alone: a descent stopped after 2 steps still has σ ≈ 1 (a distribution, not a
    hyperplane) and a λ so large that the bound is below W/2 (below 0 here) lets any hyperplane pass. Neither is
    certified, though the cut of sign(Vm) is above the bound in both."""
    V, e, w = small_sdp
    n, _ = V.shape
    graph = Graph(n, e.numpy(), w.numpy(), "cpu")
    early = descend(V, graph, e, w, 0.1, 1e-3, DescentSettings(max_steps=2), torch.Generator().manual_seed(0),
                    progress=False)
    assert early["status"] == "max_steps" and early["max_spread"] > 0.1 and early["monotone"]
    assert early["cut_at_least_bound"] and not early["deterministic"] and not early["certified"]
    heavy = descend(V, graph, e, w, 0.1, 1.0, DescentSettings(), torch.Generator().manual_seed(0), progress=False)
    assert heavy["bound"] < 0 < heavy["cut"] and heavy["cut_at_least_bound"] and heavy["monotone"]
    assert not heavy["informative"] and not heavy["certified"]
    fine = descend(V, graph, e, w, 0.1, 1e-4, DescentSettings(), torch.Generator().manual_seed(0), progress=False)
    assert fine["deterministic"] and fine["informative"] and fine["certified"] == fine["cut_at_least_bound"]


def test_the_closed_form_at_sigma_zero_is_the_quadratures_limit(small_sdp):
    """At (m, σ → 0), away from the kinks at ±δ: the quadrature's gradient and Hessian approach the closed form the
    stationarity check uses at σ = 0 — the cross block as σ (it is σ_k ∂(∂²F/∂m_k²)/∂m_l), the rest as σ²."""
    V, e, w = small_sdp
    r, total = V.shape[1], float(w.abs().sum())
    m = torch.randn(r, generator=torch.Generator().manual_seed(8), **F64) * 0.08
    mu = V @ m
    assert float(((mu.abs() - 0.1).abs()).min()) > 1e-3 and int((mu.abs() < 0.1).sum()) > 5   # nodes inside, none at ±δ
    f0, g0, h0, _ = deterministic_derivatives(V, e, w, m, 0.1, 1e-3, total)
    gaps = []
    for s in (1e-5, 1e-6):
        f, g, h, _ = objective(V, e, w, torch.cat([m, torch.full((r,), s, **F64)]), 0.1, 1e-3, total, hessian=True,
                               nodes=CERT_NODES)
        assert abs(float(f - f0)) <= 1e-8 and float((g[:r] - g0[:r]).abs().max()) <= 1e-6 * float(g0.abs().max())
        d = (h - h0).abs()
        gaps.append((float(d[:r, :r].max()), float(d[r:, r:].max()), float(d[:r, r:].max())))
    (mm1, ss1, ms1), (mm2, ss2, ms2) = gaps
    assert 80 < mm1 / mm2 < 120 and 80 < ss1 / ss2 < 120 and 8 < ms1 / ms2 < 12
    assert mm2 <= 1e-7 * float(h0.abs().max())
