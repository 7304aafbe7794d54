"""The command line and the run folder: options refused where they do not apply, one line and exit 2 for bad
input, one rule for interrupts (exit 130; what was computed goes beside the run folder, never over it)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from MAXCUT.graphs import GSET_DIR
from MAXCUT.main import main

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
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == code and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def snapshot(folder):
    return {f: (folder / f).read_bytes() for f in sorted(os.listdir(folder))}


def assert_plot_only_redraws(folder):
    pngs = sorted(p for p in os.listdir(folder) if p.endswith(".png"))
    before = {p: (folder / p).read_bytes() for p in pngs}
    for p in os.listdir(folder):
        if p.endswith((".png", ".pdf")):
            os.remove(folder / p)
    main(["--plot-only", str(folder)])
    assert pngs and all((folder / p).read_bytes() == before[p] for p in pngs)


@pytest.mark.parametrize("where", ["file_child", "proc", "long_name", "foreign"])
def test_unwritable_out_dir_refused_before_any_work(tmp_path, where, capsys):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    out = {"file_child": tmp_path / "a_file" / "out", "proc": "/proc/x/out", "long_name": tmp_path / ("n" * 300),
           "foreign": tmp_path / "other"}[where]
    assert "--out-dir" in exits([*QUICK, "--out-dir", str(out)], 2, capsys)
    assert sorted(os.listdir(tmp_path)) == ["a_file", "other"]


def test_seeds_and_plot_only_refusals(tmp_path, capsys):
    for bad in ("-1", "123456789012345678901234", str(2 ** 29)):
        assert "--seed" in exits(["--seed", bad], 2, capsys)
    out = tmp_path / "out"
    main([*QUICK, "--steps", "5", "--out-dir", str(out)])
    assert "--seed" in exits(["--plot-only", str(out), "--seed", "3"], 2, capsys)
    config = json.load(open(out / "config.json"))
    config["package"] = "JohnsonLindenstrauss"
    json.dump(config, open(out / "config.json", "w"))
    assert "not of MAXCUT" in exits(["--plot-only", str(out)], 2, capsys)
    del config["package"]                                    # a folder an older version wrote
    json.dump(config, open(out / "config.json", "w"))
    assert "older version" in exits(["--plot-only", str(out)], 2, capsys)


def test_one_rule_for_interrupts_and_write_failures(tmp_path, monkeypatch, capsys):
    """Ctrl-C in the SDP, the baselines or the polish: exit 130, nothing written. During the optimisation:
    exit 130, what was computed in ``out.interrupted``. A failed write: exit 1. The run folder is never touched."""
    from MAXCUT import baselines, gw, optimizer, utils
    out = tmp_path / "out"
    argv = ["--graph", os.path.join(GSET_DIR, "G14.txt"), *QUICK, "--polish", "--sdp-iters", "50",
            "--out-dir", str(out)]
    main(argv)
    before = snapshot(out)
    for module, name in [(gw, "solve_sdp"), (gw, "gw_round"), (baselines, "local_search")]:
        with monkeypatch.context() as m:
            signal_in(m, module, name)
            assert "nothing written" in exits(argv + ["--seed", "5"], 130, capsys)
        assert snapshot(out) == before and sorted(os.listdir(tmp_path)) == ["out"], name
    with monkeypatch.context() as m:
        m.setattr(utils, "write_json", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device")))
        assert "No space left" in exits(argv + ["--seed", "5"], 1, capsys)
    assert snapshot(out) == before and sorted(os.listdir(tmp_path)) == ["out"]
    with monkeypatch.context() as m:
        signal_in(m, optimizer, "smoothed_objective", call=20)
        assert "out.interrupted" in exits(argv + ["--seed", "5"], 130, capsys)
    assert snapshot(out) == before and sorted(os.listdir(tmp_path)) == ["out", "out.interrupted"]
    res = json.load(open(tmp_path / "out.interrupted" / "results.json"))
    assert res["interrupted"] and 0 < res["steps_run"] < 100 and res["cut_polished"] >= res["cut"]


def test_killed_runs_leave_nothing_and_links_stay_links(tmp_path):
    stale = tmp_path / ".out.staging-999999999.abc"
    stale.mkdir()
    target, link = tmp_path / "out", tmp_path / "link"
    target.mkdir()
    link.symlink_to(target)
    old = os.umask(0o022)
    try:
        main([*QUICK, "--steps", "5", "--out-dir", str(link)])
    finally:
        os.umask(old)
    assert link.is_symlink() and (target / "results.json").exists() and sorted(os.listdir(tmp_path)) == ["link", "out"]
    assert (os.stat(target / "results.json").st_mode & 0o777) == 0o644


def test_ctrl_c_from_the_command_line_is_one_line(tmp_path):
    """A real SIGINT to the real command once its run has started: one line, exit 130, nothing written."""
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, "MAXCUT", "main.py"), "--graph",
                          os.path.join(GSET_DIR, "G22.txt"), "--no-progress", "--out-dir", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    for _ in range(600):                 # the staging folder appears once the arguments and graph are read
        if os.listdir(tmp_path) or p.poll() is not None:
            break
        time.sleep(0.05)
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "interrupted" in err and sorted(os.listdir(tmp_path)) in ([], ["out.interrupted"])
    assert np.isfinite(json.load(open(out.parent / "out.interrupted" / "results.json"))["cut"]) \
        if os.listdir(tmp_path) else True


def test_a_plain_triangle_runs_without_warnings(tmp_path):
    """Three nodes: the pathwise run warns of nothing (RuntimeWarnings are errors here) and cuts the optimum 2."""
    (tmp_path / "tri.txt").write_text("0 1\n1 2\n0 2\n")
    res = main(["--graph", str(tmp_path / "tri.txt"), *QUICK, "--out-dir", str(tmp_path / "o")])
    assert res["cut"] == res["exact"] == 2 and np.isfinite(res["sigma_relative_final"])
