"""The Differentiable Neural Computer's memory access as pure functions.

Graves et al. (2016), "Hybrid computing using a neural network with dynamic external memory",
Nature 538, Methods ("Memory reads and writes", "Dynamic memory allocation", "Temporal memory
linkage"); and the three changes of Csordás & Schmidhuber (2019), "Improving Differentiable
Neural Computers Through Memory Masking, De-allocation, and Link Distribution Sharpness Control"
(ICLR), each an option that is off by default.

Every function takes and returns tensors only; read heads are a tensor dimension. Shapes use
``B`` for batch, ``R`` for read heads, ``N`` for memory locations and ``W`` for the width of a
memory row (the paper's word size). The DNC has one write head, so write weightings are ``[B, N]``.

One time step, in the order of the Methods section::

    retention (ψ)  ->  usage (u)  ->  allocation (a)  ->  write_weighting (w^w)  ->  write (M)
    ->  precedence (p) and link (L)  ->  directional (f, b)  ->  read_weighting (w^r)  ->  read (r)

with ``content_weights`` (C) used by the write weighting and the read weighting.
"""

from __future__ import annotations

import torch

# Added inside the square root of a norm: an all-zero row (the DNC's memory starts at zero) has a
# finite norm and a finite gradient, and its similarity to any key is 0.
NORM_EPS = 1e-6
# Usages are kept in [USAGE_EPS, 1] when sorted for allocation, so the products of eq. (allocation)
# never multiply by an exact zero (whose gradient through the product would be lost).
USAGE_EPS = 1e-6
# Smallest link weighting used inside a logarithm when sharpening a link distribution.
LOG_FLOOR = 1e-30


def content_weights(
    memory: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Content-based addressing, C(M, k, β)[i] = softmax_i(β D(k, M[i])), D the cosine similarity.

    With ``mask`` (Csordás & Schmidhuber's masked look-up), key and rows are compared only where
    the mask is on: D(k ∘ m, M[i] ∘ m), so the part of a row that is the value does not disturb
    the score of the part that is the key.

    Args:
        memory: ``[B, N, W]``.
        keys: ``[B, H, W]`` one key per head.
        strengths: ``[B, H]`` β >= 1 (the paper's oneplus).
        mask: ``[B, H, W]`` in [0, 1], or None.

    Returns:
        ``[B, H, N]`` each a distribution over the N locations.
    """
    if mask is None:
        dot = torch.einsum("bhw,bnw->bhn", keys, memory)
        mem_norm = torch.sqrt(memory.pow(2).sum(-1) + NORM_EPS).unsqueeze(1)  # [B, 1, N]
    else:
        keys = keys * mask
        masked = memory.unsqueeze(1) * mask.unsqueeze(2)  # [B, H, N, W]
        dot = torch.einsum("bhw,bhnw->bhn", keys, masked)
        mem_norm = torch.sqrt(masked.pow(2).sum(-1) + NORM_EPS)  # [B, H, N]
    key_norm = torch.sqrt(keys.pow(2).sum(-1, keepdim=True) + NORM_EPS)  # [B, H, 1]
    return torch.softmax(strengths.unsqueeze(-1) * dot / (key_norm * mem_norm), dim=-1)


def retention(free_gates: torch.Tensor, read_weights_prev: torch.Tensor) -> torch.Tensor:
    """Memory retention, ψ_t = Π_i (1 - f_t^i w_{t-1}^{r,i}).

    Args:
        free_gates: ``[B, R]`` f^i in [0, 1].
        read_weights_prev: ``[B, R, N]`` the previous step's read weightings.

    Returns:
        ``[B, N]`` in [0, 1]: how much of each location is kept.
    """
    return (1.0 - free_gates.unsqueeze(-1) * read_weights_prev).prod(dim=1)


def usage(usage_prev: torch.Tensor, write_weights_prev: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
    """Usage, u_t = (u_{t-1} + w^w_{t-1} - u_{t-1} ∘ w^w_{t-1}) ∘ ψ_t.

    Args:
        usage_prev: ``[B, N]`` in [0, 1].
        write_weights_prev: ``[B, N]`` the previous step's write weighting.
        psi: ``[B, N]`` retention of this step.

    Returns:
        ``[B, N]`` in [0, 1].
    """
    return (usage_prev + write_weights_prev - usage_prev * write_weights_prev) * psi


def allocation(u: torch.Tensor) -> torch.Tensor:
    """Allocation weighting, a_t[φ_j] = (1 - u_t[φ_j]) Π_{i=1}^{j-1} u_t[φ_i], φ the locations
    sorted by ascending usage (the free list).

    The sort's order is not differentiated (as in the paper); the usages are, through the
    products. Usages are first kept in [USAGE_EPS, 1].

    Args:
        u: ``[B, N]`` usage.

    Returns:
        ``[B, N]`` non-negative, summing to at most 1 (to 1 minus the product of all usages).
    """
    u = USAGE_EPS + (1.0 - USAGE_EPS) * u
    sorted_u, free_list = torch.sort(u, dim=-1, stable=True)
    # Π_{i<j} u[φ_i], an exclusive running product, as a running sum of logarithms (u >= USAGE_EPS).
    log_u = torch.log(sorted_u)
    before = torch.exp(torch.cumsum(log_u, dim=-1) - log_u)
    sorted_a = (1.0 - sorted_u) * before
    return torch.zeros_like(sorted_a).scatter(-1, free_list, sorted_a)


def write_weighting(
    alloc: torch.Tensor, content: torch.Tensor, allocation_gate: torch.Tensor, write_gate: torch.Tensor
) -> torch.Tensor:
    """Write weighting, w^w_t = g^w_t (g^a_t a_t + (1 - g^a_t) c^w_t).

    Args:
        alloc: ``[B, N]`` allocation weighting.
        content: ``[B, N]`` write content weighting c^w = C(M_{t-1}, k^w, β^w).
        allocation_gate: ``[B]`` g^a in [0, 1]; write_gate: ``[B]`` g^w in [0, 1].

    Returns:
        ``[B, N]``.
    """
    ga, gw = allocation_gate.unsqueeze(-1), write_gate.unsqueeze(-1)
    return gw * (ga * alloc + (1.0 - ga) * content)


def write(
    memory: torch.Tensor,
    w: torch.Tensor,
    erase: torch.Tensor,
    values: torch.Tensor,
    psi: torch.Tensor | None = None,
) -> torch.Tensor:
    """Erase and write, M_t = M_{t-1} ∘ (E - w^w e^T) + w^w v^T.

    With ``psi`` (Csordás & Schmidhuber's de-allocation), freed locations are erased too:
    M_t = M_{t-1} ∘ (E - w^w e^T) ∘ (ψ_t 1^T) + w^w v^T.

    Args:
        memory: ``[B, N, W]``; w: ``[B, N]`` write weighting; erase: ``[B, W]`` in [0, 1];
        values: ``[B, W]`` the write vector; psi: ``[B, N]`` retention, or None.

    Returns:
        ``[B, N, W]``.
    """
    keep = 1.0 - w.unsqueeze(-1) * erase.unsqueeze(1)  # [B, N, W]
    if psi is not None:
        keep = keep * psi.unsqueeze(-1)
    return memory * keep + w.unsqueeze(-1) * values.unsqueeze(1)


def precedence(precedence_prev: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Precedence weighting, p_t = (1 - Σ_i w^w_t[i]) p_{t-1} + w^w_t.

    Args:
        precedence_prev: ``[B, N]``; w: ``[B, N]`` this step's write weighting.

    Returns:
        ``[B, N]``: how much each location was the last one written to.
    """
    return (1.0 - w.sum(-1, keepdim=True)) * precedence_prev + w


def link(link_prev: torch.Tensor, w: torch.Tensor, precedence_prev: torch.Tensor) -> torch.Tensor:
    """Temporal link matrix, L_t[i, j] = (1 - w^w_t[i] - w^w_t[j]) L_{t-1}[i, j] + w^w_t[i] p_{t-1}[j],
    with L_t[i, i] = 0: L[i, j] is how much location i was written right after location j.

    Args:
        link_prev: ``[B, N, N]``; w: ``[B, N]`` this step's write weighting; precedence_prev:
        ``[B, N]`` the previous step's precedence weighting.

    Returns:
        ``[B, N, N]`` with a zero diagonal.
    """
    wi, wj = w.unsqueeze(-1), w.unsqueeze(-2)
    new = (1.0 - wi - wj) * link_prev + wi * precedence_prev.unsqueeze(-2)
    eye = torch.eye(new.shape[-1], dtype=torch.bool, device=new.device)
    return new.masked_fill(eye, 0.0)


def directional(link_matrix: torch.Tensor, read_weights_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward weightings, f^i_t = L_t w^{r,i}_{t-1} and b^i_t = L_t^T w^{r,i}_{t-1}.

    Args:
        link_matrix: ``[B, N, N]``; read_weights_prev: ``[B, R, N]``.

    Returns:
        forward ``[B, R, N]`` (the locations written just after the ones read) and backward
        ``[B, R, N]`` (the ones written just before).
    """
    forward = torch.einsum("bij,brj->bri", link_matrix, read_weights_prev)
    backward = torch.einsum("bji,brj->bri", link_matrix, read_weights_prev)
    return forward, backward


def sharpen_links(d: torch.Tensor, sharpness: torch.Tensor) -> torch.Tensor:
    """Link-distribution sharpness control (Csordás & Schmidhuber): S(d, s)[i] = d[i]^s / Σ_j d[j]^s,
    computed in log space.

    Args:
        d: ``[B, R, N]`` a forward or backward weighting (non-negative).
        sharpness: ``[B, R]`` s >= 1.

    Returns:
        ``[B, R, N]`` a distribution over the N locations.
    """
    return torch.softmax(sharpness.unsqueeze(-1) * torch.log(d.clamp_min(LOG_FLOOR)), dim=-1)


def read_weighting(
    backward: torch.Tensor, content: torch.Tensor, forward: torch.Tensor, modes: torch.Tensor
) -> torch.Tensor:
    """Read weighting, w^{r,i}_t = π^i_t[1] b^i_t + π^i_t[2] c^{r,i}_t + π^i_t[3] f^i_t.

    Args:
        backward, content, forward: ``[B, R, N]``.
        modes: ``[B, R, 3]`` read modes π (backward, content, forward), each a distribution.

    Returns:
        ``[B, R, N]``.
    """
    return modes[..., 0:1] * backward + modes[..., 1:2] * content + modes[..., 2:3] * forward


def read(memory: torch.Tensor, read_weights: torch.Tensor) -> torch.Tensor:
    """Read vectors, r^i_t = M_t^T w^{r,i}_t.

    Args:
        memory: ``[B, N, W]``; read_weights: ``[B, R, N]``.

    Returns:
        ``[B, R, W]``.
    """
    return torch.bmm(read_weights, memory)
