"""The SDP's certified upper bound (weak duality from the Burer-Monteiro vectors): never below the maximum cut,
whatever the vectors and the weights; tight at the solver's vectors; loose, and saying so, at bad ones."""
import os

import numpy as np
import pytest
import torch

from MAXCUT import gw
from MAXCUT.baselines import brute_force
from MAXCUT.gw import sdp_upper_bound, solve_sdp
from MAXCUT.graphs import GSET_DIR, GSET_REFERENCE, random_graph, read_graph_file
from MAXCUT.main import main


def unit_rows(shape, seed):
    V = np.random.default_rng(seed).normal(size=shape)
    return V / np.linalg.norm(V, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(4))
def test_the_bound_holds_for_any_vectors_and_is_tight_at_the_solution(seed):
    """Weighted graphs with negative weights too: bound >= brute-force optimum, from the solver's vectors (gap
    below 1e-6 of the bound, the dual matrix psd up to 1e-6) and from random unit vectors (valid, but a dual
    matrix with a clearly negative eigenvalue and a bound far above)."""
    n, e, _ = random_graph(12, 0.5, seed)
    w = np.random.default_rng(seed).uniform(-1.0, 2.0, len(e))
    opt = brute_force(n, e, w)[0]
    V, value = solve_sdp(n, e, w, torch.Generator().manual_seed(0))
    bound, lam = sdp_upper_bound(n, e, w, V)
    assert opt <= value + 1e-9 <= bound + 1e-9 and bound - value <= 1e-6 * abs(bound) and lam >= -1e-6
    loose, lam_bad = sdp_upper_bound(n, e, w, unit_rows(V.shape, seed))
    assert loose >= bound and loose >= opt and lam_bad < -1e-3


def test_tiny_weights_are_certified_above_their_optimum(tmp_path):
    """The probe's 4-node graph with weights 1e-8 ... 3e-8 (optimum 7e-8): the certified bound is at least the
    optimum, on the command line too, and equals the unit-scale graph's bound times 1e-8."""
    edges = [(1, 2, 1e-8), (2, 3, 2e-8), (3, 4, 3e-8), (1, 4, 1e-8), (1, 3, 2e-8)]
    (tmp_path / "tiny.txt").write_text("".join(f"{i} {j} {w!r}\n" for i, j, w in edges))
    res = main(["--graph", str(tmp_path / "tiny.txt"), "--quick", "--no-progress", "--out-dir",
                str(tmp_path / "o")])
    assert res["sdp_upper_bound"] >= res["exact"] > 0 and res["sdp_gap"] < 1e-6
    e = np.array([(i - 1, j - 1) for i, j, _ in edges])
    w = np.array([w for *_, w in edges])
    V, _ = solve_sdp(4, e, w / 1e-8, torch.Generator().manual_seed(0))
    assert sdp_upper_bound(4, e, w, V)[0] == pytest.approx(sdp_upper_bound(4, e, w / 1e-8, V)[0] * 1e-8, rel=1e-12)


def test_g14_matches_the_published_sdp_bound():
    """G14: certified 3191.57, the published SDP bound, with a gap below 1e-6."""
    (n, e, w), _, _ = read_graph_file(os.path.join(GSET_DIR, "G14.txt"))
    V, value = solve_sdp(n, e, w, torch.Generator().manual_seed(2))
    bound, _ = sdp_upper_bound(n, e, w, V)
    assert bound == pytest.approx(GSET_REFERENCE["G14"][1], abs=0.005) and (bound - value) / bound < 1e-6


def test_above_the_node_limit_the_value_is_named_as_uncertified(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gw, "CERTIFY_UP_TO", 5)
    res = main(["--quick", "--no-progress", "--out-dir", str(tmp_path / "o")])
    assert res["sdp_upper_bound"] is None and res["sdp_gap"] is None
    assert "not certified" in capsys.readouterr().out
