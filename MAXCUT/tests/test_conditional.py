"""The method of conditional expectations (conditional.py): the orthant probability against scipy, g_0 = the GW
expectation, g_p = the cut of sign(V r), an intermediate g_t against Monte Carlo and the δ → 0 smoothed cut, and
the derandomisation's chain g_0 ≤ g_1 ≤ ... ≤ g_p on small graphs, negative weights included."""
import json

import numpy as np
import pytest
import scipy.stats
import torch

from MAXCUT import gw
from MAXCUT.conditional import conditional_cut, cut_probability, derandomise, orthant
from MAXCUT.graphs import cut_value
from MAXCUT.main import main
from MAXCUT.model import hyperplane_partition, smoothed_cut


def _scipy_orthant(h, k, rho):
    cov = [[1.0, rho], [rho, 1.0]]
    return scipy.stats.multivariate_normal.cdf([h, k], mean=[0.0, 0.0], cov=cov, abseps=1e-13, releps=1e-13)


@pytest.mark.parametrize("h, k, rho", [(0.3, -0.2, 0.5), (0.0, 0.0, 0.3), (0.0, 1.2, -0.7), (-1.5, 0.0, 0.2),
                                       (1.0, 1.0, 1 - 1e-6), (1.0, 1.0001, 1 - 1e-7), (-0.5, 0.7, -1 + 1e-6),
                                       (2.0, -3.0, 0.99), (-2.0, -2.0, 0.95), (0.0, 0.0, -0.999999),
                                       (4.0, 5.0, 0.0), (-6.0, 1.0, 0.4)])
def test_orthant_equals_scipys_bivariate_normal_cdf(h, k, rho):
    assert orthant(h, k, rho) == pytest.approx(_scipy_orthant(h, k, rho), abs=1e-10)


def test_orthant_at_correlation_one_and_infinite_limits():
    """ρ = 1: Y = X, P = Φ(min); ρ = −1: Y = −X, P = max(Φ(h) + Φ(k) − 1, 0); h = ±∞: Φ(k) or 0; continuity
    from inside (ρ = ±(1 − 1e-12))."""
    Phi = scipy.stats.norm.cdf
    h, k = np.array([0.4, -0.3, 0.0, 1.0]), np.array([0.4, 0.5, -0.2, -2.0])
    np.testing.assert_allclose(orthant(h, k, 1.0), Phi(np.minimum(h, k)), atol=1e-15)
    np.testing.assert_allclose(orthant(h, k, -1.0), np.maximum(Phi(h) + Phi(k) - 1, 0), atol=1e-15)
    np.testing.assert_allclose(orthant(h, k, 1 - 1e-12), Phi(np.minimum(h, k)), atol=1e-5)
    np.testing.assert_allclose(orthant(h, k, -1 + 1e-12), np.maximum(Phi(h) + Phi(k) - 1, 0), atol=1e-5)
    np.testing.assert_allclose(orthant(np.inf, k, 0.3), Phi(k), atol=1e-15)
    np.testing.assert_allclose(orthant(-np.inf, k, 0.3), 0.0, atol=0)


def test_cut_probability_with_fixed_signs_and_without_means():
    """s = 0 is a fixed sign (0 counts as +); with zero means P(differ) = arccos ρ / π (Sheppard)."""
    Phi = scipy.stats.norm.cdf
    assert cut_probability(0.7, 0.2, 0.0, 2.0, 0.0) == pytest.approx(Phi(-0.1), abs=1e-15)      # X > 0: P(Y < 0)
    assert cut_probability(-0.7, 0.2, 0.0, 2.0, 0.0) == pytest.approx(Phi(0.1), abs=1e-15)      # X < 0: P(Y ≥ 0)
    assert cut_probability(0.0, -1.0, 0.0, 0.0, 0.0) == 1.0 and cut_probability(0.0, 3.0, 0.0, 0.0, 0.0) == 0.0
    rho = np.array([-1.0, -0.9999, -0.3, 0.0, 0.5, 0.999999, 1.0])
    np.testing.assert_allclose(cut_probability(0.0, 0.0, 1.0, 1.0, rho), np.arccos(rho) / np.pi, atol=1e-12)
    # scaled: means and spreads (a, s) and (a', s') with covariance c, against the orthant P(X ≥ 0, Y ≥ 0)
    a, b, si, sj, c = 0.3, -0.5, 0.8, 1.7, -0.9
    both = _scipy_orthant(a / si, b / sj, c / (si * sj))
    assert cut_probability(a, b, si, sj, c) == pytest.approx(Phi(a / si) + Phi(b / sj) - 2 * both, abs=1e-10)


def _random_case(seed, n=9, p=4, negative=False):
    rng = np.random.default_rng(seed)
    edges = np.array([(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.5])
    weights = rng.uniform(0.5, 2.0, len(edges)) * (rng.choice([-1.0, 1.0], len(edges)) if negative else 1.0)
    V = rng.standard_normal((n, p))
    return V / np.linalg.norm(V, axis=1, keepdims=True), edges, weights


def test_first_value_is_the_gw_expectation_and_last_is_the_cut_of_the_hyperplane():
    V, edges, weights = _random_case(0)
    r = np.random.default_rng(1).standard_normal(V.shape[1])
    assert conditional_cut(V, edges, weights, r, 0) == pytest.approx(gw.gw_expectation(V, edges, weights),
                                                                     abs=1e-12)
    cut = float(cut_value(edges, weights, hyperplane_partition(V, r)))
    assert conditional_cut(V, edges, weights, r, V.shape[1]) == pytest.approx(cut, abs=1e-12)


def test_intermediate_value_equals_monte_carlo_over_the_free_coordinates():
    """g_2 on a 4-coordinate embedding: the mean cut over 200 000 draws of r_3, r_4, within 4 standard errors."""
    V, edges, weights = _random_case(2)
    r = np.array([0.8, -0.4, 0.0, 0.0])
    z = np.random.default_rng(3).standard_normal((200_000, 2))
    R = np.concatenate([np.broadcast_to(r[:2], (len(z), 2)), z], 1)
    cuts = cut_value(edges, weights, (R @ V.T < 0).astype(np.int64))
    se = cuts.std() / np.sqrt(len(cuts))
    assert abs(conditional_cut(V, edges, weights, r, 2) - cuts.mean()) < 4 * se


def test_intermediate_value_is_the_limit_of_the_smoothed_cut():
    """model.smoothed_cut with m = (r_1, r_2, 0, 0), σ = (0, 0, 1, 1) and δ = 1e-3: within 1e-5 of the total weight
    (its step differs from the sign on |u| < δ only, an O(δ) difference)."""
    V, edges, weights = _random_case(4)
    r = np.array([0.3, 1.1, 0.0, 0.0])
    T = (lambda x: torch.as_tensor(x, dtype=torch.float64))
    smooth = float(smoothed_cut(T(V), torch.as_tensor(edges), T(weights), T(r), T([0.0, 0.0, 1.0, 1.0]), 1e-3))
    assert conditional_cut(V, edges, weights, r, 2) == pytest.approx(smooth, abs=1e-5 * weights.sum())


@pytest.mark.parametrize("seed, negative", [(5, False), (6, False), (7, True), (8, True)])
def test_derandomised_chain_never_falls_and_ends_above_the_gw_expectation(seed, negative):
    V, edges, weights = _random_case(seed, n=12, p=5, negative=negative)
    d = derandomise(V, edges, weights)
    values = np.array(d["values"])
    assert len(values) == V.shape[1] + 1 and d["non_decreasing"]
    assert np.all(np.diff(values) >= -1e-12)
    assert values[0] == pytest.approx(gw.gw_expectation(V, edges, weights), abs=1e-12)
    assert d["cut"] == float(cut_value(edges, weights, hyperplane_partition(V, d["r"])))
    assert d["cut"] == pytest.approx(values[-1], abs=1e-12)
    assert d["cut"] >= gw.gw_expectation(V, edges, weights) - 1e-12


def test_degenerate_inputs_two_nodes_rank_one_an_isolated_node():
    """p = 1 (the last step at once), two nodes, a node without edges, a negative weight: the chain still holds."""
    d = derandomise(np.array([[1.0], [-1.0]]), np.array([[0, 1]]), np.array([2.0]))
    assert d["values"] == pytest.approx([2.0, 2.0]) and d["cut"] == 2.0
    d = derandomise(np.array([[1.0], [1.0]]), np.array([[0, 1]]), np.array([-1.5]))
    assert d["cut"] == 0.0 and d["values"][0] == pytest.approx(0.0)
    V = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])                # node 2 has no edge
    d = derandomise(V, np.array([[0, 1]]), np.array([-1.0]))
    assert d["values"][0] == pytest.approx(-0.5) and d["non_decreasing"] and d["cut"] == 0.0


def test_runs_report_it_and_odd_graphs_do_not_break_it(tmp_path):
    """Fig. 5's run (spectral vectors) reports the baseline beside the paper's cut; a G-set file of 3 nodes with a
    node without edges and a negative weight, at SDP rank 1, runs through."""
    res = main(["--quick", "--no-progress", "--out-dir", str(tmp_path / "fig5")])
    ce = json.load(open(tmp_path / "fig5" / "results.json"))["conditional_expectations"]
    assert ce == res["conditional_expectations"] and ce["guarantee_holds"] and ce["non_decreasing"]
    assert ce["cut"] >= res["gw_expectation"] == pytest.approx(ce["values"][0]) and len(ce["values"]) == 16
    assert ce["min_increment"] == pytest.approx(np.diff(ce["values"]).min()) and ce["time_s"] > 0
    (tmp_path / "odd.txt").write_text("4 2\n1 2 -1\n1 3 2\n")     # node 4 has no edge
    for rank in ("1", "2"):
        res = main(["--graph", str(tmp_path / "odd.txt"), "--quick", "--no-progress", "--sdp-rank", rank,
                    "--out-dir", str(tmp_path / f"odd{rank}")])
        ce = res["conditional_expectations"]
        assert ce["guarantee_holds"] and ce["non_decreasing"] and len(ce["values"]) == int(rank) + 1


def test_nearly_antipodal_vectors_keep_their_digits():
    """A bipartite 6-cycle whose vectors are ±u up to 1e-7 (the rank-one SDP solution of a bipartite graph, as on
    G48): g_0 is Σ w arccos⟨x, y⟩ / π with the angle taken as 2 atan2(‖x − y‖, ‖x + y‖) (digits that arccos of a
    rounded ⟨x, y⟩ ≈ −1 loses), and every later value is at least the one before to 1e-12."""
    rng = np.random.default_rng(9)
    u = rng.standard_normal(4)
    V = np.array([(-1) ** i * u for i in range(6)]) + 1e-7 * rng.standard_normal((6, 4))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    edges = np.array([(i, (i + 1) % 6) for i in range(6)])
    edges.sort(1)
    x, y = V[edges[:, 0]], V[edges[:, 1]]
    angle = 2 * np.arctan2(np.linalg.norm(x - y, axis=1), np.linalg.norm(x + y, axis=1))
    d = derandomise(V, edges, np.ones(6))
    assert d["values"][0] == pytest.approx(angle.sum() / np.pi, abs=1e-13)
    assert np.all(np.diff(d["values"]) >= -1e-12) and d["cut"] == 6.0


@pytest.mark.parametrize("theta", [1e-2, 3e-3, 1e-3, 1e-4])
def test_a_step_narrower_than_the_fallback_grid_is_found(theta):
    """A referee's case: two nearly equal vectors on one edge (θ apart) and an isolated node keeping a spread make
    g_2 a step of width ~θ, narrower than the dense grid's spacing; the fallback's breakpoints find it, so the
    values stay non-decreasing and the cut (here the edge, 1) reaches the GW expectation θ/π."""
    a = 0.7
    V = np.array([[np.cos(a), np.sin(a), 0.0], [np.cos(a + theta), np.sin(a + theta), 0.0], [0.0, 0.0, 1.0]])
    edges, weights = np.array([[0, 1]]), np.array([1.0])
    d = derandomise(V, edges, weights)
    assert d["non_decreasing"]
    assert d["cut"] >= theta / np.pi - d["tol"]
    assert d["cut"] == 1.0
