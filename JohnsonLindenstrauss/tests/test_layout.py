"""The folder's layout (issue 37): main.py a short door without linter escapes, no line over 120 columns, and the
paper's algorithm first in train.py. That the fast path equals the plain loop is tested in test_jl.py
(``test_fast_optimiser_equals_the_plain_autograd_reference``)."""
import glob
import os

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_main_is_a_short_door_without_noqa():
    with open(os.path.join(HERE, "main.py"), encoding="utf-8") as f:
        text = f.read()
    assert len(text.splitlines()) <= 120 and "noqa" not in text


def test_no_source_line_over_120_columns():
    long = [f"{os.path.relpath(path, HERE)}:{i}" for path in glob.glob(os.path.join(HERE, "**", "*.py"), recursive=True)
            for i, line in enumerate(open(path, encoding="utf-8").read().splitlines(), 1) if len(line) > 120]
    assert not long, long


def test_the_plain_loop_comes_first_and_is_labelled():
    with open(os.path.join(HERE, "train.py"), encoding="utf-8") as f:
        head = f.read().splitlines()[:100]
    assert any("def optimise_plain" in line for line in head) and any("# App. G" in line for line in head)
    with open(os.path.join(HERE, "model.py"), encoding="utf-8") as f:
        head = f.read().splitlines()[:100]
    assert any("# Eq. 9" in line for line in head) and any("# App. G" in line for line in head)
