"""Sampling ``G Xᵀ`` for Gaussian matrices ``G`` (Section 5.2): exactly, and cheaply when ``n < d``."""
import torch


class GaussianSampler:
    """Draws ``G Xᵀ`` for ``G`` with i.i.d. N(0, 1) entries, ``(batch, k, n)``.

    Each row of ``G Xᵀ`` is ``N(0, X Xᵀ)``, so when ``n < d`` it is sampled exactly as ``Z Lᵀ`` with
    ``L Lᵀ = X Xᵀ`` (Cholesky, or a symmetric square root when ``X Xᵀ`` is singular): ``n²`` work per row
    instead of ``n d``, and ``n`` normals instead of ``d``. Otherwise ``G`` is drawn and multiplied."""

    def __init__(self, X: torch.Tensor, mode="auto"):
        n, d = X.shape
        self.X, self.n, self.d = X, n, d
        self.shortcut = (n < d) if mode == "auto" else (mode == "shortcut")
        if self.shortcut:
            C = X @ X.T
            L, info = torch.linalg.cholesky_ex(C)
            if info.item() != 0:  # rank-deficient: symmetric square root of the PSD matrix
                w, Q = torch.linalg.eigh(C)
                L = Q * w.clamp_min(0).sqrt()
            self.L = L

    def sample(self, batch, k, generator) -> torch.Tensor:
        if self.shortcut:
            Z = torch.randn(batch, k, self.n, generator=generator, dtype=self.X.dtype, device=self.X.device)
            return Z @ self.L.T
        G = torch.randn(batch, k, self.d, generator=generator, dtype=self.X.dtype, device=self.X.device)
        return G @ self.X.T
