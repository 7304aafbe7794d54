"""Training by perturbed gradient descent (paper Sec. 4.3, App. E; claims (c)-(e)).

PGD as in the authors' experiment: plain gradient steps on the minibatch loss, weight decay
``lam * W`` on the weight matrices (the regulariser ``lam/2 ||W||_F^2``), and whenever the norm of the
first-layer *loss* gradient falls below ``pgd_threshold`` every trained parameter receives
``pgd_radius * N(0, 1)`` before the step. A fresh Gaussian minibatch is drawn at every step.
All runs along the leading axis ``R`` train together; runs never interact.
"""
import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from NeuralNetworks.model import Student, Teacher, perp_norm

LOSSES = ("mse", "huber", "logcosh")
OPTIMIZERS = ("pgd", "gd", "adam")


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite."""


def pointwise_loss(r: torch.Tensor, name: str) -> torch.Tensor:
    """Loss of the residual ``r = prediction - target``, elementwise. Huber uses delta = 1."""
    if name == "mse":
        return r * r
    if name == "huber":
        a = r.abs()
        return torch.where(a <= 1.0, 0.5 * r * r, a - 0.5)
    if name == "logcosh":  # log cosh r = |r| + log(1 + e^{-2|r|}) - log 2, stable for large |r|
        a = r.abs()
        return a + torch.nn.functional.softplus(-2.0 * a) - math.log(2.0)
    raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")


def loss_derivative(r: torch.Tensor, name: str) -> torch.Tensor:
    """Derivative of :func:`pointwise_loss` with respect to the residual ``r``."""
    if name == "mse":
        return 2.0 * r
    if name == "huber":
        return r.clamp(-1.0, 1.0)
    if name == "logcosh":
        return torch.tanh(r)
    raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")


@dataclass
class TrainConfig:
    steps: int = 20_000
    batch: int = 50
    lr: float = 1.0            # weight matrices
    lr_bias: float = 1.0       # biases
    lr_out: float = 1.0        # second layer a, when trained
    lam: float = 1e-4          # weight decay on the weight matrices
    pgd_threshold: float = 1e-3
    pgd_radius: float = 5e-3
    optimizer: str = "pgd"
    loss: str = "mse"
    freeze_bias: bool = False
    train_out: bool = False    # the paper's Fig. 3 keeps a fixed


def log_spaced_steps(steps: int, count: int) -> np.ndarray:
    """Sorted unique integers in ``[0, steps]``, log-spaced, always containing 0 and ``steps``."""
    s = np.unique(np.round(np.geomspace(1, steps + 1, count) - 1).astype(int))
    return np.union1d(s, [0, steps])


def record_steps(steps: int) -> np.ndarray:
    """Steps at which norms are logged: log-spaced (for the early phase) and linear."""
    return np.union1d(log_spaced_steps(steps, 200), np.linspace(0, steps, 501).round().astype(int))


def _trained(student: Student, cfg: TrainConfig):
    """(parameter, learning rate, weight decay) for every trained parameter."""
    out = [(W, cfg.lr, cfg.lam) for W in student.weights]
    if not cfg.freeze_bias:
        out += [(b, cfg.lr_bias, 0.0) for b in student.biases]
    if cfg.train_out:
        out.append((student.a, cfg.lr_out, 0.0))
    return out


def _adam_state(params):
    return [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]


def loss_and_grads(student: Student, x, y, cfg: TrainConfig, params):
    """Per-run minibatch loss ``(R,)`` and its gradients with respect to ``params``.

    One hidden layer (the paper's network) uses the closed-form backward pass, about twice as fast
    as autograd at the paper's sizes; deeper networks use autograd. Tests check the two agree."""
    if len(student.weights) > 1:
        for p in params:
            p.requires_grad_(True)
        try:
            loss = pointwise_loss(student.forward(x) - y, cfg.loss).mean(1)
            grads = torch.autograd.grad(loss.sum(), params)
        finally:
            for p in params:
                p.requires_grad_(False)
        return loss.detach(), grads
    W, b, a = student.W, student.biases[0], student.a
    Z = torch.baddbmm(b.unsqueeze(1), x, W.transpose(1, 2))           # (R, n, h)
    H = student.act(Z)
    r = torch.bmm(H, a.unsqueeze(2)).squeeze(2) - y                     # (R, n)
    loss = pointwise_loss(r, cfg.loss).mean(1)
    dout = loss_derivative(r, cfg.loss) / x.shape[1]                     # dloss/dprediction
    dZ = student.act_grad(Z).mul_(a.unsqueeze(1)).mul_(dout.unsqueeze(2))
    by_param = {id(W): lambda: torch.bmm(x.transpose(1, 2), dZ).transpose(1, 2),
                id(b): lambda: dZ.sum(1),
                id(a): lambda: torch.bmm(dout.unsqueeze(1), H).squeeze(1)}
    return loss, [by_param[id(p)]() for p in params]


def train(student: Student, teacher: Teacher, cfg: TrainConfig, generator: torch.Generator,
          snapshot_steps=(), progress: bool = True) -> dict:
    """Train ``student`` in place. Returns a history with arrays over the recorded steps:
    ``step``, ``loss (T, R)``, ``perp_norm (T, R)``, ``w_norm (T, R)``, ``grad_norm (T, R)``,
    ``snapshots (S, R, h, d)`` of ``W_1`` at ``snapshot_steps``, ``perturbations (R,)`` and
    ``interrupted`` (Ctrl-C keeps what was trained so far)."""
    trained = _trained(student, cfg)
    params = [p for p, _, _ in trained]
    W, U = student.W, teacher.U
    R, _, d = W.shape
    rec, snaps = set(record_steps(cfg.steps).tolist()), set(int(s) for s in snapshot_steps)
    hist = {k: [] for k in ("step", "loss", "perp_norm", "w_norm", "grad_norm")}
    snapshots, n_perturb = [], np.zeros(R, dtype=np.int64)
    adam = _adam_state(params) if cfg.optimizer == "adam" else None
    interrupted = False
    bar = tqdm(total=cfg.steps, disable=None if progress else True, mininterval=0.5, desc="train")
    try:
        for t in range(cfg.steps + 1):
            if t % 256 == 255:
                bar.update(256)
            x = torch.randn(R, cfg.batch, d, generator=generator, device=W.device, dtype=W.dtype)
            loss, grads = loss_and_grads(student, x, teacher(x, generator), cfg, params)
            gnorm = torch.linalg.vector_norm(grads[0], dim=(1, 2))
            loss_sum, gmin = torch.stack([loss.sum(), gnorm.min()]).tolist()  # one sync per step
            if not math.isfinite(loss_sum):
                raise DivergenceError(f"the loss became {loss_sum} at step {t}")
            if t in rec:
                _record(hist, t, loss, W, U, gnorm)
            if t in snaps:
                snapshots.append(W.cpu().clone())
            if t == cfg.steps:
                break
            if cfg.optimizer == "pgd" and gmin < cfg.pgd_threshold:
                small = gnorm < cfg.pgd_threshold
                n_perturb += small.cpu().numpy()
                _perturb(params, small, cfg.pgd_radius, generator)
            _step(trained, grads, cfg, adam, t)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    out = {k: np.asarray(v) for k, v in hist.items()}
    out["snapshots"] = torch.stack(snapshots).numpy() if snapshots else np.zeros((0, R) + W.shape[1:])
    out["snapshot_steps"] = np.asarray(sorted(snaps))[: len(snapshots)]
    out["perturbations"] = n_perturb
    out["interrupted"] = interrupted
    return out


def _record(hist, t, loss, W, U, gnorm):
    hist["step"].append(t)
    hist["loss"].append(loss.cpu().numpy())
    hist["perp_norm"].append(perp_norm(W, U).cpu().numpy())
    hist["w_norm"].append(torch.linalg.matrix_norm(W).cpu().numpy())
    hist["grad_norm"].append(gnorm.cpu().numpy())


def _perturb(params, mask: torch.Tensor, radius: float, generator):
    """Add ``radius * N(0,1)`` to every entry of every trained parameter of the runs in ``mask (R,)``."""
    for p in params:
        noise = torch.randn(p.shape, generator=generator, device=p.device, dtype=p.dtype)
        p.add_(radius * noise * mask.view(-1, *([1] * (p.dim() - 1))).to(p.dtype))


def _step(trained, grads, cfg: TrainConfig, adam, t: int):
    """One (S)GD or Adam step, weight decay added to the gradient (coupled, as torch.optim.SGD)."""
    for i, ((p, lr, wd), g) in enumerate(zip(trained, grads)):
        if adam is None:  # p <- p - lr (g + wd p), in place
            if wd:
                p.mul_(1.0 - lr * wd)
            p.add_(g, alpha=-lr)
            continue
        if wd:
            g = g + wd * p
        m, v = adam[i]
        m.mul_(0.9).add_(g, alpha=0.1)
        v.mul_(0.999).addcmul_(g, g, value=0.001)
        mhat, vhat = m / (1 - 0.9 ** (t + 1)), v / (1 - 0.999 ** (t + 1))
        p.sub_(lr * mhat / (vhat.sqrt() + 1e-8))


@torch.no_grad()
def test_mse(student: Student, teacher: Teacher, n: int, generator: torch.Generator) -> np.ndarray:
    """Mean squared error against the noiseless teacher on ``n`` fresh samples, per run ``(R,)``."""
    R, _, d = student.W.shape
    x = torch.randn(R, n, d, generator=generator, device=student.W.device, dtype=student.W.dtype)
    clean = Teacher(teacher.U, 0.0)
    return ((student.forward(x) - clean(x)) ** 2).mean(1).cpu().numpy()
