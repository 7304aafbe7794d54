"""Teacher and student networks of Section 4 (paper Sec. 4, Fig. 3; claims (a)-(c)).

Teacher: ``x ~ N(0, I_d)``, ``y = mean_j tanh(<x, u_j>)`` with ``U = [u_1 .. u_k]`` orthonormal
(``k = 1``: the single-index ``tanh(<x, u>)`` of Fig. 3).

Student: ``F(x) = a^T s(W_L s(... s(W_1 x + b_1) ...) + b_L)``. All parameters carry a leading
*run* axis ``R`` so that several seeds or configurations train as one batched computation.
"""
from dataclasses import dataclass, field

import torch

from NeuralNetworks.activations import get_activation


def make_subspace(d: int, k: int, generator: torch.Generator, device="cpu", dtype=torch.float32):
    """Orthonormal ``U: (d, k)``. ``k = 1`` gives ``(1, ..., 1)/sqrt(d)`` (the paper's ``(1,1)/sqrt 2``);
    ``k > 1`` a random orthonormal frame (QR of a Gaussian matrix drawn from ``generator``)."""
    if k == 1:
        return torch.full((d, 1), d ** -0.5, device=device, dtype=dtype)
    g = torch.randn(d, k, generator=generator, device=device, dtype=torch.float64)
    q, _ = torch.linalg.qr(g)
    return q.to(dtype)


SUBSPACE_SEED = 12345   # the random teacher subspace (k > 1) of the claims grid and the sosp experiment


@dataclass
class Teacher:
    """``y = offset + mean_j tanh(x @ U)_j + noise * N(0, 1)``; ``U: (d, k)`` orthonormal. The constant
    ``offset`` (0 in the paper) is what a frozen-bias network must build from W⊥ (the sosp experiment)."""

    U: torch.Tensor
    noise: float = 0.0
    offset: float = 0.0

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``x: (..., n, d)`` -> ``y: (..., n)``."""
        y = torch.tanh(x @ self.U).mean(-1)
        if self.offset:
            y = y + self.offset
        if self.noise > 0:
            y = y + self.noise * torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        return y


@dataclass
class Student:
    """Batched deep network. ``weights[0]: (R, h, d)``, ``weights[l>0]: (R, h, h)``,
    ``biases[l]: (R, h)``, ``a: (R, h)``."""

    weights: list
    biases: list
    a: torch.Tensor
    activation: str = "smooth_relu"
    act: object = field(init=False, repr=False)

    def __post_init__(self):
        self.act = get_activation(self.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (R, n, d)`` -> predictions ``(R, n)``."""
        h = x
        for W, b in zip(self.weights, self.biases):
            h = self.act(torch.baddbmm(b.unsqueeze(1), h, W.transpose(1, 2)))
        return torch.bmm(h, self.a.unsqueeze(2)).squeeze(2)

    @property
    def W(self) -> torch.Tensor:
        """First-layer weights ``(R, h, d)``: the matrix the paper's theorem is about."""
        return self.weights[0]

    def parameters(self):
        return [*self.weights, *self.biases, self.a]


def init_student(runs, d, width, depth, generator, activation="smooth_relu", device="cpu",
                 dtype=torch.float32) -> Student:
    """Paper init (App. E): ``W_1 ~ N(0, 1/d)``, ``b ~ N(0, 1/h^2)``, ``a ~ N(0, 1/h^2)``;
    deeper layers ``W_l ~ N(0, 1/h)``. One independent draw per run."""
    def randn(*shape):
        return torch.randn(runs, *shape, generator=generator, device=device, dtype=dtype)

    weights = [randn(width, d) * d ** -0.5]
    weights += [randn(width, width) * width ** -0.5 for _ in range(depth - 1)]
    biases = [randn(width) / width for _ in range(depth)]
    a = randn(width) / width
    return Student(weights, biases, a, activation)


def concat_students(parts):
    """One batched student from students of one or more runs each (their runs concatenated, in order)."""
    return type(parts[0])([torch.cat(ws) for ws in zip(*[p.weights for p in parts])],
                          [torch.cat(bs) for bs in zip(*[p.biases for p in parts])], torch.cat([p.a for p in parts]))


def perp_part(W: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """``W_perp = W (I - U U^T)``: each row's component orthogonal to span(U). ``W: (..., h, d)``."""
    return W - (W @ U) @ U.T


def perp_norm(W: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """``||W_perp||_F`` over the last two axes: ``(..., h, d) -> (...)``."""
    return torch.linalg.matrix_norm(perp_part(W, U))


def stable_rank(W: torch.Tensor) -> torch.Tensor:
    """``||W||_F^2 / ||W||_2^2`` over the last two axes (1 <= value <= rank)."""
    return torch.linalg.matrix_norm(W) ** 2 / torch.linalg.matrix_norm(W, ord=2) ** 2
