"""Optimisers: Adam (the default), and RMSProp in the form of Graves (2013) that the paper used."""

from __future__ import annotations

import statistics
from collections import deque

import torch


class GravesRMSprop(torch.optim.Optimizer):
    """Centred RMSProp with momentum, as in Graves (2013), eq. 38-41::

        n = d * n + (1 - d) * g^2
        m = d * m + (1 - d) * g
        v = momentum * v - lr * g / sqrt(n - m^2 + eps)
        theta = theta + v

    with d = 0.95 and eps = 1e-4 inside the square root (PyTorch's RMSprop adds its eps outside
    the root and defaults to d = 0.99, which lets a converged NTM drift).

    Because eps sits inside the root, the update depends on the gradient's scale. Graves' g is the
    gradient of a loss summed over the sequence; a training step here differentiates the mean over
    the target bits, whose gradient is smaller by the number of target bits per sequence (128 on
    priority sort, 200 on N-grams). Unscaled, n - m^2 stays far below eps (1e-10-1e-6 against
    1e-4 in trained runs) and the update is SGD with momentum at 100 * lr. So each step multiplies
    g by ``grad_scale`` (set per step with :func:`set_grad_scale` to the target bits per sequence)
    and runs the equations above on the gradient of the cost per sequence, as Graves did.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-4,
        momentum: float = 0.9,
        decay: float = 0.95,
        eps: float = 1e-4,
        grad_scale: float | torch.Tensor = 1.0,
    ):
        if lr <= 0 or not 0 <= momentum < 1 or not 0 < decay < 1 or eps <= 0:
            raise ValueError("GravesRMSprop needs lr > 0, 0 <= momentum < 1, 0 < decay < 1 and eps > 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, decay=decay, eps=eps, grad_scale=grad_scale))

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
                g, d = p.grad * group.setdefault("grad_scale", 1.0), group["decay"]
                state["n"].mul_(d).addcmul_(g, g, value=1 - d)
                state["m"].mul_(d).add_(g, alpha=1 - d)
                denom = (state["n"] - state["m"] * state["m"] + group["eps"]).sqrt_()
                state["v"].mul_(group["momentum"]).addcdiv_(g, denom, value=-group["lr"])
                p.add_(state["v"])
        return loss


def set_grad_scale(optimizer: torch.optim.Optimizer, scale: float | torch.Tensor) -> None:
    """Tell an optimiser whose update depends on the gradient's scale (:class:`GravesRMSprop`) how
    many target bits one sequence of this step has: the factor from the gradient of the mean
    per-bit loss to that of the cost per sequence. Optimisers without such a setting ignore it."""
    if isinstance(optimizer, GravesRMSprop):
        for group in optimizer.param_groups:
            group["grad_scale"] = scale


DEFAULT_LR = {"adam": 1e-3, "amsgrad": 1e-3, "rmsprop": 1e-4, "rmsprop-torch": 1e-4, "sgd": 1e-2}
OPTIMIZERS = tuple(DEFAULT_LR)


def make_optimizer(name: str, params, lr: float | None = None, momentum: float = 0.9) -> torch.optim.Optimizer:
    """``adam`` (momentum sets beta1), ``amsgrad`` (Adam that keeps the largest second moment seen,
    so a step after a quiet stretch cannot be scaled up by a decayed one), ``rmsprop`` (Graves
    2013), ``rmsprop-torch`` (PyTorch's, centred) or ``sgd`` (with momentum: v = momentum * v + g,
    theta -= lr * v)."""
    if name not in DEFAULT_LR:
        raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
    lr = DEFAULT_LR[name] if lr is None else lr
    if name in ("adam", "amsgrad"):
        return torch.optim.Adam(params, lr=lr, betas=(momentum, 0.999), amsgrad=name == "amsgrad")
    if name == "rmsprop":
        return GravesRMSprop(params, lr=lr, momentum=momentum)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    return torch.optim.RMSprop(params, lr=lr, momentum=momentum, centered=True)


def clip_grad_norm(params, max_norm: float) -> torch.Tensor:
    """Scale the gradients of ``params`` to a global norm of at most ``max_norm``, in place; returns
    the norm before clipping, a float64 scalar tensor (nothing is read on the host).

    ``torch.nn.utils.clip_grad_norm_`` sums the squares in the gradients' own dtype, so in float32
    a gradient whose entries pass about 1e19 has an infinite norm although every entry is finite
    (squares overflow at 3.4e38); its clip factor is then 0. A recurrent machine's gradient can
    grow that far through time: measured on N-grams at batch 1, norms of 1e17-1e20 on a few steps
    in ten thousand, each of which was called non-finite and dropped. Here the squares are summed
    in float64, so the norm is infinite (or NaN) only when an entry is.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros((), dtype=torch.float64)
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2, dtype=torch.float64)))
    factor = (max_norm / (total + 1e-6)).clamp(max=1.0)
    torch._foreach_mul_(grads, factor.to(grads[0].dtype))
    return total


class SpikeClip:
    """Clip a gradient whose norm is far above the recent ones, to ``factor`` times the median of
    the last ``window`` norms (once ``window`` steps have been seen; ``factor`` 0: off).

    Why: near convergence a copy machine's gradient norm sits around 0.05; now and then one batch
    gives a norm a hundred times that. The fixed clip (10) lets it through, and Adam, which divides
    by a slowly moving second moment, turns it into a step of several learning rates on every
    parameter it touches; measured on copy, such a step sent nearly learned machines back to chance,
    from where they did not recover. Clipped to ten times the usual norm, the same batch moves
    the machine as an ordinary one does.
    """

    def __init__(self, factor: float, window: int, history=(), clipped: int = 0) -> None:
        if factor < 0 or window < 1:
            raise ValueError(f"SpikeClip needs factor >= 0 and window >= 1, got {factor} and {window}")
        self.factor, self.window = factor, window
        self.history: deque[float] = deque(history, maxlen=window)
        self.clipped = clipped  # steps clipped so far

    def limit(self, norm: float) -> float | None:
        """The norm to clip this step's gradient (of global norm ``norm``) to, or None to leave it;
        records ``norm`` in the history."""
        bound = None
        if self.factor > 0 and len(self.history) == self.window:
            median = statistics.median(self.history)
            if norm > self.factor * median:
                bound = self.factor * median
                self.clipped += 1
        self.history.append(norm)
        return bound

    def state_dict(self) -> dict:
        return {"history": list(self.history), "clipped": self.clipped}
