"""A run folder a researcher can cite (issue 38): config.json records the code version, every option as the run
used it, the libraries' versions and each input file's absolute path and SHA-256."""
import dataclasses
import hashlib
import json
import os
import subprocess

from MAXCUT import gw, utils
from MAXCUT.experiments import MaxcutConfig, TheoremConfig
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
    assert config["code"]["package"] == "MAXCUT"
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
