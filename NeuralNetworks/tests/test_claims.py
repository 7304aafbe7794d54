"""Tests of Fig. 2 (the one-neuron toy) and of the claims grid (paper Sec. 4, claims (a)-(e))."""
import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from NeuralNetworks.claims import ROWS, run_claims, verdict
from NeuralNetworks.main import main
from NeuralNetworks.tests.test_run import assert_plot_only_redraws
from NeuralNetworks.model import Teacher, init_student, make_subspace, stable_rank
from NeuralNetworks.toy import gauss_hermite, minimise, objective
from NeuralNetworks.train import TrainConfig
from NeuralNetworks.train_fast import train


def test_gauss_hermite_expectations_are_exact_for_polynomials():
    x, w = gauss_hermite()
    for a, b in [(1.0, 0.0), (2.0, -3.0), (0.5, 1.5)]:
        assert float((w * (a * x + b) ** 2).sum()) == pytest.approx(a * a + b * b, rel=1e-13)
    assert float((w * x ** 4).sum()) == pytest.approx(3.0, rel=1e-12)
    assert float(w.sum()) == pytest.approx(1.0, rel=1e-14)


def test_toy_minimisers_at_lambda_1e_3():
    lam = np.array([1e-3])
    w_frozen, _, f_frozen = minimise(lam, train_bias=False)
    w_trained, b_trained, f_trained = minimise(lam, train_bias=True)
    assert w_frozen[0] == pytest.approx(0.37327, abs=1e-4) and w_frozen[0] > 0.3
    assert abs(w_trained[0]) < 1e-10
    assert b_trained[0] == pytest.approx(0.5 * math.log(math.e ** 2 - 1), abs=1e-10)  # s(b) = 1
    assert f_trained[0] < 1e-20 < f_frozen[0]
    # the frozen minimiser is a true minimum: the objective is larger on both sides
    def f(w):
        return float(objective(torch.tensor(w), torch.tensor(0.0), 1e-3))
    assert f(w_frozen[0]) < min(f(w_frozen[0] - 1e-3), f(w_frozen[0] + 1e-3), f(0.0))


def test_relu_closed_forms_match_a_grid_search():
    lam = 0.05
    ws = torch.linspace(0, 2, 200_001, dtype=torch.float64)
    f = objective(ws, torch.zeros_like(ws), lam, "relu")
    w_closed, _, _ = minimise([lam], False, "relu")
    assert float(ws[f.argmin()]) == pytest.approx(w_closed[0], abs=2e-5)
    # Monte Carlo check of the closed-form expectation itself
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2_000_000, generator=g, dtype=torch.float64)
    mc = ((torch.relu(0.7 * x + 0.3) - 1) ** 2).mean()
    assert float(objective(torch.tensor(0.7), torch.tensor(0.3), 0.0, "relu")) == pytest.approx(float(mc), abs=2e-3)


def test_stable_rank_of_hand_made_rank_2_matrix():
    W = torch.zeros(5, 4, dtype=torch.float64)
    W[0, 0], W[1, 1] = 3.0, 4.0
    assert stable_rank(W).item() == pytest.approx(25 / 16)
    assert stable_rank(torch.ones(3, 3, dtype=torch.float64)).item() == pytest.approx(1.0)


def test_batched_rows_equal_one_by_one():
    rows = [ROWS[0], ROWS[5]]  # base and Huber: same architecture, one batch
    cpu = torch.device("cpu")
    together = run_claims([0, 1], 20, 2, 200, 1.0, cpu, rows=rows)
    alone = [run_claims([0, 1], 20, 2, 200, 1.0, cpu, rows=[r])[0] for r in rows]
    for a, b in zip(together, alone):
        for key in ("ratio_init", "ratio_final", "perp_final", "stable_rank", "test_mse"):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-4, err_msg=key)


def test_mixed_batch_freezes_only_the_frozen_runs():
    g = [torch.Generator().manual_seed(s) for s in range(3)]
    U = make_subspace(4, 1, g[0])
    s = init_student(3, 4, 16, 1, torch.Generator().manual_seed(0))
    b0 = s.biases[0].clone()
    cfg = TrainConfig(steps=100, freeze_bias=[False, True, False], pgd_threshold=1e9, optimizer=["pgd", "pgd", "adam"],
                      lr=[1.0, 1.0, 1e-3], lr_bias=[1.0, 1.0, 1e-3])
    h = train(s, Teacher(U), cfg, g, progress=False)
    assert torch.equal(s.biases[0][1], b0[1])
    assert not torch.equal(s.biases[0][0], b0[0]) and not torch.equal(s.biases[0][2], b0[2])
    assert h["perturbations"].tolist() == [100, 100, 0]   # Adam is never perturbed


def test_verdict_rule():
    base = {"ratio_init": np.array([0.9]), "ratio_final": np.array([0.5]), "perp_init": np.array([10.0])}
    assert verdict({**base, "perp_final": np.array([2.0]), "null": np.array([5.0])}) == "loss"
    assert verdict({**base, "perp_final": np.array([4.9]), "null": np.array([5.0])}) == "regulariser"
    assert verdict({**base, "perp_final": np.array([9.9]), "null": np.array([10.0])}) == "no"  # λ = 0
    # never 'regulariser' above the null: the Adam (0.26 against 0.00) and λ = 1e-3 (0.05 against 0.00)
    for final, null in ((0.26, 0.0), (0.05, 0.001), (5.2, 5.0)):
        assert verdict({**base, "perp_final": np.array([final]), "null": np.array([null])}) == "loss opposes"


def test_gd_and_pgd_nulls_are_the_closed_form():
    """The null -- the same run with the first layer's loss gradient projected onto span(U), trained in the batch
    -- of plain GD, and of PGD while no kick fires, is (1 − lr λ)^t ‖W⊥(0)‖ at every recorded step; the run
    itself is not (the loss does move W⊥)."""
    from NeuralNetworks.claims import gd_null
    rows = [ROWS[0], next(r for r in ROWS if r.name == "plain GD")]
    for res in run_claims([0], 20, 2, 300, 1.0, torch.device("cpu"), rows=rows, simulate="all"):
        assert res["null_simulated"].all() and (res["null_kicks"] == 0).all()
        closed = gd_null(res["perp_history"][0], 1.0, 1e-4, res["step"][:, None])
        np.testing.assert_allclose(res["null_history"], closed, rtol=2e-5)
        assert np.abs(res["perp_history"][-1] - closed[-1]).max() > 1e-3 * closed[-1].max()


def test_a_pgd_null_whose_kicks_fire_is_simulated_not_the_closed_form(monkeypatch):
    """PGD kicks when the gradient is small, and the null's gradient lacks the loss's part on W⊥: its kicks fire
    where the run's need not. With a kick threshold every step's gradient is below, the default null of a PGD row
    is the simulated one (kicks counted, W⊥ above the closed form, which knows no kicks); plain GD's stays the
    exact closed form."""
    from NeuralNetworks import claims
    real = claims.run_config

    def eager(settings, steps, lr):
        return replace(real(settings, steps, lr), pgd_threshold=1e3)
    monkeypatch.setattr(claims, "run_config", eager)
    base, gd = ROWS[0], next(r for r in ROWS if r.name == "plain GD")
    res, res_gd = run_claims([0], 20, 2, 200, 1.0, torch.device("cpu"), rows=[base, gd])
    closed = claims.gd_null(res["perp_init"], 1.0, 1e-4, 200)
    assert res["null_simulated"].all() and (res["null_kicks"] > 0).all()
    assert (res["null"] > 1.001 * closed).all()
    np.testing.assert_array_equal(res["null"], res["null_history"][-1])
    assert not res_gd["null_simulated"].any() and (res_gd["null_kicks"] == 0).all()
    np.testing.assert_allclose(res_gd["null"], claims.gd_null(res_gd["perp_init"], 1.0, 1e-4, 200), rtol=1e-12)


def _adam_null_reference(seed, steps, d=20, k=2, width=256):
    """The claims grid's Adam null written plainly: init and minibatches as ``train`` draws them for the run of
    ``seed``; each step autograd's loss gradient, the first layer's projected onto span(U) (``G_W U Uᵀ``),
    then torch.optim.Adam (lr ADAM_LR, weight decay λ on W only, coupled as in ``train``). Returns ‖W⊥‖_F."""
    from NeuralNetworks.claims import ADAM_LR, SEED_STRIDE, TRAIN_SEED_OFFSET
    from NeuralNetworks.model import SUBSPACE_SEED, Student, perp_norm
    g = torch.Generator().manual_seed(SEED_STRIDE * seed + TRAIN_SEED_OFFSET)
    U = make_subspace(d, k, torch.Generator().manual_seed(SUBSPACE_SEED))
    s = init_student(1, d, width, 1, g)
    xs = torch.randn(256, 50, d, generator=g)
    ys = Teacher(U)(xs)
    W, b = s.W.clone().requires_grad_(), s.biases[0].clone().requires_grad_()
    opt = torch.optim.Adam([{"params": [W], "weight_decay": 1e-4}, {"params": [b]}], lr=ADAM_LR)
    for t in range(steps):
        loss = ((Student([W], [b], s.a).forward(xs[t][None]) - ys[t]) ** 2).mean()
        gW, gb = torch.autograd.grad(loss, [W, b])
        W.grad, b.grad = gW @ U @ U.T, gb
        opt.step()
    return float(perp_norm(W.detach(), U)[0])


def test_adam_null_is_adam_with_the_loss_gradient_on_w_perp_removed():
    """Adam's null is Adam itself from the same state and minibatches, with the loss's gradient on W⊥ removed --
    not Adam on λ‖W‖²/2 alone, whose normalised steps take W⊥ towards 0 whatever λ: over 200 steps of 1e-3 the
    null keeps most of W⊥ (the regulariser's normalised share of each step is tiny)."""
    adam = next(r for r in ROWS if r.name == "Adam")
    res = run_claims([0, 1], 20, 2, 200, 1.0, torch.device("cpu"), rows=[adam])[0]
    assert res["null_simulated"].all()
    ref = [_adam_null_reference(s, 200) for s in (0, 1)]
    np.testing.assert_allclose(res["null"], ref, rtol=1e-3)
    assert (res["null"] > 0.8 * res["perp_init"]).all()


def test_quick_fig2_writes_every_output(tmp_path):
    res = main(["--experiment", "fig2", "--quick", "--out-dir", str(tmp_path)])
    for name in ("fig2_bias.png", "fig2_bias.pdf", "results.json", "config.json"):
        assert (tmp_path / name).stat().st_size > 0
    saved = json.load(open(tmp_path / "results.json"))
    assert len(saved["lambda"]) == 9 and max(abs(w) for w in saved["w_trained"]) < 1e-10
    assert saved["w_frozen"][0] > 0.3 and res["w_frozen"][-1] < 1e-12   # lambda = 10: w* = 0
    assert_plot_only_redraws(tmp_path)


def test_quick_claims_writes_every_output(tmp_path):
    res = main(["--experiment", "claims", "--quick", "--no-progress", "--seeds", "2", "--out-dir", str(tmp_path)])
    for name in ("claims.csv", "claims.md", "claims_perp.png", "claims_perp.pdf", "results.json", "config.json"):
        assert (tmp_path / name).stat().st_size > 0
    assert len(res["rows"]) == 13
    md = (tmp_path / "claims.md").read_text()
    assert "any smooth loss" in md and md.count("\n|") >= 14
    lines = (tmp_path / "claims.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + 13 * 2
    # the CSV, the history and results.json tell the same story: per row and seed, the final ||W_perp|| of the
    # CSV is the last point of the saved history, and the verdict follows the stated rule from those numbers
    import csv
    hist = np.load(tmp_path / "claims_history.npz")
    saved = json.load(open(tmp_path / "results.json"))
    for i, row in enumerate(saved["rows"]):
        csv_rows = [r for r in csv.DictReader(lines) if r["row"] == row["row"]]
        assert [float(r["perp_final"]) for r in csv_rows] == pytest.approx(hist[f"perp_{i}"][-1], rel=1e-5)
        assert [float(r["perp_final"]) for r in csv_rows] == pytest.approx(row["perp_final"], rel=1e-5)
        final, null, init = (np.mean(row[k]) for k in ("perp_final", "null", "perp_init"))
        expected = ("loss" if final < 0.5 * null else "loss opposes" if final > null
                    else "regulariser" if null < 0.95 * init else "no")
        assert row["verdict"] == expected, row["row"]
    assert_plot_only_redraws(tmp_path)
    lam0 = next(r for r in res["rows"] if r["row"] == "λ = 0")
    np.testing.assert_allclose(lam0["null"], lam0["perp_init"])   # no decay without λ
