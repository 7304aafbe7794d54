"""The folder's layout as CONVENTIONS.md asks: a short main.py without linter escapes, no line over 120 columns,
and the paper's update (Eq. 7) within the first lines of optimizer.py."""
import glob
import os

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_main_is_a_short_door_without_noqa():
    with open(os.path.join(HERE, "main.py")) as f:
        text = f.read()
    assert len(text.splitlines()) <= 120 and "noqa" not in text


def test_no_source_line_over_120_columns():
    for path in glob.glob(os.path.join(HERE, "**", "*.py"), recursive=True):
        with open(path) as f:
            long = [k for k, line in enumerate(f, 1) if len(line.rstrip("\n")) > 120]
        assert not long, f"{os.path.relpath(path, HERE)}: lines {long}"


def test_the_paper_comes_first():
    """Eq. 7 labelled at the lines implementing it, in the first 100 lines of model.py and optimizer.py."""
    for name in ("model.py", "optimizer.py"):
        with open(os.path.join(HERE, name)) as f:
            head = f.readlines()[:100]
        assert any("# Eq. 7" in line for line in head), name
