"""Issue 39, structure discovery beyond d = 2 (dimension.py): principal angles on hand-made subspaces, the
metrics on constructed W, the teachers' moments, the per-sample gradient noise against autograd, the
stationary level of ‖W⊥‖ on a pure-noise recursion, and a quick run of the experiment."""
import json
import math
import os

import numpy as np
import pytest
import torch

from NeuralNetworks import dimension as dm
from NeuralNetworks.main import main
from NeuralNetworks.model import Student, init_student, perp_part


def _frame(d, cols, dtype=torch.float64):
    """Columns of ``cols`` (lists of (index, value)) as a ``(d, len(cols))`` matrix."""
    M = torch.zeros(d, len(cols), dtype=dtype)
    for j, col in enumerate(cols):
        for i, v in col:
            M[i, j] = v
    return M


def test_principal_angles_of_hand_made_subspaces():
    e = torch.eye(6, dtype=torch.float64)
    U = e[:, :2]
    torch.testing.assert_close(dm.principal_angles(U, U), torch.zeros(2, dtype=torch.float64), atol=1e-12, rtol=0)
    Q = torch.tensor([[0.6, -0.8], [0.8, 0.6]], dtype=torch.float64)       # another basis of the same span
    torch.testing.assert_close(dm.principal_angles(U, U @ Q), torch.zeros(2, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(dm.principal_angles(U, e[:, 2:4]), torch.full((2,), 90.0, dtype=torch.float64))
    a, b = math.radians(20.0), math.radians(70.0)       # known angles: u_1 tilted by 20° into e_3, u_2 by 70° into e_4
    V = _frame(6, [[(0, math.cos(a)), (2, math.sin(a))], [(1, math.cos(b)), (3, math.sin(b))]])
    torch.testing.assert_close(dm.principal_angles(U, V @ Q), torch.tensor([20.0, 70.0], dtype=torch.float64))
    tiny = 1e-7                                          # radians: arccos of the cosine alone would read 0
    V = _frame(6, [[(0, math.cos(tiny)), (5, math.sin(tiny))]])
    assert dm.principal_angles(U[:, :1], V)[0].item() == pytest.approx(math.degrees(tiny), rel=1e-8)


def test_metrics_on_a_constructed_W():
    """W = P Σ₁ Uᵀ + Q Σ₂ Vᵀ with P ⊥ Q (left) and V ⊥ U: ‖W∥‖ = ‖Σ₁‖, ‖W⊥‖ = ‖Σ₂‖; the top-k right singular
    subspace is span(U) when Σ₁ > Σ₂ (angle 0) and span(V) when Σ₁ < Σ₂ (angle 90°)."""
    g = torch.Generator().manual_seed(0)
    h, d, k = 10, 7, 2
    basis, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    left, _ = torch.linalg.qr(torch.randn(h, 2 * k, generator=g, dtype=torch.float64))
    U, V = basis[:, :k], basis[:, k:2 * k]
    big, small = torch.tensor([10.0, 5.0], dtype=torch.float64), torch.tensor([2.0, 1.0], dtype=torch.float64)
    W = torch.stack([left[:, :k] @ torch.diag(s1) @ U.T + left[:, k:] @ torch.diag(s2) @ V.T
                     for s1, s2 in ((big, small), (small, big))])
    m = dm.metrics(W, U)
    np.testing.assert_allclose(m["par_norm"], [math.sqrt(125), math.sqrt(5)], rtol=1e-12)
    np.testing.assert_allclose(m["perp_norm"], [math.sqrt(5), math.sqrt(125)], rtol=1e-12)
    np.testing.assert_allclose(m["perp_ratio"], [math.sqrt(5 / 130), math.sqrt(125 / 130)], rtol=1e-12)
    np.testing.assert_allclose(m["max_angle"], [0.0, 90.0], atol=1e-6)
    np.testing.assert_allclose(m["min_angle"], [0.0, 90.0], atol=1e-6)


def test_teacher_moments_are_the_constant_predictors_mse():
    """Hermite links: mean 0, variance 1/k exactly; tanh: against a large Monte-Carlo sample. The best constant
    predictor c = E y has test MSE Var y."""
    for link in ("he2", "he4"):
        for k in (1, 2):
            mean, var = dm.teacher_moments(link, k)
            assert abs(mean) < 1e-12 and var == pytest.approx(1 / k, rel=1e-12)
    x = torch.randn(1, 400_000, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    U = torch.eye(3, dtype=torch.float64)[:, :2]
    for link in ("tanh", "he2"):
        y = dm.IndexTeacher(U, link)(x)
        mean, var = dm.teacher_moments(link, 2)
        assert float(y.mean()) == pytest.approx(mean, abs=5e-3)
        assert float(((y - mean) ** 2).mean()) == pytest.approx(var, rel=1e-2)
    assert dm.teacher_moments("tanh", 1)[1] == pytest.approx(0.394294490, rel=1e-8)


def test_gradient_noise_equals_autograd_per_sample_gradients():
    """V = E‖g⊥ − ḡ⊥‖² and ‖ḡ⊥‖ from the written-out per-sample gradient equal those of autograd's per-sample
    gradients of the squared error, projected onto span(U)⊥ (float64, two runs)."""
    g = torch.Generator().manual_seed(3)
    d, h, n = 5, 8, 40
    U = dm.subspace(d, 2, "cpu").double()
    teacher = dm.IndexTeacher(U, "tanh")
    s = init_student(2, d, h, 1, g, dtype=torch.float64)
    s.a = s.a * h                                          # a larger second layer: residuals of order one
    x = torch.randn(2, n, d, generator=g, dtype=torch.float64)
    V, mean_grad = dm.gradient_noise(s, teacher, x)
    for r in range(2):
        grads = []
        for i in range(n):
            W = s.W[r:r + 1].clone().requires_grad_(True)
            f = Student([W], [s.biases[0][r:r + 1]], s.a[r:r + 1]).forward(x[r:r + 1, i:i + 1])
            loss = ((f - teacher(x[r:r + 1, i:i + 1])) ** 2).sum()
            grads.append(perp_part(torch.autograd.grad(loss, W)[0][0], U))
        G = torch.stack(grads)                                                  # (n, h, d)
        g_bar = G.mean(0)
        assert V[r] == pytest.approx(float(((G - g_bar) ** 2).sum((1, 2)).sum() / (n - 1)), rel=1e-10)
        assert mean_grad[r] == pytest.approx(float(torch.linalg.matrix_norm(g_bar)), rel=1e-10)
    s32 = init_student(1, d, h, 1, g)                     # float32, pre-activations above 44: the fast smooth-ReLU
    s32.biases[0] += 60.0                                 # form would overflow there; the estimate stays finite
    V, mean_grad = dm.gradient_noise(s32, dm.IndexTeacher(U.float(), "he4"), x[:1].float())
    assert np.isfinite(V).all() and np.isfinite(mean_grad).all() and V[0] > 0


def test_stationary_level_on_a_pure_noise_recursion():
    """W⊥ ← ρ W⊥ − η ξ (+ kicks σ_k N(0, 1) at rate p), ξ the mean of B zero-mean per-sample vectors of total
    variance V: the time average of ‖W⊥‖² over the stationary phase, and the mean over independent chains of
    ‖W⊥(T)‖² from a given start, match the formulas (2%: many entries, long averages)."""
    g = torch.Generator().manual_seed(5)
    N, B, lr, lam, sigma, p, radius = 4000, 5, 0.5, 0.02, 0.3, 0.1, 0.02
    V = N * sigma ** 2
    rho = 1 - lr * lam
    w = torch.zeros(N, dtype=torch.float64)
    acc = []
    for t in range(3000):
        xi = (sigma * torch.randn(B, N, generator=g, dtype=torch.float64)).mean(0)
        kick = radius * torch.randn(N, generator=g, dtype=torch.float64) if torch.rand(1, generator=g) < p else 0
        w = rho * (w + kick) - lr * xi
        if t >= 1000:
            acc.append(float(w @ w))
    level = dm.stationary_perp_norm(V, lr, lam, B, p, radius, N)     # the kick lands before the decay, as in PGD
    assert np.mean(acc) == pytest.approx(level ** 2, rel=0.02)
    assert level ** 2 == pytest.approx(lr * V / (2 * lam * B) + p * radius ** 2 * N / (2 * lr * lam), rel=0.03)
    w0, T = torch.full((N,), 0.5, dtype=torch.float64), 60          # from a start: ρ^{2T}‖W0‖² + (1 − ρ^{2T}) level²
    w = w0.clone()
    for _ in range(T):
        w = rho * w - lr * (sigma * torch.randn(B, N, generator=g, dtype=torch.float64)).mean(0)
    expected = dm.perp_norm_after(float(torch.linalg.vector_norm(w0)), T, lr, lam,
                                  dm.stationary_perp_norm(V, lr, lam, B))
    assert float(torch.linalg.vector_norm(w)) == pytest.approx(expected, rel=0.02)


def test_quick_run_writes_every_output_and_its_numbers_hold(tmp_path):
    """--quick at d = 2, 8: every output; d = 2 has no k = 2 cell (W⊥ would be empty); at d = 8 the tanh
    teacher's span is found (small angle, test MSE far below the constant's, ‖W⊥‖ below its init); every null
    ends at its theory level, ρ^T‖W⊥(0)‖ plus its kicks (its gradient has no perp part)."""
    out = tmp_path / "dim"
    res = main(["--experiment", "dimension", "--quick", "--no-progress", "--dims", "2", "8", "--out-dir", str(out)])
    assert {"config.json", "results.json", "dimension.csv", "dimension_history.npz", "dimension.png",
            "dimension.pdf"} <= set(os.listdir(out))
    cells = {(c["d"], c["k"], c["teacher"]): c for c in json.loads((out / "results.json").read_text())["cells"]}
    assert set(cells) == {(2, 1, "tanh"), (2, 1, "he4"), (8, 1, "tanh"), (8, 1, "he4"), (8, 2, "tanh"), (8, 2, "he4")}
    rows = (out / "dimension.csv").read_text().splitlines()
    assert rows[0].split(",") == dm.COLUMNS and len(rows) == 1 + 6 * 2
    tanh = cells[(8, 1, "tanh")]
    assert tanh["recovered"] and tanh["max_angle_final"]["max"] < 10 and tanh["mse_ratio"]["max"] < 0.2
    assert tanh["perp_norm_final"]["max"] < tanh["perp_norm_init"]["min"]
    table = [dict(zip(dm.COLUMNS, r.split(","))) for r in rows[1:]]
    null, predicted = (np.array([float(r[c]) for r in table]) for c in ("null_perp_norm_final",
                                                                         "null_predicted_perp_norm"))
    np.testing.assert_allclose(null, predicted, rtol=1e-2)
    with np.load(out / "dimension_history.npz") as h:
        assert h["along_max_angle_d8_k1_tanh"].shape == (len(h["at_d8_k1_tanh"]), 4)
    assert res["cells"] and not res["interrupted"]


@pytest.mark.parametrize("argv", [["--teachers", "tanh,bogus"], ["--dims", "2", "--ks", "2"], ["--dims", "1"]])
def test_bad_dimension_options_one_line_exit_2(tmp_path, argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--experiment", "dimension", *argv, "--out-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and argv[0] in err, err
    assert not (tmp_path / "out").exists()
