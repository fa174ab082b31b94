"""Optimisers: Adam (the default), and RMSProp in the form of Graves (2013) that the paper used."""

from __future__ import annotations

import torch


class GravesRMSprop(torch.optim.Optimizer):
    """Centred RMSProp with momentum, as in Graves (2013), eq. 38-41::

        n = d * n + (1 - d) * g^2
        m = d * m + (1 - d) * g
        v = momentum * v - lr * g / sqrt(n - m^2 + eps)
        theta = theta + v

    with d = 0.95 and eps = 1e-4 inside the square root (PyTorch's RMSprop adds its eps outside
    the root and defaults to d = 0.99, which lets a converged NTM drift).
    """

    def __init__(self, params, lr: float = 1e-4, momentum: float = 0.9, decay: float = 0.95, eps: float = 1e-4):
        if lr <= 0 or not 0 <= momentum < 1 or not 0 < decay < 1 or eps <= 0:
            raise ValueError("GravesRMSprop needs lr > 0, 0 <= momentum < 1, 0 < decay < 1 and eps > 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, decay=decay, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["n"] = torch.zeros_like(p)
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                g, d = p.grad, group["decay"]
                state["n"].mul_(d).addcmul_(g, g, value=1 - d)
                state["m"].mul_(d).add_(g, alpha=1 - d)
                denom = (state["n"] - state["m"] * state["m"] + group["eps"]).sqrt_()
                state["v"].mul_(group["momentum"]).addcdiv_(g, denom, value=-group["lr"])
                p.add_(state["v"])
        return loss


DEFAULT_LR = {"adam": 1e-3, "amsgrad": 1e-3, "rmsprop": 1e-4, "rmsprop-torch": 1e-4}
OPTIMIZERS = tuple(DEFAULT_LR)


def make_optimizer(name: str, params, lr: float | None = None, momentum: float = 0.9) -> torch.optim.Optimizer:
    """``adam`` (momentum sets beta1), ``amsgrad`` (Adam that keeps the largest second moment seen,
    so a step after a quiet stretch cannot be scaled up by a decayed one), ``rmsprop`` (Graves
    2013) or ``rmsprop-torch`` (PyTorch's, centred)."""
    if name not in DEFAULT_LR:
        raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
    lr = DEFAULT_LR[name] if lr is None else lr
    if name in ("adam", "amsgrad"):
        return torch.optim.Adam(params, lr=lr, betas=(momentum, 0.999), amsgrad=name == "amsgrad")
    if name == "rmsprop":
        return GravesRMSprop(params, lr=lr, momentum=momentum)
    return torch.optim.RMSprop(params, lr=lr, momentum=momentum, centered=True)
