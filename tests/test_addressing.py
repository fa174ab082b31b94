"""Each addressing stage against values worked out by hand from its equation."""

import math

import pytest
import torch

from ntmkit.models import ntm_addressing as A


def t(x):
    return torch.tensor(x, dtype=torch.float64)


def test_cosine_similarity_by_hand():
    memory = t([[[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]]])  # [1, 3, 2]
    keys = t([[[1.0, 1.0]]])  # [1, 1, 2]
    # k.m / (|k||m|): 1/sqrt2, 2/(sqrt2*2), 7/(sqrt2*5)
    expected = t([[[1 / math.sqrt(2), 1 / math.sqrt(2), 7 / (5 * math.sqrt(2))]]])
    assert torch.allclose(A.cosine_similarity(memory, keys), expected, atol=1e-7)


def test_cosine_similarity_of_zero_row_is_finite():
    memory = torch.zeros(1, 4, 3)
    keys = torch.zeros(1, 2, 3)
    out = A.cosine_similarity(memory, keys)
    assert out.shape == (1, 2, 4) and torch.all(out == 0)


def test_content_weights_eq5():
    memory = t([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]])
    keys = t([[[1.0, 0.0]]])
    beta = t([[2.0]])
    sims = [1.0, 0.0, -1.0]
    z = sum(math.exp(2 * s) for s in sims)
    expected = t([[[math.exp(2 * s) / z for s in sims]]])
    assert torch.allclose(A.content_weights(memory, keys, beta), expected, atol=1e-12)


def test_content_weights_beta_zero_is_uniform():
    memory = torch.randn(2, 5, 3)
    w = A.content_weights(memory, torch.randn(2, 3, 3), torch.zeros(2, 3))
    assert torch.allclose(w, torch.full((2, 3, 5), 0.2))


def test_interpolate_eq7():
    wc, wp, g = t([[[1.0, 0.0, 0.0]]]), t([[[0.0, 0.5, 0.5]]]), t([[0.25]])
    assert torch.allclose(A.interpolate(wc, wp, g), t([[[0.25, 0.375, 0.375]]]))


def test_shift_eq8_moves_focus_forward_and_wraps():
    w = t([[[0.0, 0.0, 0.0, 1.0]]])  # focus on the last location
    plus_one = t([[[0.0, 0.0, 1.0]]])  # shifts -1, 0, +1
    assert torch.allclose(A.shift(w, plus_one), t([[[1.0, 0.0, 0.0, 0.0]]]))  # wraps to 0
    minus_one = t([[[1.0, 0.0, 0.0]]])
    assert torch.allclose(A.shift(w, minus_one), t([[[0.0, 0.0, 1.0, 0.0]]]))


@pytest.mark.parametrize("n, r", [(7, 2), (5, 2), (3, 1), (4, 0), (128, 3)])
def test_shift_eq8_against_the_sum(n, r):
    """Every window up to the whole memory (S = N), and no shift at all (S = 1)."""
    w = torch.rand(2, 3, n, dtype=torch.float64)
    s = torch.softmax(torch.randn(2, 3, 2 * r + 1, dtype=torch.float64), -1)  # shifts -r..r
    expected = torch.zeros_like(w)
    for i in range(n):
        for j in range(n):
            d = (i - j) % n  # shift that moves j to i
            offset = d if d <= r else d - n
            if -r <= offset <= r:
                expected[..., i] += w[..., j] * s[..., offset + r]
    assert torch.allclose(A.shift(w, s), expected)


def test_sharpen_eq9():
    w, gamma = t([[[0.5, 0.25, 0.25]]]), t([[2.0]])
    # 0.25, 0.0625, 0.0625 normalised
    assert torch.allclose(A.sharpen(w, gamma), t([[[0.25 / 0.375, 0.0625 / 0.375, 0.0625 / 0.375]]]))


def test_sharpen_does_not_underflow_in_float32():
    w = torch.tensor([[[1e-3, 2e-3, 1e-3]]])
    out = A.sharpen(w, torch.tensor([[50.0]]))
    # The literal power gives 0/0 here; log space keeps the focus on the largest weight.
    assert torch.isnan(w**50 / (w**50).sum(-1, keepdim=True)).any()
    assert torch.allclose(out, torch.tensor([[[0.0, 1.0, 0.0]]]), atol=1e-6)


def test_sharpen_with_zero_weights_is_finite_and_differentiable():
    w = torch.tensor([[[0.0, 0.7, 0.3]]], requires_grad=True)
    out = A.sharpen(w, torch.tensor([[3.0]]))
    out[..., 1].sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(w.grad).all()
    assert out[0, 0, 0] == 0


def test_read_eq2():
    memory = t([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    w = t([[[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]])  # two heads
    assert torch.allclose(A.read(memory, w), t([[[2.0, 3.0], [5.0, 6.0]]]))


def test_write_eq3_eq4_one_head():
    memory = t([[[1.0, 1.0], [2.0, 2.0]]])
    w = t([[[1.0, 0.0]]])
    erase, add = t([[[1.0, 0.5]]]), t([[[3.0, 4.0]]])
    # row 0: [1*(1-1), 1*(1-0.5)] + [3, 4] = [3, 4.5]; row 1 untouched
    assert torch.allclose(A.write(memory, w, erase, add), t([[[3.0, 4.5], [2.0, 2.0]]]))


def test_write_several_heads_multiplies_erasures_and_sums_adds():
    memory = t([[[4.0], [4.0]]])
    w = t([[[0.5, 0.0], [0.5, 1.0]]])  # two heads
    erase, add = t([[[0.5], [1.0]]]), t([[[1.0], [2.0]]])
    # row 0: 4 * (1 - .25) * (1 - .5) + .5*1 + .5*2 = 1.5 + 1.5 = 3; row 1: 4 * 1 * 0 + 2 = 2
    out = A.write(memory, w, erase, add)
    assert torch.allclose(out, t([[[3.0], [2.0]]]))
    # The order of heads does not matter.
    assert torch.allclose(A.write(memory, w.flip(1), erase.flip(1), add.flip(1)), out)


@pytest.mark.parametrize("seed", range(5))
def test_weightings_are_distributions_for_random_parameters(seed):
    g = torch.Generator().manual_seed(seed)
    b, h, n, m = 3, 4, 16, 6
    memory = torch.randn(b, n, m, generator=g) * 10 ** torch.randint(-6, 2, (1,), generator=g).item()
    w_prev = torch.softmax(torch.randn(b, h, n, generator=g) * 5, -1)
    w = A.address(
        memory,
        w_prev,
        torch.randn(b, h, m, generator=g),
        torch.rand(b, h, generator=g) * 100,
        torch.rand(b, h, generator=g),
        torch.softmax(torch.randn(b, h, 3, generator=g), -1),
        1 + torch.rand(b, h, generator=g) * 50,
    )
    assert w.shape == (b, h, n)
    assert (w >= 0).all() and torch.isfinite(w).all()
    assert torch.allclose(w.sum(-1), torch.ones(b, h), atol=1e-5)


def test_heads_are_independent():
    memory = torch.randn(2, 8, 4)
    args = [
        torch.softmax(torch.randn(2, 3, 8), -1),
        torch.randn(2, 3, 4),
        torch.rand(2, 3),
        torch.rand(2, 3),
        torch.softmax(torch.randn(2, 3, 3), -1),
        1 + torch.rand(2, 3),
    ]
    together = A.address(memory, *args)
    one = A.address(memory, *[a[:, 1:2] for a in args])
    assert torch.allclose(together[:, 1:2], one, atol=1e-6)
