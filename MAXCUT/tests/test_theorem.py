"""``--experiment theorem`` (Theorem 5.2 with its own algorithm): what its results say on the authors' graph — the
end points' stationarity and the theorem's chain —, and the command line's refusals and interrupt rule."""
import json
import os

import pytest

from MAXCUT import optimizer
from MAXCUT.tests.test_run import QUICK, assert_plot_only_redraws, exits, signal_in
from MAXCUT.main import main

KEYS = ("sigma_max", "sigma_over_m", "cut", "gw_expectation", "bound", "grad_norm", "lam_min_hessian",
        "objective_start", "monotone", "objective_end", "certified", "stationary")


def test_the_theorems_chain_on_the_authors_graph(tmp_path):
    """Every (δ, λ) of the default grid on the authors' G(15, 0.6) with real SDP vectors: a stationary point, σ
    optimised away, the lemma's identity to rounding; and the guarantee chain, reported per point: F starts at
    F(0, 1) = −C_δ(0, 1)/W + λr (C_δ(0, 1) = GW expectation − smoothing loss), every accepted step lowers it, it
    ends lower, and the cut of sign(Vm) is at least the theorem's bound: certified."""
    out = tmp_path / "out"
    main(["--experiment", "theorem", "--no-progress", "--out-dir", str(out)])
    res = json.load(open(out / "results.json"))
    assert res["exact"] == 41 and res["gw_expectation"] >= res["gw_ratio_bound"] and len(res["points"]) == 4
    ce = res["conditional_expectations"]                   # the classic derandomisation beside (Mahajan & Ramesh)
    assert ce["guarantee_holds"] and ce["non_decreasing"] and ce["values"][0] == pytest.approx(res["gw_expectation"])
    r, total = res["rank"], res["total_weight"]
    for p in res["points"]:
        assert all(k in p for k in KEYS)
        assert p["status"] == "stationary" and p["stationary"]
        assert p["grad_norm"] <= 1e-9 and p["lam_min_hessian"] >= -1e-6
        assert p["sigma_max"] <= 1e-6 and p["sigma_over_m"] <= 1e-6 and p["sigma_max"] <= p["sigma_bound"] * 1.001
        assert p["stein_residual"] <= 1e-12 and p["cut"] >= p["bound"] and p["cut"] <= res["exact"]
        assert p["bound"] == pytest.approx(p["gw_expectation"] - p["smoothing_loss"] - p["allowance"], rel=1e-12)
        start = -(p["gw_expectation"] - p["smoothing_loss"]) / total + p["lam"] * r
        assert p["objective_start"] == pytest.approx(start, rel=1e-12)
        assert p["monotone"] and p["objective_end"] < p["objective_start"] and p["certified"]
    assert {"theorem_cut.png", "theorem_sigma.png", "history.npz"} <= set(os.listdir(out))
    assert_plot_only_redraws(out)


def test_refusals(tmp_path, capsys):
    assert "--deltas" in exits(["--experiment", "theorem", "--deltas", "0"], 2, capsys)
    assert "--lams" in exits(["--experiment", "theorem", "--lams", "-1"], 2, capsys)
    assert "--chains does not apply" in exits(["--experiment", "theorem", "--chains", "4"], 2, capsys)
    signed = tmp_path / "signed.txt"
    signed.write_text("3 3\n1 2 1\n2 3 -1\n1 3 1\n")
    assert "negative weights" in exits(["--experiment", "theorem", "--graph", str(signed), *QUICK], 2, capsys)
    assert not any(p.name != "signed.txt" for p in tmp_path.iterdir())


def test_ctrl_c_during_a_descent_keeps_what_was_computed(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    signal_in(monkeypatch, optimizer, "objective", call=30)
    assert "out.interrupted" in exits(["--experiment", "theorem", *QUICK, "--out-dir", str(out)], 130, capsys)
    res = json.load(open(tmp_path / "out.interrupted" / "results.json"))
    assert res["interrupted"] and res["points"][0]["status"] == "interrupted" and not out.exists()



def test_a_delta_sweep_reports_the_start_value_and_draws_its_figure(tmp_path):
    """``--deltas`` with two widths and one λ: per point C_δ(0, 1) (``start_smoothed_cut``), below the GW expectation
    by ``smoothing_loss`` and within 1% of the expansion Kδ² (``smoothing_loss_predicted``), higher for the narrower
    step; the step rule recorded; the sweep's own figure."""
    out = tmp_path / "out"
    main(["--experiment", "theorem", "--no-progress", "--deltas", "0.1", "0.03", "--lams", "1e-4", "--out-dir",
          str(out)])
    res = json.load(open(out / "results.json"))
    wide, narrow = res["points"]
    for p in res["points"]:
        assert p["start_smoothed_cut"] == pytest.approx(p["gw_expectation"] - p["smoothing_loss"], rel=1e-12)
        assert p["smoothing_loss"] == pytest.approx(p["smoothing_loss_predicted"], rel=1e-2)
        assert p["step_rule"] == "joint" and p["certified"]
    assert wide["start_smoothed_cut"] < narrow["start_smoothed_cut"] < res["gw_expectation"]
    assert {"theorem_deltas.png", "theorem_deltas.pdf"} <= set(os.listdir(out))
