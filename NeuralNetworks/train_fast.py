"""The training loop of the experiments: ``train.pgd``'s algorithm (App. E) with the step written out, and
many runs trained as one batch (seeds, the claims grid's rows and their nulls).

A one-hidden-layer student trains in the layout of :class:`_OneLayer`: the first layer as one array
``Θ = [W | b]ᵀ: (R, d + 1, h)``, its loss gradient from three batched products, the activation and its
derivative in two elementwise passes (``activations.step_form``). Deeper students, and any step whose
activations overflow float32, take autograd's gradients. GD and PGD update ``Θ`` with one fused
multiply-add; Adam is ``train.adam_update``. All runs along the leading axis ``R`` train together and never
interact: with one generator per run, a run's result does not depend on the other runs of its batch.
Tests hold :func:`train` equal to ``train.pgd``; ``benchmark.py`` times the two.
"""
import contextlib
import math

import numpy as np
import torch
from tqdm import tqdm

from NeuralNetworks.activations import step_form
from NeuralNetworks.losses import loss_slopes, pointwise_loss
from NeuralNetworks.model import Student, Teacher, perp_norm
from NeuralNetworks.train import BLOCK, DivergenceError, TrainConfig, adam_update, record_steps


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


def _select(fn, names, f, y):
    """``fn(name, f, y)`` with one loss name, or per run (rows of ``f`` and ``y``) with a list of names."""
    if isinstance(names, str):
        return fn(names, f, y)
    out = torch.empty_like(f)
    for name in set(names):
        rows = torch.tensor([x == name for x in names], device=f.device)
        out[rows] = fn(name, f[rows], y if isinstance(y, float) else y[rows])
    return out


def _slope(name, f, y):
    """``ℓ'``: the first of :func:`losses.loss_slopes`."""
    return loss_slopes(name, f, y, second=False)[0]


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


def _autograd_loss_and_grads(student: Student, x, y, cfg: TrainConfig, params):
    """Autograd on copies of the parameters (``params`` may be views, as in training a one-hidden-layer net)."""
    wanted = {id(p) for p in params}
    own = [p.detach().clone().requires_grad_(id(p) in wanted) for p in student.parameters()]
    depth = len(student.weights)
    copy = Student(own[:depth], own[depth:2 * depth], own[-1], student.activation)
    loss = _select(pointwise_loss, cfg.loss, copy.forward(x), y).mean(1)
    index = {id(p): i for i, p in enumerate(student.parameters())}
    grads = torch.autograd.grad(loss.sum(), [own[index[id(p)]] for p in params])
    return loss.detach(), list(grads)


def _combined(W, b):
    """``WbT = [W | b]^T: (R, d + 1, h)``, the layout of the one-hidden-layer step (a copy)."""
    return torch.cat([W.transpose(1, 2), b.unsqueeze(1)], 1)


class _OneLayer:
    """The training step of a one-hidden-layer student ``F(x) = a^T s(W x + b)``, written out.

    The first layer is held as ``WbT = [W | b]^T: (R, d + 1, h)`` and the inputs as ``[x, 1]``, so that one batched
    product forms every pre-activation and one forms the whole first-layer gradient. With ``r = F(x) - y`` and
    ``q = l'(r)`` (``2 r`` for the squared error), the gradient of the loss ``mean_n l(r_n)`` is

        dL/dWbT[:, j] = a_j / n * sum_n q_n s'(z_nj) [x_n, 1]        dL/da_j = 1/n * sum_n q_n s(z_nj),

    so the ``(n, h)`` arrays are touched only by the activation's elementwise passes (:class:`StepForm`) and by
    three products; every other operation is on ``(d + 1, n)`` or ``(d + 1, h)``. The per-step inputs are
    prepared a block of steps at a time (:meth:`prepare`)."""

    def __init__(self, student: Student, cfg: TrainConfig, params, n: int):
        self.form = step_form(student.activation)
        self.names = cfg.loss
        self.mse = cfg.loss == "mse"
        self.n, self.h = n, student.a.shape[1]
        self.c = (2.0 if self.mse else 1.0) / n     # xg's factor: the squared error's l'(r) = 2 r, over n
        ids = [id(student.W), id(student.biases[0]), id(student.a)]
        for p in params:
            if id(p) not in ids:
                raise ValueError("the one-hidden-layer step computes gradients for W, b and a only")
        self.which = [ids.index(id(p)) for p in params]
        self.fixed_a = None if 2 in self.which else self._a_views(student.a)
        R, d, like = student.a.shape[0], student.W.shape[2], student.a
        self.buffers = _buffers((R, n, self.h), like)
        self.VT = self.buffers[1].transpose(1, 2)
        # the step's small arrays, written in place every step (the results are views of G)
        self.r, self.xd, self.G = (torch.empty(shape, dtype=like.dtype, device=like.device)
                                   for shape in ((R, 1, n), (R, d + 1, n), (R, d + 1, self.h)))
        self.GW = self.G.narrow(1, 0, d)

    def _a_views(self, a):
        return (self.form.v_scale * a).unsqueeze(1), a.unsqueeze(1)

    def prepare(self, x, y):
        """``x: (..., n, d)``, ``y: (..., n)`` -> ``in_scale [x, 1]: (..., n, d + 1)``, ``c [x, 1]^T / n:
        (..., d + 1, n)`` (``c = 2`` for the squared error, whose derivative ``2 r`` is folded in here; else 1) and
        ``-y: (..., 1, n)``."""
        xe = torch.cat([x, torch.ones_like(x[..., :1])], -1)
        xg = (xe * self.c).transpose(-1, -2).contiguous()
        return xe * self.form.in_scale, xg, -y.unsqueeze(-2)

    def __call__(self, WbT, a, xs, xg, ny):
        """The residuals ``r = F(x) - y: (R, 1, n)`` and the first layer's gradient ``G: (R, d + 1, h)`` (rows: W's
        columns, then b) for one step's prepared inputs (:meth:`prepare`); :meth:`total` gives the loss from
        ``r`` and :meth:`grads` the gradients of the requested parameters. Both are overwritten by the next call."""
        Z, V = self.buffers
        a_row, a_w = self.fixed_a or self._a_views(a)
        self.form.fill(torch.bmm(xs, WbT, out=Z), V)                  # V ~ s(z), Z = s'(z)
        r = torch.baddbmm(ny, a_row, self.VT, out=self.r)           # F(x) - y
        self.q = q = r if self.mse else _select(_slope, self.names, r, 0.0)   # ℓ' of the residual
        torch.mul(q, xg, out=self.xd)                               # l'(r_n) [x_n, 1] / n
        return r, torch.bmm(self.xd, Z, out=self.G).mul_(a_w)       # ... times s'(z_n) a, summed over n

    def total(self, r):
        """``n`` times the per-run loss ``(R,)`` from the residuals."""
        if self.mse:
            return torch.linalg.vecdot(r, r).view(-1)
        return _select(pointwise_loss, self.names, r, 0.0).sum((1, 2))

    def grads(self, G):
        """The gradients of the requested parameters, from the last step's ``G`` (views for W and b)."""
        out = []
        for i in self.which:
            if i == 0:
                out.append(G[:, :-1].transpose(1, 2))
            elif i == 1:
                out.append(G[:, -1])
            else:
                out.append(torch.bmm(self.q, self.buffers[1]).view(-1, self.h).mul_(self.c * self.form.v_scale))
        return out


_BUFFERS = {}


def _buffers(shape, like):
    """Two ``(R, n, h)`` arrays for the step's activations, allocated once per shape and reused from step to step
    (and from run to run); the step's outputs never refer to them."""
    key = (shape, like.dtype, like.device)
    if key not in _BUFFERS:
        _BUFFERS.clear()
        _BUFFERS[key] = (torch.empty(shape, dtype=like.dtype, device=like.device),
                         torch.empty(shape, dtype=like.dtype, device=like.device))
    return _BUFFERS[key]


class _Data:
    """Fresh Gaussian inputs ``(R, batch, d)`` for every step, drawn ``block`` steps at a time: with one generator,
    one draw of ``(block, R, batch, d)``; with a list (one generator per run), each run's block from its own
    generator, so that a run gets the same data whether it trains alone or in a batch of runs. ``prepare`` maps
    a block ``x: (block, R, batch, d)`` to the arrays the step needs, each with the leading block axis;
    :meth:`next` returns them and the step's index into them."""

    def __init__(self, generator, R, batch, d, like, block=BLOCK, prepare=lambda x: (x,)):
        self.gen, self.shape, self.like, self.block = generator, (R, batch, d), like, block
        self.prepare, self.arrays, self.pos = prepare, (), block

    def next(self):
        if self.pos == self.block:
            R, batch, d = self.shape
            kw = dict(device=self.like.device, dtype=self.like.dtype)
            if isinstance(self.gen, (list, tuple)):
                x = torch.stack([torch.randn(self.block, batch, d, generator=g, **kw) for g in self.gen], 1)
            else:
                x = torch.randn(self.block, R, batch, d, generator=self.gen, **kw)
            self.arrays, self.pos = self.prepare(x), 0
        self.pos += 1
        return self.arrays, self.pos - 1


def train(student: Student, teacher: Teacher, cfg: TrainConfig, generator, snapshot_steps=(),
          progress: bool = True) -> dict:
    """Train ``student`` in place; ``generator``: one ``torch.Generator`` or one per run (then a run's
    result does not depend on the other runs of the batch). Returns a history with arrays over the recorded steps:
    ``step``, ``loss (T, R)``, ``perp_norm (T, R)``, ``w_norm (T, R)``, ``grad_norm (T, R)``,
    ``snapshots (S, R, h, d)`` of ``W_1`` at ``snapshot_steps``, ``perturbations (R,)`` and
    ``interrupted`` (Ctrl-C keeps what was trained so far; before the first recorded step it propagates)."""
    with _one_array(student) as WbT:
        trained = _trained(student, cfg)
        params = [p for p, _, _, _ in trained]
        W, U = student.W, teacher.U
        R, n, d = W.shape[0], cfg.batch, W.shape[2]
        thr, adam = _optimizer_setup(cfg, R, W, params)
        thr_max = thr.max().item() if torch.is_tensor(thr) else thr
        rec, snaps = set(record_steps(cfg.steps).tolist()), set(int(s) for s in snapshot_steps)
        hist = {k: [] for k in ("step", "loss", "perp_norm", "w_norm", "grad_norm")}
        snapshots, n_perturb, interrupted = [], np.zeros(R, dtype=np.int64), False
        step = None if WbT is None else _OneLayer(student, cfg, params, n)
        gd_factors = None if step is None or adam is not None else _gd_factors(trained, student)
        span = _span_runs(cfg.span_only, R, U, W)

        def prepare(x):
            y = teacher(x, generator)
            return (x, y) if step is None else (x, y, *step.prepare(x, y))
        data = _Data(generator, R, n, d, W, prepare=prepare)
        bar = tqdm(total=cfg.steps, disable=None if progress else True, mininterval=0.5, desc="train")
        try:
            for t in range(cfg.steps + 1):
                if t % BLOCK == BLOCK - 1:
                    bar.update(BLOCK)
                (x, y, *prepared), i = data.next()
                loss, G, grads, gnorm, gnorms = _gradients(step, WbT, student, teacher_batch=(x[i], y[i]),
                                                           prepared=[a[i] for a in prepared], cfg=cfg,
                                                           params=params, span=span, need_loss=t in rec, t=t)
                if t in rec:
                    _record(hist, t, loss, W, U, gnorm)
                if t in snaps:
                    snapshots.append(W.cpu().clone())
                if t == cfg.steps:
                    break
                if min(gnorms) < thr_max:   # PGD: kick the runs whose ‖∇_W loss‖ is below their threshold
                    small = gnorm < thr
                    n_perturb += small.cpu().numpy()
                    _perturb(trained, small, cfg.pgd_radius, generator)
                _update(trained, gd_factors, adam, step, WbT, G, grads, t)
        except KeyboardInterrupt:
            if not hist["step"]:            # not one step recorded: nothing to keep, the interrupt goes on up
                raise
            interrupted = True
        finally:
            bar.close()
    return {**{k: np.asarray(v) for k, v in hist.items()}, "perturbations": n_perturb, "interrupted": interrupted,
            "snapshots": torch.stack(snapshots).numpy() if snapshots else np.zeros((0, R) + W.shape[1:]),
            "snapshot_steps": np.asarray(sorted(snaps))[: len(snapshots)]}


def _gradients(step, WbT, student, teacher_batch, prepared, cfg, params, span, need_loss, t):
    """One step's loss ``(R,)`` (None when the squared error's is not ``need_loss``), the first layer's gradient
    (written out: ``G``; or by autograd: ``grads``), its norms ``(R,)`` and those as a list (one sync). Written out
    where ``step`` is; by autograd where it is not, or where the written-out numbers are not finite (an
    activation's input above ~44, or divergence). A non-finite autograd loss is a :class:`DivergenceError`."""
    G = grads = None
    if step is not None:        # residuals and the first layer's gradient, written out
        r, G = step(WbT, student.a, *prepared)
        _keep_span(step.GW, span, transposed=True)
        gnorm = torch.linalg.vector_norm(step.GW, dim=(1, 2))
        gnorms = gnorm.tolist()                                 # one sync per step
        # a non-finite residual makes G non-finite: the squared error needs its loss only when recorded
        loss = None if step.mse and not need_loss else step.total(r) / cfg.batch
        if not math.isfinite(sum(gnorms) + (0.0 if loss is None else sum(loss.tolist()))):
            G = None
    if G is None:
        loss, grads = _autograd_loss_and_grads(student, *teacher_batch, cfg, params)
        _keep_span(grads[0], span, transposed=False)
        gnorm = torch.linalg.vector_norm(grads[0], dim=(1, 2))
        gnorms, loss_sum = gnorm.tolist(), sum(loss.tolist())
        if not math.isfinite(loss_sum):
            raise DivergenceError(f"the loss became {loss_sum} at step {t}")
    return loss, G, grads, gnorm, gnorms


@contextlib.contextmanager
def _one_array(student):
    """For a one-hidden-layer student, ``WbT = [W | b]ᵀ`` (a copy) with ``student.W`` and ``student.biases[0]``
    made views into it for the run; at the end (also on an error or Ctrl-C) the values are copied back into the
    student's own tensors, which are put back in place. Deeper students: None, nothing changed."""
    if len(student.weights) != 1:
        yield None
        return
    W0, b0 = student.W, student.biases[0]
    WbT = _combined(W0, b0)
    student.weights[0], student.biases[0] = WbT[:, :-1].transpose(1, 2), WbT[:, -1]
    try:
        yield WbT
    finally:
        W0.copy_(student.W)
        b0.copy_(student.biases[0])
        student.weights[0], student.biases[0] = W0, b0


def _span_runs(span_only, R, U, W):
    """None (no run projects), or the runs whose first-layer loss gradient is projected (indices ``(r,)``) and the
    projector ``U Uᵀ: (d, d)`` onto span(U)."""
    flags = span_only if isinstance(span_only, (list, tuple)) else [span_only] * R
    if len(flags) != R:
        raise ValueError(f"a per-run setting has {len(flags)} values for {R} runs")
    idx = torch.tensor([i for i, f in enumerate(flags) if f], dtype=torch.long, device=W.device)
    return (idx, U.to(W.dtype) @ U.to(W.dtype).T) if len(idx) else None


def _keep_span(G, span, transposed):
    """The null model's gradient, in place: for the runs of ``span`` (:func:`_span_runs`) the first layer's loss
    gradient ``G_W: (R, h, d)`` becomes ``G_W U Uᵀ`` (its rows projected onto span(U)); ``transposed``: ``G`` holds
    ``G_Wᵀ: (R, d, h)`` (the one-hidden-layer layout), which becomes ``U Uᵀ G_Wᵀ``."""
    if span is None:
        return
    idx, UUt = span
    G[idx] = UUt @ G[idx] if transposed else G[idx] @ UUt


def _update(trained, gd_factors, adam, step, WbT, G, grads, t):
    """The step's update: with the written-out gradient ``G`` and (P)GD, ``WbT <- keep * WbT + mlr * G`` on W and b in
    one array (and the ordinary update of a trained second layer); otherwise :func:`_step` on every parameter."""
    if G is not None and gd_factors is not None:
        keep, mlr, rest = gd_factors
        (WbT.mul_(keep) if keep is not None else WbT).addcmul_(G, mlr)
        if rest:
            _step(rest, step.grads(G)[-len(rest):], None, t)
    else:
        _step(trained, grads if G is None else step.grads(G), adam, t)


def _gd_factors(trained, student):
    """For (P)GD on a one-hidden-layer student: the factors of the update ``WbT <- keep * WbT + mlr * G`` of the first
    layer, ``(R, d + 1, 1)`` each (``keep = 1 - lr lam`` on W's rows and 1 on b's, None when all 1;
    ``mlr = -lr`` and ``-lr_b``, 0 for a frozen bias, which then stays bit for bit), and the other trained
    parameters (a trained second layer) for the ordinary update."""
    (_, lr, lam, _), rest = trained[0], trained[1:]
    lr_b = 0.0
    if rest and rest[0][0] is student.biases[0]:
        lr_b, rest = rest[0][1], rest[1:]
    W = student.W

    def rows(w_value, b_value):
        out = torch.empty(W.shape[0], W.shape[2] + 1, 1, dtype=W.dtype, device=W.device)
        out[:, :-1] = w_value.view(-1, 1, 1) if torch.is_tensor(w_value) else w_value
        out[:, -1] = b_value.view(-1, 1) if torch.is_tensor(b_value) else b_value
        return out
    decay = lr * lam
    decays = bool(torch.as_tensor(decay).ne(0).any())
    return (rows(1 - decay, 1.0) if decays else None), rows(-lr, -lr_b), rest


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
        upd = adam_update(*state[i], g, t)
        if which is not None:                      # GD for the runs that are not Adam
            upd = torch.where(_bcast(which, p), upd, g)
        p.sub_(upd * lr)


@torch.no_grad()
def test_mse(student: Student, teacher: Teacher, n: int, generator) -> np.ndarray:
    """Mean squared error against the noiseless teacher on ``n`` fresh samples, per run ``(R,)``; ``generator``:
    one or one per run, as in :func:`train`."""
    R, _, d = student.W.shape
    (x,), i = _Data(generator, R, n, d, student.W, block=1).next()
    x = x[i]
    clean = Teacher(teacher.U, 0.0, teacher.offset)
    return ((student.forward(x) - clean(x)) ** 2).mean(1).cpu().numpy()

