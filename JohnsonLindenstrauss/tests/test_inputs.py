"""Robust inputs (issue 35): pairwise runs sized before any pair is built, rows pointing the same way named
before any work, unusable files refused in one line, and default run folders that never collide."""
import hashlib
import os
import re
import resource
import time

import numpy as np
import pytest

from JohnsonLindenstrauss import main as jl_main
from JohnsonLindenstrauss import targets
from JohnsonLindenstrauss.experiments import Fig7Config, KsweepConfig, TheoremConfig


def refused(argv, capsys):
    """The one line on stderr of a run that must end in exit status 2."""
    with pytest.raises(SystemExit) as e:
        jl_main.main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_pairwise_memory_is_refused_before_any_pair_is_built(tmp_path, monkeypatch, capsys):
    """100 000 points in d = 3 have 5e9 pairs: their difference vectors alone are 112 GiB in float64. The refusal
    comes from the file's shape, suggests a --n, and allocates nothing of size n^2 on the way."""
    f = tmp_path / "big.npy"
    np.save(f, np.random.default_rng(0).random((100_000, 3)))
    for name in ("make_targets", "holdout_pairs", "Targets"):                # nothing may build pairs
        monkeypatch.setattr(targets, name, lambda *a, **k: pytest.fail("pairs were built"))
    rss0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()   # KiB on Linux
    err = refused(["--data", str(f), "--target", "pairwise", "--out-dir", str(tmp_path / "out")], capsys)
    assert time.perf_counter() - t0 < 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 2 ** 20          # under 1 GiB more
    assert "--target pairwise, 100000 points (+0 held out): 4999950000 pairs" in err, err
    need = float(re.search(r"needs about (\S+) GiB", err).group(1))
    assert need >= 4999950000 * 3 * 8 / 2 ** 30                            # counts the (n(n-1)/2, d) differences
    fit = int(re.search(r"take fewer points with --n \(--n (\d+) fits\)$", err).group(1))
    assert 2 <= fit < 100_000
    cfg = Fig7Config(data=str(f), target="pairwise", n=fit)
    assert cfg.pair_bytes(fit, 0, 3) < cfg.pair_bytes(fit + 1, 0, 3) < need * 2 ** 30
    assert not (tmp_path / "out").exists() and sorted(os.listdir(tmp_path)) == ["big.npy"]


@pytest.mark.parametrize("case,expect", [
    ("identical", "rows 3 and 7 of {f} (counted from 0) point the same way: after normalisation their distance "
                  "is 0, so a pairwise distortion is undefined; remove one"),
    ("multiple", "rows 3 and 7 of {f} (counted from 0) point the same way"),
    ("held_out", "rows 3 and 25 of {f} (counted from 0) point the same way"),
    ("near", "rows 3 and 7 of {f} (counted from 0) point almost the same way: after normalisation they are "
             "1e-05 apart, below the 0.00035 that the optimiser's float32 resolves"),
    ("near_held_out", "rows 3 and 25 of {f} (counted from 0) point almost the same way: after normalisation they "
                      "are 1e-09 apart, below the 1.5e-08 that float64 resolves")])
def test_rows_pointing_the_same_way_are_named_before_any_work(tmp_path, case, expect, capsys):
    """A pair of distance 0 after the per-row normalisation has no relative distortion: one line naming both
    rows (as numbered in the file), not a divergence that blames --lr. So is a pair closer than the arithmetic
    that computes its distortion resolves (float32 in the optimiser, float64 for held-out pairs)."""
    X = np.random.default_rng(1).random((30, 40))                       # d = 40: the default k = 30 fits
    other = {"identical": 7, "multiple": 7, "held_out": 25, "near": 7, "near_held_out": 25}[case]
    X[other] = 2.5 * X[3] if case == "multiple" else X[3]
    if case.startswith("near"):                                    # a step orthogonal to row 3 keeps its norm
        step = np.random.default_rng(2).standard_normal(40)
        step -= (step @ X[3]) / (X[3] @ X[3]) * X[3]
        X[other] += (1e-5 if case == "near" else 1e-9) * np.linalg.norm(X[3]) * step / np.linalg.norm(step)
    f = tmp_path / "points.npy"
    np.save(f, X)
    out = tmp_path / "out"
    for argv in (["--target", "pairwise"], ["--experiment", "ksweep"]):          # ksweep: norms and pairwise
        err = refused(["--data", str(f), "--n", "20", "--holdout", "10", *argv, "--out-dir", str(out)], capsys)
        assert expect.format(f=f) in err and err.endswith("; remove one") and "--lr" not in err, err
    assert not out.exists()
    norms = Fig7Config(data=str(f), n=20, holdout=10)                          # norms have no pairs: accepted
    assert [len(A) for A in norms.load(norms.targets(), None)] == [20, 10]


def test_opposite_rows_and_distinct_data_pass_the_pair_check():
    """x and -x are 2 apart once normalised; the paper's data and digits have no close pair."""
    from JohnsonLindenstrauss.data import close_pair, load_points
    X = np.random.default_rng(1).random((30, 12))
    X[7] = -X[3]
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    assert np.linalg.norm(U[3] - U[7]) == pytest.approx(2) and close_pair(U, 3.5e-4) is None
    for source, d in (("uniform", 500), ("digits", None)):
        assert close_pair(load_points(source, 100, 0, d, 0)[0], 3.5e-4) is None


BAD_FILES = {
    "pickled.npy": (np.array([{"a": 1}, None], dtype=object), "not a readable .npy array"),
    "complex.npy": (np.ones((3, 2), dtype=complex), "expected real numbers, got dtype complex128"),
    "strings.npy": (np.array([["1", "2"], ["3", "4"]]), "expected real numbers, got dtype <U1"),
    "flags.npy": (np.ones((3, 2), dtype=bool), "expected real numbers, got dtype bool"),
    "inf.npy": (np.array([[1.0, 2.0], [np.inf, 1.0]]), "holds NaN or infinite values"),
    "vector.npy": (np.ones(5), "expected a 2-d array (rows, d)"),
    "truncated.npy": (np.ones((50, 4)), "not a readable .npy array"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_unusable_files_are_one_line(tmp_path, name, capsys):
    """Files load without pickles (np.load(allow_pickle=False)); every other unusable file is one line too."""
    arr, expect = BAD_FILES[name]
    f = tmp_path / name
    np.save(f, arr, allow_pickle=True)
    if name == "truncated.npy":
        f.write_bytes(f.read_bytes()[:-100])
    err = refused(["--data", str(f), "--target", "pairwise", "--out-dir", str(tmp_path / "out")], capsys)
    assert f"{f}: {expect}" in err, err
    assert not (tmp_path / "out").exists()


def test_default_folders_say_what_ran_and_never_collide(tmp_path, monkeypatch):
    """A user's digits.npy does not write into the built-in digits' folder, nor into that of another
    digits.npy with other bytes; the paper's run keeps ``fig7``."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = tmp_path / "a" / "digits.npy", tmp_path / "b" / "digits.npy"
    np.save(a, np.random.default_rng(0).random((30, 64)))
    np.save(b, np.random.default_rng(1).random((30, 64)))
    ha, hb = (hashlib.sha256(p.read_bytes()).hexdigest()[:8] for p in (a, b))
    assert ha != hb
    assert Fig7Config().folder_name() == "fig7"
    assert Fig7Config(data="digits").folder_name() == "fig7-digits-norms-max"
    assert Fig7Config(data=str(a)).folder_name() == f"fig7-digits-{ha}-norms-max"
    assert Fig7Config(data=str(b)).folder_name() == f"fig7-digits-{hb}-norms-max"
    assert Fig7Config(target="pairwise", objective="surrogate").folder_name() == "fig7-uniform-pairwise-surrogate"
    assert KsweepConfig(data=str(a)).folder_name() == f"ksweep-digits-{ha}-norms+pairwise"
    assert KsweepConfig(data="digits", target="norms").folder_name() == "ksweep-digits-norms"
    assert TheoremConfig(data=str(b)).folder_name() == f"theorem-digits-{hb}-norms"
    monkeypatch.setattr(jl_main, "HERE", str(tmp_path))            # default folders under tmp_path/results
    short = ["--n", "20", "--k", "4", "--steps", "5", "--draws", "10", "--quick", "--no-progress"]
    runs = {"digits": jl_main.main(["--data", "digits", *short]), ha: jl_main.main(["--data", str(a), *short]),
            hb: jl_main.main(["--data", str(b), *short])}
    folders = sorted(os.listdir(tmp_path / "results"))
    names = [Fig7Config(data=data).folder_name() for data in ("digits", str(a), str(b))]   # main may add -quick
    assert len(folders) == 3 and all(sum(f == e or f.startswith(e + "-") for f in folders) == 1 for e in names)
    assert len({r["max_distortion"] for r in runs.values()}) == 3            # three different runs, all kept
