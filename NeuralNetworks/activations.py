"""Activations of Section 4 (paper Sec. 4.3, App. E).

The paper covers ReLU through the smooth approximation ``(1/beta) log(1 + exp(beta z))``;
with ``beta = 2`` this is the ``1/2 log(1 + e^{2z})`` used for Fig. 2 and Fig. 3. It tends
to ReLU as ``beta`` grows (the gap is at most ``log(2)/beta``, attained at ``z = 0``).
"""
import torch
import torch.nn.functional as F

ACTIVATIONS = ("smooth_relu", "relu")


def smooth_relu(z: torch.Tensor, beta: float = 2.0, out: torch.Tensor | None = None) -> torch.Tensor:
    """``(1/beta) * log(1 + exp(beta * z))``, computed stably for any ``z`` (into ``out`` when given)."""
    if out is None:
        return F.softplus(z, beta=beta, threshold=40.0)  # exact to double precision
    return torch._C._nn.softplus(z, beta, 40.0, out=out)   # the same kernel, writing into out


def relu(z: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """ReLU (into ``out`` when given)."""
    return torch.relu(z) if out is None else torch.clamp(z, min=0.0, out=out)


def smooth_relu_grad(z: torch.Tensor, beta: float = 2.0, inplace: bool = False) -> torch.Tensor:
    """Derivative of :func:`smooth_relu`: the logistic sigmoid ``1 / (1 + exp(-beta z))``
    (``inplace``: overwrite ``z``, saving two allocations in the training step)."""
    return z.mul_(beta).sigmoid_() if inplace else torch.sigmoid(beta * z)


def relu_grad(z: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """Derivative of ReLU, taken as 0 at ``z = 0``."""
    return (z > 0).to(z.dtype)


def get_activation(name: str):
    """Map a name from :data:`ACTIVATIONS` to ``(function, derivative)``, both ``Tensor -> Tensor``."""
    if name == "smooth_relu":
        return smooth_relu, smooth_relu_grad
    if name == "relu":
        return relu, relu_grad
    raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")
