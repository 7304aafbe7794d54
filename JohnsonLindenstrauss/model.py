"""What is optimised in Section 5.2 (App. G, Eq. 9): a Gaussian distribution over projections
``A: (k, d)``.

``A = M + σ ⊙ G`` with ``G`` i.i.d. N(0, 1); the parameters are the mean ``M`` and ``log σ²`` (one
scalar in the authors' experiment, one per entry for Eq. 9). ``A`` distorts a unit target ``t`` by
``|‖A t‖²/k − 1|``. Two objectives on a batch of sampled matrices:

* ``max`` (:func:`max_distortion`) -- the authors' experiment (App. G): the largest distortion over
  the batch and the targets, minimised by Adam from ``M = 0``, ``σ = 1`` until it is below ``tol``
  (train.py).
* ``surrogate`` (:func:`surrogate_loss`) -- the paper's own objective (Eq. 9): the union bound
  ``Σ_t P(distortion_t > ε)``, the indicator smoothed as a logistic ``1/(1 + exp(−(x − ε)/τ))`` and
  estimated on the batch, plus ``λ Σ σ_ij²`` on per-entry standard deviations. Default
  ``τ = sqrt(2/k)``, the spread of a sampled distortion at the start (``‖G t‖²/k`` is χ²_k/k): a
  much narrower step saturates there and gives no gradient. ``λ = 1e-2`` makes the penalty
  (``λ k d`` at the start) comparable with the union bound (at most the number of targets).
"""
from dataclasses import dataclass

import torch


@dataclass
class JLConfig:
    k: int = 30
    batch: int = 20
    lr: float = 0.01
    steps: int = 5000
    tol: float = 0.01          # 'max': stop once the sampled max distortion is below this
    objective: str = "max"
    eps: float = 0.1           # 'surrogate': distortion threshold
    lam: float = 1e-2          # 'surrogate': weight of the variance penalty
    tau: float | None = None   # 'surrogate': width of the smoothed indicator (None: sqrt(2/k))
    snapshot_every: int = 0    # keep M every this many steps (0: never), e.g. for held-out points


def ratios(Y: torch.Tensor, k: int) -> torch.Tensor:
    """``‖A t‖²/k`` from ``Y = A tᵀ: (..., k, m)`` -> ``(..., m)``."""
    return (Y * Y).sum(-2) / k


def distortion(q: torch.Tensor) -> torch.Tensor:
    """The distortion ``|q − 1|`` of ratios ``q = ‖A t‖²/k`` (any shape): its one definition here."""
    return (q - 1.0).abs()


def sigma_of(log_var: torch.Tensor) -> torch.Tensor:
    """σ from the parameter ``log σ²``."""
    return (0.5 * log_var).exp()


def draw_G(batch: int, k: int, d: int, generator, like: torch.Tensor) -> torch.Tensor:
    """``G: (batch, k, d)`` with i.i.d. N(0, 1) entries, in ``like``'s dtype and device."""
    return torch.randn(batch, k, d, generator=generator, dtype=like.dtype, device=like.device)


def max_distortion(targets, A: torch.Tensor, k: int) -> torch.Tensor:
    """The authors' objective: the largest distortion over ``A: (B, k, d)`` and the targets."""
    return targets.distortions(A @ targets.X.T, k).max()       # App. G: max_b,t |‖A_b t‖²/k − 1|


def surrogate_loss(D: torch.Tensor, sigma: torch.Tensor, eps: float, lam: float, weights=None,
                   tau: float = 0.25) -> torch.Tensor:
    """Eq. 9 on a batch: ``Σ_t mean_b s((D_bt − ε)/τ) + λ Σ σ²``, ``s`` the logistic.
    ``D: (batch, m)``; ``weights: (m,)`` 0/1 selects the targets among the ``m`` entries."""
    p = torch.sigmoid((D - eps) / tau).mean(0)                 # Eq. 9: P(distortion_t > ε), (m,)
    return (p if weights is None else p * weights).sum() + lam * (sigma * sigma).sum()


class DivergenceError(RuntimeError):
    """The objective became NaN or infinite."""


class NoImprovementError(DivergenceError):
    """No iterate's mean matrix did better than the initial M = 0: the steps overshoot (``moved``)
    or M did not move; ``seconds`` the optimisation took."""

    def __init__(self, message, moved: bool, seconds: float):
        super().__init__(message)
        self.moved, self.seconds = moved, seconds


def no_improvement(steps: int, initial: float, largest: float, seconds: float, hint: str = ""):
    """The error for a run none of whose ``steps`` iterates beat M = 0 (max distortion
    ``initial``); ``largest``: the largest entry of the last M (above 1e-6: the steps overshoot;
    else M did not move)."""
    why = ("the steps overshoot" if largest > 1e-6 else f"M did not move (largest entry "
           f"{largest:.2g}): try a larger --lr" + hint)
    return NoImprovementError(f"in {steps} steps no mean matrix did better than the initial M = 0 "
                              f"(max distortion {initial:.3g}): {why}", largest > 1e-6, seconds)
