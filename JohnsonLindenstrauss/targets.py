"""Targets and distortions for Section 5.2.

A projection ``A: (k, d)`` distorts a unit vector ``t`` by ``|‖A t‖² / k − 1|``. Targets are unit vectors
built from base points ``X: (n, d)``: the points themselves (``norms``, the authors' experiment) or all
normalised differences ``(x_i − x_j)/‖x_i − x_j‖`` (``pairwise``, the JL lemma's use). Every distortion is
computed from ``A Xᵀ: (k, n)`` alone, never from a product with all ``n(n−1)/2`` differences in ``d``
dimensions.
"""
from dataclasses import dataclass

import numpy as np
import torch

from JohnsonLindenstrauss.data import DataError
from JohnsonLindenstrauss.model import distortion, ratios


@dataclass
class Targets:
    """Unit targets built from base points ``X: (n, d)``: the points (``pairs is None``) or the normalised
    differences ``(x_i − x_j)/‖x_i − x_j‖`` of the given ``pairs: (p, 2)``.

    Pairwise distortions come from the Gram matrix of ``Y = A Xᵀ``: ``‖A(x_i − x_j)‖² = gram_ii + gram_jj − 2 gram_ij``,
    so one ``(n, n)`` product replaces gathering ``(k, p)`` differences (whose backward pass is a slow
    scatter); pairs not in the set are masked to distortion 0."""

    X: torch.Tensor
    pairs: torch.Tensor | None = None

    def __post_init__(self):
        if self.pairs is None:
            return
        n = len(self.X)
        i, j = self.pairs[:, 0], self.pairs[:, 1]
        self.mask = torch.zeros(n, n, dtype=self.X.dtype, device=self.X.device)
        self.mask[i, j] = 1.0
        self.inv_sq = torch.zeros_like(self.mask)
        self.inv_sq[i, j] = 1.0 / ((self.X[i] - self.X[j]) ** 2).sum(1)
        self.off = torch.where(self.mask > 0, 0.0, torch.inf).to(self.X.dtype)   # +inf off the pairs (worst)
        self.flat = (self.mask.flatten() > 0).nonzero()[:, 0]

    def __len__(self):
        return len(self.X) if self.pairs is None else len(self.pairs)

    @property
    def weights(self):
        """``(m,)`` 1 for a target, 0 for a masked entry of :meth:`distortions` (``None``: all are targets)."""
        return None if self.pairs is None else self.mask.flatten()

    def distortions(self, Y: torch.Tensor, k: int) -> torch.Tensor:
        """``|‖A t‖²/k − 1|`` for every target from ``Y = A Xᵀ: (..., k, n)``: ``(..., n)`` for norms,
        ``(..., n*n)`` for pairs (entries outside the pair set are 0)."""
        if self.pairs is None:
            return distortion(ratios(Y, k))
        return (distortion(self._pair_ratios(Y, k)) * self.mask).flatten(-2)

    def _pair_ratios(self, Y: torch.Tensor, k: int) -> torch.Tensor:
        """``‖A(x_i − x_j)‖²/(k ‖x_i − x_j‖²): (..., n, n)`` from the Gram matrix of ``Y = A Xᵀ`` (0 off the
        pairs)."""
        gram = Y.transpose(-1, -2) @ Y                                      # (..., n, n)
        sq = torch.diagonal(gram, dim1=-2, dim2=-1)                          # ‖A x_i‖²: (..., n)
        return (sq[..., :, None] + sq[..., None, :] - 2 * gram) * self.inv_sq / k

    def worst(self, Y: torch.Tensor, k: int, where: bool = True):
        """Per run, the largest distortion over a batch of projections and every target, and where it is:
        ``Y = A Xᵀ: (R, B, k, n)`` for R runs of B projections each -> ``value, b, i, j, sign``, each ``(R,)``:
        the distortion, its projection, its target (the point ``i``; for pairs the pair ``(i, j)``, for norms
        ``j = i``) and the sign of ``‖A t‖²/k − 1`` there (``where=False``: the value only). Nothing here is
        differentiated: the optimiser's gradient is written out from where the maximum is
        (``train_fast._max_step``).
        The largest and smallest ``‖A t‖²/k`` are found per projection by plain reductions (the max of
        :func:`model.distortion` is ``max(hi − 1, 1 − lo)``; the pair ratios are :meth:`_pair_ratios`, computed in
        place); only the winning projection of each run is searched for the index."""
        R, B, _, n = Y.shape
        if self.pairs is None:
            q = ratios(Y, k)                                                 # ‖A x_i‖²/k: (R, B, n)
            hi_b, lo_b = q.amax(-1), q.amin(-1)                               # (R, B)
        else:
            gram = Y.transpose(-1, -2) @ Y                                  # (R, B, n, n)
            sq = torch.diagonal(gram, dim1=-2, dim2=-1).clone()              # ‖A x_i‖²: (R, B, n)
            q = gram.mul_(-2).add_(sq[..., :, None]).add_(sq[..., None, :]).mul_(self.inv_sq).div_(k)  # 0 off pairs
            hi_b = q.amax((-2, -1))
            lo_b = (q + self.off).amin((-2, -1))                           # +inf off the pairs
        hi, b_hi = hi_b.max(1)
        lo, b_lo = lo_b.min(1)
        up = (hi - 1) >= (1 - lo)
        value = torch.where(up, hi - 1, 1 - lo)
        if not where:
            return value
        r = torch.arange(R, device=Y.device)
        b = torch.where(up, b_hi, b_lo)
        won = q[r, b].reshape(R, -1)                                        # the winning projection's values
        at_hi = won.argmax(1)
        at_lo = (won if self.pairs is None else won + self.off.reshape(1, -1)).argmin(1)
        at = torch.where(up, at_hi, at_lo)
        i, j = (at, at) if self.pairs is None else (at // n, at % n)
        return value, b, i, j, up.to(Y.dtype) * 2 - 1

    def ratios(self, Y: torch.Tensor, k: int) -> torch.Tensor:
        """``‖A t‖²/k`` of the targets only, from ``Y = A Xᵀ: (..., k, n)`` -> ``(..., len(self))``."""
        if self.pairs is None:
            return ratios(Y, k)
        return self._pair_ratios(Y, k).flatten(-2)[..., self.flat]

    def second_moment(self) -> torch.Tensor:
        """``Σ_t t tᵀ: (d, d)`` over the targets: ``XᵀX`` for norms; for pairs ``Xᵀ L X`` with L the Laplacian of
        the pair weights 1/‖x_i − x_j‖², never forming the differences."""
        if self.pairs is None:
            return self.X.T @ self.X
        W = self.inv_sq * self.mask
        W = W + W.T
        return self.X.T @ ((torch.diag(W.sum(1)) - W) @ self.X)

    def values(self, Y: torch.Tensor, k: int) -> torch.Tensor:
        """Distortions of the targets only: ``(..., len(self))``."""
        D = self.distortions(Y, k)
        return D if self.pairs is None else D[..., self.flat]

    def to(self, dtype):
        return Targets(self.X.to(dtype), self.pairs)


def make_targets(X, kind, pairs=None) -> Targets:
    """``norms``: every row. ``pairwise``: every pair ``i < j`` (or the given ``pairs: (p, 2)``).
    Pairs of identical points have no direction and raise :class:`DataError`."""
    X = torch.as_tensor(X)
    if kind == "norms":
        return Targets(X)
    if pairs is None:
        pairs = torch.triu_indices(len(X), len(X), offset=1, device=X.device).T
    pairs = torch.as_tensor(pairs, device=X.device)
    if len(pairs) and (X[pairs[:, 0]] - X[pairs[:, 1]]).norm(dim=1).min() == 0:
        raise DataError("two points coincide, so their normalised difference is undefined")
    return Targets(X, pairs)


def holdout_pairs(n_train, n_holdout):
    """Pairs of the stacked ``[train; holdout]`` points that involve at least one held-out point."""
    idx = torch.triu_indices(n_train + n_holdout, n_train + n_holdout, offset=1).T
    return idx[idx[:, 1] >= n_train]


def matrix_distortion(P: np.ndarray, targets: Targets) -> float:
    """Max over the targets of ``|‖P t‖² − 1|`` for a projection ``P: (k, d)`` already scaled."""
    Y = torch.as_tensor(P, dtype=targets.X.dtype, device=targets.X.device) @ targets.X.T
    return float(targets.distortions(Y, 1).max())
