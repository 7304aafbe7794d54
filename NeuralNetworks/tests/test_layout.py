"""The folder's layout (issue 37): a short main.py without linter exemptions, no line over 120 columns, and the
paper's PGD at the top of train.py."""
import ast
import os

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sources():
    for root, _, names in os.walk(HERE):
        for name in names:
            if name.endswith(".py") and "results" not in root:
                yield os.path.join(root, name)


def test_main_is_a_short_door():
    text = open(os.path.join(HERE, "main.py")).read()
    assert len(text.splitlines()) <= 120 and "noqa" not in text


def test_no_line_over_120_columns():
    long = [f"{os.path.relpath(p, HERE)}:{i}" for p in _sources()
            for i, line in enumerate(open(p).read().splitlines(), 1) if len(line) > 120]
    assert not long, long


def test_train_opens_with_the_plain_pgd():
    """train.pgd, labelled App. E, is the first function of train.py and starts within its first 100 lines."""
    text = open(os.path.join(HERE, "train.py")).read()
    first = next(n for n in ast.parse(text).body if isinstance(n, (ast.FunctionDef, ast.ClassDef)))
    assert first.name == "pgd" and first.lineno <= 100 and first.end_lineno <= 100
    assert text.count("# App. E") >= 3
