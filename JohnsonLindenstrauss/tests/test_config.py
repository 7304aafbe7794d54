"""A citable run folder (issue 38): config.json names the code version (git commit and dirty flag), every option
as the run used it (no None for a value it used), the libraries' versions, and each input file's absolute path
and SHA-256."""
import glob
import hashlib
import json
import math
import os
import subprocess

import numpy as np
import pytest

import JohnsonLindenstrauss
from JohnsonLindenstrauss import utils
from JohnsonLindenstrauss.main import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHORT = ["--quick", "--no-progress", "--draws", "10"]
LIBRARIES = ("python", "torch", "numpy", "scipy", "scikit-learn", "networkx", "matplotlib")


def git(*args):
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_config_names_the_commit_the_file_and_every_option_as_used(tmp_path, monkeypatch):
    f = tmp_path / "pts.npy"
    np.save(f, np.random.default_rng(0).standard_normal((30, 12)))
    monkeypatch.chdir(tmp_path)                          # the path given relative; the config holds it absolute
    main(["--data", "pts.npy", "--holdout", "5", "--k", "4", "--objective", "surrogate", "--steps", "5",
          *SHORT, "--out-dir", "o"])
    config = json.load(open(tmp_path / "o" / "config.json"))
    version = config["code"]
    if os.path.exists(os.path.join(ROOT, ".git")):
        assert version["commit"] == git("rev-parse", "HEAD").strip()
        assert version["dirty"] == bool(git("status", "--porcelain"))
    assert version["package"] == "JohnsonLindenstrauss" and version["version"] == JohnsonLindenstrauss.__version__
    assert config["inputs"] == [{"path": str(f), "sha256": hashlib.sha256(f.read_bytes()).hexdigest()}]
    args = config["args"]
    assert (args["n"], args["d"], args["holdout"], args["k"], args["steps"], args["draws"]) == (25, 12, 5, 4, 5, 10)
    assert (args["eps"], args["lam"], args["tau"]) == (0.1, 1e-2, math.sqrt(2 / 4))     # the surrogate's defaults
    assert args["out_dir"] == str(tmp_path / "o") and args["device"] == "cpu" and args["quick"]
    assert all(v is not None for k, v in args.items() if k != "tol")       # the surrogate runs all steps: no tol
    assert all(isinstance(config[lib], str) and config["versions"][lib] == config[lib] for lib in LIBRARIES)


def test_config_of_the_max_objective_and_of_the_theorem_resolve_their_defaults(tmp_path):
    main([*SHORT, "--n", "20", "--d", "40", "--k", "4", "--steps", "5", "--out-dir", str(tmp_path / "f")])
    args = json.load(open(tmp_path / "f" / "config.json"))["args"]
    assert args["tol"] == 0.01 and args["n"] == 20 and args["d"] == 40
    assert config_inputs(tmp_path / "f") == []                            # generated data: no input file
    res = main(["--experiment", "theorem", "--n", "10", "--d", "60", "--holdout", "0", *SHORT, "--out-dir",
                str(tmp_path / "t")])
    args = json.load(open(tmp_path / "t" / "config.json"))["args"]
    assert args["k"] == res["k"] and args["k_chosen"] == "premise" and None not in args.values()


def config_inputs(folder):
    return json.load(open(folder / "config.json"))["inputs"]


def test_digits_are_hashed_and_no_git_gives_none(tmp_path, monkeypatch):
    from JohnsonLindenstrauss.experiments import Fig7Config
    [bundled] = Fig7Config(data="digits").input_files()
    assert bundled.endswith("digits.csv.gz") and os.path.isfile(bundled)

    def no_git(*a, **k):
        raise FileNotFoundError("git")
    monkeypatch.setattr(subprocess, "run", no_git)
    assert utils.code_version() == {"commit": None, "dirty": None, "package": "JohnsonLindenstrauss"}


def test_every_experiment_states_the_seed_its_runs_recorded(capsys):
    """--help states each experiment's seed default; every run under results/ recorded that seed."""
    from JohnsonLindenstrauss.main import EXPERIMENTS
    for name, (cls, *_) in EXPERIMENTS.items():
        default = cls.__dataclass_fields__["seed"].default
        with pytest.raises(SystemExit):
            main(["--experiment", name, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--seed SEED seed of every random draw" in text and f"(default: {default}, the seed" in text
        for f in glob.glob(os.path.join(ROOT, "JohnsonLindenstrauss", "results", f"{name}*", "config.json")):
            assert json.load(open(f))["args"]["seed"] == default, f
