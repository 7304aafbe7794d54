"""The population objective of the Fig. 3 network (Sec. 3-4), exact under a quadrature rule, in float64:

    g(W, b) = E_x[(aᵀ s(W x + b) − y(x))²] + (λ/2) ‖W‖_F²,      x ~ N(0, I_d),  y(x) = c + mean_j tanh(⟨x, u_j⟩),

with its value, gradient, Hessian-vector products, dense Hessian and the bias block H_b = ∇²_b L in closed
form. Parameters Θ = [W | b] are (h, d+1); a node is x̃ = (x, 1), so z = Θ x̃. ``variants.Network`` speaks the
same protocol for the other students of the claims; ``search`` and ``certify`` work on either.
"""
from dataclasses import dataclass

import torch

from NeuralNetworks.activations import derivatives
from NeuralNetworks.model import init_student
from NeuralNetworks.quadrature import CHUNK, PRUNE, rule


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
        return cls(*rule(U, nodes, offset), a, b0, U, float(lam), bool(freeze_bias),
                   derivatives(activation, beta), offset, tuple(nodes))

    def refined(self, nodes, prune=PRUNE):
        """The same objective under the quadrature rule ``nodes = (n_par, n_perp)`` (``prune=0``: every node of
        the tensor rule)."""
        return Population(*rule(self.U, nodes, self.offset, prune), self.a, self.b0, self.U, self.lam,
                          self.freeze_bias, self.act, self.offset, tuple(nodes))

    def __post_init__(self):
        self.Xt = torch.cat([self.X, torch.ones_like(self.X[:, :1])], 1)     # nodes with a 1 appended: (N, d+1)

    def _forward(self, Th, second=False, rows=slice(None)):
        """At the nodes ``rows``: ``s'(Z)``, ``s''(Z)`` (when ``second``; else None) and the residual
        ``r = aᵀs(Z) − y``, where ``Z = Θ x̃``: ``(n, h)``, ``(n, h)``, ``(n,)``."""
        S, S1, S2 = self.act(torch.addmm(Th[:, -1], self.X[rows], Th[:, :-1].T), second)
        return S1, S2, torch.mv(S, self.a) - self.y[rows]

    def _chunks(self):
        """Node slices of ``CHUNK`` rows, so that the (N, h) intermediates stay small."""
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

    def loss_grad_w(self, Th):
        """``∇_W L: (h, d)``, the loss's gradient without the regulariser's."""
        return self.value_and_grad(Th)[2][:, :-1]

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


def initial_point(seed: int, d: int, width: int, a_init: str = "paper"):
    """The authors' init (App. E) in float64 from ``seed``: ``W ~ N(0, 1/d)``, ``b ~ N(0, 1/h²)``, and
    ``a ~ N(0, 1/h²)`` (``a_init='paper'``) or ``a = 1/h`` for every neuron (``'constant'``).
    Returns ``Th0 = [W | b]: (h, d+1)`` and ``a: (h,)``."""
    s = init_student(1, d, width, 1, torch.Generator().manual_seed(seed), dtype=torch.float64)
    a = s.a[0] if a_init == "paper" else torch.full((width,), 1.0 / width, dtype=torch.float64)
    return torch.cat([s.W[0], s.biases[0][0][:, None]], 1), a
