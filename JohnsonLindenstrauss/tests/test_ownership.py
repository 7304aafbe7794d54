"""Nothing of a user's is ever deleted or overwritten: a run folder is replaced only when it holds exactly what an
earlier run wrote (its MANIFEST.json); a Ctrl-C or SIGTERM to the process group, or a broken earlier run under
--plot-only, is one line and a status. Real files, real signals."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from JohnsonLindenstrauss import main as main_module
from JohnsonLindenstrauss.main import main
from JohnsonLindenstrauss.tests.test_run import QUICK, exits

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HISTORY = "history.npz"


def tree(folder):
    """Every file under ``folder`` with its bytes: what a user would lose."""
    return {os.path.relpath(os.path.join(r, f), folder): open(os.path.join(r, f), "rb").read()
            for r, _, fs in os.walk(folder) for f in fs}


def test_a_folder_the_project_did_not_write_is_never_replaced(tmp_path, capsys):
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "config.json").write_text('{"my": 1}')
    (d / "thesis.tex").write_text("t")
    (d / "sub" / "data.csv").write_text("x")
    before = tree(d)
    assert "thesis.tex" in exits([*QUICK, "--out-dir", str(d)], 2, capsys)
    assert tree(d) == before and sorted(os.listdir(tmp_path)) == ["d"]
    assert "--out-dir is empty" in exits([*QUICK, "--out-dir", " "], 2, capsys)


def test_an_earlier_run_is_replaced_only_as_it_was_written(tmp_path, monkeypatch, capsys):
    """Notes added to an earlier run make it the user's: refused, kept byte for byte. A broken history or a
    results.json that is a list under --plot-only: one line. --quick writes beside the full run's folder."""
    monkeypatch.setattr(main_module, "HERE", str(tmp_path))
    main(QUICK)
    (out,) = [tmp_path / "results" / f for f in os.listdir(tmp_path / "results")]
    assert out.name.endswith("-quick")
    (out / "my_notes.txt").write_text("notes")
    before = tree(out)
    assert "my_notes.txt" in exits(QUICK, 2, capsys)
    assert tree(out) == before
    os.remove(out / "my_notes.txt")
    history = (out / HISTORY).read_bytes()
    (out / HISTORY).write_bytes(history[:100])
    exits(["--plot-only", str(out)], 2, capsys)
    (out / HISTORY).write_bytes(history)
    results = (out / "results.json").read_text()
    (out / "results.json").write_text("[1, 2]")
    assert "not a run's results" in exits(["--plot-only", str(out)], 2, capsys)
    (out / "results.json").write_text(results)
    main(QUICK)                                       # exactly the earlier run again: replaced
    assert os.listdir(tmp_path / "results") == [out.name] and json.load(open(out / "MANIFEST.json"))["files"]


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_to_the_process_group(tmp_path, sig, code):
    """While the libraries load, and mid-run: one line, the status, no staging folder left, the user's file
    beside the run untouched."""
    (tmp_path / "mine.txt").write_text("keep")
    for wait_for_staging in (False, True):
        p = subprocess.Popen([sys.executable, os.path.join(ROOT, "JohnsonLindenstrauss", "main.py"),
                              "--steps", "100000", "--no-progress",
                              "--out-dir", "o"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
        for _ in range(2400 if wait_for_staging else 6):
            if p.poll() is not None or any(".staging-" in f for f in os.listdir(tmp_path)):
                break
            time.sleep(0.05)
        time.sleep(0.3)
        os.killpg(p.pid, sig)
        _, err = p.communicate(timeout=120)
        assert p.returncode == code and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert sorted(os.listdir(tmp_path)) in (["mine.txt"], ["mine.txt", "o.interrupted"])
        assert (tmp_path / "mine.txt").read_text() == "keep"
