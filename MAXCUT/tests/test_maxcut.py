"""Tests of Section 5.1 (MAXCUT): exact optimum, SDP values, gradient estimators, derandomisation, I/O."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from MAXCUT.main import main
from MAXCUT.baselines import brute_force, local_search
from MAXCUT.gw import gw_expectation, solve_sdp, spectral_embedding
from MAXCUT.model import sign, smooth_step, smoothed_objective
from MAXCUT.optimizer import (PathwiseConfig, ScoreConfig, authors_gradients_per_draw, optimise_pathwise,
                              optimise_score)
from MAXCUT.optimizer_fast import authors_gradients
from MAXCUT.graphs import (GSET_DIR, Graph, authors_graph, cut_value, dense_adjacency, random_graph,
                           read_graph_file)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def score_gradients(V, graph: Graph, m, sigma, z, delta=None):
    """Score-function estimates for an isotropic ``sigma`` (a float). ``V: (n, r)``, ``z: (S, r)``.
    Returns ``(grad_m (r,), dE[cut]/dsigma (float), cuts (S,))``, penalty not included:
    ``grad_m = E[cut z] / sigma`` and ``dE/dsigma = E[cut (|z|^2 - r)] / sigma``. With ``delta`` the
    cut is the smoothed one (:func:`smooth_step`), as in the theory; without, the sign."""
    u = torch.add(V @ m, z @ V.T, alpha=sigma)
    cuts = graph.cut(sign(u) if delta is None else smooth_step(u, delta))  # (S,)
    scale = 1.0 / (z.shape[0] * sigma)
    return (cuts @ z).mul_(scale), float(cuts @ ((z * z).sum(1) - z.shape[1])) * scale, cuts


def cycle(n):
    e = np.array([(i, (i + 1) % n) for i in range(n)])
    return n, np.sort(e, axis=1), np.ones(n)


def test_brute_force_hand_checked():
    assert brute_force(*cycle(5))[0] == 4          # odd cycle: all but one edge
    assert brute_force(*cycle(6))[0] == 6          # even cycle: bipartite
    k4 = np.array([(i, j) for i in range(4) for j in range(i + 1, 4)])
    assert brute_force(4, k4, np.ones(6))[0] == 4  # K4: 2 x 2 split
    # weighted triangle with a negative edge: best is to cut the two positive edges
    val, x = brute_force(3, np.array([[0, 1], [1, 2], [0, 2]]), np.array([3.0, 2.0, -1.0]))
    assert val == 5 and cut_value(np.array([[0, 1], [1, 2], [0, 2]]), np.array([3.0, 2.0, -1.0]), x) == 5


def test_sdp_value_of_5_cycle():
    n, e, w = cycle(5)
    V, val = solve_sdp(n, e, w, torch.Generator().manual_seed(0))
    assert val == pytest.approx(2.5 * (1 + math.cos(math.pi / 5)), abs=1e-7)  # 4.5225...
    np.testing.assert_allclose(np.linalg.norm(V, axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_sdp_bounds_exact_optimum_and_gw(seed):
    n, e, w = random_graph(11, 0.5, seed)
    V, val = solve_sdp(n, e, w, torch.Generator().manual_seed(seed))
    opt = brute_force(n, e, w)[0]
    assert val >= opt - 1e-6
    assert gw_expectation(V, e, w) >= 0.87856 * val - 1e-9   # Goemans-Williamson guarantee


def _five_cycle_setup():
    n, e, w = cycle(5)
    V, _ = solve_sdp(n, e, w, torch.Generator().manual_seed(0))
    return torch.as_tensor(V), Graph(n, e, w, "cpu")


def test_pathwise_gradient_equals_finite_differences():
    """Fixed samples: the objective is a deterministic smooth function of (m, log sigma)."""
    V, G = _five_cycle_setup()
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, 50, V.shape[1], generator=g, dtype=torch.float64)
    m = torch.randn(2, V.shape[1], generator=g, dtype=torch.float64).requires_grad_(True)
    ls = (0.3 * torch.randn(2, V.shape[1], generator=g, dtype=torch.float64)).requires_grad_(True)

    def f(m_, ls_):
        return smoothed_objective(V, G, m_, ls_, z, 0.7, 0.01, 5.0)
    gm, gl = torch.autograd.grad(f(m, ls), [m, ls])
    h = 1e-6
    for p, grad in ((m, gm), (ls, gl)):
        fd = torch.zeros_like(p)
        with torch.no_grad():
            for idx in np.ndindex(*p.shape):
                p[idx] += h
                up = f(m, ls).item()
                p[idx] -= 2 * h
                down = f(m, ls).item()
                p[idx] += h
                fd[idx] = (up - down) / (2 * h)
        torch.testing.assert_close(grad, fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("n", [40, 600])   # dense adjacency, and sparse CSR (above Graph.DENSE_UP_TO)
def test_cut_gradient_from_the_forward_product_equals_autograd(n):
    """The cut's backward reuses the forward's S A (A symmetric): equal to autograd through the plain formula,
    and the value equal to the no-gradient path's bit for bit."""
    nn_, e, w = random_graph(n, 0.05, 3)
    w = w * np.linspace(-1.0, 2.0, len(w))                       # weighted, some negative
    G = Graph(nn_, e, w, "cpu")
    assert G.dense == (n <= Graph.DENSE_UP_TO)
    g = torch.Generator().manual_seed(0)
    S = torch.tanh(torch.randn(7, n, generator=g, dtype=torch.float64)).requires_grad_(True)
    c = torch.randn(7, generator=g, dtype=torch.float64)
    value = G.cut(S)
    (grad,) = torch.autograd.grad((value * c).sum(), S)
    A = torch.as_tensor(dense_adjacency(nn_, e, w))
    plain = 0.5 * G.w_total - 0.25 * ((S @ A) * S).sum(1)
    (ref,) = torch.autograd.grad((plain * c).sum(), S)
    torch.testing.assert_close(grad, ref, rtol=1e-12, atol=1e-12)
    assert torch.equal(value.detach(), G.cut(S.detach()))
    torch.testing.assert_close(value.detach(), plain.detach(), rtol=1e-13, atol=1e-10)


def test_score_and_pathwise_gradients_agree_in_expectation():
    """E[smoothcut(m + sigma z)] in m and sigma (isotropic): score-function estimate, pathwise estimate and
    central finite differences with common random numbers agree to Monte-Carlo accuracy (400k samples)."""
    V, G = _five_cycle_setup()
    r, delta, sigma = V.shape[1], 0.5, 0.8
    g = torch.Generator().manual_seed(2)
    m = torch.tensor([0.6, -0.3, 0.2, 0.1], dtype=torch.float64)[:r]
    z = torch.randn(400_000, r, generator=g, dtype=torch.float64)
    g_m_score, g_s_score, _ = score_gradients(V, G, m, sigma, z, delta=delta)

    def expected_cut(m_, s_):
        return G.cut(smooth_step((m_ + s_ * z) @ V.T, delta)).mean()

    mp = m.clone().requires_grad_(True)
    sp = torch.tensor(sigma, dtype=torch.float64, requires_grad=True)
    g_m_path, g_s_path = torch.autograd.grad(expected_cut(mp, sp), [mp, sp])
    h = 1e-5
    fd_m = torch.stack([(expected_cut(m + h * e, sigma) - expected_cut(m - h * e, sigma)) / (2 * h)
                        for e in torch.eye(r, dtype=torch.float64)])
    fd_s = (expected_cut(m, sigma + h) - expected_cut(m, sigma - h)) / (2 * h)
    torch.testing.assert_close(g_m_path, fd_m, rtol=1e-4, atol=1e-6)
    assert g_s_path.item() == pytest.approx(fd_s.item(), rel=1e-4, abs=1e-6)
    torch.testing.assert_close(g_m_score, g_m_path, rtol=0, atol=0.03)   # score: noisy, no baseline
    assert g_s_score == pytest.approx(g_s_path.item(), abs=0.03)


def test_authors_graph_has_62_edges_and_optimum_41():
    n, e, w = authors_graph(15, 0.6, 42)
    assert (n, len(e)) == (15, 62) and np.all(w == 1) and np.all(e[:, 0] < e[:, 1])
    assert brute_force(n, e, w)[0] == 41
    with torch.random.fork_rng():                           # the authors' global-seed construction
        torch.manual_seed(42)
        A = torch.triu(torch.rand(15, 15) < 0.6, diagonal=1)
    assert sorted(map(tuple, torch.nonzero(A).tolist())) == sorted(map(tuple, e.tolist()))


def test_authors_step_vectorised_equals_the_rule_written_per_draw():
    """One step's estimates, and then 60 whole steps: the vectorised rule equals the per-draw loop."""
    n, e, w = authors_graph(15, 0.6, 42)
    V = torch.as_tensor(spectral_embedding(n, e, w))
    G = Graph(n, e, w, "cpu")
    g = torch.Generator().manual_seed(5)
    m, z = torch.randn(n, generator=g, dtype=torch.float64), torch.randn(100, n, generator=g, dtype=torch.float64)
    for a, b in zip(authors_gradients(V, G, m, 0.7, z, 1.0)[:2], authors_gradients_per_draw(V, G, m, 0.7, z, 1.0)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    cfg = ScoreConfig(steps=60)
    a = optimise_score(V, G, cfg, torch.Generator().manual_seed(43), progress=False)
    b = optimise_score(V, G, cfg, torch.Generator().manual_seed(43), progress=False,
                       gradients=authors_gradients_per_draw)
    np.testing.assert_allclose(a["m"], b["m"], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(a["sigma_max"], b["sigma_max"], rtol=1e-10)
    np.testing.assert_array_equal(a["cut_mean"], b["cut_mean"])
    np.testing.assert_array_equal(a["cut_sampled"], b["cut_sampled"])


def test_authors_rule_draws_at_half_or_more_and_follows_its_schedule():
    """s_eff = max_i(exp(log sigma_i) + 0.5) >= 0.5 at every step; log sigma stays in its clip range; the
    step sizes decay at step 0 too (so after one step lr_m is 0.01/1.02 -- checked through m's update)."""
    n, e, w = authors_graph(15, 0.6, 42)
    V = torch.as_tensor(spectral_embedding(n, e, w))
    G = Graph(n, e, w, "cpu")
    cfg = ScoreConfig(steps=1500)
    h = optimise_score(V, G, cfg, torch.Generator().manual_seed(43), progress=False)
    assert np.all(h["sigma_step"] >= 0.5) and np.all(h["sigma_step"] <= 1.5 + 0.5 + 1e-12)
    assert np.all(h["sigma_max"] >= 1e-3 - 1e-15) and np.all(h["sigma_max"] <= 1.5 + 1e-12)
    # the first two updates of m, recomputed from the same draws with the documented step sizes
    gen = torch.Generator().manual_seed(43)
    z = torch.randn(256, cfg.log_samples + cfg.samples, n, generator=gen, dtype=torch.float64)
    L = cfg.log_samples
    g0, gi0 = authors_gradients(V, G, torch.zeros(n, dtype=torch.float64), 1.5, z[0, L:], cfg.lam)[:2]
    m1 = 0.01 * g0
    log_s1 = (cfg.lr_sigma * gi0).clamp(cfg.log_sigma_min, cfg.log_sigma_max)
    s_eff1 = float((log_s1.exp() + 0.5).max())
    g1 = authors_gradients(V, G, m1, s_eff1, z[1, L:], cfg.lam)[0]
    h2 = optimise_score(V, G, ScoreConfig(steps=2), torch.Generator().manual_seed(43), progress=False)
    np.testing.assert_allclose(h2["m"], (m1 + 0.01 / 1.02 * g1).numpy(), rtol=1e-12, atol=1e-14)


def test_default_fig5_run_reaches_the_optimum_with_sigma_shrinking():
    """The authors' run (their graph, rule and seed 43), shortened to 1500 steps: their log shows the cut at
    41 from step ~950 on; max sigma falls from 1 (it ends near 0.04 after 5000 steps)."""
    n, e, w = authors_graph(15, 0.6, 42)
    h = optimise_score(torch.as_tensor(spectral_embedding(n, e, w)), Graph(n, e, w, "cpu"), ScoreConfig(steps=1500),
                  torch.Generator().manual_seed(43), progress=False)
    assert h["cut_mean"][-1] == 41 == brute_force(n, e, w)[0]
    assert h["sigma_max"][-1] < 0.5 * h["sigma_max"][0]


@pytest.mark.parametrize("seed", range(4))
def test_derandomisation_reaches_optimum_and_beats_gw_expectation(seed):
    n, e, w = random_graph(12, 0.5, 100 + seed)
    V, _ = solve_sdp(n, e, w, torch.Generator().manual_seed(seed))
    h = optimise_pathwise(torch.as_tensor(V), Graph(n, e, w, "cpu"), PathwiseConfig(steps=400, chains=4),
                     torch.Generator().manual_seed(seed), progress=False)
    x = (V @ h["m"] < 0).astype(int)
    cut = cut_value(e, w, x)
    assert cut == h["cut_mean"][-1]
    assert cut >= gw_expectation(V, e, w)
    assert cut == brute_force(n, e, w)[0]
    # the hyperplane becomes deterministic: sigma relative to |m| (the cut is scale-free) keeps falling
    rel = h["sigma_relative"]
    assert rel[-1] < 0.3 and rel[-1] < rel[len(rel) // 2] < rel[len(rel) // 4]


def test_local_search_reaches_a_one_flip_optimum():
    n, e, w = random_graph(40, 0.3, 7)
    x0 = np.zeros(n, dtype=int)
    x = local_search(n, e, w, x0)
    base = cut_value(e, w, x)
    assert base > cut_value(e, w, x0)
    for i in range(n):  # no single flip improves
        y = x.copy()
        y[i] ^= 1
        assert cut_value(e, w, y) <= base


def test_gset_reader(tmp_path):
    f = tmp_path / "g.txt"
    f.write_text("4 4\n1 2 1\n2 3 -1\n3 4 2\n1 4 1\n")
    (n, e, w), _, _ = read_graph_file(str(f))
    assert n == 4
    assert e.tolist() == [[0, 1], [0, 3], [1, 2], [2, 3]] and w.tolist() == [1, 1, -1, 2]
    (n, e, w), _, _ = read_graph_file(os.path.join(GSET_DIR, "G11.txt"))
    assert (n, len(e)) == (800, 1600) and set(w.tolist()) == {-1.0, 1.0}
    el = tmp_path / "el.txt"
    el.write_text("# comment\n10 20 1\n20 30 2.5\n30 10 1\n")
    (n, e, w), _, _ = read_graph_file(str(el))
    assert n == 3 and e.tolist() == [[0, 1], [0, 2], [1, 2]] and w.tolist() == [1.0, 1.0, 2.5]


def test_graph_format_is_decided_once_and_can_be_named(tmp_path):
    """A file is one format, chosen from its first two lines (or by --graph-format) and saved with the results;
    every other line must fit it -- a malformed G-set file is never re-read as an edge list."""
    from MAXCUT.graphs import GraphFormatError, read_graph_file
    f = tmp_path / "g.txt"
    f.write_text("4 3\n1 2\n2 3\n3 4\n")                    # 'n m' over exactly m unweighted lines: a header
    (n, e, w), fmt, notes = read_graph_file(str(f))
    assert fmt == "gset" and n == 4 and e.tolist() == [[0, 1], [1, 2], [2, 3]] and w.tolist() == [1.0] * 3
    assert notes == ["header 'n m' over unweighted lines: unit weights"]
    with pytest.raises(GraphFormatError, match="g.txt:1 and line 4: the edge 3-4 is listed twice"):
        read_graph_file(str(f), "edges")                        # the user says an edge list: '4 3' repeats '3 4'
    f.write_text("4 3\n1 2\n2 3\n")                           # the count does not match: an edge list
    assert read_graph_file(str(f))[1] == "edges"
    f.write_text("4 3\n1 2 1\n2 3 1\n3 4 1\n")
    assert read_graph_file(str(f))[1] == "gset" and read_graph_file(str(f))[0][0] == 4
    with pytest.raises(GraphFormatError, match="g.txt:2: 3 fields, but this edge list"):
        read_graph_file(str(f), "edges")                        # '4 3' then three-field lines: not one edge list
    res = main(["--graph", str(f), "--quick", "--no-progress", "--out-dir", str(tmp_path / "out")])
    assert res["graph_format"] == "gset" and res["cut"] == res["exact"] == 3


def test_graph_files_are_read_as_they_mean(tmp_path):
    """One rule per case: an undirected list written both ways with equal weights is read once and said so (a
    triangle is a triangle: max cut 2, not 4); a byte-order mark is skipped; an edge list under an 'n m' header
    that counts its lines is read with that header (6 nodes, not 8); the run prints what it read."""
    tri = tmp_path / "tri.txt"
    tri.write_text("0 1\n1 0\n1 2\n2 1\n0 2\n2 0\n")
    (n, e, w), fmt, notes = read_graph_file(str(tri))
    assert (n, e.tolist(), w.tolist()) == (3, [[0, 1], [0, 2], [1, 2]], [1.0, 1.0, 1.0])
    assert notes == ["every edge listed both ways: read once"]
    res = main(["--graph", str(tri), "--quick", "--no-progress", "--out-dir", str(tmp_path / "o")])
    assert res["cut"] == res["exact"] == 2 and res["graph_notes"] == notes
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeff1 2\n2 3\n".encode("utf-8"))
    assert read_graph_file(str(bom))[0][0] == 3
    hdr = tmp_path / "hdr.txt"
    hdr.write_text("6 8\n1 2\n2 3\n3 4\n4 5\n5 6\n6 1\n1 4\n2 5\n")
    (n, e, w), fmt, _ = read_graph_file(str(hdr))
    assert fmt == "gset" and n == 6 and len(e) == 8


def _expected_outputs(d, figure="fig5"):
    """Every output; the figures are Fig. 5's for the authors' graph, ``gset_*`` for a graph file."""
    for name in [f"{figure}_cut.png", f"{figure}_cut.pdf", f"{figure}_sigma.png", f"{figure}_sigma.pdf",
                 "results.json", "config.json", "history.npz", "partition.csv"]:
        assert (d / name).stat().st_size > 0, name


def test_quick_default_run_writes_every_output(tmp_path):
    res = main(["--quick", "--no-progress", "--out-dir", str(tmp_path)])
    _expected_outputs(tmp_path)
    saved = json.load(open(tmp_path / "results.json"))
    n, e, w = authors_graph(15, 0.6, 42)
    assert saved["nodes"] == 15 and saved["edges"] == len(e) == 62 and saved["exact"] == 41
    assert cut_value(e, w, np.array(saved["partition"])) == saved["cut"] == res["cut"]
    assert saved["gw_expectation"] == pytest.approx(w.sum() / 2)   # spectral embedding: a uniform random cut
    assert saved["sdp_value"] >= saved["exact"] - 1e-6
    for key in ["cut_polished", "gw_best_of_k", "nx_randomized", "nx_one_exchange", "sigma_final",
                "optimize_s", "wall_s"]:
        assert key in saved
    config = json.load(open(tmp_path / "config.json"))
    assert config["threads"] == 1 and config["args"]["threads"] == 1     # the default: one CPU thread
    from MAXCUT.tests.test_run import assert_plot_only_redraws
    assert_plot_only_redraws(tmp_path)


def test_networkx_graph_source_keeps_gnp(tmp_path):
    res = main(["--quick", "--no-progress", "--graph-source", "networkx", "--out-dir", str(tmp_path)])
    n, e, w = random_graph(15, 0.6, 42)
    assert res["graph"] == "gnp_15_0.6_seed42" and res["edges"] == len(e) and res["exact"] == brute_force(n, e, w)[0]


def test_quick_is_quick_at_every_size(tmp_path):
    """--quick caps the SDP's iterations too (a 2000-node random graph took minutes): its bound stays a bound."""
    from MAXCUT.experiments import MaxcutConfig
    cfg = MaxcutConfig(nodes=300, edge_prob=0.1)
    graph, n, m = cfg.read_graph()
    cfg = cfg.quick(n, m)
    assert cfg.sdp_iters == 200 and cfg.steps == 500 and cfg.rounds == 200
    n, e, w = cfg.make_graph(graph)
    V, value = solve_sdp(n, e, w, torch.Generator().manual_seed(0), max_iter=cfg.sdp_iters)
    assert np.allclose(np.linalg.norm(V, axis=1), 1) and gw_expectation(V, e, w) <= value <= w.sum()


def test_quick_gset_run_with_polish(tmp_path):
    res = main(["--graph", os.path.join(GSET_DIR, "G14.txt"), "--quick", "--polish", "--no-progress",
                "--out-dir", str(tmp_path)])
    _expected_outputs(tmp_path, "gset")
    assert res["sdp_value"] == pytest.approx(3191.57, rel=1e-3)
    assert res["gw_expectation"] <= res["cut"] <= res["cut_polished"] <= res["sdp_value"]
    assert res["nx_randomized"] is None and "nodes" in res["nx_note"]


BAD_FILES = {
    "header.txt": ("4 x\n1 2 1\n", ":1:"),
    "header_alone.txt": ("5 3\n", ":1:"),                           # G-set header without edges, or one edge?
    "missing_weight.txt": ("4 3\n1 2 1\n2 3\n3 4 1\n", ":3:"),      # G-set (line 2 has a weight); line 3 has none
    "trailing_line.txt": ("4 3\n1 2 1\n2 3 1\n3 4 1\n1 4 1\n", ":5:"),  # one edge more than the header says
    "mixed_edge_list.txt": ("1 2\n2 3 1\n3 4\n", ":1:"),          # read as G-set: its header '1 2' is invalid
    "four_fields.txt": ("1 2 1 7\n2 3 1 7\n", ":1:"),
    "mixed_weights.txt": ("1 2 1\n2 3\n", ":2:"),                  # an edge list is all 'u v' or all 'u v w'
    "zero_weights.txt": ("3 2\n1 2 0\n2 3 0\n", "non-zero weight"),   # every cut is 0
    "cancelling.txt": ("3 2\n1 2 1\n2 1 -1\n",
                       "cancelling.txt:2 and line 3: the edge 1-2 is listed twice (weights 1, -1)"),
    "duplicate.txt": ("1 2\n2 3\n1 2\n", "duplicate.txt:1 and line 3: the edge 1-2 is listed twice"),
    "half_both_ways.txt": ("1 2\n2 1\n2 3\n", "half_both_ways.txt:1 and line 2"),   # some pairs both ways, some not
    "huge_weights.txt": ("3 2\n1 2 1e300\n2 3 1e300\n", "rescale"),  # squares overflow float64
    "huge_header.txt": ("100000000 1\n1 2 1\n", "GiB"),             # 10^8 nodes: refused before allocating
    "nonint.txt": ("3 2\n1 2 1\n2 b 1\n", ":3:"),
    "range.txt": ("3 2\n1 2 1\n2 4 1\n", ":3:"),
    "loop.txt": ("3 2\n1 2 1\n3 3 1\n", ":3:"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_malformed_graph_files(tmp_path, name, capsys):
    text, where = BAD_FILES[name]
    f = tmp_path / name
    f.write_text(text)
    _assert_bad([("--graph", str(f))], tmp_path, expect=[name + where if where.startswith(":") else where],
                capsys=capsys)


@pytest.mark.parametrize("argv,expect", [
    (["--graph", "/nonexistent/g.txt"], "no such file"), (["--edge-prob", "1.5"], "1.5"),
    (["--nodes", "1"], "--nodes"), (["--nodes", "40", "--exact", "yes"], "40 nodes"), (["--threads", "0"], "--threads"),
    (["--nodes", "5", "--edge-prob", "1e-9"], "no edges"),
    (["--chains", "4"], "pathwise"), (["--delta", "0.37"], "pathwise"),               # the default run is score
    (["--graph", os.path.join(GSET_DIR, "G14.txt"), "--nodes", "20"], "--nodes"),
    (["--graph", os.path.join(GSET_DIR, "G14.txt"), "--graph-source", "torch"], "--graph-source"),
    (["--nodes", "100000"], "GiB"), (["--samples", "100000000000"], "GiB"),       # more memory than there is
    (["--estimator", "pathwise", "--delta", "1e-300"], "--delta"), (["--graph-format", "gset"], "--graph")])
def test_bad_arguments(tmp_path, argv, expect, capsys):
    _assert_bad([tuple(argv)], tmp_path, expect=[expect], capsys=capsys)


def _assert_bad(argvs, tmp_path, expect, capsys=None):
    """In-process (fast): SystemExit 2, one line on stderr naming the problem, nothing written."""
    out = tmp_path / "out"
    argv = [a for group in argvs for a in group] + ["--out-dir", str(out)]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for s in expect:
        assert s in err
    assert not out.exists()


def test_diverging_pathwise_run_one_line_exit_2(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["--estimator", "pathwise", "--lr-sigma", "1e6", "--quick", "--no-progress", "--out-dir", str(out)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and "smaller" in err and "Traceback" not in err
    assert not out.exists()


def test_bad_input_from_the_command_line(tmp_path):
    """The real CLI in a subprocess: one line, exit status 2, no traceback, nothing written."""
    f = tmp_path / "bad.txt"
    f.write_text("3 2\n1 2 1\n2 x 1\n")
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, os.path.join(ROOT, "MAXCUT", "main.py"), "--graph", str(f),
                        "--out-dir", str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [p.stderr.strip()]
    assert "bad.txt:3:" in p.stderr and "Traceback" not in p.stderr and not out.exists()
