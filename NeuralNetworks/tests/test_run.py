"""The command line and the run folder: options declared once per experiment, one line and exit 2 for bad input,
one rule for interrupts (exit 130; what was computed goes beside the run folder, never over it)."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import NeuralNetworks
from NeuralNetworks.main import main, parse_args

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUICK = ["--quick", "--no-progress"]


def signal_in(monkeypatch, module, name, call=1):
    """Patch ``module.name`` so that its ``call``-th call delivers a real SIGINT (one Ctrl-C), then runs it."""
    original, calls = getattr(module, name), []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            signal.raise_signal(signal.SIGINT)
        return original(*args, **kwargs)
    monkeypatch.setattr(module, name, interrupted)


def exits(argv, code, capsys):
    """Run ``main(argv)``, expect exit status ``code`` and one line on stderr; return that line."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == code and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def snapshot(folder):
    return {f: (folder / f).read_bytes() for f in sorted(os.listdir(folder))}


def assert_plot_only_redraws(folder):
    """``--plot-only folder`` redraws every figure of the run there, byte for byte (PNG), from its saved files."""
    pngs = sorted(p for p in os.listdir(folder) if p.endswith(".png"))
    assert pngs
    before = {p: (folder / p).read_bytes() for p in pngs}
    for p in os.listdir(folder):
        if p.endswith((".png", ".pdf")):
            os.remove(folder / p)
    main(["--plot-only", str(folder)])
    assert sorted(p for p in os.listdir(folder) if p.endswith(".png")) == pngs
    for p in pngs:
        assert (folder / p).read_bytes() == before[p], p
        assert (folder / (p[:-4] + ".pdf")).stat().st_size > 0


def test_each_experiment_takes_only_its_own_options(capsys):
    """Refused by construction whatever the value, a default included (claims trains width 256)."""
    for argv, name in [(["--experiment", "claims", "--width", "1000"], "--width"),
                       (["--experiment", "claims", "--batch", "50"], "--batch"),
                       (["--experiment", "fig2", "--seed", "0"], "--seed"),
                       (["--experiment", "sosp", "--lam", "1e-4"], "--lam"),
                       (["--experiment", "sosp", "--activation", "smooth_relu"], "--activation"),
                       (["--offset", "0"], "--offset"), (["--bogus"], "--bogus")]:
        err = exits(argv, 2, capsys)
        assert name in err and ("does not apply" in err or "unrecognized" in err)
    assert parse_args(["--experiment", "claims", "--seeds", "2"]) == ("claims", {"seeds": 2})


@pytest.mark.parametrize("argv", [["--width", "0"], ["--steps", "-5"], ["--lr", "nan"], ["--width", "1e12"],
                                  ["--batch", "100000000000"], ["--d", "1000000"], ["--d", "1", "--k", "1"],
                                  ["--k", "2", "--experiment", "claims", "--d", "2"], ["--depth", "0"],
                                  ["--loss", "foo"], ["--seed", "-1"], ["--seed", str(2 ** 29)], ["--threads", "0"],
                                  ["--experiment", "fig2", "--lam-grid", "0", "1", "5"],
                                  ["--experiment", "fig2", "--lam-grid", "1e-3", "1", "2.5"],
                                  ["--experiment", "sosp", "--d", "4"], ["--experiment", "sosp", "--nodes", "2"],
                                  ["--experiment", "sosp-claims", "--rows", "base,bogus"],
                                  ["--experiment", "sosp-claims", "--path-rows", "deep"],
                                  ["--experiment", "sosp-claims", "--d", "4"],
                                  ["--experiment", "sosp-claims", "--lams", "1e-3", "-1e-4"]]
                         + ([] if torch.cuda.is_available() else [["--device", "cuda"]]))
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, argv, capsys):
    out = tmp_path / "out"
    err = exits([*argv, "--out-dir", str(out)], 2, capsys)
    assert argv[0] in err or argv[-2] in err or "memory" in err, err
    assert not out.exists() and os.listdir(tmp_path) == []


def test_bad_input_from_the_command_line(tmp_path):
    p = subprocess.run([sys.executable, os.path.join(ROOT, "NeuralNetworks", "main.py"), "--width", "0",
                        "--out-dir", str(tmp_path / "out")], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "--width" in p.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("where", ["file_child", "proc", "long_name", "foreign"])
def test_unwritable_out_dir_refused_before_any_work(tmp_path, where, capsys):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    out = {"file_child": tmp_path / "a_file" / "out", "proc": "/proc/x/out", "long_name": tmp_path / ("n" * 300),
           "foreign": tmp_path / "other"}[where]
    assert "--out-dir" in exits([*QUICK, "--out-dir", str(out)], 2, capsys)
    assert sorted(os.listdir(tmp_path)) == ["a_file", "other"] and os.listdir(tmp_path / "other") == ["notes.txt"]


def test_plot_only_refuses_other_options_and_other_folders(tmp_path, capsys):
    out = tmp_path / "out"
    main([*QUICK, "--steps", "20", "--width", "8", "--out-dir", str(out)])
    assert "--seed" in exits(["--plot-only", str(out), "--seed", "3"], 2, capsys)
    assert "--plot-only" in exits(["--plot-only", str(tmp_path)], 2, capsys)
    config = json.load(open(out / "config.json"))
    config["package"] = "MAXCUT"
    json.dump(config, open(out / "config.json", "w"))
    assert "not of NeuralNetworks" in exits(["--plot-only", str(out)], 2, capsys)
    del config["package"]                                    # a folder an older version wrote
    json.dump(config, open(out / "config.json", "w"))
    assert "older version" in exits(["--plot-only", str(out)], 2, capsys)


def test_outputs_follow_the_umask_and_killed_runs_leave_nothing(tmp_path):
    out = tmp_path / "out"
    stale = tmp_path / ".out.staging-999999999.abc"        # a killed run's staging folder (no such process)
    stale.mkdir()
    old = os.umask(0o022)
    try:
        main([*QUICK, "--steps", "20", "--width", "8", "--out-dir", str(out)])
    finally:
        os.umask(old)
    assert (os.stat(out).st_mode & 0o777) == 0o755 and (os.stat(out / "results.json").st_mode & 0o777) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["out"]
    config = json.load(open(out / "config.json"))
    assert config["experiment"] == "fig3" and config["args"]["width"] == 8 and config["threads"] == 1
    assert json.loads(json.dumps(__import__("NeuralNetworks.utils").utils.plain(
        {"a": [1.0, float("nan")], "b": np.array([np.inf, 2.0])}))) == {"a": [1.0, None], "b": [None, 2.0]}


def test_one_rule_for_interrupts_and_write_failures(tmp_path, monkeypatch, capsys):
    """Ctrl-C before the optimisation or while writing: exit 130, nothing written. During the optimisation:
    exit 130, what was trained in ``out.interrupted``. A failed write: exit 1. The run folder is never touched."""
    from NeuralNetworks import experiments, model, train_fast, utils
    out = tmp_path / "out"
    argv = [*QUICK, "--steps", "50", "--width", "32", "--out-dir", str(out)]
    main(argv)
    before = snapshot(out)
    cases = [(model, "init_student", 1, 130), (train_fast, "_record", 1, 130), (experiments, "draw_fig3", 1, 130),
             (utils, "write_config", 1, 130)]
    for module, name, call, code in cases:
        with monkeypatch.context() as m:
            signal_in(m, module, name, call)
            assert "nothing written" in exits(argv + ["--seed", "5"], code, capsys)
        assert snapshot(out) == before and sorted(os.listdir(tmp_path)) == ["out"], name
    with monkeypatch.context() as m:
        m.setattr(utils, "write_json", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device")))
        assert "No space left" in exits(argv + ["--seed", "5"], 1, capsys)
    assert snapshot(out) == before and sorted(os.listdir(tmp_path)) == ["out"]
    with monkeypatch.context() as m:
        signal_in(m, train_fast, "_record", call=10)             # mid-training: what was trained is kept beside
        assert "out.interrupted" in exits(argv + ["--seed", "6"], 130, capsys)
    assert snapshot(out) == before and sorted(os.listdir(tmp_path)) == ["out", "out.interrupted"]
    res = json.load(open(tmp_path / "out.interrupted" / "results.json"))
    assert res["interrupted"] and 0 < res["steps_run"] < 50
    assert sorted(os.listdir(tmp_path / "out.interrupted")) == sorted(before)


def test_sosp_ctrl_c_keeps_the_points_certified(tmp_path, monkeypatch, capsys):
    """In the sweep, a Ctrl-C keeps the points already certified (csv, npz, results), without PGD, table or figure."""
    from NeuralNetworks import sosp
    signal_in(monkeypatch, sosp, "certified_point", call=2)
    out = tmp_path / "out"
    assert "1 of 10 points (1 certified minima" in exits(["--experiment", "sosp", *QUICK, "--width", "16", "--out-dir",
                                               str(out)], 130, capsys)
    kept = tmp_path / "out.interrupted"
    assert not out.exists() and sorted(os.listdir(kept)) == ["MANIFEST.json", "config.json", "results.json",
                                                             "sosp.csv", "sosp_points.npz"]
    assert np.load(kept / "sosp_points.npz")["W"].shape == (1, 16, 2)
    res = json.load(open(kept / "results.json"))
    assert res["interrupted"] and res["pgd"] == [] and res["points_planned"] == 10


def test_sosp_ctrl_c_with_worker_processes_ends_the_workers(tmp_path, monkeypatch, capsys):
    import multiprocessing
    from NeuralNetworks import sosp
    signal_in(monkeypatch, sosp, "_received", call=2)
    out = tmp_path / "out"
    exits(["--experiment", "sosp", *QUICK, "--width", "16", "--threads", "2", "--out-dir", str(out)], 130, capsys)
    assert sorted(os.listdir(tmp_path / "out.interrupted")) == ["MANIFEST.json", "config.json", "results.json",
                                                                "sosp.csv", "sosp_points.npz"]
    assert multiprocessing.active_children() == []


def test_thread_policy(tmp_path):
    """One thread for training loops; sosp at width >= 128 one worker process per core; --threads overrides."""
    from NeuralNetworks.experiments import SospConfig
    from NeuralNetworks.utils import available_cores
    cores = available_cores()
    assert SospConfig().default_threads() == cores and SospConfig(width=64).default_threads() == 1
    main(["--experiment", "fig2", *QUICK, "--out-dir", str(tmp_path / "f")])
    assert json.load(open(tmp_path / "f" / "config.json"))["threads"] == 1


def test_ctrl_c_from_the_command_line_with_worker_processes(tmp_path):
    """A real Ctrl-C (SIGINT to the process group) during a sosp sweep in two worker processes: exit 130, one
    line, the points so far in out.interrupted, and no warning of leaked semaphores from the ended workers."""
    import time
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, "NeuralNetworks", "main.py"), "--experiment", "sosp",
                          "--width", "32", "--threads", "2", "--seeds", "1", "--lam-grid", "1e-3", "1e-1", "3",
                          "--steps", "400000", "--no-progress", "--out-dir", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for _ in range(600):                 # the staging folder appears once the options are checked
        if os.listdir(tmp_path) or p.poll() is not None:
            break
        time.sleep(0.05)
    time.sleep(4)
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and len(err.strip().splitlines()) == 1 and "leaked" not in err, err
    assert sorted(os.listdir(tmp_path)) == ["out.interrupted"]


def test_config_is_citable(tmp_path, monkeypatch):
    """config.json: the checkout's commit and dirty flag as git says, every option as used (no null), the library
    versions installed, and an input file's absolute path with hashlib's SHA-256 of it."""
    import hashlib
    from importlib import metadata
    from NeuralNetworks import utils
    from NeuralNetworks.experiments import SospClaimsConfig, SospConfig
    def git():      # others may commit or edit meanwhile: the run's answer is git's before or after it
        out = [subprocess.run(["git", *c], cwd=ROOT, capture_output=True, text=True).stdout
               for c in (["rev-parse", "HEAD"], ["status", "--porcelain"])]
        return {"package": "NeuralNetworks", "version": NeuralNetworks.__version__, "commit": out[0].strip(),
                "dirty": bool(out[1].strip())}
    before = git()
    main([*QUICK, "--steps", "20", "--width", "8", "--out-dir", str(tmp_path / "out")])
    config = json.load(open(tmp_path / "out" / "config.json"))
    assert config["code"] in (before, git()) and len(config["code"]["commit"]) == 40
    args = config["args"]
    assert None not in args.values() and args["device"] == "cpu" and args["seed"] == 0 and args["quick"] is True
    assert args["steps"] == 20 and args["lam"] == 1e-4 and args["out_dir"] == os.path.realpath(tmp_path / "out")
    for name in ("scipy", "scikit-learn", "networkx", "matplotlib", "numpy"):
        assert config[name] == metadata.version(name)
    assert config["python"] and config["torch"] == torch.__version__ and config["inputs"] == []
    assert SospConfig().nodes == 90 and SospConfig(k=2, d=3).nodes == 40       # the None defaults, resolved
    assert SospClaimsConfig().width == 1000 and SospClaimsConfig().quick({}).width == 16
    data = tmp_path / "data.bin"
    data.write_bytes(b"\x00 some input \xff" * 1000)
    monkeypatch.chdir(tmp_path)
    utils.write_config(str(tmp_path), "fig3", {}, "cpu", inputs=["data.bin"])
    assert json.load(open(tmp_path / "config.json"))["inputs"] == [
        {"path": str(data), "sha256": hashlib.sha256(data.read_bytes()).hexdigest()}]
    monkeypatch.setattr(utils, "__file__", str(tmp_path / "pkg" / "utils.py"))   # no checkout around it
    assert utils.code_version() == {"commit": None, "dirty": None}


def test_seed_help_gives_the_default_and_fig2_says_it_takes_none(capsys):
    """Every experiment that draws at random states in --help what --seed seeds and its default (0, the value
    of every run the README reports); fig2 draws nothing and its --help says that it takes no --seed."""
    from NeuralNetworks.main import EXPERIMENTS
    for experiment in EXPERIMENTS:
        with pytest.raises(SystemExit):
            main(["--experiment", experiment, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        if experiment == "fig2":
            assert "--seed" not in text.split("takes no --seed")[0] and "draws nothing at random" in text
        else:
            assert "--seed SEED" in text and "(default: 0, every run in the README)" in text
    assert "takes no --seed" in exits(["--experiment", "fig2", "--seed", "3"], 2, capsys)


def test_readme_teacher_example_finds_the_teachers_span(tmp_path):
    """The README's teacher example as written (about 5 s): a 3-direction noisy teacher in d = 10, recorded as
    used; W turns toward the teacher's span (its W⊥ share falls below half) and U is the orthonormal (10, 3)
    frame it used."""
    text = open(os.path.join(ROOT, "NeuralNetworks", "README.md")).read()
    section = text[text.index("## Another teacher"):]
    line = next(s.strip() for s in section.splitlines() if s.strip().startswith("python NeuralNetworks/main.py"))
    argv = line.split()[2:]
    argv[argv.index("--out-dir") + 1] = str(tmp_path / "out")
    res = main([*argv, "--no-progress"])
    args = json.load(open(tmp_path / "out" / "config.json"))["args"]
    assert (args["d"], args["k"], args["noise"], args["width"]) == (10, 3, 0.1, 200)
    with np.load(tmp_path / "out" / "history.npz") as h:
        U = h["U"]
    assert U.shape == (10, 3)
    np.testing.assert_allclose(U.T @ U, np.eye(3), atol=1e-5)
    assert res["perp_ratio_final"] < 0.5 * res["perp_ratio_init"] and res["test_mse"] < 0.1


@pytest.mark.parametrize("argv,option", [(["--width", "10000000"], "--width"),
                                         (["--experiment", "claims", "--seeds", "1000", "--d", "100000"], "--seeds"),
                                         (["--experiment", "sosp", "--width", "100000", "--lam-grid", "1e-5", "1e-1",
                                           "100000"], "--width")])
def test_memory_refusal_names_the_option_that_shrinks_the_run(argv, option, tmp_path, capsys):
    err = exits([*argv, "--out-dir", str(tmp_path / "out")], 2, capsys)
    assert "GiB of memory" in err and f"a smaller {option}" in err and not (tmp_path / "out").exists()
