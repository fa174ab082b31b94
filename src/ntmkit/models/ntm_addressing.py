"""The paper's equations as pure functions.

Graves, Wayne & Danihelka (2014), "Neural Turing Machines", arXiv:1410.5401, section 3.
Every function takes and returns tensors only; heads are a tensor dimension, so ``H`` heads
cost about what one does. Shapes use ``B`` for batch, ``H`` for heads, ``N`` for memory
locations, ``M`` for the width of a memory row and ``S = 2 * shift_range + 1`` for the size
of the shift window.

Addressing runs in four stages (Figure 2 of the paper)::

    content_weights  (eq. 5-6)  ->  interpolate (eq. 7)  ->  shift (eq. 8)  ->  sharpen (eq. 9)

and the memory is used by ``read`` (eq. 2) and ``write`` (erase eq. 3, then add eq. 4).
"""

from __future__ import annotations

import torch

# Cosine similarity divides by the product of two norms; memory starts at 1e-6 per cell, so the
# norms can be tiny. EPS keeps the division finite without swamping real similarities.
COSINE_EPS = 1e-8
# Smallest weighting used inside a logarithm when sharpening; below it a location is "never".
LOG_FLOOR = 1e-30


def cosine_similarity(memory: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """K[u, v] = u . v / (|u| |v|), the similarity measure of eq. 6.

    Args:
        memory: ``[B, N, M]`` memory rows.
        keys: ``[B, H, M]`` one key per head.

    Returns:
        ``[B, H, N]`` similarity of each head's key to each row, in [-1, 1].
    """
    dot = torch.bmm(keys, memory.transpose(1, 2))  # [B, H, N]
    key_norm = keys.norm(dim=-1, keepdim=True)  # [B, H, 1]
    mem_norm = memory.norm(dim=-1).unsqueeze(1)  # [B, 1, N]
    return dot / (key_norm * mem_norm + COSINE_EPS)


def content_weights(memory: torch.Tensor, keys: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Content addressing, eq. 5: w_c[i] = softmax_i(beta * K(k, M[i])).

    Args:
        memory: ``[B, N, M]``.
        keys: ``[B, H, M]``.
        beta: ``[B, H]`` key strength, >= 0.

    Returns:
        ``[B, H, N]`` weightings, each a distribution over the N locations.
    """
    return torch.softmax(beta.unsqueeze(-1) * cosine_similarity(memory, keys), dim=-1)


def interpolate(w_content: torch.Tensor, w_prev: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """Interpolation gate, eq. 7: w_g = g * w_c + (1 - g) * w_{t-1}.

    Args:
        w_content: ``[B, H, N]`` content weighting of this step.
        w_prev: ``[B, H, N]`` the head's weighting at the previous step.
        gate: ``[B, H]`` in [0, 1].

    Returns:
        ``[B, H, N]``.
    """
    g = gate.unsqueeze(-1)
    return g * w_content + (1.0 - g) * w_prev


def shift(w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Circular convolution, eq. 8: w~[i] = sum_j w[j] * s[(i - j) mod N].

    The shift weighting covers shifts ``-R .. +R`` (``S = 2R + 1`` entries, index ``R`` is no
    shift), so a weighting focused at location ``i`` with all shift mass on ``+1`` moves to
    ``i + 1`` (wrapping round the end of memory).

    Computed as S contiguous slices of ``w`` padded circularly by ``R`` on each side (needs
    ``S <= N``, which every model checks): no index table, so the compiled step loads whole
    vectors and its backward adds slices instead of scattering through indices.

    Args:
        w: ``[B, H, N]`` gated weighting.
        s: ``[B, H, S]`` shift weighting, a distribution over the S shifts.

    Returns:
        ``[B, H, N]``.
    """
    n = w.shape[-1]
    r = (s.shape[-1] - 1) // 2
    padded = torch.cat([w[..., n - r :], w, w[..., :r]], dim=-1)  # padded[k] = w[(k - R) mod N]
    # Shift j - R takes w[(i - j + R) mod N] = padded[i - j + 2R] to location i.
    out = s[..., :1] * padded[..., 2 * r : 2 * r + n]
    for j in range(1, 2 * r + 1):
        out = out + s[..., j : j + 1] * padded[..., 2 * r - j : 2 * r - j + n]
    return out


def sharpen(w: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """Sharpening, eq. 9: w[i] = w~[i]^gamma / sum_j w~[j]^gamma, computed in log space.

    The literal power underflows in float32 for large gamma and small weights (the head then
    attends to nothing); ``softmax(gamma * log w)`` is the same function without that failure.

    Args:
        w: ``[B, H, N]`` shifted weighting (non-negative).
        gamma: ``[B, H]`` sharpening exponent, >= 1.

    Returns:
        ``[B, H, N]`` a distribution over the N locations.
    """
    log_w = torch.log(w.clamp_min(LOG_FLOOR))
    return torch.softmax(gamma.unsqueeze(-1) * log_w, dim=-1)


def address(
    memory: torch.Tensor,
    w_prev: torch.Tensor,
    keys: torch.Tensor,
    beta: torch.Tensor,
    gate: torch.Tensor,
    shift_weights: torch.Tensor,
    gamma: torch.Tensor,
) -> torch.Tensor:
    """The whole addressing mechanism (Figure 2): eq. 5-6, 7, 8 and 9 in turn.

    Args:
        memory: ``[B, N, M]``; w_prev: ``[B, H, N]``; keys: ``[B, H, M]``; beta, gate,
        gamma: ``[B, H]``; shift_weights: ``[B, H, S]``.

    Returns:
        ``[B, H, N]`` the heads' new weightings.
    """
    w = content_weights(memory, keys, beta)
    w = interpolate(w, w_prev, gate)
    w = shift(w, shift_weights)
    return sharpen(w, gamma)


def read(memory: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Reading, eq. 2: r = sum_i w[i] M[i].

    Args:
        memory: ``[B, N, M]``.
        w: ``[B, H, N]`` read weightings.

    Returns:
        ``[B, H, M]`` one read vector per head.
    """
    return torch.bmm(w, memory)


def write(memory: torch.Tensor, w: torch.Tensor, erase: torch.Tensor, add: torch.Tensor) -> torch.Tensor:
    """Writing: erase (eq. 3) then add (eq. 4), for any number of write heads.

    With several heads the erasures multiply and the additions sum, so the order of the heads
    does not matter (section 3.2 of the paper)::

        M~[i] = M[i] * prod_h (1 - w_h[i] e_h)        (eq. 3)
        M'[i] = M~[i] + sum_h w_h[i] a_h              (eq. 4)

    Args:
        memory: ``[B, N, M]``.
        w: ``[B, H, N]`` write weightings.
        erase: ``[B, H, M]`` in [0, 1].
        add: ``[B, H, M]``.

    Returns:
        ``[B, N, M]`` the new memory.
    """
    if w.shape[1] == 1:  # one head: skip the product over heads
        keep = 1.0 - w.transpose(1, 2) * erase  # [B, N, 1] * [B, 1, M]
    else:
        keep = torch.prod(1.0 - w.unsqueeze(-1) * erase.unsqueeze(2), dim=1)  # [B, N, M]
    return memory * keep + torch.bmm(w.transpose(1, 2), add)
