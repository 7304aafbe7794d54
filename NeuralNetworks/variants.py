"""The claims (a)-(c) and a second teacher direction at certified points of their population objectives.

``population.Population`` is the base student: two layers, second layer fixed, squared loss, derivatives in closed
form. Each claim changes one thing (:data:`VARIANTS`), and :class:`Network` is the population objective of any
of them -- one or two hidden layers, the second layer fixed or trained, squared, log-cosh or logistic loss --
in float64 on the same Gauss–Hermite rule: values and gradients in closed form (:meth:`Network.evaluate`), the
dense Hessian of a certificate too (:func:`loss_hessian`), both tested entry by entry against autograd, which gives
the Hessian-vector products. It speaks the protocol of ``population.Population`` (``pack``, ``unpack``, ``evaluate``,
``hvp_packed``, ``hessian``, ``hessian_b``, ``first_layer``, ``loss_grad_w``, ``refined``), so ``search`` and
``certify`` run on it unchanged; on the base student it is the reference the closed forms are tested against.

Stein's lemma needs only that x enters the network through ``z = W x + b``: for any loss and any layers above,
∇_W L · P⊥ = H_b W P⊥ with ``H_b = ∇²_b L``, at every point.
"""
import dataclasses
import math
from dataclasses import dataclass

import torch

from NeuralNetworks.activations import BETA, derivatives, smooth_relu
from NeuralNetworks.certify import CERTIFIED, point_type
from NeuralNetworks.losses import loss_slopes, pointwise_loss
from NeuralNetworks.model import init_student
from NeuralNetworks.population import Population
from NeuralNetworks.quadrature import CHUNK, PRUNE, rule, teacher_frame
from NeuralNetworks.search import certified_point

LOGISTIC_C = 3.0       # logistic loss: P(y = 1 | x) = σ(LOGISTIC_C · tanh<u, x>), between 0.047 and 0.953


@dataclass(frozen=True)
class Variant:
    """One row: the base student (two layers, width 256, second layer fixed, squared loss, one teacher
    direction) with one thing changed."""
    claim: str
    statement: str
    width: int = 256
    depth: int = 1
    train_out: bool = False
    loss: str = "mse"          # losses.ALL_LOSSES
    k: int = 1

    @property
    def closed_form(self) -> bool:
        """Whether ``population.Population`` (closed-form derivatives) is this student's objective."""
        return self.depth == 1 and not self.train_out and self.loss == "mse"


VARIANTS = {
    "base": Variant("–", "two layers, width 256, second layer fixed, squared loss, one direction"),
    "width-64": Variant("(a)", "any size: width 64", width=64),
    "width-1000": Variant("(a)", "any size: width 1000", width=1000),
    "depth-2": Variant("(a)", "any depth: two hidden layers of 64 (the first is the lemma's W, b)", width=64,
                       depth=2),
    "second-layer": Variant("(b)", "all parameters trained: the second layer a too", train_out=True),
    "depth-2-all": Variant("(b)", "two hidden layers of 64, every layer trained", width=64, depth=2,
                           train_out=True),
    "log-cosh": Variant("(c)", "any smooth loss: log cosh(f - y)", loss="logcosh"),
    "logistic": Variant("(c)", f"any smooth loss: cross-entropy, P(y=1|x) = σ({LOGISTIC_C:g} tanh<u, x>)",
                        loss="logistic"),
    "two-directions": Variant("(k)", "two teacher directions at d = 3: mean of tanh over Uᵀx", k=2),
}


def targets(variant: Variant, teacher_values):
    """What the loss compares with: the teacher's value, or for the logistic loss P(y = 1 | x)."""
    return torch.sigmoid(LOGISTIC_C * teacher_values) if variant.loss == "logistic" else teacher_values


class Network:
    """The population objective ``g = Σ_n q_n ℓ(f(x_n), y_n) + (λ/2) Σ_l ‖W_l‖_F²`` of ``variant``'s student
    ``f(x) = aᵀ s(W₂ s(W x + b) + b₂)`` (one hidden layer: ``aᵀ s(W x + b)``), weight decay on the weight
    matrices as in training. A point is the vector of every parameter in the order W, b, (W₂, b₂,) a; the
    trained ones are W, W₂, b₂, b unless ``freeze_bias``, and a when ``variant.train_out``."""

    def __init__(self, variant, U, lam, freeze_bias, nodes, offset=0.0):
        self.variant, self.U, self.lam, self.freeze_bias = variant, U, float(lam), bool(freeze_bias)
        self.nodes, self.offset = tuple(nodes), offset
        self._set_rule(rule(U, nodes, offset))
        d, h = U.shape[0], variant.width
        shapes = [("W", (h, d)), ("b", (h,))] + [("W2", (h, h)), ("b2", (h,))] * (variant.depth == 2)
        self.shapes = shapes + [("a", (h,))]
        sizes = [math.prod(s) for _, s in self.shapes]
        self.slices, start = {}, 0
        for (name, _), n in zip(self.shapes, sizes):
            self.slices[name], start = slice(start, start + n), start + n
        self.mask = torch.ones(start, dtype=torch.bool)
        if self.freeze_bias:
            self.mask[self.slices["b"]] = False
        if not variant.train_out:
            self.mask[self.slices["a"]] = False

    def _set_rule(self, nodes_weights_teacher):
        self.X, self.q, teacher = nodes_weights_teacher
        self.y = targets(self.variant, teacher)

    def refined(self, nodes, prune=None):
        """The same objective under the rule ``nodes`` (``prune=0``: every node of the tensor rule)."""
        out = Network.__new__(Network)
        out.__dict__.update(self.__dict__)
        out.nodes = tuple(nodes)
        out._set_rule(rule(self.U, nodes, self.offset, PRUNE if prune is None else prune))
        return out

    def point(self, **params):
        """The point holding ``params`` (tensors of the shapes above)."""
        return torch.cat([params[name].reshape(-1) for name, _ in self.shapes])

    def params(self, P):
        return {name: P[self.slices[name]].view(shape) for name, shape in self.shapes}

    def loss(self, P):
        """``L(P) = Σ_n q_n ℓ(f(x_n), y_n)`` (differentiable in P)."""
        p = self.params(P)
        H = smooth_relu(torch.addmm(p["b"], self.X, p["W"].T), BETA)
        if "W2" in p:
            H = smooth_relu(torch.addmm(p["b2"], H, p["W2"].T), BETA)
        return self.q @ pointwise_loss(self.variant.loss, H @ p["a"], self.y)

    @property
    def decayed(self):
        """The weight matrices under weight decay (a too when it is trained)."""
        names = ("W", "W2", "a") if self.variant.train_out else ("W", "W2")
        return [w for w in names if w in self.slices]

    def regulariser(self, P):
        """``(λ/2) Σ ‖W_l‖²`` over :attr:`decayed` (a 0-d tensor)."""
        return 0.5 * self.lam * sum(P[self.slices[w]] @ P[self.slices[w]] for w in self.decayed)

    def g(self, P):
        return self.loss(P) + self.regulariser(P)

    def pack(self, P):
        return P[self.mask]

    def unpack(self, x, like):
        out = like.clone()
        out[self.mask] = x
        return out

    def _grad(self, fn, P, create_graph=False):
        """``P`` as a leaf needing gradients and ``∇fn(P)`` (full, unpacked)."""
        P = P.detach().requires_grad_(True)
        return P, torch.autograd.grad(fn(P), P, create_graph=create_graph)[0]

    def evaluate(self, P):
        """``g``, ``L`` and ``∇g`` packed, the gradient in closed form (back-propagation written out on
        :func:`_forward`; autograd, :meth:`_grad`, is its test reference)."""
        p, sl = self.params(P), self.slices
        f = _forward(self.variant.loss, p, self.X, self.y)
        L = self.q @ pointwise_loss(self.variant.loss, f.f, self.y)
        w = self.q * f.d1                                            # q ℓ': the output's weight at each node
        grad = torch.empty_like(P)
        grad[sl["a"]] = f.out.T @ w
        G = f.dh1.mul(f.S1).mul_(w[:, None])                            # ∂g/∂z₁ at each node
        grad[sl["W"]] = (G.T @ self.X).reshape(-1)
        grad[sl["b"]] = G.sum(0)
        if f.S2 is not None:
            G = f.S2.mul(p["a"]).mul_(w[:, None])                     # ∂g/∂z₂
            grad[sl["W2"]] = (G.T @ f.H1).reshape(-1)
            grad[sl["b2"]] = G.sum(0)
        for name in self.decayed:
            grad[sl[name]] += self.lam * P[sl[name]]
        return float(L) + float(self.regulariser(P)), float(L), grad[self.mask]

    def hvp_packed(self, P, v):
        """``∇²g · v`` packed, by double backward."""
        P, G = self._grad(self.g, P, create_graph=True)
        return torch.autograd.grad(G, P, self.unpack(v, torch.zeros_like(P)))[0][self.mask]

    def _hessian_rows(self, fn, P, rows):
        """Rows ``rows`` of ``∇²fn(P)``, one backward each through the retained graph of ``∇fn``."""
        P, G = self._grad(fn, P, create_graph=True)
        return torch.stack([torch.autograd.grad(G[i], P, retain_graph=True)[0] for i in rows.tolist()])

    def hessian(self, P):
        """Dense ``∇²g`` in the trained parameters, packed order: :func:`loss_hessian` plus λ on the decayed
        weights (autograd's rows, :meth:`_hessian_rows`, are its test reference)."""
        H = loss_hessian(self.variant.loss, self.params(P), self.X, self.q, self.y, keep=self.mask)
        decay = torch.zeros(len(self.mask), dtype=H.dtype)
        for name in self.decayed:
            decay[self.slices[name]] = self.lam
        H.diagonal().add_(decay[self.mask])
        return H

    def hessian_b(self, P):
        """``H_b = ∇²_b L``: ``(h, h)``, the bias trained or not, in closed form (autograd's rows are its test
        reference): ``E[ℓ'' g₁g₁ᵀ] + diag E[ℓ' dh1∘s''₁] + E[ℓ' Σ_i a_i s''₂ᵢ (W₂[i]∘s'₁)(W₂[i]∘s'₁)ᵀ]`` with g₁
        and dh1 as in :func:`_add_loss_hessian` (the last term with two hidden layers only)."""
        p = self.params(P)
        a, h = p["a"], len(p["a"])
        H = P.new_zeros(h, h)
        for i in range(0, len(self.q), CHUNK):                       # nodes per pass (memory)
            q = self.q[i:i + CHUNK]
            f = _forward(self.variant.loss, p, self.X[i:i + CHUNK], self.y[i:i + CHUNK])
            G1, w = f.dh1 * f.S1, q * f.d1
            H += G1.T @ ((q * f.d2)[:, None] * G1)
            H.diagonal().add_((w[:, None] * f.dh1 * BETA * f.S1 * (1 - f.S1)).sum(0))
            if f.S2 is not None:
                K = p["W2"] * f.S1[:, None, :]                       # W₂[i, j] s'₁ⱼ: (n, h, h)
                C = w[:, None] * a * BETA * f.S2 * (1 - f.S2)
                H += (C[:, :, None] * K).reshape(-1, h).T @ K.reshape(-1, h)
        return H

    def first_layer(self, P):
        """``W: (h, d)``."""
        return self.params(P)["W"]

    def grad_w(self, P):
        """``∇_W g: (h, d)``."""
        return self._grad(self.g, P)[1][self.slices["W"]].view(self.params(P)["W"].shape)

    def loss_grad_w(self, P):
        """``∇_W L: (h, d)``, the loss's gradient without the regulariser's (autograd)."""
        return self._grad(self.loss, P)[1][self.slices["W"]].view(self.params(P)["W"].shape)


@dataclass
class _Forward:
    """What the closed forms need at a set of nodes: ``S1 = s'(z₁)``, ``H1 = s(z₁)``, ``S2 = s'(z₂)`` (None with one
    hidden layer), ``dh1 = W₂ᵀ(a∘s'(z₂))`` = ∂f/∂s(z₁) (one hidden layer: ``a``), the output layer's input
    ``out``, the output ``f`` and the loss's slopes ``d1 = ℓ'``, ``d2 = ℓ''`` there."""
    S1: torch.Tensor
    H1: torch.Tensor
    S2: torch.Tensor
    dh1: torch.Tensor
    out: torch.Tensor
    f: torch.Tensor
    d1: torch.Tensor
    d2: torch.Tensor


_ACT = derivatives("smooth_relu", BETA)    # z -> (s(z), s'(z), None): one logistic and one log per entry


def _forward(loss, p, X, y) -> _Forward:
    """:class:`_Forward` at the nodes ``X``, targets ``y``, parameters ``p`` by name."""
    a = p["a"]
    H1, S1, _ = _ACT(torch.addmm(p["b"], X, p["W"].T))
    S2, dh1, out = None, a.expand(len(X), len(a)), H1
    if "W2" in p:
        out, S2, _ = _ACT(torch.addmm(p["b2"], H1, p["W2"].T))
        dh1 = (S2 * a) @ p["W2"]
    f = out @ a
    return _Forward(S1, H1, S2, dh1, out, f, *loss_slopes(loss, f, y))


def loss_hessian(loss: str, p: dict, X, q, y, keep=None):
    """``∇²L`` in closed form for the nodes ``X: (n, d)``, weights ``q`` and targets ``y``, in every parameter,
    ordered as a point (W, b, (W₂, b₂,) a) -- only the rows and columns ``keep`` (a mask over the point) when given;
    ``p``: the parameters by name; ``quadrature.CHUNK`` nodes per pass.

    ``Σ_n q_n [ℓ''_n J_n J_nᵀ + ℓ'_n ∇²f_n]``, ``J_n = ∇f(x_n)``, written on ``Θ₁ = [W | b]`` (x̃ = (x, 1)),
    ``Θ₂ = [W₂ | b₂]`` (h̃ = (s(z₁), 1)) and ``a`` (:func:`_add_loss_hessian`), then put in the point's order."""
    (h, d), deep = p["W"].shape, "W2" in p
    ix = torch.arange(h)
    theta = [torch.cat([ix[:, None] * d + torch.arange(d), h * d + ix[:, None]], 1).reshape(-1)]  # Θ → point index
    if deep:
        o2 = h * (d + 1)
        theta.append(torch.cat([o2 + ix[:, None] * h + ix, (o2 + h * h + ix)[:, None]], 1).reshape(-1))
    theta.append(h * (d + 1) + h * (h + 1) * deep + ix)
    inv = torch.argsort(torch.cat(theta))
    H = X.new_zeros(len(inv), len(inv))
    for i in range(0, len(q), CHUNK):
        _add_loss_hessian(H, loss, p, X[i:i + CHUNK], q[i:i + CHUNK], y[i:i + CHUNK])
    sel = inv if keep is None else inv[keep]
    return H.index_select(0, sel).index_select(1, sel)


def _add_loss_hessian(H, loss, p, X, q, y):
    """Add the nodes' ``∇²L`` to ``H`` in Θ order (Θ₁ row-major, Θ₂ row-major, a). With ``g₂ = a∘s'(z₂)``,
    ``dh1 = W₂ᵀg₂`` and ``g₁ = dh1∘s'(z₁)`` (one hidden layer: ``dh1 = a``), ``J = (g₁⊗x̃, g₂⊗h̃, s(z₂))``, and
    the blocks of ∇²f are: (a_i, Θ₂[i,m]) ``s'₂ᵢ h̃_m``; (a_i, Θ₁[j,p]) ``s'₂ᵢ W₂[i,j] s'₁ⱼ x̃_p``; (Θ₂[i,·], Θ₂[i,·])
    ``a_i s''₂ᵢ h̃h̃ᵀ``; (Θ₂[i,m], Θ₁[j,p]) ``a_i s''₂ᵢ W₂[i,j] s'₁ⱼ h̃_m x̃_p + δ_mj g₂ᵢ s'₁ⱼ x̃_p``; (Θ₁[j,p],
    Θ₁[k,q]) ``x̃_p x̃_q (Σ_i a_i s''₂ᵢ W₂[i,j] W₂[i,k] s'₁ⱼ s'₁ₖ + δ_jk dh1_j s''₁ⱼ)``. One hidden layer: (a_j,
    Θ₁[j,p]) ``s'₁ⱼ x̃_p`` and (Θ₁[j,·], Θ₁[j,·]) ``a_j s''₁ⱼ x̃x̃ᵀ``."""
    a, n = p["a"], len(X)
    (h, d), deep = p["W"].shape, "W2" in p
    ix = torch.arange(h)
    f = _forward(loss, p, X, y)
    S1, S2, dh1, w = f.S1, f.S2, f.dh1, q * f.d1                       # s'; s'' = β s'(1 − s')
    Xt = torch.cat([X, torch.ones_like(X[:, :1])], 1)
    E1 = S1[:, :, None] * Xt[:, None, :]                           # s'₁ⱼ x̃_p: (n, h, d+1)
    cols = []
    if deep:
        Ht = torch.cat([f.H1, torch.ones_like(f.H1[:, :1])], 1)
        G2 = S2 * a
        cols = [(G2[:, :, None] * Ht[:, None, :]).reshape(n, -1)]
    J = torch.cat([(dh1[:, :, None] * E1).reshape(n, -1)] + cols + [f.out], 1)
    n1, oa = h * (d + 1), J.shape[1] - h
    H.addmm_((J * (q * f.d2)[:, None]).T, J)                        # Gauss–Newton part
    Ha1 = H[oa:, :n1].view(h, h, d + 1)
    H11 = H[:n1, :n1].view(h, d + 1, h, d + 1)
    if deep:
        W2 = p["W2"]
        Ha1 += W2[:, :, None] * torch.einsum("ni,njp->ijp", w[:, None] * S2, E1)
        H[oa:, n1:oa].view(h, h, h + 1)[ix, ix] += (w[:, None] * S2).T @ Ht
        C = w[:, None] * BETA * S2 * (1 - S2)                      # ℓ' s''₂
        H[n1:oa, n1:oa].view(h, h + 1, h, h + 1)[ix, :, ix] += a[:, None, None] * torch.einsum(
            "ni,nm,nk->imk", C, Ht, Ht)
        H21 = H[n1:oa, :n1].view(h, h + 1, h, d + 1)
        H21 += (a[:, None] * W2)[:, None, :, None] * ((C[:, :, None] * Ht[:, None, :]).reshape(n, -1).T
                                                      @ E1.reshape(n, -1)).view(h, h + 1, h, d + 1)
        H21[:, ix, ix] += torch.einsum("ni,njp->ijp", w[:, None] * G2, E1)
        H[:n1, n1:oa] = H[n1:oa, :n1].T
        H11 += torch.einsum("njk,njp,nkq->jpkq", torch.einsum("ni,ij,ik->njk", C * a, W2, W2), E1, E1)
    else:
        Ha1[ix, ix] += torch.einsum("n,njp->jp", w, E1)
    H[:oa, oa:] = H[oa:, :oa].T
    H11[ix, :, ix] += torch.einsum("nj,np,nq->jpq", w[:, None] * dh1 * BETA * S1 * (1 - S1), Xt, Xt)


def objective(variant: Variant, seed: int, lam: float, frozen: bool, d: int, nodes):
    """``(objective, initial point)`` of ``variant`` from the authors' init of ``seed`` (App. E, float64):
    ``population.Population`` and ``[W | b]`` where it applies, else :class:`Network` and its parameter vector."""
    U = teacher_frame(d, variant.k)
    s = init_student(1, d, variant.width, variant.depth, torch.Generator().manual_seed(seed), dtype=torch.float64)
    W, b, a = s.W[0], s.biases[0][0], s.a[0]
    if variant.closed_form:
        return Population.build(U, a, b.clone(), lam, frozen, nodes), torch.cat([W, b[:, None]], 1)
    net = Network(variant, U, lam, frozen, nodes)
    extra = {"W2": s.weights[1][0], "b2": s.biases[1][0]} if variant.depth == 2 else {}
    return net, net.point(W=W, b=b, a=a, **extra)


# ---------------------------------------------------------------------------------------------------------
# The sweep: a certified point per (row, seed, λ, bias trained / frozen), and the verdict per row.

EPS_SOSP = 1e-6        # an ε-SOSP: ‖∇g‖ ≤ EPS_SOSP and λ_min(∇²g) ≥ −EPS_SOSP. The searches escape only
                       # curvature below −EPS_SOSP: a point above it is an ε-SOSP already
COLLAPSED = 1e-4       # the claim holds at a point when ‖W⊥‖/‖W‖ ≤ COLLAPSED there
COARSE = {1: (90, 8), 2: (40, 8)}    # first rule per number of teacher directions (quadrature.nodes_for refines)


def row_variant(row: str, width=None) -> Variant:
    """``VARIANTS[row]``, its width capped at ``width`` (quick runs) when given."""
    v = VARIANTS[row]
    return v if width is None else dataclasses.replace(v, width=min(width, v.width))


def row_dims(variant: Variant, d: int):
    """``(d, k)`` of a row: ``d`` as asked, at least 3 for two directions (W⊥ must have room)."""
    return (max(d, variant.k + 1), variant.k)


def certify_job(row: str, seed: int, lam: float, frozen: bool, d: int, max_iter: int, width=None,
                newton_steps: int = 0):
    """One certified point of ``row`` from ``seed``'s init (a job of ``jobs.run_jobs``; ``width`` overrides the
    row's, for quick runs; ``max_iter`` and ``newton_steps``: the search's L-BFGS cap and damped Newton finish,
    see ``search.find_stationary_point``). Returns the certificate, the point's first layer ``W`` and ``U`` (numpy)
    and its labels."""
    import time

    v = row_variant(row, width)
    dd, k = row_dims(v, d)
    t = time.perf_counter()
    pop, P0 = objective(v, seed, lam, frozen, dd, COARSE[k])
    pt = certified_point(pop, P0, max_iter, saddle_tol=EPS_SOSP,    # escape real saddles only (see EPS_SOSP)
                         newton_steps=newton_steps)
    W = pop.first_layer(pt.pop("theta")).detach().numpy()
    pt = {key: val for key, val in pt.items() if key not in ("g_fine",)}
    out = {"row": row, "claim": v.claim, "seed": seed, "lam": float(lam), "bias": "frozen" if frozen else "trained",
           "width": v.width, "d": dd, "k": k, **pt, "W": W, "U": pop.U.numpy(), "seconds": time.perf_counter() - t}
    out["type"], out["reason"] = point_type(out, EPS_SOSP)
    out["tightness"] = out["perp_norm"] / out["aposteriori_bound"] if out["aposteriori_bound"] else None
    return out


def job_cost(row: str, lam: float, frozen: bool):
    """A sort key, longest first: deep and trained-output rows, then bias trained, then small λ."""
    v = VARIANTS[row]
    return (-(v.depth + v.train_out), frozen, lam)


def verdict(points) -> str:
    """One row's verdict, from its bias-trained points: ``holds`` when every certified one (an ε-SOSP or a
    minimum) has ‖W⊥‖/‖W‖ ≤ COLLAPSED and there is one; ``fails`` when a certified one has more; ``uncertified``
    when none is certified."""
    cert = [p for p in points if p["bias"] == "trained" and p["type"] in CERTIFIED]
    if not cert:
        return "uncertified"
    return "holds" if max(p["perp_ratio"] for p in cert) <= COLLAPSED else "fails"


def summary_rows(points):
    """Per row (in :data:`VARIANTS`' order): max ratio trained / frozen, worst gradient and curvature, the
    bound's tightness, the count of certified points and the verdict."""
    out = []
    for row in VARIANTS:
        pts = [p for p in points if p["row"] == row]
        if not pts:
            continue
        by = {b: [p for p in pts if p["bias"] == b] for b in ("trained", "frozen")}
        tight = [p["tightness"] for p in pts if p["tightness"] is not None and p["bias"] == "trained"]
        out.append({"row": row, "claim": VARIANTS[row].claim, "statement": VARIANTS[row].statement,
                    "trained_max_ratio": max((p["perp_ratio"] for p in by["trained"]), default=None),
                    "frozen_max_ratio": max((p["perp_ratio"] for p in by["frozen"]), default=None),
                    "max_grad_norm": max(p["grad_norm"] for p in pts),
                    "min_lam_min_hessian": min(p["lam_min_hessian"] for p in pts),
                    "max_stein_residual": max(p["stein_residual"] for p in pts),
                    "max_tightness": max(tight, default=None),
                    "certified": sum(p["type"] in CERTIFIED for p in pts), "points": len(pts),
                    "types": {t: sum(p["type"] == t for p in pts) for t in sorted({p["type"] for p in pts})},
                    "verdict": verdict(pts)})
    return out
