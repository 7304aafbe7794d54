"""The smoothing's effect (issue 39): the start value C_δ(0, 1) of Theorem 5.2's descent against the GW expectation
it smooths, as δ → 0; and the descent's step rules."""
import math

import numpy as np
import pytest
import torch

from MAXCUT.graphs import Graph, authors_graph
from MAXCUT.gw import gw_expectation, solve_sdp
from MAXCUT.model import smoothed_cut, smoothing_loss_rate
from MAXCUT.optimizer import DescentSettings, descend

F64 = dict(dtype=torch.float64)


def _start_values(deltas):
    n, e, w = authors_graph(15, 0.6, 42)
    V, _ = solve_sdp(n, e, w, torch.Generator().manual_seed(0), max_iter=300)
    V, e, w = torch.as_tensor(V, **F64), torch.as_tensor(e), torch.as_tensor(w, **F64)
    r = V.shape[1]
    start = [float(smoothed_cut(V, e, w, torch.zeros(r, **F64), torch.ones(r, **F64), d)) for d in deltas]
    return gw_expectation(V, e, w), start, smoothing_loss_rate(V, e, w), float(w.sum())


def test_the_start_value_tends_to_the_gw_expectation_quadratically_in_delta():
    """|s − sign| ≤ 1 inside the band and 0 outside, so per edge |E[s s] − E[sign sign]| ≤ P(|X| < δ) + P(|Y| < δ)
    and |GW − C_δ(0, 1)| ≤ W erf(δ/√2) for every δ; and the expansion GW − C_δ(0, 1) = K δ² + O(δ⁴) with
    K = Σ w (−ρ)/√(1 − ρ²)/(5π) (model.smoothing_loss_rate): the loss divided by δ² tends to K, its relative error
    O(δ²) (quadrature rounding ~1e-9 in the cut at the smallest δ). On this graph the loss grows with δ."""
    deltas = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003)
    gw, start, K, W = _start_values(deltas)
    assert K > 0
    for d, c in zip(deltas, start):
        assert abs(gw - c) <= W * math.erf(d / math.sqrt(2))
        if d <= 0.3:
            assert abs((gw - c) / d ** 2 - K) <= K * (d * d + 2e-4), d
    assert all(a < b for a, b in zip(start, start[1:]))          # C_δ(0, 1) rises as δ falls, to the GW value


def test_scaling_the_hyperplane_narrows_the_step():
    """The stalls' mechanism (docs: the stalls): s_δ(t u) = s_{δ/t}(u), so C_δ(t m, t σ) = C_{δ/t}(m, σ): growing m
    and σ together acts as a narrower step, which (the expansion above) raises C — a direction only λ‖σ‖² resists."""
    n, e, w = authors_graph(15, 0.6, 42)
    V, _ = solve_sdp(n, e, w, torch.Generator().manual_seed(0), max_iter=300)
    V, e, w = torch.as_tensor(V, **F64), torch.as_tensor(e), torch.as_tensor(w, **F64)
    g = torch.Generator().manual_seed(3)
    m, sigma = 0.05 * torch.randn(V.shape[1], generator=g, **F64), torch.rand(V.shape[1], generator=g, **F64)
    for t in (2.0, 10.0):
        big = float(smoothed_cut(V, e, w, t * m, t * sigma, 0.1))
        assert big == pytest.approx(float(smoothed_cut(V, e, w, m, sigma, 0.1 / t)), rel=1e-12, abs=1e-12)
        assert big > float(smoothed_cut(V, e, w, m, sigma, 0.1))


def test_the_blocks_rule_steps_m_then_sigma_each_downhill():
    """``step_rule="blocks"``: accepted steps alternate m (block 0) and σ (block 1), each lowers F, an m-step leaves
    σ as it was (max |σ| unchanged)."""
    n, e, w = authors_graph(15, 0.6, 42)
    V, _ = solve_sdp(n, e, w, torch.Generator().manual_seed(0), max_iter=300)
    V, e, w = torch.as_tensor(V, **F64), torch.as_tensor(e), torch.as_tensor(w, **F64)
    d = descend(V, Graph(n, e.numpy(), w.numpy(), "cpu"), e, w, 0.1, 1e-4,
                DescentSettings(step_rule="blocks", max_steps=12), torch.Generator().manual_seed(0), progress=False)
    h = d["history"]
    assert d["steps"] == 12 and list(h["block"]) == [0, 1] * 6 and d["monotone"]
    assert (np.diff(h["objective"]) <= 0).all()
    assert (h["sigma_max"][2::2] == h["sigma_max"][1:-1:2]).all()
