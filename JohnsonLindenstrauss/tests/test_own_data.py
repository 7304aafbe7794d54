"""Your own data (issue 38): a .npy or .csv whose first --n rows train and next --holdout rows are held out, in the
file's order or, with --shuffle, in that of numpy's permutation seeded --seed; a memory refusal names --n."""
import json

import numpy as np
import pytest

from JohnsonLindenstrauss import utils
from JohnsonLindenstrauss.data import DataError, load_points
from JohnsonLindenstrauss.main import main

SHORT = ["--k", "3", "--steps", "5", "--draws", "10", "--quick", "--no-progress"]


def unit(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def write_csv(path, X):
    """A header, a comment and a blank line around the rows, as a spreadsheet or pandas may write them."""
    lines = ["x0,x1,x2,x3,x4", "# exported"] + [",".join(repr(float(v)) for v in row) for row in X]
    path.write_text("\n".join(lines[:3] + [""] + lines[3:]) + "\n")


def test_csv_and_npy_split_their_rows_in_the_file_order(tmp_path):
    X = np.random.default_rng(0).standard_normal((12, 5))
    np.save(tmp_path / "p.npy", X)
    write_csv(tmp_path / "p.csv", X)
    for name in ("p.npy", "p.csv"):
        train, held = load_points(str(tmp_path / name), 8, 3, None, 0)
        np.testing.assert_allclose(train, unit(X[:8]), rtol=0, atol=1e-15)        # the first --n rows train
        np.testing.assert_allclose(held, unit(X[8:11]), rtol=0, atol=1e-15)      # the next --holdout are held out
    train, held = load_points(str(tmp_path / "p.csv"), None, 2, None, 0)          # --n: all rows but the holdout
    assert len(train) == 10 and len(held) == 2


def test_shuffle_splits_the_rows_of_the_seeded_permutation_and_the_run_says_so(tmp_path):
    X = np.random.default_rng(1).standard_normal((12, 5))
    write_csv(tmp_path / "p.csv", X)
    order = np.random.default_rng(7).permutation(12)
    train, held, rows = load_points(str(tmp_path / "p.csv"), 8, 3, None, 7, shuffle=True, with_rows=True)
    np.testing.assert_array_equal(rows, order[:11])
    np.testing.assert_allclose(train, unit(X[order[:8]]), rtol=0, atol=1e-15)
    np.testing.assert_allclose(held, unit(X[order[8:11]]), rtol=0, atol=1e-15)
    res = main(["--data", str(tmp_path / "p.csv"), "--n", "8", "--holdout", "3", "--shuffle", "--seed", "7", *SHORT,
                "--out-dir", str(tmp_path / "o")])
    P = np.load(tmp_path / "o" / "projection.npy")
    assert res["max_distortion"] == pytest.approx(np.abs(((unit(X[order[:8]]) @ P.T) ** 2).sum(1) - 1).max(), 1e-9)
    assert res["holdout_max_distortion"] == pytest.approx(
        np.abs(((unit(X[order[8:11]]) @ P.T) ** 2).sum(1) - 1).max(), rel=1e-9)
    args = json.load(open(tmp_path / "o" / "config.json"))["args"]
    assert args["shuffle"] and args["seed"] == 7 and (args["n"], args["holdout"]) == (8, 3)


def test_shuffled_pairs_are_named_by_their_file_rows(tmp_path, capsys):
    X = np.random.default_rng(2).standard_normal((12, 5))
    X[9] = 2 * X[4]                                        # rows 4 and 9 of the file point the same way
    np.save(tmp_path / "p.npy", X)
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path / "p.npy"), "--shuffle", "--seed", "3", "--target", "pairwise", *SHORT])
    assert "rows 4 and 9 of" in capsys.readouterr().err


@pytest.mark.parametrize("text,expect", [("a,b\n1,2\n3,x\n", "line 3 (from 1): 'x' is not a number"),
                                         ("1,2\n\n3\n", "line 3 (from 1): 1 values, but the lines before have 2")])
def test_a_bad_csv_line_is_named(tmp_path, text, expect):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(DataError, match=expect.replace("(", r"\(").replace(")", r"\)")):
        load_points(str(tmp_path / "bad.csv"), None, 0, None, 0)


def test_memory_refusals_name_the_option_that_shrinks_the_run(tmp_path, monkeypatch, capsys):
    np.save(tmp_path / "p.npy", np.ones((30, 5)))
    real = utils.memory_problem
    monkeypatch.setattr(utils, "memory_problem", lambda need, what, device: "too big" if "values" in what
                        else real(need, what, device))
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path / "p.npy"), *SHORT])
    assert capsys.readouterr().err.strip().endswith("too big; read fewer rows with --n")
    monkeypatch.setattr(utils, "memory_problem", real)
    for argv, expect in ((["--n", "100000000000"], "take fewer points with --n"),
                         (["--batch", "100000000000"], "shrink the run with --n, --k or --batch"),
                         (["--experiment", "ksweep", "--batch", "100000000000"],
                          "no --n fits: sample fewer matrices with --batch or --seeds"),
                         (["--experiment", "ksweep", "--target", "norms", "--batch", "100000000000"],
                          "shrink the run with --n, --k-grid, --batch or --seeds")):
        with pytest.raises(SystemExit):
            main(argv + ["--no-progress"])
        assert expect in capsys.readouterr().err
