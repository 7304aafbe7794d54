"""Lemma 3.1 measured where it applies: certified stationary points of the population objective (Sec. 3-4).

The paper's statement is about ε-second-order stationary points (ε-SOSPs) of

    g(W, b) = E_x[(aᵀ s(W x + b) − y(x))²] + (λ/2) ‖W‖_F²,      x ~ N(0, I_d),  y(x) = c + mean_j tanh(⟨x, u_j⟩),

not about the iterates of a finite training run. This module computes g exactly (tensor Gauss–Hermite
quadrature, float64), finds stationary points from the authors' init, and certifies each with quantities
computed from exact derivatives, never from the optimiser's own estimates:

* ‖∇g‖ and λ_min of the Hessian of g in every trained parameter (dense where small, Lanczos on exact
  Hessian-vector products otherwise);
* λ_min(H_b), ``H_b = ∇²_b L`` the Hessian of the loss L in the bias (h × h, dense);
* the Stein residual ‖∇_W L · P⊥ − H_b W P⊥‖_F (P⊥ = I − UUᵀ), which is zero at *every* (W, b): Stein's lemma on
  the part of x orthogonal to span(U), which y does not depend on. Hence ∇_W g P⊥ = (H_b + λI) W⊥ and the
  *a-posteriori bound* ‖W⊥‖_F ≤ ‖∇_W g‖_F / (λ + λ_min(H_b)) whenever λ + λ_min(H_b) > 0 (``aposteriori_bound``).
  With the bias trained, H_b is a principal block of ∇²g, so λ_min(H_b) ≥ λ_min(∇²g): that gives *Lemma 3.1's
  bound* ε / (λ − √(ρε)) with ε = ‖∇g‖ and the curvature term √(ρε) read off the point as max(0, −λ_min(∇²g))
  (``lemma_bound``, never below the a-posteriori one). ρ itself -- the Lipschitz constant of ∇²g -- has no
  finite bound here: the third derivative of (aᵀs(z) − y)² holds r·a_i s‴(z_i), and the residual r grows
  without bound with W (the smooth ReLU is linear at infinity), so the lemma's ε-SOSP with a global ρ cannot be
  evaluated. With the bias frozen nothing controls λ_min(H_b), and the lemma does not apply.

Quadrature: nodes are laid on the orthonormal frame [U, U⊥] (N(0, I) is rotation invariant), so the teacher
is a function of the first k node coordinates only. Parameters Θ = [W | b] are (h, d+1); a node is
x̃ = (x, 1), so z = Θ x̃.
"""
import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from NeuralNetworks.activations import derivatives

SQRT_2PI = math.sqrt(2 * math.pi)
CHUNK = 200            # quadrature nodes per pass (see Population._chunks)


def gauss_hermite_nodes(counts, frame: torch.Tensor, prune: float = 0.0):
    """Tensor Gauss–Hermite rule for ``x ~ N(0, I_d)`` with ``counts[j]`` nodes along the j-th column of the
    orthonormal ``frame: (d, d)``. Returns ``X: (N, d)``, ``N ≤ Π counts``, and weights ``(N,)`` summing to 1;
    exact for polynomials of degree < 2 counts[j] in the j-th coordinate.

    ``prune > 0`` drops the nodes whose tensor weight is below it (their weights are left out, not moved): most
    of a many-node rule sits where the Gaussian weight is below 1e-30 (454 nodes along an axis reach |x| = 42;
    154 of them carry weight above 1e-30), and an integrand growing like a polynomial of low degree loses
    less than ``prune`` times its size there."""
    from scipy.special import roots_hermitenorm          # stable for any n (numpy's overflows past ~1000)
    rules = [roots_hermitenorm(n) for n in counts]
    xi = np.stack([g.ravel() for g in np.meshgrid(*[t for t, _ in rules], indexing="ij")], 1)
    q = np.prod(np.stack([g.ravel() for g in np.meshgrid(*[w for _, w in rules], indexing="ij")], 1), 1)
    q = q / SQRT_2PI ** len(counts)
    if prune > 0:
        keep = q >= prune
        xi, q = xi[keep], q[keep]
    xi = torch.as_tensor(xi, dtype=frame.dtype, device=frame.device)
    return xi @ frame.T, torch.as_tensor(q, dtype=frame.dtype, device=frame.device)


def complete_frame(U: torch.Tensor) -> torch.Tensor:
    """``[U, U⊥]``: ``U: (d, k)`` orthonormal completed to an orthonormal ``(d, d)`` basis."""
    d, k = U.shape
    q, _ = torch.linalg.qr(torch.cat([U, torch.eye(d, dtype=U.dtype, device=U.device)], 1))
    q = q[:, :d]
    q[:, :k] = U                                   # QR may flip signs; keep U itself
    return q


def teacher_frame(d: int, k: int):
    """The teacher's directions ``U: (d, k)`` in float64 (the project's fixed draw)."""
    from NeuralNetworks.model import SUBSPACE_SEED, make_subspace
    return make_subspace(d, k, torch.Generator().manual_seed(SUBSPACE_SEED), dtype=torch.float64)


PRUNE = 1e-30              # working rules leave out the nodes of tensor weight below this (see gauss_hermite_nodes)


def _rule(U, nodes, offset, prune=PRUNE):
    """Nodes ``X: (N, d)``, weights ``q: (N,)`` and teacher values ``y = offset + mean_j tanh(<x, u_j>)`` of the
    rule with ``nodes = (n_par, n_perp)`` per axis of [U, U⊥], nodes of weight below ``prune`` left out."""
    d, k = U.shape
    from NeuralNetworks.model import Teacher
    X, q = gauss_hermite_nodes([nodes[0]] * k + [nodes[1]] * (d - k), complete_frame(U), prune)
    return X, q, Teacher(U, offset=offset)(X)


@dataclass
class Population:
    """The population objective g of one configuration.

    ``X: (N, d)`` quadrature nodes, ``q: (N,)`` weights, ``y: (N,)`` teacher values, ``a: (h,)`` the fixed
    second layer, ``b0: (h,)`` the bias (its value when frozen), ``U: (d, k)`` the teacher's directions."""
    X: torch.Tensor
    q: torch.Tensor
    y: torch.Tensor
    a: torch.Tensor
    b0: torch.Tensor
    U: torch.Tensor
    lam: float
    freeze_bias: bool
    act: object
    offset: float = 0.0
    nodes: tuple = None        # (n_par, n_perp) of the rule

    @classmethod
    def build(cls, U, a, b0, lam, freeze_bias, nodes=(40, 40), offset=0.0, activation="smooth_relu", beta=2.0):
        """``nodes = (along span(U), across it)``: Gauss–Hermite nodes per axis of the frame [U, U⊥]."""
        return cls(*_rule(U, nodes, offset), a, b0, U, float(lam), bool(freeze_bias),
                   derivatives(activation, beta), offset, tuple(nodes))

    def refined(self, nodes, prune=PRUNE):
        """The same objective under the quadrature rule ``nodes = (n_par, n_perp)`` (``prune=0``: every node of
        the tensor rule)."""
        return Population(*_rule(self.U, nodes, self.offset, prune), self.a, self.b0, self.U, self.lam, self.freeze_bias,
                          self.act, self.offset, tuple(nodes))

    def __post_init__(self):
        self.Xt = torch.cat([self.X, torch.ones_like(self.X[:, :1])], 1)     # nodes with a 1 appended: (N, d+1)

    def _forward(self, Th, second=False, rows=slice(None)):
        """At the nodes ``rows``: ``s'(Z)``, ``s''(Z)`` (when ``second``; else None) and the residual
        ``r = aᵀs(Z) − y``, where ``Z = Θ x̃``: ``(n, h)``, ``(n, h)``, ``(n,)``."""
        S, S1, S2 = self.act(torch.addmm(Th[:, -1], self.X[rows], Th[:, :-1].T), second)
        return S1, S2, torch.mv(S, self.a) - self.y[rows]

    def _chunks(self):
        """Node slices of ``CHUNK`` rows: the (N, h) intermediates then stay small (about 2x faster at h = 1000
        than one (N, h) pass, which spends its time allocating)."""
        return [slice(i, i + CHUNK) for i in range(0, len(self.q), CHUNK)]

    def value_and_grad(self, Th):
        """``g``, ``L`` and ``∇_Θ L`` (h, d+1) (without the regulariser's gradient ``λ [W | 0]``)."""
        G, L = torch.zeros_like(Th), 0.0
        for rows in self._chunks():
            S1, _, r = self._forward(Th, rows=rows)
            qr = self.q[rows] * r
            L += float(qr @ r)
            G.addmm_(S1.T, (2 * qr)[:, None] * self.Xt[rows])
        G.mul_(self.a[:, None])
        return L + 0.5 * self.lam * float((Th[:, :-1] ** 2).sum()), L, G

    def grad_g(self, Th):
        """``∇_Θ g``: the loss gradient plus ``λ [W | 0]``; the bias column is zero when it is frozen."""
        G = self.value_and_grad(Th)[2]
        G[:, :-1] += self.lam * Th[:, :-1]
        if self.freeze_bias:
            G[:, -1] = 0
        return G

    def hvp(self, Th, V):
        """``∇²g · V`` for ``V: (h, d+1)`` (exact under the quadrature; bias column ignored when frozen)."""
        if self.freeze_bias:
            V = torch.cat([V[:, :-1], torch.zeros_like(V[:, -1:])], 1)
        out = torch.zeros_like(Th)
        for rows in self._chunks():
            S1, S2, r = self._forward(Th, second=True, rows=rows)
            dZ = torch.addmm(V[:, -1], self.X[rows], V[:, :-1].T)              # (n, h)
            df = torch.mv(S1 * dZ, self.a)
            q2, Xt = 2 * self.q[rows], self.Xt[rows]
            out.addmm_(S1.T, (q2 * df)[:, None] * Xt).addmm_((S2 * dZ).T, (q2 * r)[:, None] * Xt)
        out.mul_(self.a[:, None])
        out[:, :-1] += self.lam * V[:, :-1]
        if self.freeze_bias:
            out[:, -1] = 0
        return out

    def hessian_b(self, Th):
        """``H_b = ∇²_b L``: ``(h, h)`` = Σ_n 2 q_n [(a∘s'_n)(a∘s'_n)ᵀ + r_n diag(a∘s''_n)]."""
        h = Th.shape[0]
        H, diag = Th.new_zeros(h, h), Th.new_zeros(h)
        for rows in self._chunks():
            S1, S2, r = self._forward(Th, second=True, rows=rows)
            A1 = S1 * self.a
            H.addmm_((A1 * (2 * self.q[rows])[:, None]).T, A1)
            diag += (2 * self.q[rows] * r) @ S2
        H.diagonal().add_(self.a * diag)
        return H

    def hessian(self, Th):
        """Dense Hessian of g in the trained parameters, ordered as ``Θ[:, :d]`` (then ``Θ[:, d]``) flattened
        row-major: ``(h(d+1), h(d+1))``, or ``(hd, hd)`` with the bias frozen:
        Σ_n 2 q_n [J_n J_nᵀ + r_n blockdiag_i(a_i s''_ni x̃_n x̃_nᵀ)] + λ on the W entries, J_n = (a∘s'_n) ⊗ x̃_n."""
        h, p = Th.shape[0], Th.shape[1] - (1 if self.freeze_bias else 0)
        H = Th.new_zeros(h * p, h * p)
        blk = Th.new_zeros(h, p, p)
        for rows in self._chunks():
            S1, S2, r = self._forward(Th, second=True, rows=rows)
            Xt, q2 = self.Xt[rows, :p], 2 * self.q[rows]
            J = ((S1 * self.a)[:, :, None] * Xt[:, None, :]).reshape(len(r), -1)    # (n, h p)
            H.addmm_(J.T, J * q2[:, None])
            blk += torch.einsum("n,ni,np,nq->ipq", q2 * r, S2 * self.a, Xt, Xt)
        idx = torch.arange(h)
        H.view(h, p, h, p)[idx, :, idx, :] += blk
        d = self.X.shape[1]
        H.diagonal().view(h, p)[:, :d] += self.lam
        return H

    def stein_residual(self, Th):
        """``‖∇_W L · P⊥ − H_b W P⊥‖_F``: zero at every (W, b) by Stein's lemma (up to quadrature error)."""
        G = self.value_and_grad(Th)[2][:, :-1]
        P = torch.eye(self.U.shape[0], dtype=G.dtype, device=G.device) - self.U @ self.U.T
        return float(torch.linalg.matrix_norm(G @ P - self.hessian_b(Th) @ Th[:, :-1] @ P))

    # The protocol the search and the certificate use (shared with variants.Network): a point is ``Th``, its
    # trained entries packed row-major into one vector.
    def pack(self, Th):
        """The trained entries of ``Th`` as one vector: ``Θ[:, :d+1]`` (``Θ[:, :d]`` frozen) row-major."""
        return Th[:, :Th.shape[1] - self.freeze_bias].reshape(-1)

    def unpack(self, x, like):
        """``like`` with its trained entries replaced by the vector ``x``."""
        T = like.clone()
        T[:, :T.shape[1] - self.freeze_bias] = x.reshape(T.shape[0], -1)
        return T

    def evaluate(self, Th):
        """``g``, ``L`` and ``∇g`` packed."""
        g, L, G = self.value_and_grad(Th)
        G[:, :-1] += self.lam * Th[:, :-1]
        return g, L, self.pack(G)

    def hvp_packed(self, Th, v):
        """``∇²g · v`` for a packed ``v``."""
        return self.pack(self.hvp(Th, self.unpack(v, torch.zeros_like(Th))))

    def first_layer(self, Th):
        """``W: (h, d)``."""
        return Th[:, :-1]

    def grad_w(self, Th):
        """``∇_W g: (h, d)``."""
        return self.grad_g(Th)[:, :-1]


EIG_SHIFT = 1e-9     # dense λ_min: Cholesky of H + EIG_SHIFT·I, then shift-invert Lanczos (see _dense_lambda_min)
EIG_RTOL = 1e-8      # ... to this relative accuracy of 1/(λ_min + EIG_SHIFT): |error of λ_min| ≲ 1e-8 (λ_min + 1e-9)
EIG_RESTARTS = 10    # ... in at most this many restarts (~200 solves), and up to EIG_LANCZOS_MAX parameters:
EIG_LANCZOS_MAX = 3000   # above, LAPACK (4416 parameters: 3.4-5 s; Lanczos there, 1.2-1.4 s, once returned the
                         # second eigenvalue of a cluster at a two-layer point: -1.6e-12 for -5.7e-12)


def _dense_lambda_min(H: torch.Tensor, vector: bool):
    """Smallest eigenvalue (and unit eigenvector) of the symmetric ``H``, exactly.

    If the Cholesky factorisation of ``H + EIG_SHIFT·I`` exists, every eigenvalue is above ``-EIG_SHIFT``, so the
    smallest is the one nearest ``-EIG_SHIFT``: the largest eigenvalue of ``(H + EIG_SHIFT·I)^{-1}``, found by
    Lanczos (ARPACK, relative tolerance ``EIG_RTOL``, so λ_min to ~1e-17 near 0) on solves with that factor --
    about half the time of LAPACK at 3000 parameters, same value to 1e-13 (tested). Otherwise (a saddle:
    λ_min < -EIG_SHIFT; Lanczos not converged in ``EIG_RESTARTS`` restarts, as where eigenvalues cluster at a
    two-hidden-layer point, where 1200 solves took 22 s; or more than ``EIG_LANCZOS_MAX`` parameters) LAPACK's
    smallest eigenpair (``evr``: the tridiagonal form, then one pair; 3.4 s at 4416 parameters, against 18 s
    for the whole eigendecomposition)."""
    import scipy.linalg as sl
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
    A = H.numpy()
    n = A.shape[0]
    if 2 < n <= EIG_LANCZOS_MAX:
        try:
            factor = sl.cho_factor(A + EIG_SHIFT * np.eye(n), lower=True, check_finite=False)
            ok = bool(np.all(np.diag(factor[0]) > 0))
        except np.linalg.LinAlgError:
            ok = False
        if ok:
            op = LinearOperator((n, n), matvec=lambda v: sl.cho_solve(factor, v, check_finite=False),
                                dtype=np.float64)
            try:
                theta, vec = eigsh(op, k=1, which="LA", tol=EIG_RTOL, ncv=min(n, 20), maxiter=EIG_RESTARTS,
                                   v0=np.random.default_rng(0).standard_normal(n))
                return 1.0 / float(theta[0]) - EIG_SHIFT, (vec[:, 0] if vector else None)
            except ArpackNoConvergence:      # a cluster Lanczos does not resolve soon: LAPACK below
                pass
    out = sl.eigh(A, subset_by_index=[0, 0], driver="evr", eigvals_only=not vector, check_finite=False)
    return (float(out[0]), None) if not vector else (float(out[0][0]), out[1][:, 0])


def lambda_min(pop, P, dense_limit: int = 4500, vector: bool = True):
    """Smallest eigenvalue of ∇²g in the trained parameters at the point ``P`` and (``vector``) its unit
    eigenvector, shaped as a point (zero in the frozen entries; None when not asked for). Exact -- the dense
    Hessian (see :func:`_dense_lambda_min`) -- up to ``dense_limit`` parameters (about 1 s at width 1000,
    d = 2), else Lanczos (ARPACK) on exact Hessian-vector products from a fixed start vector."""
    from scipy.sparse.linalg import LinearOperator, eigsh
    n = pop.pack(P).numel()
    if n <= dense_limit:
        ev, v = _dense_lambda_min(pop.hessian(P), vector)
    else:
        op = LinearOperator((n, n), dtype=np.float64, matvec=lambda v: pop.hvp_packed(
            P, torch.as_tensor(np.asarray(v).reshape(-1), dtype=P.dtype)).numpy())
        evs, vecs = eigsh(op, k=1, which="SA", v0=np.random.default_rng(0).standard_normal(n), tol=1e-10,
                          ncv=60, maxiter=20_000)
        ev, v = float(evs[0]), vecs[:, 0]
    return ev, (pop.unpack(torch.as_tensor(v, dtype=P.dtype), torch.zeros_like(P)) if vector else None)


def certify(pop, P, lam_min_hessian: float | None = None, check_nodes=None) -> dict:
    """Every certificate quantity at the point ``P``, from exact derivatives (see the module docstring).
    ``check_nodes``: a finer rule ``(n_par, n_perp)``, taken whole (no node left out); then ``g`` and ``‖∇g‖``
    under it are reported too."""
    g, L, G = pop.evaluate(P)
    if lam_min_hessian is None:
        lam_min_hessian = lambda_min(pop, P, vector=False)[0]
    lam_min_hb = float(torch.linalg.eigvalsh(pop.hessian_b(P))[0])
    W, GW, U = pop.first_layer(P), pop.grad_w(P), pop.U
    perp = float(torch.linalg.matrix_norm(W - (W @ U) @ U.T))
    par = float(torch.linalg.matrix_norm(W @ U))
    gap = pop.lam + lam_min_hb
    grad_w, grad = float(torch.linalg.matrix_norm(GW)), float(torch.linalg.vector_norm(G))
    lemma_gap = pop.lam - max(0.0, -lam_min_hessian)          # Lemma 3.1: λ − √(ρε), √(ρε) as measured
    out = {"g": g, "loss": L, "grad_norm": grad, "grad_w_norm": grad_w,
           "lam_min_hessian": lam_min_hessian, "lam_min_hb": lam_min_hb, "stein_residual": pop.stein_residual(P),
           "perp_norm": perp, "par_norm": par, "perp_ratio": perp / math.hypot(perp, par),
           "aposteriori_bound": grad_w / gap if gap > 0 else None,                              # Stein, at P
           "lemma_bound": grad / lemma_gap if lemma_gap > 0 and not pop.freeze_bias else None}  # Lemma 3.1
    if check_nodes is not None:
        fine = pop.refined(check_nodes, prune=0.0)
        g_fine, _, G_fine = fine.evaluate(P)
        out["g_fine"], out["grad_norm_fine"] = g_fine, float(torch.linalg.vector_norm(G_fine))
    return out


LBFGS_MEMORY = 30    # L-BFGS correction pairs kept


class _Reached(Exception):
    """L-BFGS evaluated a point whose gradient is small enough: stop there."""


def _lbfgs(pop, P, max_iter: int, grad_tol: float = 0.0):
    """Minimise g from the point ``P`` by L-BFGS (float64, exact gradients) until ``‖∇g‖ ≤ grad_tol`` at an
    evaluated point (that point is returned) or g stops decreasing.

    scipy's L-BFGS-B runs with one BLAS thread: between two of our (torch, multi-threaded) gradient
    evaluations, idle-spinning BLAS threads otherwise made every evaluation 2-5x slower on 2 cores."""
    from scipy.optimize import minimize
    count = [0]

    def unpack(x):
        return pop.unpack(torch.as_tensor(x, dtype=P.dtype), P)

    def fg(x):
        T = unpack(x)
        g, _, G = pop.evaluate(T)
        grad = G.numpy()
        count[0] += 1
        if float(np.linalg.norm(grad)) <= grad_tol:
            raise _Reached(T)
        return g, grad

    from threadpoolctl import threadpool_limits
    with threadpool_limits(1, user_api="blas"):
        try:
            res = minimize(fg, pop.pack(P).numpy(), jac=True, method="L-BFGS-B",
                           options={"maxiter": max_iter, "maxfun": 2 * max_iter, "gtol": 0.0, "ftol": 0.0,
                                    "maxcor": LBFGS_MEMORY})
        except _Reached as stop:
            return stop.args[0], count[0]
    return unpack(res.x), int(res.nfev)


NEWTON_DAMPING = 1e-6   # damped Newton: μ of the first step (∇²g + μI) (see _newton_finish) ...
NEWTON_DAMPING_FLOOR = 1e-12   # ... and the least it falls to
NEWTON_REFRESH = 5      # ... the factorisation of ∇²g + μI serves this many accepted steps before a fresh Hessian


def _newton_finish(pop, P, steps: int, grad_tol: float):
    """Damped (Levenberg–Marquardt) Newton from ``P``, for a search that L-BFGS left above ``grad_tol``: steps
    ``−(∇²g + μI)⁻¹ ∇g`` (dense Hessian, Cholesky), each kept only if it lowers g. One factorisation serves
    ``NEWTON_REFRESH`` kept steps -- where L-BFGS stalls here, g still falls slowly along a long valley and the
    Hessian changes little from step to step --, then a fresh Hessian with μ / 10; a step that does not lower g
    gets a fresh Hessian at the current point with μ × 10 (μ also grows until the factorisation exists, i.e.
    above −λ_min). Stops at ‖∇g‖ ≤ ``grad_tol`` or after ``steps`` steps. Returns the visited point of smallest
    ‖∇g‖ (where the certificate is then computed) and the steps taken."""
    import scipy.linalg as sl
    g0, _, G = pop.evaluate(P)
    best, mu, factor, kept, step = (float(torch.linalg.vector_norm(G)), P), NEWTON_DAMPING, None, 0, 0
    if best[0] <= grad_tol:
        return P, 0
    for step in range(1, steps + 1):
        if factor is None:
            H = pop.hessian(P).numpy()
            while factor is None:
                A = H.copy()
                A.flat[::len(A) + 1] += mu
                try:
                    factor = sl.cho_factor(A, lower=True, overwrite_a=True, check_finite=False)
                except np.linalg.LinAlgError:
                    mu *= 10
        x = pop.pack(P) - torch.as_tensor(sl.cho_solve(factor, G.numpy(), check_finite=False))
        Q = pop.unpack(x, P)
        g1, _, G1 = pop.evaluate(Q)
        if g1 < g0:
            P, g0, G, kept = Q, g1, G1, kept + 1
            if kept == NEWTON_REFRESH:
                factor, kept, mu = None, 0, max(mu / 10, NEWTON_DAMPING_FLOOR)
        else:
            factor, kept, mu = None, 0, mu * 10
        gn = float(torch.linalg.vector_norm(G))
        if gn < best[0]:
            best = (gn, P)
        if gn <= grad_tol:
            break
    return best[1], step


SADDLE_TOL = 1e-9    # λ_min(∇²g) below -SADDLE_TOL: a saddle (escaped from, or reported as one)
GRAD_TOL = 1e-8      # the searches stop at ‖∇g‖ ≤ GRAD_TOL (an ε-SOSP with ε = 1e-8 once λ_min ≥ -SADDLE_TOL)


def find_stationary_point(pop, Th0, max_iter: int = 20_000, saddle_tol: float = SADDLE_TOL,
                          max_escapes: int = 3, second_order: bool = True, grad_tol: float = 0.0,
                          newton_steps: int = 0) -> dict:
    """A second-order stationary point of g from ``Th0`` (h, d+1).

    L-BFGS on exact gradients: a descent method, which from a generic start does not stop at strict saddles,
    reaching ‖∇g‖ ~ 1e-10 here in a few hundred evaluations (a Newton step would need an h(d+1) Hessian solve).
    Then (``second_order``) λ_min(∇²g) is computed exactly; below ``-saddle_tol`` the point is a saddle: step
    along the negative-curvature direction (sign and length that lower g, by halving) and run L-BFGS again, at
    most ``max_escapes`` times -- together a method that reaches second-order points. ``newton_steps > 0``: a
    search that L-BFGS ends above ``grad_tol`` (at its cap) is finished by damped Newton (:func:`_newton_finish`).
    Returns ``theta``, ``nfev``, ``newton_steps``, ``escapes`` and ``lam_min_hessian`` (of the returned point;
    None without ``second_order``)."""
    def search(start):                 # L-BFGS, then the damped Newton finish (a no-op where L-BFGS reached grad_tol)
        Th, n = _lbfgs(pop, start, max_iter, grad_tol)
        if not newton_steps:
            return Th, 0, n
        Th, m = _newton_finish(pop, Th, newton_steps, grad_tol)
        return Th, m, n

    Th, newton, nfev = search(Th0)
    escapes, lam_min = 0, None
    while second_order:
        lam_min, V = lambda_min(pop, Th)
        if lam_min >= -saddle_tol or escapes == max_escapes:
            break
        V = V * float(torch.linalg.matrix_norm(pop.first_layer(Th))) * 0.1
        g0, best = pop.evaluate(Th)[0], None
        for _ in range(40):
            best = next((Th + s * V for s in (1.0, -1.0) if pop.evaluate(Th + s * V)[0] < g0), None)
            if best is not None:
                break
            V = V / 2
        if best is None:
            break
        Th, m, n = search(best)
        nfev, newton, escapes = nfev + n, newton + m, escapes + 1
    return {"theta": Th, "nfev": nfev, "newton_steps": newton, "escapes": escapes, "lam_min_hessian": lam_min}


QUAD_TOL = 1e-10           # a rule is fine enough when doubling its nodes along an axis moves g by less
MAX_NODES = 640            # per axis
MAX_GRID = 40_000          # nodes in all (one teacher direction) ...
MAX_GRID_K2 = 70_000       # ... and with two (in d = 3 the rule needs 90² × 8 to converge to QUAD_TOL)


def nodes_for(pop, Th, start=None) -> tuple[tuple[int, int], bool]:
    """The rule ``(n_par, n_perp)`` under which g at ``Th`` is converged, and whether a cap stopped the search
    first (the rule is then *not* converged): starting from ``start`` (default: ``pop``'s own rule, or (40, 8)
    if it has none), the count along span(U), then across it, grows by half until doubling it moves g by less
    than ``QUAD_TOL`` (or a cap is reached: ``MAX_NODES`` per axis, ``MAX_GRID`` in all, ``MAX_GRID_K2`` with two
    teacher directions)."""
    d, k = pop.U.shape
    n, capped = list(start or pop.nodes or (40, 8)), False
    cap = MAX_GRID if k == 1 else MAX_GRID_K2

    def g(m):
        return pop.refined(m).evaluate(Th)[0]

    for axis in (0, 1) if d > k else (0,):
        while True:
            twice = list(n)
            twice[axis] *= 2
            if abs(g(twice) - g(n)) < QUAD_TOL:
                break
            size = n[0] ** k * n[1] ** (d - k)
            if n[axis] >= MAX_NODES or size * 1.5 ** (k if axis == 0 else d - k) > cap:
                capped = True
                break
            n[axis] = int(n[axis] * 1.5)
    return (n[0], n[1]), capped


def certified_point(pop, Th0, max_iter: int = 20_000, saddle_tol: float = SADDLE_TOL, newton_steps: int = 0) -> dict:
    """Find a stationary point from ``Th0`` and certify it.

    Two rules: L-BFGS first under ``pop``'s own rule, then again from there under a rule fine enough for the
    weights found (:func:`nodes_for`, starting from ``pop``'s rule: where that is fine enough already, the
    second search only confirms the first), where the point is certified; the change of g and
    ‖∇g‖ under the whole tensor rule with twice the nodes per axis is reported as the quadrature's own check
    (``quad_change``), and the change of g when the nodes of negligible weight are put back into the certifying
    rule (``prune_change``); ``quad_capped``: the rule stopped at a node cap, not converged (:func:`nodes_for`).
    Whether the point is certified is :func:`point_type`'s. ``saddle_tol``: the curvature below which the fine
    search escapes;
    ``newton_steps``: the fine search's damped Newton finish (both: see :func:`find_stationary_point`)."""
    first = find_stationary_point(pop, Th0, max_iter, second_order=False, grad_tol=GRAD_TOL)
    fine_nodes, capped = nodes_for(pop, first["theta"])
    fine = pop.refined(fine_nodes)
    res = find_stationary_point(fine, first["theta"], max_iter, saddle_tol, grad_tol=GRAD_TOL,
                                newton_steps=newton_steps)
    cert = certify(fine, res["theta"], res["lam_min_hessian"], (2 * fine_nodes[0], 2 * fine_nodes[1]))
    cert.update(nodes_par=fine_nodes[0], nodes_perp=fine_nodes[1], quad_capped=capped,
                nfev=first["nfev"] + res["nfev"],
                newton_steps=res["newton_steps"], escapes=first["escapes"] + res["escapes"],
                quad_change=abs(cert["g_fine"] - cert["g"]),
                prune_change=abs(pop.refined(fine_nodes, prune=0.0).evaluate(res["theta"])[0] - cert["g"]))
    return {"theta": res["theta"], **cert}


def point_type(p: dict, eps: float | None = None) -> tuple[str, str]:
    """``(type, reason)`` of a point from its certificate (:func:`certified_point`), a label that cannot claim
    more than was checked. ``minimum``: ‖∇g‖ ≤ ``GRAD_TOL`` under its rule *and* under the check rule with twice
    the nodes (``grad_norm_fine``), the quadrature converged (``quad_change`` < ``QUAD_TOL``, the rule not
    stopped at a node cap) and λ_min(∇²g) ≥ −``SADDLE_TOL`` -- second-order stationary to these tolerances,
    not a strict minimum (λ_min may be 0 or slightly negative). ``ε-SOSP`` (when ``eps`` is given): the same
    with ``eps`` for the gradient and the curvature. ``saddle``: every check but the curvature passes.
    ``uncertified``: anything else. ``reason``: the checks that fail ('' for a minimum), '; '-separated."""
    def failing(tol_grad, tol_curv):
        """The failed checks as ``(check, message)``; ``check`` is 'curvature' for λ_min below tolerance."""
        out = [("gradient", f"grad {p[k]:.3g} > {tol_grad:g}{where}") for k, where in (("grad_norm", ""),
               ("grad_norm_fine", " on the check rule")) if not p[k] <= tol_grad]
        if p["quad_capped"]:
            out.append(("quadrature", f"rule at the node cap ({p['nodes_par']}x{p['nodes_perp']})"))
        if not p["quad_change"] < QUAD_TOL:
            out.append(("quadrature", f"quad_change {p['quad_change']:.3g} >= {QUAD_TOL:g}"))
        if p["lam_min_hessian"] != p["lam_min_hessian"]:                     # NaN: the curvature is unknown
            out.append(("unknown", "lam_min not computed"))
        elif not p["lam_min_hessian"] >= -tol_curv:
            out.append(("curvature", f"lam_min {p['lam_min_hessian']:.3g} < -{tol_curv:g}"))
        return out

    def said(checks):
        return "; ".join(message for _, message in checks)
    strict = failing(GRAD_TOL, SADDLE_TOL)
    if not strict:
        return "minimum", ""
    loose = strict if eps is None else failing(eps, eps)
    if not loose:
        return "ε-SOSP", said(strict)
    return ("saddle" if [c for c, _ in loose] == ["curvature"] else "uncertified"), said(loose)


CERTIFIED = ("minimum", "ε-SOSP")     # the types a table or figure counts as certified points


# ---------------------------------------------------------------------------------------------------------
# The experiment: a sweep of certified points, and how long the paper's PGD takes to get there.

PGD_DATA_SEED_OFFSET = 7_919      # PGD minibatches and perturbations: seed + this (the init uses the seed itself)


def initial_point(seed: int, d: int, width: int, a_init: str = "paper"):
    """The authors' init (App. E) in float64 from ``seed``: ``W ~ N(0, 1/d)``, ``b ~ N(0, 1/h²)``, and
    ``a ~ N(0, 1/h²)`` (``a_init='paper'``) or ``a = 1/h`` for every neuron (``'constant'``).
    Returns ``Th0 = [W | b]: (h, d+1)`` and ``a: (h,)``."""
    from NeuralNetworks.model import init_student
    s = init_student(1, d, width, 1, torch.Generator().manual_seed(seed), dtype=torch.float64)
    a = s.a[0] if a_init == "paper" else torch.full((width,), 1.0 / width, dtype=torch.float64)
    return torch.cat([s.W[0], s.biases[0][0][:, None]], 1), a


def _certify_job(seed, lam, frozen, d, k, width, offset, a_init, coarse):
    """One certified point from the seed's init (a job of :func:`sweep`; also run in worker processes):
    the certificate plus ``seed``, ``lam``, ``bias``, ``theta``, ``a`` (numpy arrays) and ``seconds``."""
    U = teacher_frame(d, k)
    Th0, a = initial_point(seed, d, width, a_init)
    pop = Population.build(U, a, Th0[:, -1].clone(), lam, frozen, coarse, offset)
    t = time.perf_counter()
    pt = certified_point(pop, Th0)
    pt["theta"] = pt["theta"].numpy()
    return {**pt, "seed": seed, "lam": float(lam), "bias": "frozen" if frozen else "trained", "a": a.numpy(),
            "seconds": time.perf_counter() - t}


def _timed(fn, *args):
    """``(fn(*args), seconds)``."""
    t = time.perf_counter()
    return fn(*args), time.perf_counter() - t


def keep_freed_memory():
    """glibc's allocator in this process: every block from the heap (none mapped on its own) and freed memory
    kept for reuse, never handed back. Our searches allocate and free the same arrays thousands of times (a
    depth-2 gradient: 1-2 MB intermediates; a Hessian: 150 MB, copied for each factorisation); by default each
    such block is mapped fresh and page-faulted in again, which at two hidden layers of 64 took 3.7 ms a
    gradient instead of 2.4, with up to a fifth of the time in the kernel. The cost: the process keeps its peak
    memory (about 1.1 GB at 4416 parameters). A no-op where the C library is not glibc."""
    import ctypes
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
    mallopt(M_MMAP_THRESHOLD, 1 << 30)
    mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1)
    mallopt(M_TOP_PAD, 64 << 20)


def _worker_init():
    """A sweep worker: one thread everywhere (the workers are the parallelism), freed memory kept for reuse
    (:func:`keep_freed_memory`), and Ctrl-C left to the parent, which ends the workers itself."""
    import signal
    import threading
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm
    tqdm.set_lock(threading.RLock())   # not tqdm's multiprocessing lock: a terminated worker would leak it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    threadpool_limits(1)
    keep_freed_memory()


def run_jobs(jobs, workers: int = 1, progress: bool = False, desc: str = "sosp"):
    """Run ``jobs`` -- ``(fn, args)`` pairs -- and yield ``(index, result)`` as each finishes.

    ``workers = 1``: one after another in this process. ``workers > 1``: in that many fresh single-threaded
    processes (spawned: torch's thread pools do not survive a fork), each taking the next job as soon as it is
    free, in the order given (longest first balances best). Our quadrature passes are chains of small kernels
    that two threads share badly (1.2x on 2 cores, measured), whereas two processes run two points at once.
    A Ctrl-C ends the workers at once and propagates as KeyboardInterrupt after the results received so far."""
    from tqdm import tqdm
    bar = tqdm(total=len(jobs), disable=None if progress else True, desc=desc)
    try:
        if workers <= 1:
            keep_freed_memory()
            for i, (fn, args) in enumerate(jobs):
                yield i, fn(*args)
                bar.update()
            return
        import multiprocessing as mp
        pool = mp.get_context("spawn").Pool(min(workers, len(jobs)), initializer=_worker_init)
        try:
            for i, res in pool.imap_unordered(_indexed, list(enumerate(jobs)), chunksize=1):
                yield i, res
                bar.update()
        except BaseException:
            pool.terminate()
            raise
        else:
            pool.close()
        finally:
            pool.join()
    finally:
        bar.close()


def _indexed(item):
    """A job run in a worker, returned with its index."""
    i, (fn, args) = item
    return i, fn(*args)


def sweep(lams, seeds, d=2, k=1, width=1000, offset=0.0, a_init="paper", coarse=(90, 8), progress=False,
          modes=(False, True), extra_lams=(), workers=1, beside=None):
    """One certified point per (seed, λ, bias trained / frozen) -- ``modes`` lists the frozen flags -- all from
    the seed's init; ``extra_lams``: more λs for the first seed only. ``workers > 1``: in that many processes
    (:func:`run_jobs`), with ``beside = (fn, args)`` (the PGD runs) as one more job, started first.

    Returns the rows (dicts: the certificate plus ``seed``, ``lam``, ``bias``, ``theta``, ``a``, ``seconds``) in
    the order (seed, λ, mode), then the extras; ``U``; whether a Ctrl-C stopped the sweep (the rows are then
    those finished before it); and ``(beside's result, its seconds)`` (None if not run or not finished)."""
    U = teacher_frame(d, k)
    keys = [(s, lam, fb) for s in seeds for lam in lams for fb in modes]
    keys += [(seeds[0], lam, fb) for lam in extra_lams for fb in modes]
    setting = (d, k, width, offset, a_init, tuple(coarse))
    # longest first: bias trained before frozen, small λ first (they need the most evaluations)
    order = sorted(range(len(keys)), key=lambda j: (keys[j][2], keys[j][1], j))
    jobs = [(_certify_job, (*keys[j], *setting)) for j in order]
    if beside is not None and workers > 1:
        jobs.insert(0, (_timed, (beside[0], *beside[1])))
        order.insert(0, None)
    rows, side, stopped = {}, None, False          # rows: by position in keys
    try:
        for i, res in run_jobs(jobs, workers, progress):
            if order[i] is None:
                side = res
            else:
                rows[order[i]] = _received(res)
    except KeyboardInterrupt:           # Ctrl-C keeps the points certified so far
        stopped = True
    return [rows[j] for j in sorted(rows)], U, stopped, side


def _received(row):
    """A finished point as the sweep keeps it: ``theta`` and ``a`` back to tensors."""
    return {**row, "theta": torch.as_tensor(row["theta"]), "a": torch.as_tensor(row["a"])}


def pgd_runs(lams, seed, d, k, width, offset, a_init, cfg, device, progress=False):
    """PGD with the settings of ``cfg`` (a ``TrainConfig``; the paper's: lr 1, batch 50, perturbation 0.005
    below gradient 1e-3) from the same init as the certified points of ``seed``, for every λ in ``lams`` with
    the bias trained and frozen, as one batch of runs.
    Returns the history (``step``, ``perp_norm (T, R)``, ``w_norm (T, R)``), ``lam (R,)`` and ``frozen (R,)``."""
    from NeuralNetworks.model import SUBSPACE_SEED, Student, Teacher, make_subspace
    from NeuralNetworks.train import train
    Th0, a = initial_point(seed, d, width, a_init)
    runs = [(lam, fb) for fb in (False, True) for lam in lams]
    R, f32 = len(runs), dict(dtype=torch.float32, device=device)
    student = Student([Th0[:, :-1].to(**f32).expand(R, -1, -1).clone()],
                      [Th0[:, -1].to(**f32).expand(R, -1).clone()], a.to(**f32).expand(R, -1).clone())
    U = make_subspace(d, k, torch.Generator().manual_seed(SUBSPACE_SEED), device=device)
    cfg = dataclasses.replace(cfg, lam=[lam for lam, _ in runs], freeze_bias=[fb for _, fb in runs])
    gen = torch.Generator(device=device).manual_seed(seed + PGD_DATA_SEED_OFFSET)   # one stream for the batch
    hist = train(student, Teacher(U, offset=offset), cfg, gen, progress=progress)
    return hist, np.array([lam for lam, _ in runs]), np.array([fb for _, fb in runs])


def steps_to_collapse(step, ratio, target, tol):
    """First recorded step at which ``ratio`` is within ``tol`` of ``target`` (None if never). It need not stay
    there: PGD's perturbations re-inject W⊥ whenever the gradient is small (see ``floor`` in the results).
    ``step: (T,)``, ``ratio: (T,)``."""
    inside = np.abs(ratio - target) <= tol
    return int(step[np.argmax(inside)]) if inside.any() else None


def decay_only_steps(step, perp0, w_norm, lam, lr, target, tol):
    """Steps the regulariser alone would take: the first recorded step with
    ``(1 − lr λ)^t ‖W⊥(0)‖ ≤ (target + tol) · ‖W(t)‖``, ``‖W(t)‖`` as measured in the run (None if never)."""
    ok = (1 - lr * lam) ** step * perp0 <= (target + tol) * w_norm
    return int(step[np.argmax(ok)]) if ok.any() else None


def summary_markdown(points, pgd, grid) -> str:
    """The table of ``sosp.md``: per λ of the grid, over the seeds' *certified* points (type ``minimum``; how many
    of the λ's points that is), the worst (largest) ``‖W⊥‖/‖W‖`` with the bias trained and frozen, the largest
    ‖∇g‖ (its rule and the check rule), the smallest λ_min(∇²g), and the PGD runs (first seed)."""
    head = ("| λ | certified | ‖W⊥‖/‖W‖ bias trained (max over seeds) | bias frozen (max) | max ‖∇g‖ (check rule) "
            "| min λ_min(∇²g) | PGD after the last step: trained / frozen | PGD steps to collapse (trained) "
            "| regulariser alone |")
    lines = [head, "|" + "---|" * 9]
    f = lambda v, spec=".1e": "–" if v is None else format(v, spec)  # noqa: E731
    for lam in grid:
        pts = [p for p in points if p["lam"] == lam]
        cert = [p for p in pts if p["type"] == "minimum"]
        tr, fr = (max((p["perp_ratio"] for p in cert if p["bias"] == b), default=None) for b in ("trained", "frozen"))
        runs = {r["bias"]: r for r in pgd if r["lam"] == lam}
        t, fz = runs.get("trained"), runs.get("frozen")
        steps = "–" if t is None or t["steps_to_collapse"] is None else str(t["steps_to_collapse"])
        dec = "–" if t is None or t["decay_only_steps"] is None else str(t["decay_only_steps"])
        end = "–" if t is None else f"{t['ratio_end']:.3g} / {fz['ratio_end']:.3g}"
        grad = f"{f(max((p['grad_norm'] for p in cert), default=None))} " \
               f"({f(max((p['grad_norm_fine'] for p in cert), default=None))})"
        lines.append(f"| {lam:.3g} | {len(cert)}/{len(pts)} | {f(tr)} | {f(fr)} | {grad} | "
                     f"{f(min((p['lam_min_hessian'] for p in cert), default=None))} | {end} | {steps} | {dec} |")
    return "\n".join(lines) + "\n"
