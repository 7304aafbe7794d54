"""Nothing of a user's is ever deleted or overwritten: a run folder is replaced only when it holds exactly what an
earlier run wrote (its MANIFEST.json); every way a run can end (bad input, Ctrl-C, SIGTERM, a broken earlier run
under --plot-only) is one line and a status. Real files, real signals to a process group."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from MAXCUT import main as main_module, utils
from MAXCUT.main import main
from MAXCUT.tests.test_run import QUICK, exits

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAST = [*QUICK, "--steps", "5", "--rounds", "20"]


def tree(folder):
    """Every file under ``folder`` with its bytes: what a user would lose."""
    return {os.path.relpath(os.path.join(r, f), folder): open(os.path.join(r, f), "rb").read()
            for r, _, fs in os.walk(folder) for f in fs}


def users_folder(path):
    path.mkdir(parents=True)
    (path / "sub").mkdir()
    (path / "config.json").write_text('{"my": 1}')
    (path / "thesis.tex").write_text("t")
    (path / "sub" / "data.csv").write_text("x")
    return tree(path)


def test_a_folder_the_project_did_not_write_is_never_replaced(tmp_path, capsys):
    """The probe's case: a folder holding a config.json, the user's thesis and a subfolder. Refused before any
    work, naming the files; every byte stays."""
    d = tmp_path / "d"
    before = users_folder(d)
    err = exits([*FAST, "--out-dir", str(d)], 2, capsys)
    assert "thesis.tex" in err and "did not write" in err
    assert tree(d) == before and sorted(os.listdir(tmp_path)) == ["d"]


def test_an_earlier_run_with_the_users_additions_is_kept(tmp_path, capsys):
    """A rerun replaces an earlier run only while it is exactly that run: notes added, a subfolder made or a
    result edited make it the user's; removing them makes it replaceable again."""
    out = tmp_path / "out"
    main([*FAST, "--out-dir", str(out)])
    listed = json.load(open(out / "MANIFEST.json"))["files"]
    assert set(listed) == set(os.listdir(out)) - {"MANIFEST.json"}
    (out / "my_notes.txt").write_text("notes")
    (out / "analysis").mkdir()
    before = tree(out)
    assert "my_notes.txt" in exits([*FAST, "--out-dir", str(out)], 2, capsys)
    assert tree(out) == before
    os.remove(out / "my_notes.txt")
    os.rmdir(out / "analysis")
    with open(out / "results.json", "a") as f:           # an edited result is no longer the run's own
        f.write(" ")
    before = tree(out)
    assert "results.json" in exits([*FAST, "--out-dir", str(out)], 2, capsys)
    assert tree(out) == before
    with open(out / "results.json", "rb+") as f:
        f.truncate(os.path.getsize(out / "results.json") - 1)
    main([*FAST, "--seed", "3", "--out-dir", str(out)])
    assert json.load(open(out / "config.json"))["args"]["seed"] == 3 and sorted(os.listdir(tmp_path)) == ["out"]


def test_the_interrupted_folder_is_guarded_too(tmp_path, capsys):
    """``<out>.interrupted`` is where a Ctrl-C puts what was computed: a user's folder of that name is refused
    before the run starts (not replaced on the next Ctrl-C)."""
    before = users_folder(tmp_path / "out.interrupted")
    assert "out.interrupted" in exits([*FAST, "--out-dir", str(tmp_path / "out")], 2, capsys)
    assert tree(tmp_path / "out.interrupted") == before and sorted(os.listdir(tmp_path)) == ["out.interrupted"]


def test_a_manifest_cannot_reach_outside_its_folder(tmp_path):
    """A manifest that lists ``../victim.txt`` (with its true hash) or an absolute path: replacing that run
    removes nothing outside it."""
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    out = tmp_path / "out"
    out.mkdir()
    digest = utils.sha256_of(victim)
    json.dump({"files": {"../victim.txt": digest, str(victim): digest}}, open(out / "MANIFEST.json", "w"))
    assert utils.read_manifest(out) == {}
    assert utils.foreign_files(out) == ["MANIFEST.json"]
    utils.remove_run(out)
    assert victim.read_text() == "mine" and (out / "MANIFEST.json").exists()


def test_default_folders_say_what_the_run_is(tmp_path, monkeypatch, capsys):
    """--quick does not replace the full run's folder; ``--out-dir ''`` is refused, not read as the default."""
    monkeypatch.setattr(main_module, "HERE", str(tmp_path))
    main(FAST)
    assert os.listdir(tmp_path / "results") == ["fig5-quick"]
    assert "--out-dir is empty" in exits([*FAST, "--out-dir", ""], 2, capsys)


def test_plot_only_on_broken_or_foreign_folders_is_one_line(tmp_path, capsys):
    """A truncated history, a results.json that is a list, a figure the user made in the run's folder: one
    line, exit 2, and the user's figure stays."""
    out = tmp_path / "out"
    main([*FAST, "--out-dir", str(out)])
    history = (out / "history.npz").read_bytes()
    (out / "history.npz").write_bytes(history[:100])
    exits(["--plot-only", str(out)], 2, capsys)               # one line, exit 2: asserted in exits
    (out / "history.npz").write_bytes(history)
    results = (out / "results.json").read_text()
    (out / "results.json").write_text("[1, 2]")
    assert "not a run's results" in exits(["--plot-only", str(out)], 2, capsys)
    (out / "results.json").write_text(results.replace('"rounds": 20', '"rounds": 21'))   # an edited number
    assert "changed since the run" in exits(["--plot-only", str(out)], 2, capsys)
    (out / "results.json").write_text(results)
    (out / "fig5_cut.png").write_bytes(b"my own figure")
    assert "fig5_cut.png" in exits(["--plot-only", str(out)], 2, capsys)
    assert (out / "fig5_cut.png").read_bytes() == b"my own figure"
    os.remove(out / "fig5_cut.png")
    main(["--plot-only", str(out)])
    assert utils.foreign_files(out) == []                 # redrawn figures recorded: still the run's own folder


def start(args, cwd, env=None):
    """``main.py args`` in a process group of its own, as a shell runs a command."""
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "MAXCUT", "main.py"), *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=env)


def stopped(p, sig, after=0.0, staging_in=None):
    """Send ``sig`` to ``p``'s process group ``after`` s after its staging folder appears in ``staging_in``
    (no folder: ``after`` s after the start)."""
    for _ in range(2400):
        if staging_in is None or p.poll() is not None or any(".staging-" in f for f in os.listdir(staging_in)):
            break
        time.sleep(0.05)
    time.sleep(after)
    os.killpg(p.pid, sig)
    _, err = p.communicate(timeout=120)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return p.returncode, err


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_while_the_libraries_load(tmp_path, sig, code):
    rc, err = stopped(start([*FAST, "--out-dir", "o"], tmp_path), sig, after=0.3)
    assert rc == code and "nothing written" in err and os.listdir(tmp_path) == []


def test_sigterm_during_a_run_removes_its_staging_folder(tmp_path):
    """SIGTERM to the process group during the optimisation: exit 143, one line, no hidden staging folder left,
    an earlier run in the folder unchanged."""
    (tmp_path / "mine.txt").write_text("keep")
    graph = os.path.join(ROOT, "MAXCUT", "data", "gset", "G22.txt")
    main(["--graph", graph, *FAST, "--sdp-iters", "5", "--out-dir", str(tmp_path / "o")])
    before = tree(tmp_path)
    rc, err = stopped(start(["--graph", graph, "--no-progress", "--out-dir", "o"], tmp_path), signal.SIGTERM,
                      after=0.5, staging_in=tmp_path)
    assert rc == 143 and "terminated" in err
    assert tree(tmp_path) == before and sorted(os.listdir(tmp_path)) == ["mine.txt", "o"]


def test_a_bogus_matplotlib_backend_is_not_read(tmp_path):
    """Figures are files: MPLBACKEND=bogus (which makes ``import matplotlib`` fail) does not stop a run."""
    p = start([*FAST, "--out-dir", "o"], tmp_path, env={**os.environ, "MPLBACKEND": "bogus"})
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert (tmp_path / "o" / "fig5_cut.png").exists()


def bench(args, capsys):
    """``benchmark.py args`` in this process: ``(exit status, stdout, stderr)``."""
    from MAXCUT.benchmark import main as benchmark
    try:
        benchmark(args)
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_benchmark_out_dir_is_guarded_and_corrupt_records_are_recomputed(tmp_path, capsys):
    """The whole-G-set benchmark: an out-dir that is a file, under /proc or holding the user's files is one line
    and exit 2, untouched; a truncated record is recomputed, not a traceback."""
    gdir = tmp_path / "g"
    gdir.mkdir()
    rng = np.random.default_rng(0)
    pairs = {tuple(sorted(rng.choice(20, 2, replace=False) + 1)) for _ in range(60)}
    (gdir / "T1.txt").write_text(f"20 {len(pairs)}\n" + "".join(f"{i} {j} 1\n" for i, j in sorted(pairs)))
    (tmp_path / "afile").write_text("x")
    users_folder(tmp_path / "theirs")
    before = tree(tmp_path / "theirs")
    for out in (tmp_path / "afile", "/proc/x/out", tmp_path / "theirs"):
        code, _, err = bench(["--gset-dir", str(gdir), "--out-dir", str(out), "--budget", "60"], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert tree(tmp_path / "theirs") == before and (tmp_path / "afile").read_text() == "x"
    out = tmp_path / "out"
    assert bench(["--gset-dir", str(gdir), "--out-dir", str(out), "--budget", "60"], capsys)[0] == 0
    table = (out / "gset_all.csv").read_bytes()
    (out / "gset_all.csv").write_bytes(table + b"my edit\n")          # an edited output is the user's now
    code, _, err = bench(["--gset-dir", str(gdir), "--out-dir", str(out), "--budget", "60"], capsys)
    assert code == 2 and "gset_all.csv" in err and (out / "gset_all.csv").read_bytes() == table + b"my edit\n"
    (out / "gset_all.csv").write_bytes(table)
    manifest = json.load(open(out / "MANIFEST.json"))          # stopped after T1's run, before its record:
    manifest["files"] = {k: v for k, v in manifest["files"].items()
                         if not k.startswith(("graphs/T1/", "graphs/T1.json"))}
    manifest["files"]["graphs/T1.json.log"] = utils.sha256_of(out / "graphs" / "T1.json.log")
    json.dump(manifest, open(out / "MANIFEST.json", "w"))     # its run folder, main.py's own, is no obstacle
    os.remove(out / "graphs" / "T1.json")
    code, text, err = bench(["--gset-dir", str(gdir), "--out-dir", str(out), "--budget", "60"], capsys)
    assert code == 0 and "1 graphs run, 0 from earlier records" in text, err
    record = out / "graphs" / "T1.json"
    cut = json.load(open(record))["cut"]
    record.write_text(record.read_text()[:30])
    code, text, err = bench(["--gset-dir", str(gdir), "--out-dir", str(out), "--budget", "60"], capsys)
    assert code == 0 and "1 graphs run, 0 from earlier records" in text, err
    assert json.load(open(record))["cut"] == cut
    (out / "notes.txt").write_text("mine")
    code, _, err = bench(["--gset-dir", str(gdir), "--out-dir", str(out), "--budget", "60"], capsys)
    assert code == 2 and "notes.txt" in err and (out / "notes.txt").read_text() == "mine"


def test_what_cannot_be_read_is_never_opened_or_trusted(tmp_path, capsys):
    """A pipe named MANIFEST.json or results.json is not opened (a reader would wait forever), a manifest nested
    too deep for the parser is no manifest: one line each, exit 2, nothing replaced."""
    import threading
    out = tmp_path / "out"
    main([*FAST, "--out-dir", str(out)])
    before = tree(out)
    os.rename(out / "results.json", tmp_path / "results.json")
    os.mkfifo(out / "results.json")
    timer = threading.Timer(20, lambda: os.kill(os.getpid(), signal.SIGTERM))    # a hang ends the test, failed
    timer.start()
    try:
        assert "results.json" in exits(["--plot-only", str(out)], 2, capsys)
        assert "results.json" in exits([*FAST, "--out-dir", str(out)], 2, capsys)
        os.remove(out / "results.json")
        os.rename(tmp_path / "results.json", out / "results.json")
        manifest = (out / "MANIFEST.json").read_bytes()
        os.remove(out / "MANIFEST.json")
        os.mkfifo(out / "MANIFEST.json")
        assert "MANIFEST.json" in exits([*FAST, "--out-dir", str(out)], 2, capsys)
        os.remove(out / "MANIFEST.json")
    finally:
        timer.cancel()
    (out / "MANIFEST.json").write_text("[" * 100000 + "]" * 100000)
    assert "MANIFEST.json" in exits([*FAST, "--out-dir", str(out)], 2, capsys)
    (out / "MANIFEST.json").write_bytes(manifest)
    (out / "results.json").write_text('{"a":' * 100000 + "1" + "}" * 100000)
    exits(["--plot-only", str(out)], 2, capsys)
    assert set(tree(out)) == set(before)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_python_drops_still_ends_the_run(tmp_path, monkeypatch, sig, code, capsys):
    """Python drops an exception raised inside a garbage-collector callback; a Ctrl-C or SIGTERM that lands
    there (matplotlib's weak references, while figures are drawn) still ends the run with its status, one
    line, nothing written."""
    import gc
    import weakref
    from MAXCUT import experiments

    class Victim:
        pass

    original = experiments.draw

    def draw_with_a_signal_in_a_callback(folder, res):
        victim = Victim()
        weakref.finalize(victim, signal.raise_signal, sig)
        del victim
        gc.collect()
        return original(folder, res)
    monkeypatch.setattr(experiments, "draw", draw_with_a_signal_in_a_callback)
    monkeypatch.setitem(main_module.EXPERIMENTS, "derandomise",
                        (*main_module.EXPERIMENTS["derandomise"][:2], draw_with_a_signal_in_a_callback,
                         main_module.EXPERIMENTS["derandomise"][3]))
    assert "nothing written" in exits([*FAST, "--out-dir", str(tmp_path / "out")], code, capsys)
    assert os.listdir(tmp_path) == []
