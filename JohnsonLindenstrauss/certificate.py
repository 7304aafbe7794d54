"""Theorem 5.5's certificate for one descended point (theorem.py): is the mean matrix inside the guarantee, and
does the theorem's argument cover the run that reached it?

The argument (theorem.py: what guarantees what): the objective starts below 1, exactly and as descended; no
accepted step raises it; so it ends below 1, and at σ = 0 a sum of smoothed indicators below 1 has none equal to
1, so every distortion of the mean M is below ε + τ. ``chain`` is the first part, read off the run;
:func:`guarantee` checks the conclusion on M itself (a bad point fails it); ``certified`` needs both.
"""
from JohnsonLindenstrauss.theorem import distortions, smooth_indicator


def guarantee(M, X, eps, tau):
    """The check a bad point fails: every distortion of the mean ``M: (k, d)`` on ``X: (n, d)`` is below ε + τ.
    Returns ``(passes, the objective at σ = 0 Σ_i H((|u_i − 1| − ε)/τ) -- below 1 implies it passes --, the max
    distortion)``."""
    D = distortions(M, X)
    at_mean = float(smooth_indicator((D - eps) / tau).sum())
    return bool(float(D.max()) < eps + tau), at_mean, float(D.max())


def certify(run, X, initial, eps, tau) -> dict:
    """The certificate of a :func:`theorem.descend` ``run`` on the points ``X`` whose exact initial objective is
    ``initial``: F at the start and the end, ``monotone``, what the perturbations added, F at the mean, max σ, the
    max distortion against the bound ε + τ, ``stationary``, ``within_bound`` (:func:`guarantee`), ``chain`` and
    ``certified``."""
    within, at_mean, worst = guarantee(run["M"], X, eps, tau)
    start = run["objective_start"]
    point = {"objective_start": start, "objective_end": run["objective_end"], "monotone": run["monotone"],
             "perturbation_rise": run["perturbation_rise"], "objective_at_mean": at_mean,
             "sigma_max": float(run["sigma"].abs().max()), "max_distortion": worst, "bound": eps + tau,
             "stationary": run["status"] == "stationary", "within_bound": within,
             "chain": bool(initial < 1 and start < 1 and run["monotone"] and run["objective_end"] <= start)}
    point["certified"] = point["chain"] and within
    return point
