"""The exact δ-smoothed expected cut (exact.py): against Monte Carlo, its limits, its own quadrature refined, and
its gradient and Hessian against finite differences."""
import math

import pytest
import torch

from MAXCUT.baselines import solve_sdp
from MAXCUT.derandomise import smooth_step
from MAXCUT.exact import edge_products, gw_expectation, smoothed_cut, step_expectation
from MAXCUT.graphs import random_graph

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
    finer = edge_products(mu[:, 0], mu[:, 1], C[:, 0, 0], C[:, 1, 1], C[:, 0, 1], 0.1, nodes=64)
    assert (exact - finer).abs().max() < 1e-13


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
