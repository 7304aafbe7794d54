"""The command line and the run folder: options refused where they do not apply, one line and exit 2 for bad
input, one rule for interrupts (exit 130; what was computed goes beside the run folder, never over it)."""
import json
import os
import signal

import pytest

from JohnsonLindenstrauss.main import main

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
    config["package"] = "MAXCUT"
    json.dump(config, open(out / "config.json", "w"))
    assert "not of JohnsonLindenstrauss" in exits(["--plot-only", str(out)], 2, capsys)
    del config["package"]                                    # a folder an older version wrote
    json.dump(config, open(out / "config.json", "w"))
    assert "older version" in exits(["--plot-only", str(out)], 2, capsys)


def test_one_rule_for_interrupts_and_write_failures(tmp_path, monkeypatch, capsys):
    """Ctrl-C before the first step or in the baselines: exit 130, nothing written. During the optimisation:
    exit 130, the best mean matrix so far in ``out.interrupted``. A failed write: exit 1."""
    from JohnsonLindenstrauss import baselines, sampler, train_fast, utils
    out = tmp_path / "out"
    argv = [*QUICK, "--out-dir", str(out)]
    main(argv)
    before = snapshot(out)
    for module, name in [(sampler.GaussianSampler, "__init__"), (baselines, "pca_projection")]:
        with monkeypatch.context() as m:
            signal_in(m, module, name)
            assert "nothing written" in exits(argv + ["--seed", "5"], 130, capsys)
        assert snapshot(out) == before and sorted(os.listdir(tmp_path)) == ["out"], name
    with monkeypatch.context() as m:
        m.setattr(utils, "write_config", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device")))
        assert "No space left" in exits(argv + ["--seed", "5"], 1, capsys)
    assert snapshot(out) == before and sorted(os.listdir(tmp_path)) == ["out"]
    with monkeypatch.context() as m:
        signal_in(m, train_fast, "_max_step", call=50)
        assert "out.interrupted" in exits(argv + ["--seed", "5"], 130, capsys)
    assert snapshot(out) == before and sorted(os.listdir(tmp_path)) == ["out", "out.interrupted"]
    res = json.load(open(tmp_path / "out.interrupted" / "results.json"))
    assert res["interrupted"] and 0 < res["steps_run"] < 300 and res["max_distortion"] < 1
    assert sorted(os.listdir(tmp_path / "out.interrupted")) == sorted(before)


def test_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        main([*QUICK, "--steps", "5", "--out-dir", str(tmp_path / "out")])
    finally:
        os.umask(old)
    assert (os.stat(tmp_path / "out" / "projection.npy").st_mode & 0o777) == 0o644
    assert json.load(open(tmp_path / "out" / "config.json"))["threads"] == 1
