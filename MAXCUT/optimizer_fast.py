"""The fast form of the authors' update (Eq. 7, App. F): :func:`optimizer.authors_gradients_per_draw` computed for
all draws at once, and the Gaussian draws of a block of steps made in one call. Tests hold it equal to the
per-draw form on the same draws; ``benchmark.py`` times the two."""
import torch

from MAXCUT.graphs import Graph
from MAXCUT.model import sign


def authors_gradients(V, graph: Graph, m, s_eff: float, z, lam: float, zV=None, zsq=None):
    """One step's estimates of the authors' rule, vectorised over the draws. ``V: (n, p)``, ``m: (p,)``,
    ``z: (S, p)``; the draws are ``r_s = m + s_eff z_s`` and ``c_s`` the cut of ``sign(V r_s)``. Returns
    ``g_m = mean(c (r - m)) / s_eff²`` ``(p,)``, ``g_i = mean(c ((r_i - m_i)² / s_eff³ - 1 / s_eff)) - 2 lam s_eff``
    ``(p,)`` and the cuts ``(S,)``. ``zV = z Vᵀ`` and ``zsq = z² - 1`` may be passed precomputed."""
    zV = z @ V.T if zV is None else zV
    zsq = z * z - 1 if zsq is None else zsq
    c = graph.cut(sign(torch.add(V @ m, zV, alpha=s_eff)))          # (S,)
    scale = 1.0 / (z.shape[0] * s_eff)
    return (c @ z).mul_(scale), (c @ zsq).mul_(scale).sub_(2 * lam * s_eff), c


def noise_blocks(shape, generator, like, block=256):
    """Gaussian draws of ``shape`` per step, made ``block`` steps at a time: one RNG call per block."""
    while True:
        yield from torch.randn((block, *shape), generator=generator, dtype=like.dtype, device=like.device)


def score_blocks(V, log_samples, samples, generator, block=256):
    """Per step ``(z_log (L, p), z (S, p), z Vᵀ (S, n), z² - 1 (S, p))``: one RNG call and one product for a
    block of steps. The L logging draws come first in each step's draws, then the S of the step."""
    p = V.shape[1]
    while True:
        Z = torch.randn((block, log_samples + samples, p), generator=generator, dtype=V.dtype, device=V.device)
        Zs = Z[:, log_samples:]
        yield from zip(Z[:, :log_samples], Zs, Zs @ V.T, Zs * Zs - 1)
