"""Tests of the Fig. 3 code (paper Sec. 4.3): activations, W_perp, PGD, training, the CLI."""
import json
import math
import os

import numpy as np
import pytest
import torch

from NeuralNetworks.activations import derivatives, smooth_relu

from NeuralNetworks.main import main
from NeuralNetworks.model import Teacher, init_student, make_subspace, perp_norm, perp_part
from NeuralNetworks.train import TrainConfig
from NeuralNetworks.train_fast import _autograd_loss_and_grads, _combined, _OneLayer, train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def loss_and_grads(student, x, y, cfg, params):
    """Per-run minibatch loss ``(R,)`` and its gradients with respect to ``params``, for inputs ``x: (R, n, d)``
    and targets ``y: (R, n)``.

    One hidden layer (the paper's network) uses the training step's closed-form pass (:class:`_OneLayer`);
    deeper networks, and a step whose closed form overflowed, use autograd. Tests check the two agree."""
    if len(student.weights) == 1:
        step = _OneLayer(student, cfg, params, x.shape[1])
        r, G = step(_combined(student.W, student.biases[0]), student.a, *step.prepare(x, y))
        loss = step.total(r) / x.shape[1]
        if bool(torch.isfinite(loss).all() and torch.isfinite(G).all()):
            return loss, step.grads(G)
    return _autograd_loss_and_grads(student, x, y, cfg, params)


def smooth_relu_grad(z, beta=2.0):
    """s'(z) = σ(βz), the closed form (relative accuracy everywhere)."""
    return torch.sigmoid(beta * z)


def test_smooth_relu_value_derivative_and_relu_limit():
    z = torch.linspace(-30, 30, 601, dtype=torch.float64)
    torch.testing.assert_close(smooth_relu(z), 0.5 * torch.log1p(torch.exp(2 * z)), rtol=1e-12, atol=1e-12)
    h = 1e-6
    fd = (smooth_relu(z + h) - smooth_relu(z - h)) / (2 * h)
    torch.testing.assert_close(smooth_relu_grad(z), fd, rtol=1e-7, atol=1e-9)
    for beta in (2.0, 20.0, 200.0):  # sup |softplus_beta - relu| = log(2)/beta, attained at 0
        gap = (smooth_relu(z, beta) - torch.relu(z)).abs().max().item()
        assert gap == pytest.approx(math.log(2) / beta, rel=1e-9)
    assert smooth_relu(torch.tensor([1e4])).item() == 1e4  # no overflow
    # the exact objectives' form (one logistic) gives the same s, s' and s'' = β σ(βz)(1 − σ(βz))
    for beta in (2.0, 20.0):
        zz = torch.cat([z, torch.tensor([400.0, -400.0], dtype=torch.float64)])
        s, s1, s2 = derivatives("smooth_relu", beta)(zz, second=True)
        sig = torch.sigmoid(beta * zz)
        torch.testing.assert_close(s, smooth_relu(zz, beta), rtol=1e-14, atol=1e-15)
        torch.testing.assert_close(s1, sig, rtol=0, atol=1e-15)
        torch.testing.assert_close(s2, beta * sig * (1 - sig), rtol=0, atol=1e-14 * beta)


def test_perp_part_of_hand_made_matrix():
    u = torch.tensor([[1.0], [1.0]], dtype=torch.float64) / math.sqrt(2)
    W = torch.tensor([[1.0, 1.0], [1.0, -1.0], [2.0, 0.0]], dtype=torch.float64)
    expected = torch.tensor([[0.0, 0.0], [1.0, -1.0], [1.0, -1.0]], dtype=torch.float64)
    torch.testing.assert_close(perp_part(W, u), expected)
    assert perp_norm(W, u).item() == pytest.approx(2.0)


def _setup(runs=1, d=2, width=64, depth=1, seed=0, dtype=torch.float32, k=1, activation="smooth_relu"):
    g = torch.Generator().manual_seed(seed)
    U = make_subspace(d, k, g, dtype=dtype)
    return Teacher(U), init_student(runs, d, width, depth, g, activation, dtype=dtype), g


@pytest.mark.parametrize("loss", ["mse", "huber", "logcosh"])
@pytest.mark.parametrize("activation", ["smooth_relu", "relu"])
def test_closed_form_gradients_equal_autograd(loss, activation):
    teacher, s, g = _setup(runs=3, d=5, width=16, dtype=torch.float64, activation=activation)
    x = torch.randn(3, 7, 5, generator=g, dtype=torch.float64)
    y = teacher(x) + 2.0 * torch.randn(3, 7, generator=g, dtype=torch.float64)  # large residuals for huber
    params = [s.W, s.biases[0], s.a]
    cfg = TrainConfig(loss=loss)
    loss_cf, grads_cf = loss_and_grads(s, x, y, cfg, params)
    for p in params:
        p.requires_grad_(True)
    from NeuralNetworks.losses import pointwise_loss
    loss_ag = pointwise_loss(loss, s.forward(x), y).mean(1)
    grads_ag = torch.autograd.grad(loss_ag.sum(), params)
    torch.testing.assert_close(loss_cf, loss_ag.detach())
    for a, b in zip(grads_cf, grads_ag):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_gradient_matches_finite_differences():
    teacher, s, g = _setup(runs=1, d=3, width=8, dtype=torch.float64)
    x = torch.randn(1, 11, 3, generator=g, dtype=torch.float64)
    y = teacher(x)
    cfg = TrainConfig()
    _, (gW,) = loss_and_grads(s, x, y, cfg, [s.W])
    h, fd = 1e-6, torch.zeros_like(s.W)
    for idx in np.ndindex(*s.W.shape):
        s.W[idx] += h
        up = loss_and_grads(s, x, y, cfg, [s.W])[0].item()
        s.W[idx] -= 2 * h
        down = loss_and_grads(s, x, y, cfg, [s.W])[0].item()
        s.W[idx] += h
        fd[idx] = (up - down) / (2 * h)
    torch.testing.assert_close(gW, fd, rtol=1e-6, atol=1e-10)


def test_freeze_bias_leaves_bias_bit_for_bit():
    teacher, s, g = _setup()
    b0, W0 = s.biases[0].clone(), s.W.clone()
    train(s, teacher, TrainConfig(steps=300, freeze_bias=True, pgd_threshold=1e9), g, progress=False)
    assert torch.equal(s.biases[0], b0)
    assert not torch.equal(s.W, W0)


def test_pgd_perturbs_only_below_threshold():
    def run(**kw):
        teacher, s, g = _setup(seed=3)
        h = train(s, teacher, TrainConfig(steps=200, **kw), g, progress=False)
        return s, h
    s_never, h_never = run(pgd_threshold=0.0)      # ||grad|| < 0 never holds
    s_gd, _ = run(optimizer="gd")
    assert h_never["perturbations"][0] == 0
    assert torch.equal(s_never.W, s_gd.W) and torch.equal(s_never.biases[0], s_gd.biases[0])
    s_always, h_always = run(pgd_threshold=1e9)    # every step is below
    assert h_always["perturbations"][0] == 200
    # a threshold inside the range of gradient norms seen: some steps perturb, not all
    gn = h_never["grad_norm"][:, 0]
    thr = float(np.median(gn))
    _, h_mid = run(pgd_threshold=thr)
    assert 0 < h_mid["perturbations"][0] < 200


def test_short_default_run_beats_weight_decay_alone():
    """The paper's settings for 3000 of the 20 000 steps: ||W_perp|| must fall below what weight decay
    alone gives, (1 - lr lam)^t ||W_perp(0)||, and the ratio ||W_perp||/||W|| must drop."""
    teacher, s, g = _setup(width=1000)
    steps = 3000
    h = train(s, teacher, TrainConfig(steps=steps), g, progress=False)
    perp, wn = h["perp_norm"][:, 0], h["w_norm"][:, 0]
    decay_only = (1 - 1e-4) ** steps * perp[0]
    assert perp[-1] < decay_only
    assert perp[-1] / wn[-1] < 0.85 * perp[0] / wn[0]  # weight decay alone leaves the ratio unchanged


def test_quick_run_writes_every_output_and_is_reproducible(tmp_path):
    from NeuralNetworks.tests.test_run import assert_plot_only_redraws
    a, b = tmp_path / "a", tmp_path / "b"
    res = main(["--quick", "--no-progress", "--out-dir", str(a)])
    main(["--quick", "--no-progress", "--out-dir", str(b)])
    for name in ["fig3_weights.png", "fig3_weights.pdf", "fig3_perp.png", "fig3_perp.pdf",
                 "results.json", "config.json", "history.npz"]:
        assert (a / name).stat().st_size > 0, name
    untimed = [{k: v for k, v in json.load(open(f / "results.json")).items() if not k.endswith("_s")} for f in (a, b)]
    assert untimed[0] == untimed[1]
    assert res["steps_run"] == 2000 and res["perp_norm_final"] < res["decay_only_perp_norm_final"]
    assert np.load(a / "history.npz")["snapshots"].shape[1:] == (1000, 2)
    assert_plot_only_redraws(a)


def test_divergence_stops_with_advice(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--quick", "--no-progress", "--lr", "1e8", "--out-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "smaller --lr" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("beta", [2.0, 20.0])
def test_step_form_gives_the_activation_and_its_derivative(beta):
    """The training step's two-pass evaluation: exact in float64; in float32 within the rounding of 1 + e^{βz}
    (absolute 2^-24/β) for the value, and for the derivative within the relative error that rounding βz
    log2(e) to float32 gives e^{βz} (about |βz| 2^-24), as torch's own sigmoid(βz) has."""
    from NeuralNetworks.activations import step_form
    f = step_form("smooth_relu", beta)
    z64 = torch.linspace(-40, 40, 8001, dtype=torch.float64) / beta * 2
    exact, dexact = smooth_relu(z64, beta), smooth_relu_grad(z64, beta)
    for dtype in (torch.float64, torch.float32):
        z = z64.to(dtype)
        u, V = f.in_scale * z, torch.empty_like(z)
        f.fill(u, V)
        s, ds = (f.v_scale * V).double(), u.double()
        zr = z.double()                                  # what the float32 step sees: z already rounded
        if dtype == torch.float64:
            torch.testing.assert_close(s, exact, rtol=1e-13, atol=1e-15)
            torch.testing.assert_close(ds, dexact, rtol=1e-13, atol=0)
        else:
            ref, dref = smooth_relu(zr, beta), smooth_relu_grad(zr, beta)
            assert ((s - ref).abs() <= 2.0 ** -24 / beta + 4e-7 * ref.abs()).all()
            assert ((ds - dref).abs() <= (1e-6 + 2.0 ** -23 * (beta * zr).abs()) * dref).all()
    r = step_form("relu")
    z = torch.tensor([-2.0, -0.0, 0.0, 0.5, 3.0])
    u, V = r.in_scale * z, torch.empty_like(z)
    r.fill(u, V)
    assert V.tolist() == [0.0, 0.0, 0.0, 0.5, 3.0] and u.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_float32_step_agrees_with_float64_autograd_at_the_papers_size():
    """Width 1000, batch 50: the written-out step equals autograd on the exact softplus in float64 (1e-10), and in
    float32 its loss and every gradient are within 1e-5 (relative, per run) of the float64 values."""
    teacher, s, g = _setup(runs=2, width=1000)
    for p in s.parameters():
        p.mul_(3.0)                                      # pre-activations up to ~20: both tails of the activation
    x = torch.randn(2, 50, 2, generator=g)
    y = teacher(x)
    params = [s.W, s.biases[0], s.a]
    loss, grads = loss_and_grads(s, x, y, TrainConfig(), params)
    from NeuralNetworks.model import Student
    s64 = Student([s.W.double()], [s.biases[0].double()], s.a.double())
    loss64, grads64 = loss_and_grads(s64, x.double(), y.double(), TrainConfig(), s64.parameters())
    ref = [p.detach().clone().requires_grad_() for p in s64.parameters()]
    from NeuralNetworks.losses import pointwise_loss
    exact = pointwise_loss("mse", Student([ref[0]], [ref[1]], ref[2]).forward(x.double()), y.double()).mean(1)
    grads_exact = torch.autograd.grad(exact.sum(), ref)
    torch.testing.assert_close(loss64, exact.detach(), rtol=1e-12, atol=0)
    torch.testing.assert_close(loss.double(), exact.detach(), rtol=1e-5, atol=0)
    for a, b, c in zip(grads, grads64, grads_exact):
        torch.testing.assert_close(b, c, rtol=1e-10, atol=1e-14)
        err = (a.double() - c).norm(dim=-1 if c.dim() == 2 else (1, 2))
        assert (err <= 1e-5 * c.norm(dim=-1 if c.dim() == 2 else (1, 2))).all()


def test_overflowing_activation_input_is_computed_by_autograd():
    """A pre-activation above ~44 overflows e^{βz} in float32: loss_and_grads and a training step then use
    autograd on the exact softplus, so the step is what plain gradient descent gives."""
    teacher, s, g = _setup(runs=1, width=8)
    s.biases[0][0, 0] = 60.0                             # one neuron far in the linear tail
    x = torch.randn(1, 50, 2, generator=torch.Generator().manual_seed(1))
    y = teacher(x)
    params = [s.W, s.biases[0]]
    loss, grads = loss_and_grads(s, x, y, TrainConfig(), params)
    from NeuralNetworks.train_fast import _autograd_loss_and_grads
    loss_ag, grads_ag = _autograd_loss_and_grads(s, x, y, TrainConfig(), params)
    assert torch.isfinite(loss).all() and torch.equal(loss, loss_ag)
    for a, b in zip(grads, grads_ag):
        assert torch.equal(a, b)
    # one GD step in train(): its first batch is the first of a (256, R, n, d) block from the generator
    W0, b0 = s.W.clone(), s.biases[0].clone()
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(256, 1, 50, 2, generator=torch.Generator().manual_seed(7))[0]
    _, (gW, gb) = _autograd_loss_and_grads(s, x, teacher(x), TrainConfig(), params)
    train(s, teacher, TrainConfig(steps=1, optimizer="gd"), gen, progress=False)
    torch.testing.assert_close(s.W, W0 * (1 - 1e-4) - gW, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(s.biases[0], b0 - gb, rtol=1e-6, atol=1e-7)


def test_train_updates_the_students_own_tensors():
    """Training a one-hidden-layer student works on one array holding W and b; afterwards the student holds its
    own tensors again, updated in place (a reference taken before training sees the trained values)."""
    teacher, s, g = _setup()
    W, b, W0 = s.W, s.biases[0], s.W.clone()
    train(s, teacher, TrainConfig(steps=20), g, progress=False)
    assert s.W is W and s.biases[0] is b and s.W.is_contiguous() and not torch.equal(W, W0)


def test_per_run_rates_and_decays_in_one_batch_equal_each_run_alone():
    cfgs = [dict(lr=1.0, lam=1e-4, lr_bias=1.0), dict(lr=0.5, lam=1e-2, lr_bias=0.1),
            dict(lr=0.2, lam=0.0, lr_bias=2.0)]
    U = make_subspace(3, 1, torch.Generator())
    init = init_student(3, 3, 32, 1, torch.Generator().manual_seed(0))

    def student(rows):
        from NeuralNetworks.model import Student
        return Student([init.W[rows].clone()], [init.biases[0][rows].clone()], init.a[rows].clone())
    both = student([0, 1, 2])
    per_run = {k: [c[k] for c in cfgs] for k in cfgs[0]}
    h = train(both, Teacher(U), TrainConfig(steps=300, **per_run), [torch.Generator().manual_seed(i) for i in range(3)],
              progress=False)
    for i, c in enumerate(cfgs):
        one = student([i])
        h1 = train(one, Teacher(U), TrainConfig(steps=300, **c), [torch.Generator().manual_seed(i)], progress=False)
        torch.testing.assert_close(one.W[0], both.W[i], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(one.biases[0][0], both.biases[0][i], rtol=1e-5, atol=1e-6)
        assert h1["perturbations"][0] == h["perturbations"][i]


@pytest.mark.parametrize("freeze_bias,threshold,loss", [(False, 1e-3, "mse"), (False, 10.0, "mse"),
                                                        (True, 10.0, "mse"), (False, 1e-3, "logcosh")])
def test_fast_training_equals_the_plain_autograd_reference(freeze_bias, threshold, loss):
    """train_fast.train (the written-out step, W and b in one array, data in blocks) is train.pgd -- App. E's PGD
    by plain autograd -- step for step: in float64 the two agree to rounding after 300 steps, perturbations
    included (threshold 10: a kick at every step)."""
    from NeuralNetworks.train import pgd
    U = make_subspace(2, 1, torch.Generator())
    s = init_student(1, 2, 64, 1, torch.Generator().manual_seed(3), dtype=torch.float64)
    cfg = TrainConfig(steps=300, pgd_threshold=threshold, freeze_bias=freeze_bias, loss=loss)
    W_ref, b_ref = pgd(s, Teacher(U.double()), cfg, torch.Generator().manual_seed(4))
    h = train(s, Teacher(U.double()), cfg, torch.Generator().manual_seed(4), progress=False)
    assert h["perturbations"][0] == (300 if threshold == 10.0 else h["perturbations"][0])
    torch.testing.assert_close(s.W, W_ref, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(s.biases[0], b_ref, rtol=1e-9, atol=1e-11)
