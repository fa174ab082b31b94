"""The DNC's equations (Graves et al. 2016, Methods) against hand-computed values and against an
independent re-implementation written from the Methods section: plain Python loops over samples,
heads and locations in float64, one function per equation, nothing shared with the library.
"""

import math

import pytest
import torch

from ntmkit.models import dnc_addressing as A

# ---- the independent re-implementation: loops over plain floats -----------------------------


def ref_content(memory, key, strength, mask=None):
    """C(M, k, β)[i] = exp(β D(k, M[i])) / Σ_j exp(β D(k, M[j])), D the cosine similarity
    (masked: D(k ∘ m, M[i] ∘ m))."""
    width = len(key)
    m = mask if mask is not None else [1.0] * width
    k = [key[w] * m[w] for w in range(width)]
    scores = []
    for row in memory:
        r = [row[w] * m[w] for w in range(width)]
        dot = sum(k[w] * r[w] for w in range(width))
        nk = math.sqrt(sum(v * v for v in k) + A.NORM_EPS)
        nr = math.sqrt(sum(v * v for v in r) + A.NORM_EPS)
        scores.append(strength * dot / (nk * nr))
    top = max(scores)
    e = [math.exp(s - top) for s in scores]
    return [v / sum(e) for v in e]


def ref_retention(free_gates, read_weights):
    """ψ[i] = Π_r (1 - f_r w_r[i])."""
    n = len(read_weights[0])
    out = []
    for i in range(n):
        p = 1.0
        for f, w in zip(free_gates, read_weights):
            p *= 1.0 - f * w[i]
        out.append(p)
    return out


def ref_usage(u, w, psi):
    """u_t[i] = (u[i] + w[i] - u[i] w[i]) ψ[i]."""
    return [(u[i] + w[i] - u[i] * w[i]) * psi[i] for i in range(len(u))]


def ref_allocation(u):
    """a[φ_j] = (1 - u[φ_j]) Π_{i<j} u[φ_i], φ sorted by ascending usage (ties: lower index first)."""
    u = [A.USAGE_EPS + (1 - A.USAGE_EPS) * v for v in u]
    order = sorted(range(len(u)), key=lambda i: (u[i], i))
    a = [0.0] * len(u)
    prod = 1.0
    for j in order:
        a[j] = (1.0 - u[j]) * prod
        prod *= u[j]
    return a


def ref_write_weighting(a, c, ga, gw):
    """w^w[i] = g^w (g^a a[i] + (1 - g^a) c[i])."""
    return [gw * (ga * a[i] + (1 - ga) * c[i]) for i in range(len(a))]


def ref_write(memory, w, erase, values, psi=None):
    """M[i][j] (1 - w[i] e[j]) (ψ[i] with de-allocation) + w[i] v[j]."""
    out = []
    for i, row in enumerate(memory):
        keep = psi[i] if psi is not None else 1.0
        out.append([row[j] * (1 - w[i] * erase[j]) * keep + w[i] * values[j] for j in range(len(row))])
    return out


def ref_precedence(p, w):
    """p_t[i] = (1 - Σ_j w[j]) p[i] + w[i]."""
    s = sum(w)
    return [(1 - s) * p[i] + w[i] for i in range(len(p))]


def ref_link(link, w, p):
    """L_t[i][j] = (1 - w[i] - w[j]) L[i][j] + w[i] p[j], and 0 on the diagonal."""
    n = len(w)
    return [[0.0 if i == j else (1 - w[i] - w[j]) * link[i][j] + w[i] * p[j] for j in range(n)] for i in range(n)]


def ref_directional(link, r):
    """f[i] = Σ_j L[i][j] r[j]; b[i] = Σ_j L[j][i] r[j]."""
    n = len(r)
    f = [sum(link[i][j] * r[j] for j in range(n)) for i in range(n)]
    b = [sum(link[j][i] * r[j] for j in range(n)) for i in range(n)]
    return f, b


def ref_sharpen(d, s):
    """S(d, s)[i] = d[i]^s / Σ_j d[j]^s."""
    powered = [max(v, A.LOG_FLOOR) ** s for v in d]
    return [v / sum(powered) for v in powered]


def ref_read_weighting(b, c, f, pi):
    """w^r[i] = π[0] b[i] + π[1] c[i] + π[2] f[i]."""
    return [pi[0] * b[i] + pi[1] * c[i] + pi[2] * f[i] for i in range(len(b))]


def ref_read(memory, w):
    """r[j] = Σ_i M[i][j] w[i]."""
    return [sum(memory[i][j] * w[i] for i in range(len(w))) for j in range(len(memory[0]))]


# ---- helpers --------------------------------------------------------------------------------

B, R, N, W = 3, 2, 7, 5


def rand(*shape, lo=0.0, hi=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=torch.float64)


def distribution(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


def close(a, b):
    a, b = (torch.as_tensor(v, dtype=torch.float64) for v in (a, b))
    return torch.allclose(a, b, atol=1e-6, rtol=0)


# ---- hand-computed values -------------------------------------------------------------------


def test_allocation_by_hand_gives_the_least_used_location_first():
    a = A.allocation(torch.tensor([[0.5, 0.2, 1.0]]))
    # sorted usages 0.2 (loc 1), 0.5 (loc 0), 1.0 (loc 2): a = 0.8, 0.5 * 0.2, 0 * 0.2 * 0.5
    assert a[0].tolist() == pytest.approx([0.1, 0.8, 0.0], abs=1e-5)


def test_link_by_hand_records_that_location_0_was_written_after_location_1():
    # location 1 was written last (p = [0, 1]); now location 0 is written
    link = A.link(torch.zeros(1, 2, 2), torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]))
    assert link[0].tolist() == [[0.0, 1.0], [0.0, 0.0]]
    forward, backward = A.directional(link, torch.tensor([[[0.0, 1.0]]]))  # reading location 1
    assert forward[0, 0].tolist() == [1.0, 0.0]  # forward: what was written after it
    forward, backward = A.directional(link, torch.tensor([[[1.0, 0.0]]]))  # reading location 0
    assert backward[0, 0].tolist() == [0.0, 1.0]  # backward: what was written before it


def test_retention_usage_and_precedence_by_hand():
    psi = A.retention(torch.tensor([[1.0, 0.5]]), torch.tensor([[[0.5, 0.0], [0.0, 1.0]]]))
    assert psi[0].tolist() == pytest.approx([0.5, 0.5])  # (1 - 0.5)(1 - 0); (1 - 0)(1 - 0.5)
    u = A.usage(torch.tensor([[0.5, 0.0]]), torch.tensor([[0.5, 1.0]]), psi)
    assert u[0].tolist() == pytest.approx([0.375, 0.5])  # (0.5 + 0.5 - 0.25) 0.5; (0 + 1 - 0) 0.5
    p = A.precedence(torch.tensor([[0.2, 0.8]]), torch.tensor([[0.5, 0.25]]))
    assert p[0].tolist() == pytest.approx([0.55, 0.45])  # 0.25 * 0.2 + 0.5; 0.25 * 0.8 + 0.25


def test_content_weights_of_a_zero_memory_are_uniform_and_have_finite_gradients():
    memory = torch.zeros(1, 4, 3, requires_grad=True)
    keys = torch.randn(1, 2, 3, requires_grad=True)
    w = A.content_weights(memory, keys, torch.full((1, 2), 5.0))
    assert torch.allclose(w, torch.full_like(w, 0.25))
    (w * torch.randn_like(w)).sum().backward()
    assert torch.isfinite(memory.grad).all() and torch.isfinite(keys.grad).all()


def test_masked_lookup_ignores_the_masked_out_columns():
    memory = torch.tensor([[[1.0, 0.0, 9.0], [0.0, 1.0, -9.0]]])
    key = torch.tensor([[[1.0, 0.0, -9.0]]])  # matches row 0 on columns 0-1, row 1 on column 2
    mask = torch.tensor([[[1.0, 1.0, 0.0]]])
    assert A.content_weights(memory, key, torch.tensor([[50.0]]), mask)[0, 0].argmax() == 0
    assert A.content_weights(memory, key, torch.tensor([[50.0]]))[0, 0].argmax() == 1


def test_deallocation_erases_the_freed_rows():
    memory = torch.ones(1, 3, 2)
    psi = torch.tensor([[1.0, 0.0, 0.5]])
    out = A.write(memory, torch.zeros(1, 3), torch.zeros(1, 2), torch.zeros(1, 2), psi)
    assert out[0].tolist() == [[1.0, 1.0], [0.0, 0.0], [0.5, 0.5]]
    assert torch.equal(A.write(memory, torch.zeros(1, 3), torch.zeros(1, 2), torch.zeros(1, 2)), memory)


# ---- every equation against the re-implementation, on random inputs (float64, 1e-6) --------


@pytest.mark.parametrize("masked", [False, True])
def test_content_weighting_equals_the_methods_section(masked):
    memory, keys = rand(B, N, W, lo=-1, seed=1), rand(B, R, W, lo=-1, seed=2)
    strengths, mask = rand(B, R, lo=1, hi=10, seed=3), rand(B, R, W, seed=4)
    got = A.content_weights(memory, keys, strengths, mask if masked else None)
    for b in range(B):
        for r in range(R):
            ref = ref_content(memory[b].tolist(), keys[b, r].tolist(), float(strengths[b, r]),
                              mask[b, r].tolist() if masked else None)  # fmt: skip
            assert close(got[b, r], ref)


def test_retention_and_usage_equal_the_methods_section():
    f, rw = rand(B, R, seed=5), distribution(B, R, N, seed=6)
    u, ww = rand(B, N, seed=7), distribution(B, N, seed=8) * 0.9
    psi = A.retention(f, rw)
    new_u = A.usage(u, ww, psi)
    for b in range(B):
        ref_psi = ref_retention(f[b].tolist(), rw[b].tolist())
        assert close(psi[b], ref_psi)
        assert close(new_u[b], ref_usage(u[b].tolist(), ww[b].tolist(), ref_psi))


@pytest.mark.parametrize("seed", range(4))
def test_allocation_equals_the_methods_section(seed):
    u = rand(B, N, seed=seed)
    u[0, 2] = u[0, 5]  # a tie: the lower index is allocated first
    u[1, 0] = 0.0  # an unused location
    got = A.allocation(u)
    for b in range(B):
        assert close(got[b], ref_allocation(u[b].tolist()))


def test_write_weighting_and_write_equal_the_methods_section():
    a, c = rand(B, N, seed=9) / N, distribution(B, N, seed=10)
    ga, gw = rand(B, seed=11), rand(B, seed=12)
    memory, erase, values = rand(B, N, W, lo=-1, seed=13), rand(B, W, seed=14), rand(B, W, lo=-1, seed=15)
    psi = rand(B, N, seed=16)
    w = A.write_weighting(a, c, ga, gw)
    for dealloc in (False, True):
        got = A.write(memory, w, erase, values, psi if dealloc else None)
        for b in range(B):
            ref_w = ref_write_weighting(a[b].tolist(), c[b].tolist(), float(ga[b]), float(gw[b]))
            assert close(w[b], ref_w)
            ref_m = ref_write(memory[b].tolist(), ref_w, erase[b].tolist(), values[b].tolist(),
                              psi[b].tolist() if dealloc else None)  # fmt: skip
            assert close(got[b], ref_m)


def test_precedence_link_and_directional_weightings_equal_the_methods_section():
    link_prev = rand(B, N, N, seed=17) / N
    w, p = distribution(B, N, seed=18) * 0.8, distribution(B, N, seed=19) * 0.7
    rw = distribution(B, R, N, seed=20)
    link = A.link(link_prev, w, p)
    forward, backward = A.directional(link, rw)
    prec = A.precedence(p, w)
    for b in range(B):
        ref_l = ref_link(link_prev[b].tolist(), w[b].tolist(), p[b].tolist())
        assert close(link[b], ref_l)
        assert close(prec[b], ref_precedence(p[b].tolist(), w[b].tolist()))
        for r in range(R):
            f, bw = ref_directional(ref_l, rw[b, r].tolist())
            assert close(forward[b, r], f) and close(backward[b, r], bw)
    assert link.diagonal(dim1=1, dim2=2).abs().max() == 0


def test_sharpened_links_read_weighting_and_read_equal_the_methods_section():
    d, s = rand(B, R, N, seed=21) / N, rand(B, R, lo=1, hi=4, seed=22)
    bw, c, f = rand(B, R, N, seed=23) / N, distribution(B, R, N, seed=24), rand(B, R, N, seed=25) / N
    pi, memory = distribution(B, R, 3, seed=26), rand(B, N, W, lo=-1, seed=27)
    sharp = A.sharpen_links(d, s)
    rw = A.read_weighting(bw, c, f, pi)
    reads = A.read(memory, rw)
    for b in range(B):
        for r in range(R):
            assert close(sharp[b, r], ref_sharpen(d[b, r].tolist(), float(s[b, r])))
            ref_w = ref_read_weighting(bw[b, r].tolist(), c[b, r].tolist(), f[b, r].tolist(), pi[b, r].tolist())
            assert close(rw[b, r], ref_w)
            assert close(reads[b, r], ref_read(memory[b].tolist(), ref_w))


# ---- numerics -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [16, 128, 1024])
def test_allocation_and_link_stay_finite_with_full_or_empty_memory_in_float32(n):
    for u0 in (torch.zeros(2, n), torch.ones(2, n), torch.rand(2, n)):
        u = u0.clone().requires_grad_(True)
        a = A.allocation(u)
        assert torch.isfinite(a).all() and (a >= 0).all() and a.sum(-1).max() <= 1 + 1e-5
        a.pow(2).sum().backward()
        assert torch.isfinite(u.grad).all()
    w = torch.softmax(torch.randn(2, n) * 5, -1)
    link = A.link(torch.rand(2, n, n) / n, w, torch.softmax(torch.randn(2, n), -1))
    f, b = A.directional(link, torch.softmax(torch.randn(2, 3, n), -1))
    assert torch.isfinite(link).all() and torch.isfinite(f).all() and torch.isfinite(b).all()
    sharp = A.sharpen_links(torch.zeros(2, 3, n), torch.full((2, 3), 5.0))  # all-zero: uniform, not NaN
    assert torch.allclose(sharp, torch.full_like(sharp, 1 / n))


def test_reference_is_independent_of_the_library():
    # a guard that the reference functions above are what they claim: a 2-location example by hand
    assert ref_allocation([0.0, 1.0])[0] == pytest.approx(1 - A.USAGE_EPS)
    assert ref_link([[0, 0], [0, 0]], [1.0, 0.0], [0.0, 1.0]) == [[0.0, 1.0], [0.0, 0.0]]
