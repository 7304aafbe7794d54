"""A run folder a researcher can cite (issue 38): config.json records the code version, every option as the run
used it, the libraries' versions and each input file's absolute path and SHA-256; --seed's help gives the default
the run records; a user's own graph in networkx's formats is read and its partition written under its labels."""
import csv
import dataclasses
import hashlib
import json
import os
import subprocess

import pytest

import MAXCUT
from MAXCUT import gw, utils
from MAXCUT.experiments import MaxcutConfig, TheoremConfig
from MAXCUT.graphs import GraphFormatError
from MAXCUT.main import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAST = ["--quick", "--no-progress", "--steps", "5", "--rounds", "20"]
LIBRARIES = ("python", "torch", "numpy", "scipy", "scikit-learn", "networkx", "matplotlib")


def git(*args):
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()


def test_config_json_names_the_commit_the_options_as_used_and_the_input_hash(tmp_path, monkeypatch):
    graph = tmp_path / "ring.txt"
    graph.write_text("".join(f"{i} {(i + 1) % 10}\n" for i in range(10)))
    monkeypatch.chdir(tmp_path)                          # a relative path on the command line, recorded absolute
    main([*FAST, "--graph", "ring.txt", "--out-dir", str(tmp_path / "out")])
    config = json.load(open(tmp_path / "out" / "config.json"))
    assert config["inputs"] == [{"path": str(graph), "sha256": hashlib.sha256(graph.read_bytes()).hexdigest()}]
    if os.path.exists(os.path.join(ROOT, ".git")):
        assert config["code"]["commit"] == git("rev-parse", "HEAD")
        assert config["code"]["dirty"] == bool(git("status", "--porcelain"))
    assert config["code"]["package"] == "MAXCUT" and config["code"]["version"] == MAXCUT.__version__
    assert all(config["versions"][lib] for lib in LIBRARIES)
    args = config["args"]
    for used in ("steps", "samples", "lr_mean", "lr_sigma", "lam", "delta", "chains", "sdp_rank", "seed", "out_dir"):
        assert args[used] is not None, used
    assert args["steps"] == 5 and args["sdp_rank"] == gw.sdp_rank(10) and args["seed"] == 0
    assert args["estimator"] == "pathwise" and args["embedding"] == "sdp" and args["device"] in ("cpu", "cuda")
    assert args["lam"] == args["estimator_settings"]["lam"]


def test_defaults_are_recorded_as_the_values_the_run_uses():
    score = MaxcutConfig().as_used(15)             # Fig. 5: the authors' rule and seed
    assert (score["steps"], score["samples"], score["lr_mean"], score["lr_sigma"], score["lam"], score["seed"]) == (
        5000, 100, 0.01, 0.001, 1.0, 43)
    assert score["delta"] is None and score["chains"] is None        # the score rule has none: not used
    theorem = TheoremConfig().as_used(15)
    assert theorem["seed"] == 0 and theorem["nodes"] == 15 and theorem["sdp_rank"] == gw.sdp_rank(15)
    assert all(theorem[k] is not None for k in ("tol", "curvature_tol", "max_steps", "budget", "deltas", "lams"))


def test_code_version_outside_a_checkout_is_null_never_an_error(tmp_path):
    assert utils.code_version(str(tmp_path)) == {"commit": None, "dirty": None, "package": "MAXCUT"}
    (tmp_path / ".git").mkdir()                          # a broken checkout: git fails, the run goes on
    assert utils.code_version(str(tmp_path))["commit"] is None


def test_seed_help_gives_the_default_the_run_records(capsys):
    from MAXCUT import cli
    from MAXCUT.main import EXPERIMENTS
    helps = {e: cli.build_parser(EXPERIMENTS, e, "MAXCUT", "", "derandomise").format_help().replace("\n", " ")
             for e in EXPERIMENTS}
    assert "default: 43, the authors' Fig. 5 seed" in " ".join(helps["derandomise"].split())
    assert "(default: 0;" in helps["theorem"]
    assert MaxcutConfig().seed == 43 and MaxcutConfig(estimator="pathwise").seed == 0
    assert MaxcutConfig(graph="g.txt").seed == 0 and MaxcutConfig(graph="g.txt", estimator="score").seed == 43
    assert TheoremConfig().seed == 0

    @dataclasses.dataclass
    class Drawless:                       # an experiment without a seed says so in its --help
        rounds: int = dataclasses.field(default=1, metadata={"help": "a count"})
    text = cli.build_parser({"d": (Drawless,)}, "d", "MAXCUT", "", "d").format_help()
    assert "--seed SEED" not in text and "takes no --seed" in text


def _nx_graph(weighted):
    """A 5-cycle and a chord on the labels 10, 20, 30, 40, 55 (not 0..n-1)."""
    import networkx as nx
    g = nx.Graph()
    for k, (u, v) in enumerate([(10, 20), (20, 30), (30, 40), (40, 55), (55, 10), (10, 30)]):
        g.add_edge(u, v, **({"weight": 1.0 + k} if weighted else {}))
    return g


def test_networkx_edge_lists_are_read_with_their_weights(tmp_path):
    import networkx as nx
    from MAXCUT.graphs import graph_digest, read_graph_file
    g = _nx_graph(weighted=True)
    files = {"data": tmp_path / "data.txt", "weighted": tmp_path / "weighted.txt", "plain": tmp_path / "plain.txt"}
    nx.write_edgelist(g, files["data"])                    # "10 20 {'weight': 1.0}"
    nx.write_weighted_edgelist(g, files["weighted"])       # "10 20 1.0"
    nx.write_edgelist(_nx_graph(weighted=False), files["plain"])   # "10 20 {}": unit weights
    assert "{'weight': 1.0}" in files["data"].read_text() and "{}" in files["plain"].read_text()
    read = {k: read_graph_file(str(f), with_labels=True) for k, f in files.items()}
    assert graph_digest(*read["data"][0]) == graph_digest(*read["weighted"][0])
    (n, e, w), fmt, notes, labels = read["data"]
    assert fmt == "edges" and n == 5 and list(labels) == [10, 20, 30, 40, 55] and sorted(w) == [1, 2, 3, 4, 5, 6]
    assert any("networkx" in note for note in notes)
    assert list(read["plain"][0][2]) == [1.0] * 6
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 {'weight': 2.0}\n2 3 {'weight': 'heavy'}\n")
    with pytest.raises(GraphFormatError, match=r"bad.txt:2: weight 'heavy'"):
        read_graph_file(str(bad))
    bad.write_text("1 2 {}\n2 3 {'weight': \n")
    with pytest.raises(GraphFormatError, match=r"bad.txt:2: a networkx edge line"):
        read_graph_file(str(bad))


def test_partition_csv_maps_the_cut_back_to_the_files_labels(tmp_path):
    import networkx as nx
    g = _nx_graph(weighted=True)
    nx.write_edgelist(g, tmp_path / "mine.edgelist")
    res = main([*FAST, "--graph", str(tmp_path / "mine.edgelist"), "--out-dir", str(tmp_path / "out")])
    with open(tmp_path / "out" / "partition.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["label", "side"] and len(rows) == g.number_of_nodes()
    side = {int(r["label"]): int(r["side"]) for r in rows}
    assert set(side) == set(g.nodes) and set(side.values()) <= {0, 1}
    assert nx.cut_size(g, [v for v in g if side[v]], weight="weight") == res["cut"]    # the same cut, by label
    assert [side[v] for v in sorted(g)] == json.load(open(tmp_path / "out" / "results.json"))["partition"]
    from MAXCUT.graphs import read_graph_file
    gset = tmp_path / "g.txt"                              # G-set ids are 1-based: so are the labels
    gset.write_text("3 3\n1 2 1\n2 3 1\n1 3 1\n")
    assert list(read_graph_file(str(gset), with_labels=True)[3]) == [1, 2, 3]
    zero = tmp_path / "z.txt"                              # a header over 0-based unweighted lines: 0..n-1
    zero.write_text("3 3\n0 1\n1 2\n0 2\n")
    assert list(read_graph_file(str(zero), with_labels=True)[3]) == [0, 1, 2]


def test_the_authors_graph_writes_partition_csv_under_0_to_n_minus_1(tmp_path):
    res = main([*FAST, "--out-dir", str(tmp_path)])
    rows = (tmp_path / "partition.csv").read_text().splitlines()
    assert rows[0] == "label,side" and rows[1:] == [f"{i},{s}" for i, s in enumerate(res["partition"])]


def test_fig5_names_its_graph_and_the_authors_spectral_vectors(tmp_path, monkeypatch):
    from MAXCUT import experiments
    res = main([*FAST, "--out-dir", str(tmp_path)])
    figures = {}
    monkeypatch.setattr(experiments, "save_figure", lambda fig, stem: figures.update({os.path.basename(stem): fig}))
    experiments.draw(str(tmp_path), res)
    cut = figures["fig5_cut"]
    assert "the authors' G(15, 0.6)" in cut.axes[0].get_title() and "n = 15" in cut.axes[0].get_title()
    legend = [t.get_text() for t in cut.axes[0].get_legend().get_texts()]
    assert not any("GW" in label for label in legend)           # eigenvectors: a uniform random cut, not GW
    assert "expected cut of the spectral vectors (uniform random cut): 31" in legend
    sdp = [label for label in legend if label.startswith("SDP")]
    assert sdp == [f"SDP upper bound (certified): {res['sdp_upper_bound']:.2f}"]     # certified, two decimals
    assert "n = 15" in figures["fig5_sigma"]._suptitle.get_text()
