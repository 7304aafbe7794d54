"""Inputs read as they are meant: strict numbers in graph files, the 'n m' header over 0-based ids, graphs known by
their content (digest) and not by their file's name, every weight scale giving the same partition, and G-set
folders whose non-files are skipped without being opened."""
import csv
import glob
import os
import signal
import socket

import numpy as np
import pytest
import torch

from MAXCUT import experiments, gset_all
from MAXCUT.baselines import brute_force, local_search, tabu_search
from MAXCUT.experiments import MaxcutConfig, TheoremConfig
from MAXCUT.graphs import (GSET_DIR, GSET_REFERENCE, Graph, GraphFormatError, graph_digest, gset_name,
                           gset_reference, random_graph, read_graph_file, weight_scale)
from MAXCUT.main import main
from MAXCUT.gw import solve_sdp
from MAXCUT.optimizer import DescentSettings, descend

CYCLE_AND_CHORD = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 0), (0, 2)]   # a triangle in it: max cut 6 of 7
SCALES = (2.0 ** -30, 1e-8, 1e40, 1e-40, 3.7)


def write_gset(path, n, edges, weights, base=1):
    with open(path, "w") as f:
        f.write(f"{n} {len(edges)}\n" + "".join(f"{i + base} {j + base} {float(w)!r}\n"
                                              for (i, j), w in zip(edges, weights)))


def weighted_graph(n, p, seed):
    """A random graph with weights uniform in [0.5, 2) (not powers of two)."""
    n, e, _ = random_graph(n, p, seed)
    return n, e, np.random.default_rng(seed).uniform(0.5, 2.0, len(e))


@pytest.mark.parametrize("line,token", [("1 2 inf", "inf"), ("1 2 nan", "nan"), ("1 2 Infinity", "Infinity"),
                                        ("1 2 1_0", "1_0"), ("1 2 0x10", "0x10"), ("1 2 1e400", "1e400"),
                                        ("1_0 2 1", "1_0"), ("\u0663 2 1", "\u0663"), ("1 \uff12 1", "\uff12"),
                                        ("0x1 2 1", "0x1"), ("1.0 2 1", "1.0")])
def test_odd_numbers_are_refused_naming_the_line(tmp_path, line, token):
    """What Python's int()/float() accept beyond plain decimals (``1_0``, ``inf``, Arabic-Indic or full-width
    digits) is an error naming the file, the line and the token."""
    f = tmp_path / "g.txt"
    f.write_text(f"3 2\n2 3 1\n{line}\n", encoding="utf-8")
    with pytest.raises(GraphFormatError, match=f"g.txt:3: .*{token!r}"):
        read_graph_file(str(f))
    f.write_text("3 2\n1 2\n2 \uff13\n", encoding="utf-8")          # two fields: int() would read a 3
    with pytest.raises(GraphFormatError, match="g.txt:3: node id '\uff13'"):
        read_graph_file(str(f))
    f.write_text("5 5\n1 2 1\n2 3 -2.5\n3 4 3e-2\n4 5 .5\n+1 5 1.\n")  # plain decimals read as written
    (n, e, w), _, _ = read_graph_file(str(f))
    assert dict(zip(map(tuple, e.tolist()), w.tolist())) == {(0, 1): 1.0, (1, 2): -2.5, (2, 3): 0.03,
                                                              (3, 4): 0.5, (0, 4): 1.0}


def test_n_m_over_0_based_ids_is_a_header(tmp_path):
    """'6 7' over a 6-cycle and a chord written 0..5: a header, 6 nodes, max cut 6 -- not an edge 6-7 (8 nodes, 7)."""
    f = tmp_path / "g.txt"
    f.write_text("6 7\n" + "".join(f"{i} {j}\n" for i, j in CYCLE_AND_CHORD))
    (n, e, w), fmt, notes = read_graph_file(str(f))
    assert (fmt, n, len(e)) == ("gset", 6, 7) and np.all(w == 1) and any("0-based" in note for note in notes)
    assert brute_force(n, e, w)[0] == 6
    one = tmp_path / "one.txt"                                       # the same graph written 1-based
    one.write_text("6 7\n" + "".join(f"{i + 1} {j + 1}\n" for i, j in CYCLE_AND_CHORD))
    assert graph_digest(*read_graph_file(str(one))[0]) == graph_digest(n, e, w)
    (n8, e8, w8), _, _ = read_graph_file(str(f), "edges")           # named an edge list, it is one
    assert n8 == 8 and brute_force(n8, e8, w8)[0] == 7
    # the other rules stand: ids 0..6 are not 0..5, a count that differs is no header, weighted lines are 1-based
    f.write_text("6 7\n" + "".join(f"{i} {j + 1}\n" for i, j in CYCLE_AND_CHORD))
    assert read_graph_file(str(f))[1] == "edges"
    f.write_text("6 7\n0 1\n1 2\n")
    assert read_graph_file(str(f))[1] == "edges"
    f.write_text("4 2\n0 1 1\n1 2 1\n")
    with pytest.raises(GraphFormatError, match="g.txt:2: node id 0 is out of range 1..4"):
        read_graph_file(str(f))


def test_digest_is_the_content_whatever_the_file(tmp_path):
    """The same graph with lines shuffled, edges reversed, comments and another name: one digest; a weight moved by
    1e-12 or one more node: another. The vendored graphs' digests recorded in best_known.csv are their files'."""
    n, e, w = weighted_graph(12, 0.4, 5)
    a, b = tmp_path / "a.txt", tmp_path / "G14.txt"
    write_gset(a, n, e, w)
    rng = np.random.default_rng(0)
    order, flip = rng.permutation(len(e)), rng.random(len(e)) < 0.5
    lines = [f"{(j if f else i) + 1} {(i if f else j) + 1} {float(x)!r}\n"
             for (i, j), x, f in zip(e[order], w[order], flip)]
    b.write_text(f"# the same graph\n{n} {len(e)}\n" + "# shuffled, some edges reversed\n".join(lines))
    digest = graph_digest(*read_graph_file(str(a))[0])
    assert graph_digest(*read_graph_file(str(b))[0]) == digest
    w2 = w.copy()
    w2[3] += 1e-12
    assert graph_digest(n, e, w2) != digest and graph_digest(n + 1, e, w) != digest
    with open(os.path.join(GSET_DIR, "best_known.csv"), newline="") as f:
        recorded = {r["graph"]: r["digest"] for r in csv.DictReader(f)}
    assert sum(bool(d) for d in recorded.values()) == 64
    files = sorted(glob.glob(os.path.join(GSET_DIR, "*.txt")))
    assert len(files) == len(GSET_REFERENCE) == 7
    for path in files:
        name, digest = os.path.basename(path)[:-4], graph_digest(*read_graph_file(path)[0])
        assert recorded[name] == digest and gset_name(digest) == (name, GSET_REFERENCE[name][0])
        assert gset_reference(digest) == GSET_REFERENCE[name]


def test_best_known_and_folder_follow_the_content_not_the_name(tmp_path, capsys):
    """A 30-node graph saved as G14.txt has no best known cut (not G14's 3064); G14 under another name has; the
    default folder names say what the run is."""
    path = tmp_path / "G14.txt"
    write_gset(path, *random_graph(30, 0.2, 1))
    res = main(["--graph", str(path), "--quick", "--out-dir", str(tmp_path / "o"), "--no-progress"])
    assert res["nodes"] == 30 and res["best_known"] is None and "best known" not in capsys.readouterr().out
    assert res["graph_digest"] == graph_digest(*read_graph_file(str(path))[0])
    mine = tmp_path / "mine.txt"
    mine.write_bytes(open(os.path.join(GSET_DIR, "G14.txt"), "rb").read())
    assert gset_reference(graph_digest(*read_graph_file(str(mine))[0])) == (3064, 3191.57)
    cfg = MaxcutConfig(graph=str(path))
    cfg.read_graph()
    assert cfg.folder_name() == f"derandomise-G14-{res['graph_digest'][:8]}"
    cfg = TheoremConfig(graph=str(mine))
    cfg.read_graph()
    assert cfg.folder_name() == "theorem-mine-" + cfg.graph_digest[:8]
    assert MaxcutConfig().folder_name() == "fig5" and TheoremConfig().folder_name() == "theorem"
    assert MaxcutConfig(nodes=20).folder_name() == "derandomise-torch_20_0.6_seed42"
    assert MaxcutConfig(graph_source="networkx").folder_name() == "derandomise-gnp_15_0.6_seed42"


def test_gset_benchmark_matches_best_known_by_content(tmp_path, monkeypatch):
    """--gset-dir: a 5-node file named G1.txt is not the G-set's G1 -- no best known (not 0.03% of 11624), and
    the table says so; G14's content under another name gets G14's. The graphs' runs are stubbed."""
    gdir = tmp_path / "g"
    gdir.mkdir()
    write_gset(gdir / "G1.txt", 5, np.array([[0, 1], [1, 2], [2, 3], [3, 4]]), np.ones(4))
    (gdir / "planar.txt").write_bytes(open(os.path.join(GSET_DIR, "G14.txt"), "rb").read())
    monkeypatch.setattr(gset_all, "run_graph", lambda name, *a, **k: {
        "graph": name, "status": "ok", "nodes": 5, "edges": 4, "sdp_value": 4.0, "gw_expectation": 4.0,
        "gw_best_of_k": 4.0, "cut": 4.0, "cut_polished": 4.0, "cut_tabu": None, "tabu_flips_per_node": 0,
        "sdp_s": 0.1, "optimize_s": 0.1, "polish_s": 0.1, "tabu_s": None, "wall_s": 1.0})
    said = []
    rows = {r["graph"]: r for r in gset_all.run(str(gdir), str(tmp_path / "out"), echo=said.append)}
    assert rows["G1"]["best_known"] is None and rows["G1"]["derandomised_pct"] is None
    assert rows["planar"]["best_known"] == 3064
    assert "best known –: the file holds no G-set graph on record" in said[-1] and ": G1" in said[-1]


def test_sdp_is_a_bound_at_every_weight_scale():
    """Unit-sized L-BFGS tolerances stopped the SDP early at weights 1e-8 (25.5 for an optimum of 39.2)."""
    n, e, w = weighted_graph(16, 0.4, 3)
    optimum = brute_force(n, e, w)[0]
    V1, v1 = solve_sdp(n, e, w, torch.Generator().manual_seed(0))
    for c in SCALES:
        V, v = solve_sdp(n, e, w * c, torch.Generator().manual_seed(0))
        if c == 2.0 ** -30:                       # a power of two: the same arithmetic, exactly
            assert np.array_equal(V, V1) and v == v1 * c
        assert v / c == pytest.approx(v1, rel=1e-12) and v / c >= optimum


def test_every_weight_scale_gives_the_same_partition(tmp_path, monkeypatch):
    """main.py --graph --quick --polish --tabu (SDP, float32 pathwise optimiser, roundings, one-flip and tabu
    searches, networkx): the same partition at every scale, every cut in the graph's own units."""
    monkeypatch.setattr(experiments, "draw", lambda *a: None)      # the figures are tested elsewhere
    n, e, w = weighted_graph(40, 0.2, 7)
    runs = {}
    for c in (1.0,) + SCALES:
        write_gset(tmp_path / f"g{c}.txt", n, e, w * c)
        runs[c] = main(["--graph", str(tmp_path / f"g{c}.txt"), "--quick", "--polish", "--tabu", "5",
                        "--no-progress", "--out-dir", str(tmp_path / f"o{c}")])
    unit = runs[1.0]
    for c in SCALES:
        assert runs[c]["partition"] == unit["partition"]
        for key in ("cut", "cut_polished", "cut_tabu", "gw_best_of_k", "nx_one_exchange"):
            assert runs[c][key] / c == pytest.approx(unit[key], rel=1e-14), key
        assert runs[c]["sdp_value"] / c == pytest.approx(unit["sdp_value"], rel=1e-12)
        assert runs[c]["gw_expectation"] / c == pytest.approx(unit["gw_expectation"], rel=1e-9)
    # the local searches compare gains with 1e-9 of the weights' scale, not with 1e-9
    start = np.zeros(n, dtype=np.int64)
    one, tabu = local_search(n, e, w, start), tabu_search(n, e, w, start, 5 * n)
    for c in (2.0 ** -40, 1e-12, 1e40):
        assert np.array_equal(local_search(n, e, w * c, start), one)
        assert np.array_equal(tabu_search(n, e, w * c, start, 5 * n), tabu)
    assert weight_scale(np.ones(3)) == weight_scale(np.array([1.0, -1.0])) == 1.0     # unit and ±1: as before
    assert weight_scale(np.array([3.7])) == 4.0 and weight_scale(np.array([1e40])) == 2.0 ** 133


def test_theorem_descent_is_the_same_at_every_weight_scale():
    """Theorem 5.2's descent: the same end point and cuts (exactly for a power of two), smoothed cuts in w's units."""
    n, e, w = weighted_graph(10, 0.5, 4)
    V = torch.as_tensor(solve_sdp(n, e, w, torch.Generator().manual_seed(0))[0])

    def descent(c):
        return descend(V, Graph(n, e, w * c, "cpu"), torch.as_tensor(e), torch.as_tensor(w * c), 0.03, 1e-4,
                       DescentSettings(max_steps=15), torch.Generator().manual_seed(1), progress=False)
    unit = descent(1.0)
    for c in (2.0 ** -100, 1e40):
        d, exact = descent(c), c == 2.0 ** -100
        torch.testing.assert_close(d["x"], unit["x"], rtol=0 if exact else 1e-7, atol=0 if exact else 1e-9)
        assert d["smoothed_cut"] / c == pytest.approx(unit["smoothed_cut"], rel=0 if exact else 1e-12)
        np.testing.assert_allclose(d["history"]["cut"] / c, unit["history"]["cut"], rtol=0 if exact else 1e-14)
        assert d["bound"] / c == pytest.approx(unit["bound"], rel=0 if exact else 1e-12)
        assert d["objective_start"] == pytest.approx(unit["objective_start"], rel=0 if exact else 1e-12)
        assert d["certified"] == unit["certified"] and d["monotone"] == unit["monotone"]


@pytest.mark.parametrize("experiment", ["derandomise", "theorem"])
def test_weights_beyond_the_range_are_one_line(tmp_path, capsys, experiment):
    path = tmp_path / "tiny.txt"
    write_gset(path, 3, np.array([[0, 1], [1, 2]]), np.array([1e-120, 2e-120]))
    with pytest.raises(SystemExit) as e:
        main(["--experiment", experiment, "--graph", str(path), "--quick", "--out-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "tiny" in err and "2e-120" in err and "rescale" in err and "--lr" not in err


def test_gset_folder_skips_what_is_not_a_regular_file_unopened(tmp_path):
    """A folder, a FIFO (opening it waits forever), a link to it, a socket and a broken link named *.txt are
    skipped and named; a link to a graph file is that file. An alarm fails the test instead of hanging."""
    def hang(*_):
        raise TimeoutError("a FIFO was opened")
    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(10)
    sock = socket.socket(socket.AF_UNIX)
    try:
        g = tmp_path / "g"
        g.mkdir()
        write_gset(g / "a.txt", 3, np.array([[0, 1], [1, 2]]), np.ones(2))
        os.symlink(g / "a.txt", g / "link.txt")
        (g / "x.txt").mkdir()
        os.mkfifo(g / "y.txt")
        os.symlink(g / "y.txt", g / "z.txt")
        os.symlink(g / "gone", g / "broken.txt")
        sock.bind(str(g / "s.txt"))
        files, skipped = gset_all.graph_files(str(g))
        assert sorted(name for name, _ in files) == ["a", "link"]
        assert skipped == ["broken.txt", "s.txt", "x.txt", "y.txt", "z.txt"]
        with pytest.raises(gset_all.BenchmarkError, match="no y.txt in .* that is a regular file"):
            gset_all.graph_files(str(g), only=["y"])
        with pytest.raises(GraphFormatError, match="y.txt: not a regular file"):
            read_graph_file(str(g / "y.txt"))
    finally:
        sock.close()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
