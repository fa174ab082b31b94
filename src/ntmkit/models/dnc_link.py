"""The DNC's temporal link update and its forward/backward weightings as one operator.

The link matrix is the DNC's largest piece of state (``[B, N, N]``; at N = 128 and batch 32,
2 MB per time step) and, differentiated automatically, its costliest: measured at batch 32 and
N = 128 on one CPU core, the link update and the directional weightings took about 3.7 of the
5.5 ms of a compiled training time step, because the compiler fuses them, with the rest of the
step, into one loop nest that walks the ``N x N`` matrix several times with strided reductions.

:func:`link_directional` computes exactly :func:`dnc_addressing.link` followed by
:func:`dnc_addressing.directional` (those functions stay the reference equations; a test holds
the values and every gradient of this operator to them in float64). It is a PyTorch custom
operator, so ``torch.compile`` calls it as one opaque kernel instead of fusing through it, and
its backward is derived by hand:

With ``G`` the gradient reaching L_t (from the next step, and through f^r = L_t w^r and
b^r = L_t^T w^r for each read head r), its diagonal zeroed because L_t[i, i] is set to 0, and
``df^r``, ``db^r`` the gradients reaching f^r and b^r::

    G[i, j]        = dC/dL_t[i, j] + Σ_r (df^r[i] w^r[j] + w^r[i] db^r[j]),   G[i, i] = 0
    dC/dL_{t-1}    = (1 - w[i] - w[j]) G[i, j]
    dC/dw[i]       = Σ_j G[i, j] p[j] - Σ_j G[i, j] L_{t-1}[i, j] - Σ_j G[j, i] L_{t-1}[j, i]
    dC/dp[j]       = Σ_i G[i, j] w[i]
    dC/dw^r[j]     = Σ_i df^r[i] L_t[i, j] + Σ_i db^r[i] L_t[j, i]

Every pass over an ``N x N`` matrix is one batched matrix product or one in-place elementwise
update, so the operator reads and writes each matrix a few times per step.
"""

from __future__ import annotations

import torch


@torch.library.custom_op("ntmkit::dnc_link_directional", mutates_args=())
def _link_directional(
    link_prev: torch.Tensor, w: torch.Tensor, precedence_prev: torch.Tensor, read_weights_prev: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    wi, wj = w.unsqueeze(-1), w.unsqueeze(-2)
    link = torch.addcmul(link_prev, link_prev, wi, value=-1.0)  # (1 - w[i]) L
    link.addcmul_(link_prev, wj, value=-1.0)  # ... - w[j] L
    link.addcmul_(wi, precedence_prev.unsqueeze(-2))  # ... + w[i] p[j]
    link.diagonal(dim1=-2, dim2=-1).zero_()
    forward = torch.bmm(read_weights_prev, link.transpose(1, 2))  # f^r[i] = Σ_j L[i, j] w^r[j]
    backward = torch.bmm(read_weights_prev, link)  # b^r[i] = Σ_j L[j, i] w^r[j]
    return link, forward, backward


@_link_directional.register_fake
def _(link_prev, w, precedence_prev, read_weights_prev):
    return torch.empty_like(link_prev), torch.empty_like(read_weights_prev), torch.empty_like(read_weights_prev)


def _setup_context(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs, output[0])


def _backward(ctx, grad_link, grad_forward, grad_backward):
    link_prev, w, precedence_prev, reads, link = ctx.saved_tensors
    # G = dC/dL + Σ_r (df^r w^r^T + w^r db^r^T) as one product of [B, N, 2R] and [B, 2R, N].
    left = torch.cat([grad_forward, reads], dim=1).transpose(1, 2)
    right = torch.cat([reads, grad_backward], dim=1)
    g = torch.bmm(left, right) if grad_link is None else torch.baddbmm(grad_link, left, right)
    g.diagonal(dim1=-2, dim2=-1).zero_()
    grad_reads = torch.bmm(grad_forward, link).baddbmm_(grad_backward, link.transpose(1, 2))
    e = g * link_prev
    grad_w = torch.bmm(g, precedence_prev.unsqueeze(-1)).squeeze(-1) - e.sum(-1) - e.sum(-2)
    grad_precedence = torch.bmm(w.unsqueeze(-2), g).squeeze(-2)
    grad_link_prev = torch.addcmul(g, g, w.unsqueeze(-1), value=-1.0)
    grad_link_prev.addcmul_(g, w.unsqueeze(-2), value=-1.0)
    return grad_link_prev, grad_w, grad_precedence, grad_reads


_link_directional.register_autograd(_backward, setup_context=_setup_context)


def link_directional(
    link_prev: torch.Tensor, w: torch.Tensor, precedence_prev: torch.Tensor, read_weights_prev: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``link(link_prev, w, precedence_prev)`` and ``directional(link, read_weights_prev)`` at once.

    Args:
        link_prev: ``[B, N, N]``; w: ``[B, N]`` this step's write weighting; precedence_prev:
        ``[B, N]``; read_weights_prev: ``[B, R, N]``.

    Returns:
        ``(link [B, N, N] with a zero diagonal, forward [B, R, N], backward [B, R, N])``.
    """
    return _link_directional(
        link_prev.contiguous(), w.contiguous(), precedence_prev.contiguous(), read_weights_prev.contiguous()
    )
