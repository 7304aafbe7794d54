"""Certificates of a point of a population objective (Lemma 3.1; ``population.Population`` or
``variants.Network``), computed from exact derivatives, never from an optimiser's own estimates:

* ‖∇g‖ and λ_min of the Hessian of g in every trained parameter (dense where small, Lanczos on exact
  Hessian-vector products otherwise);
* λ_min(H_b), ``H_b = ∇²_b L`` the Hessian of the loss L in the bias (h × h, dense);
* the Stein residual ‖∇_W L · Π⊥ − H_b W Π⊥‖_F (Π⊥ = I − UUᵀ), which is zero at *every* (W, b): Stein's lemma on
  the part of x orthogonal to span(U), which y does not depend on. Hence ∇_W g Π⊥ = (H_b + λI) W⊥ and the
  *a-posteriori bound* ‖W⊥‖_F ≤ ‖∇_W g‖_F / (λ + λ_min(H_b)) whenever λ + λ_min(H_b) > 0 (``aposteriori_bound``).
  With the bias trained, H_b is a principal block of ∇²g, so λ_min(H_b) ≥ λ_min(∇²g): that gives *Lemma 3.1's
  bound* ε / (λ − √(ρε)) with ε = ‖∇g‖ and the curvature term √(ρε) read off the point as max(0, −λ_min(∇²g))
  (``lemma_bound``, never below the a-posteriori one). ρ itself -- the Lipschitz constant of ∇²g -- has no
  finite bound here: the third derivative of (aᵀs(z) − y)² holds r·a_i s‴(z_i), and the residual r grows
  without bound with W (the smooth ReLU is linear at infinity), so the lemma's ε-SOSP with a global ρ cannot be
  evaluated. With the bias frozen nothing controls λ_min(H_b), and the lemma does not apply.

:func:`point_type` turns the certificate into a label that claims no more than was checked.
"""
import math

import numpy as np
import torch

from NeuralNetworks.model import perp_part
from NeuralNetworks.quadrature import QUAD_TOL

SADDLE_TOL = 1e-9    # λ_min(∇²g) below -SADDLE_TOL: a saddle (escaped from, or reported as one)
GRAD_TOL = 1e-8      # the searches stop at ‖∇g‖ ≤ GRAD_TOL (an ε-SOSP with ε = 1e-8 once λ_min ≥ -SADDLE_TOL)


EIG_SHIFT = 1e-9     # dense λ_min: Cholesky of H + EIG_SHIFT·I, then shift-invert Lanczos (see _dense_lambda_min)
EIG_RTOL = 1e-8      # ... to this relative accuracy of 1/(λ_min + EIG_SHIFT): |error of λ_min| ≲ 1e-8 (λ_min + 1e-9)
EIG_RESTARTS = 10    # ... in at most this many restarts, and up to EIG_LANCZOS_MAX parameters; above, LAPACK
EIG_LANCZOS_MAX = 3000   # (Lanczos may return the second eigenvalue of a tight cluster)


def _dense_lambda_min(H: torch.Tensor, vector: bool):
    """Smallest eigenvalue (and unit eigenvector) of the symmetric ``H``, exactly.

    If the Cholesky factorisation of ``H + EIG_SHIFT·I`` exists, every eigenvalue is above ``-EIG_SHIFT``, so the
    smallest is the one nearest ``-EIG_SHIFT``: the largest eigenvalue of ``(H + EIG_SHIFT·I)^{-1}``, found by
    Lanczos (ARPACK, relative tolerance ``EIG_RTOL``, so λ_min to ~1e-17 near 0) on solves with that factor
    (the same value as LAPACK's to 1e-13, tested). Otherwise (a saddle: λ_min < -EIG_SHIFT; Lanczos not converged
    in ``EIG_RESTARTS`` restarts, as where eigenvalues cluster; or more than ``EIG_LANCZOS_MAX`` parameters)
    LAPACK's smallest eigenpair (``evr``: the tridiagonal form, then one pair)."""
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
    Hessian (see :func:`_dense_lambda_min`) -- up to ``dense_limit`` parameters, else
    Lanczos (ARPACK) on exact Hessian-vector products from a fixed start vector."""
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
    perp = float(torch.linalg.matrix_norm(perp_part(W, U)))
    par = float(torch.linalg.matrix_norm(W @ U))
    gap = pop.lam + lam_min_hb
    grad_w, grad = float(torch.linalg.matrix_norm(GW)), float(torch.linalg.vector_norm(G))
    lemma_gap = pop.lam - max(0.0, -lam_min_hessian)          # Lemma 3.1: λ − √(ρε), √(ρε) as measured
    out = {"g": g, "loss": L, "grad_norm": grad, "grad_w_norm": grad_w,
           "lam_min_hessian": lam_min_hessian, "lam_min_hb": lam_min_hb, "stein_residual": stein_residual(pop, P),
           "perp_norm": perp, "par_norm": par, "perp_ratio": perp / math.hypot(perp, par),
           "aposteriori_bound": grad_w / gap if gap > 0 else None,                              # Stein, at P
           "lemma_bound": grad / lemma_gap if lemma_gap > 0 and not pop.freeze_bias else None}  # Lemma 3.1
    if check_nodes is not None:
        fine = pop.refined(check_nodes, prune=0.0)
        g_fine, _, G_fine = fine.evaluate(P)
        out["g_fine"], out["grad_norm_fine"] = g_fine, float(torch.linalg.vector_norm(G_fine))
    return out


def stein_residual(pop, P) -> float:
    """``‖∇_W L · Π⊥ − H_b W Π⊥‖_F`` at the point ``P`` (Π⊥ = I − UUᵀ): zero at every point by Stein's lemma, up
    to quadrature error."""
    GL, W, U = pop.loss_grad_w(P), pop.first_layer(P), pop.U
    perp = torch.eye(U.shape[0], dtype=GL.dtype, device=GL.device) - U @ U.T
    return float(torch.linalg.matrix_norm(GL @ perp - pop.hessian_b(P) @ W @ perp))


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
