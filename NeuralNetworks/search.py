"""Searches for second-order stationary points of a population objective (``population.Population`` or
``variants.Network``): L-BFGS on exact gradients, a damped Newton finish where L-BFGS stalls, and escapes along
negative curvature -- together a method that reaches second-order points; :func:`certified_point` then
certifies the point found (``certify.certify``) under a rule fine enough for it (``quadrature.nodes_for``).
"""
import numpy as np
import torch

from NeuralNetworks.certify import GRAD_TOL, SADDLE_TOL, certify, lambda_min
from NeuralNetworks.quadrature import nodes_for

LBFGS_MEMORY = 30    # L-BFGS correction pairs kept


class _Reached(Exception):
    """L-BFGS evaluated a point whose gradient is small enough: stop there."""


def _lbfgs(pop, P, max_iter: int, grad_tol: float = 0.0):
    """Minimise g from the point ``P`` by L-BFGS (float64, exact gradients) until ``‖∇g‖ ≤ grad_tol`` at an
    evaluated point (that point is returned) or g stops decreasing.

    scipy's L-BFGS-B runs with one BLAS thread, so that its idle-spinning BLAS threads do not compete with the
    (torch, multi-threaded) gradient evaluations."""
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
