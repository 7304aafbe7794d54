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
    """Hyperparameters. Every field but ``steps``, ``batch`` and ``pgd_radius`` may also be a list with one
    value per run, so that runs with different settings (and the same architecture) train as one batch."""
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


def _per_run(value, R, like, map_=lambda v: v):
    """A scalar stays a Python number; a list becomes a tensor ``(R,)`` on the device of ``like``."""
    if isinstance(value, (list, tuple)):
        if len(value) != R:
            raise ValueError(f"a per-run setting has {len(value)} values for {R} runs")
        return torch.tensor([map_(v) for v in value], device=like.device, dtype=like.dtype)
    return map_(value)


def _bcast(v, p):
    """Per-run tensor ``(R,)`` viewed to broadcast against parameter ``p: (R, ...)``; scalars unchanged."""
    return v.view(-1, *([1] * (p.dim() - 1))) if torch.is_tensor(v) else v


def _select(r, names, fn):
    """``fn(r, name)`` with one loss name, or per run (rows of ``r``) with a list of names."""
    if isinstance(names, str):
        return fn(r, names)
    out = torch.empty_like(r)
    for name in set(names):
        rows = torch.tensor([x == name for x in names], device=r.device)
        out[rows] = fn(r[rows], name)
    return out


def log_spaced_steps(steps: int, count: int) -> np.ndarray:
    """Sorted unique integers in ``[0, steps]``, log-spaced, always containing 0 and ``steps``."""
    s = np.unique(np.round(np.geomspace(1, steps + 1, count) - 1).astype(int))
    return np.union1d(s, [0, steps])


def record_steps(steps: int) -> np.ndarray:
    """Steps at which norms are logged: log-spaced (for the early phase) and linear."""
    return np.union1d(log_spaced_steps(steps, 200), np.linspace(0, steps, 501).round().astype(int))


def _trained(student: Student, cfg: TrainConfig):
    """(parameter, learning rate, weight decay, perturbable) for every parameter some run trains; learning
    rates and decays are numbers or per-run tensors (0 for the runs that keep that parameter fixed, which
    then stays bit-for-bit unchanged); ``perturbable`` is True or a per-run bool tensor."""
    R, W1 = student.W.shape[0], student.W
    lam, lr = _per_run(cfg.lam, R, W1), _per_run(cfg.lr, R, W1)
    out = [(W, lr, lam, True) for W in student.weights]
    trains_b = 1 - _per_run(cfg.freeze_bias, R, W1, float)             # 1.0 / 0.0, or per run
    if (trains_b.any() if torch.is_tensor(trains_b) else trains_b):
        lr_b = _per_run(cfg.lr_bias, R, W1) * trains_b
        out += [(b, lr_b, 0.0, trains_b > 0 if torch.is_tensor(trains_b) else True) for b in student.biases]
    trains_a = _per_run(cfg.train_out, R, W1, float)
    if (trains_a.any() if torch.is_tensor(trains_a) else trains_a):
        lr_a = _per_run(cfg.lr_out, R, W1) * trains_a
        out.append((student.a, lr_a, 0.0, trains_a > 0 if torch.is_tensor(trains_a) else True))
    return out


def _optimizer_setup(cfg: TrainConfig, R, W, params):
    """PGD thresholds (a number, or per run; -inf: never perturb, i.e. GD and Adam) and the Adam state:
    None (no run uses Adam), a state list (every run does) or ``(state, per-run mask)``."""
    if isinstance(cfg.optimizer, str):
        thr = cfg.pgd_threshold if cfg.optimizer == "pgd" else -math.inf
        return thr, (_adam_state(params) if cfg.optimizer == "adam" else None)
    opts = list(cfg.optimizer)
    base = cfg.pgd_threshold if isinstance(cfg.pgd_threshold, (list, tuple)) else [cfg.pgd_threshold] * R
    thr = _per_run([t if o == "pgd" else -math.inf for o, t in zip(opts, base)], R, W)
    mask = torch.tensor([o == "adam" for o in opts], device=W.device)
    return thr, ((_adam_state(params), mask) if bool(mask.any()) else None)


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
            loss = _select(student.forward(x) - y, cfg.loss, pointwise_loss).mean(1)
            grads = torch.autograd.grad(loss.sum(), params)
        finally:
            for p in params:
                p.requires_grad_(False)
        return loss.detach(), grads
    W, b, a = student.W, student.biases[0], student.a
    Z, H = _buffers((W.shape[0], x.shape[1], W.shape[1]), W)
    torch.baddbmm(b.unsqueeze(1), x, W.transpose(1, 2), out=Z)         # (R, n, h)
    student.act(Z, out=H)
    r = torch.bmm(H, a.unsqueeze(2)).squeeze(2) - y                     # (R, n)
    loss = _select(r, cfg.loss, pointwise_loss).mean(1)
    dout = _select(r, cfg.loss, loss_derivative) / x.shape[1]            # dloss/dprediction
    dZ = student.act_grad(Z, inplace=True).mul_(a.unsqueeze(1)).mul_(dout.unsqueeze(2))   # Z is not needed after
    by_param = {id(W): lambda: torch.bmm(x.transpose(1, 2), dZ).transpose(1, 2),
                id(b): lambda: dZ.sum(1),
                id(a): lambda: torch.bmm(dout.unsqueeze(1), H).squeeze(1)}
    return loss, [by_param[id(p)]() for p in params]


_BUFFERS = {}


def _buffers(shape, like):
    """Two ``(R, n, h)`` arrays for the step's activations, reused from step to step: allocating them afresh
    (4 MB each for 22 runs) let the C allocator's heap grow without bound (a 22-run PGD reached 5 GB) and
    cost a page fault per 4 KB touched. The step's outputs never refer to them."""
    key = (shape, like.dtype, like.device)
    if key not in _BUFFERS:
        _BUFFERS.clear()
        _BUFFERS[key] = (torch.empty(shape, dtype=like.dtype, device=like.device),
                         torch.empty(shape, dtype=like.dtype, device=like.device))
    return _BUFFERS[key]


class _Data:
    """Fresh Gaussian inputs ``(R, batch, d)`` per step. With one generator, one draw per step; with a list
    (one generator per run), each run's stream is drawn ``block`` steps at a time, so a run gets the same
    data whether it trains alone or in a batch of runs."""

    def __init__(self, generator, R, batch, d, like, block=256):
        self.gen, self.shape, self.like, self.block = generator, (R, batch, d), like, block
        self.buf, self.pos = None, block

    def next(self):
        if not isinstance(self.gen, (list, tuple)):
            return torch.randn(self.shape, generator=self.gen, device=self.like.device, dtype=self.like.dtype)
        if self.pos == self.block:
            R, batch, d = self.shape
            self.buf = torch.stack([torch.randn(self.block, batch, d, generator=g, device=self.like.device,
                                                dtype=self.like.dtype) for g in self.gen], 1)
            self.pos = 0
        self.pos += 1
        return self.buf[self.pos - 1]


def train(student: Student, teacher: Teacher, cfg: TrainConfig, generator, snapshot_steps=(),
          progress: bool = True) -> dict:
    """Train ``student`` in place; ``generator``: one ``torch.Generator`` or one per run (then a run's
    result does not depend on the other runs of the batch). Returns a history with arrays over the recorded steps:
    ``step``, ``loss (T, R)``, ``perp_norm (T, R)``, ``w_norm (T, R)``, ``grad_norm (T, R)``,
    ``snapshots (S, R, h, d)`` of ``W_1`` at ``snapshot_steps``, ``perturbations (R,)`` and
    ``interrupted`` (Ctrl-C keeps what was trained so far; before the first recorded step it propagates)."""
    trained = _trained(student, cfg)
    params = [p for p, _, _, _ in trained]
    W, U = student.W, teacher.U
    R, _, d = W.shape
    thr, adam = _optimizer_setup(cfg, R, W, params)
    rec, snaps = set(record_steps(cfg.steps).tolist()), set(int(s) for s in snapshot_steps)
    hist = {k: [] for k in ("step", "loss", "perp_norm", "w_norm", "grad_norm")}
    snapshots, n_perturb = [], np.zeros(R, dtype=np.int64)
    interrupted = False
    data = _Data(generator, R, cfg.batch, d, W)
    bar = tqdm(total=cfg.steps, disable=None if progress else True, mininterval=0.5, desc="train")
    try:
        for t in range(cfg.steps + 1):
            if t % 256 == 255:
                bar.update(256)
            x = data.next()
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
            if gmin < (thr.max().item() if torch.is_tensor(thr) else thr):
                small = gnorm < thr
                n_perturb += small.cpu().numpy()
                _perturb(trained, small, cfg.pgd_radius, generator)
            _step(trained, grads, adam, t)
    except KeyboardInterrupt:
        if not hist["step"]:            # not one step recorded: nothing to keep, the interrupt goes on up
            raise
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


def _perturb(trained, mask: torch.Tensor, radius: float, generator):
    """Add ``radius * N(0,1)`` to every entry of every trained parameter of the runs in ``mask (R,)``
    (with one generator per run, each perturbed run draws from its own)."""
    for p, _, _, perturbable in trained:
        if isinstance(generator, (list, tuple)):
            noise = torch.zeros_like(p)
            for r in mask.nonzero()[:, 0].tolist():
                noise[r] = torch.randn(p.shape[1:], generator=generator[r], device=p.device, dtype=p.dtype)
        else:
            noise = torch.randn(p.shape, generator=generator, device=p.device, dtype=p.dtype)
        p.add_(radius * noise * _bcast(mask & perturbable, p).to(p.dtype))


def _step(trained, grads, adam, t: int):
    """One (S)GD or Adam step, weight decay added to the gradient (coupled, as torch.optim.SGD).
    ``adam``: None (all runs GD), a state list (all Adam) or ``(state, per-run mask)``."""
    state, which = (adam, None) if not isinstance(adam, tuple) else adam
    for i, ((p, lr, wd, _), g) in enumerate(zip(trained, grads)):
        if state is None and not torch.is_tensor(lr) and not torch.is_tensor(wd):
            if wd:                                 # the paper's case: p <- (1 - lr wd) p - lr g, in place
                p.mul_(1.0 - lr * wd)
            p.add_(g, alpha=-lr)
            continue
        lr, wd = _bcast(lr, p), _bcast(wd, p)
        g = g + wd * p
        if state is None:
            p.sub_(g * lr)
            continue
        m, v = state[i]
        m.mul_(0.9).add_(g, alpha=0.1)
        v.mul_(0.999).addcmul_(g, g, value=0.001)
        upd = (m / (1 - 0.9 ** (t + 1))) / ((v / (1 - 0.999 ** (t + 1))).sqrt() + 1e-8)
        if which is not None:                      # GD for the runs that are not Adam
            upd = torch.where(_bcast(which, p), upd, g)
        p.sub_(upd * lr)


@torch.no_grad()
def test_mse(student: Student, teacher: Teacher, n: int, generator: torch.Generator) -> np.ndarray:
    """Mean squared error against the noiseless teacher on ``n`` fresh samples, per run ``(R,)``."""
    R, _, d = student.W.shape
    x = _Data(generator, R, n, d, student.W, block=1).next()
    clean = Teacher(teacher.U, 0.0, teacher.offset)
    return ((student.forward(x) - clean(x)) ** 2).mean(1).cpu().numpy()
