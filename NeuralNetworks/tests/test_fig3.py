"""Tests of the Fig. 3 code (paper Sec. 4.3): activations, W_perp, PGD, training, the CLI."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from NeuralNetworks.activations import smooth_relu, smooth_relu_grad
from NeuralNetworks.main import main
from NeuralNetworks.model import Teacher, init_student, make_subspace, perp_norm, perp_part
from NeuralNetworks.train import TrainConfig, loss_and_grads, train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
    from NeuralNetworks.train import pointwise_loss
    loss_ag = pointwise_loss(s.forward(x) - y, loss).mean(1)
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


def _results_without_times(path):
    res = json.load(open(path))
    return {k: v for k, v in res.items() if not k.endswith("_s")}


def test_quick_run_writes_every_output_and_is_reproducible(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    res = main(["--quick", "--no-progress", "--out-dir", str(a)])
    main(["--quick", "--no-progress", "--out-dir", str(b)])
    for name in ["fig3_weights.png", "fig3_weights.pdf", "fig3_perp.png", "fig3_perp.pdf",
                 "results.json", "config.json", "history.npz"]:
        assert (a / name).stat().st_size > 0, name
    assert _results_without_times(a / "results.json") == _results_without_times(b / "results.json")
    config = json.load(open(a / "config.json"))
    assert config["threads"] == 1 and config["args"]["threads_resolved"] == 1   # the policy for training loops
    for key in ["perp_ratio_init", "perp_ratio_final", "perp_norm_init", "perp_norm_final",
                "decay_only_perp_norm_final", "test_mse", "steps_run", "optimize_s", "wall_s"]:
        assert key in res
    assert res["steps_run"] == 2000
    assert res["perp_norm_final"] < res["decay_only_perp_norm_final"]
    hist = np.load(a / "history.npz")
    assert hist["snapshots"].shape[1:] == (1000, 2)
    assert list(os.listdir(a)) and not [f for f in os.listdir(a) if f.startswith(".tmp")]
    assert_plot_only_redraws(main, a)


@pytest.mark.parametrize("argv", [["--width", "0"], ["--steps", "-5"], ["--lr", "nan"], ["--bogus"],
                                  ["--width", "1e12"], ["--batch", "100000000000"], ["--d", "1000000000"],
                                  ["--d", "1", "--k", "1"], ["--k", "2", "--experiment", "claims", "--d", "2"]]
                         + ([] if torch.cuda.is_available() else [["--device", "cuda"]]))
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, argv, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main([*argv, "--out-dir", str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and argv[0] in err
    assert not out.exists()


def test_bad_input_from_the_command_line(tmp_path):
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, os.path.join(ROOT, "NeuralNetworks", "main.py"), "--width", "0",
                        "--out-dir", str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [p.stderr.strip()] and "Traceback" not in p.stderr
    assert "--width" in p.stderr and not out.exists()


def test_divergence_stops_with_advice(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--quick", "--no-progress", "--lr", "1e8", "--out-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "smaller --lr" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_thread_policy():
    """One thread for the training loops; every available core for the large quadrature passes of sosp;
    --threads overrides both; 0 is refused."""
    from NeuralNetworks.main import parse_args
    from NeuralNetworks.utils import available_cores
    assert parse_args([]).threads_resolved == 1
    assert parse_args(["--experiment", "claims"]).threads_resolved == 1
    assert parse_args(["--experiment", "sosp"]).threads_resolved == available_cores()
    assert parse_args(["--experiment", "sosp", "--quick"]).threads_resolved == 1      # width 64
    assert parse_args(["--experiment", "sosp", "--threads", "1"]).threads_resolved == 1
    with pytest.raises(SystemExit) as e:
        parse_args(["--threads", "0"])
    assert e.value.code == 2


def assert_plot_only_redraws(main, folder):
    """``--plot-only folder`` redraws every figure of the run saved there, byte for byte (PNG), from its saved
    files alone; with another option it is refused."""
    pngs = sorted(p for p in os.listdir(folder) if p.endswith(".png"))
    assert pngs
    before = {p: open(os.path.join(folder, p), "rb").read() for p in pngs}
    for p in os.listdir(folder):
        if p.endswith((".png", ".pdf")):
            os.remove(os.path.join(folder, p))
    main(["--plot-only", str(folder)])
    assert sorted(p for p in os.listdir(folder) if p.endswith(".png")) == pngs
    for p in pngs:
        assert open(os.path.join(folder, p), "rb").read() == before[p], p
        assert os.path.getsize(os.path.join(folder, p[:-4] + ".pdf")) > 0
    with pytest.raises(SystemExit) as e:
        main(["--plot-only", str(folder), "--seed", "3"])
    assert e.value.code == 2


@pytest.mark.parametrize("where", ["file_child", "proc", "long_name"])
def test_unwritable_out_dir_refused_before_any_work(tmp_path, where, capsys):
    """An --out-dir that cannot be written ends in one line and exit 2 before any work, not after it."""
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = {"file_child": blocker / "out", "proc": "/proc/x/out", "long_name": tmp_path / ("n" * 300)}[where]
    with pytest.raises(SystemExit) as e:
        main(["--quick", "--no-progress", "--out-dir", str(out)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and "--out-dir" in err
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


def test_outputs_follow_the_umask_and_stale_temporaries_go(tmp_path):
    """Result files get the usual 0666 & ~umask (not mkstemp's 0600); a killed run's .tmp-* files are removed."""
    out = tmp_path / "out"
    out.mkdir()
    (out / ".tmp-abc.npz").write_bytes(b"truncated")
    old = os.umask(0o022)
    try:
        main(["--quick", "--no-progress", "--out-dir", str(out)])
    finally:
        os.umask(old)
    assert (os.stat(out / "results.json").st_mode & 0o777) == 0o644
    assert not [f for f in os.listdir(out) if f.startswith(".tmp-")]


def test_seeds_outside_the_range_refused(capsys):
    """Negative seeds and seeds past 2^29 - 1 (torch's CPU generator reads only a seed's low 32 bits) end in
    one line and exit 2; non-finite numbers are written to JSON as null, never as NaN."""
    for bad in ("-1", "123456789012345678901234", str(2 ** 29)):
        with pytest.raises(SystemExit) as e:
            main(["--seed", bad])
        assert e.value.code == 2 and "--seed" in capsys.readouterr().err
    import importlib
    utils = importlib.import_module(main.__module__.rsplit(".", 1)[0] + ".utils")
    assert json.loads(json.dumps(utils._plain({"a": [1.0, float("nan")], "b": np.array([np.inf, 2.0])}))) == \
        {"a": [1.0, None], "b": [None, 2.0]}


def signal_in(monkeypatch, module, name, call=1):
    """Patch ``module.name`` so that its ``call``-th call delivers a real SIGINT (as one Ctrl-C would), then runs
    it."""
    import signal
    original, calls = getattr(module, name), []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            signal.raise_signal(signal.SIGINT)
        return original(*args, **kwargs)
    monkeypatch.setattr(module, name, interrupted)


def test_interrupts_and_write_failures_never_leave_a_mixed_folder(tmp_path, monkeypatch, capsys):
    """Ctrl-C before training leaves the previous complete run in place; during training the run keeps what was
    trained (the loop's own catch); after it (in the test error) the run writes everything and says
    'interrupted'; a failed write is one line, exit 1, the folder unchanged."""
    from NeuralNetworks import model, train, utils
    out = tmp_path / "out"
    argv = ["--quick", "--no-progress", "--steps", "50", "--width", "32", "--out-dir", str(out)]
    main(argv)
    before = {f: (out / f).read_bytes() for f in sorted(os.listdir(out))}
    with monkeypatch.context() as m:
        signal_in(m, model, "init_student")
        with pytest.raises(KeyboardInterrupt):
            main(argv + ["--seed", "5"])
    assert {f: (out / f).read_bytes() for f in sorted(os.listdir(out))} == before
    with monkeypatch.context() as m:
        m.setattr(utils, "write_npz", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device")))
        with pytest.raises(SystemExit) as e:
            main(argv + ["--seed", "5"])
    assert e.value.code == 1 and "No space left" in capsys.readouterr().err
    assert {f: (out / f).read_bytes() for f in sorted(os.listdir(out))} == before
    with monkeypatch.context() as m:
        signal_in(m, train, "loss_and_grads")                  # the first training step: nothing to keep
        with pytest.raises(KeyboardInterrupt):
            main(argv + ["--seed", "6"])
    assert {f: (out / f).read_bytes() for f in sorted(os.listdir(out))} == before
    with monkeypatch.context() as m:
        signal_in(m, train, "loss_and_grads", call=10)          # mid-training: what was trained is kept
        res = main(argv + ["--seed", "6"])
    assert res["interrupted"] and 0 < res["steps_run"] < 50 and json.load(open(out / "results.json"))["interrupted"]
    with monkeypatch.context() as m:
        signal_in(m, train, "test_mse")                        # after training
        res = main(argv + ["--seed", "5"])
    assert res["interrupted"] and res["steps_run"] == 50 and json.load(open(out / "results.json"))["interrupted"]
    assert sorted(os.listdir(out)) == sorted(before) and sorted(os.listdir(tmp_path)) == ["out"]
