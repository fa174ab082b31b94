"""The fused link operator against the reference equations (dnc_addressing.link, .directional)."""

import pytest
import torch

from ntmkit.models import dnc_addressing as A
from ntmkit.models.dnc import DNC
from ntmkit.models.dnc_link import link_directional
from ntmkit.models.ntm import NTM


def reference(link_prev, w, p, r):
    link = A.link(link_prev, w, p)
    return (link, *A.directional(link, r))


def inputs(b=3, n=7, r=2, steps=4, seed=0):
    g = torch.Generator().manual_seed(seed)

    def dist(*shape):
        return torch.softmax(3 * torch.randn(*shape, generator=g, dtype=torch.float64), -1).requires_grad_()

    link0 = (torch.rand(b, n, n, generator=g, dtype=torch.float64) / n).requires_grad_()
    return link0, dist(steps, b, n), dist(steps, b, n), dist(steps, b, r, n)


def chain_cost(op, link0, ws, ps, rs, use_link=True):
    """A cost of several chained steps (each step's link is the next one's link_prev), weighting
    f, b and (optionally) the final link by fixed random tensors."""
    g = torch.Generator().manual_seed(1)
    link, cost = link0, 0.0
    for t in range(ws.shape[0]):
        link, f, b = op(link, ws[t], ps[t], rs[t])
        cost = cost + (f * torch.randn(f.shape, generator=g, dtype=f.dtype)).sum()
        cost = cost + (b * torch.randn(b.shape, generator=g, dtype=b.dtype)).sum()
    if use_link:
        cost = cost + (link * torch.randn(link.shape, generator=g, dtype=link.dtype)).sum()
    return cost


def test_values_equal_the_link_and_directional_equations():
    link0, ws, ps, rs = inputs()
    for got, want in zip(link_directional(link0, ws[0], ps[0], rs[0]), reference(link0, ws[0], ps[0], rs[0])):
        assert got.shape == want.shape
        assert torch.allclose(got, want, atol=1e-14)
    assert (link_directional(link0, ws[0], ps[0], rs[0])[0].diagonal(dim1=-2, dim2=-1) == 0).all()


@pytest.mark.parametrize("use_link", [True, False])  # False: no gradient reaches the last link
def test_hand_derived_backward_equals_autograd_of_the_equations(use_link):
    args = inputs()
    want = torch.autograd.grad(chain_cost(reference, *args, use_link=use_link), args)
    got = torch.autograd.grad(chain_cost(link_directional, *args, use_link=use_link), args)
    for name, g, w in zip(("link_prev", "w", "precedence", "read_weights"), got, want):
        assert torch.allclose(g, w, atol=1e-12), name


def test_gradcheck():
    link0, ws, ps, rs = inputs(b=2, n=5, r=2, steps=1)
    assert torch.autograd.gradcheck(link_directional, (link0, ws[0], ps[0], rs[0]), eps=1e-6, atol=1e-6)


def test_dnc_with_and_without_the_fused_operator_agree_in_outputs_and_gradients():
    torch.manual_seed(0)
    dnc = DNC(9, 8, read_heads=2, deallocation=True).double()
    x = torch.rand(3, 12, 9, dtype=torch.float64)
    results = []
    for fused in (False, True):
        dnc.cell.fused_link = fused
        dnc.zero_grad()
        y, state = dnc(x)
        (y.pow(2).sum() + state.link.sum()).backward()
        results.append((y.detach(), [p.grad.clone() for p in dnc.parameters()]))
    (y0, g0), (y1, g1) = results
    assert torch.allclose(y0, y1, atol=1e-13)
    assert all(torch.allclose(a, b, atol=1e-12) for a, b in zip(g0, g1))


def test_the_reference_switch_routes_the_step_through_the_reference_functions(monkeypatch):
    """``use_reference_equations`` (what ``ntm bench`` times as its eager baseline) must leave the
    hand-written operator out of the step, and switching back must bring it in again."""
    from ntmkit.models import dnc as dnc_module

    calls = []

    def counting(*args):
        calls.append(1)
        return link_directional(*args)

    monkeypatch.setattr(dnc_module, "link_directional", counting)
    dnc = DNC(9, 8)
    assert dnc.cell.has_fused_ops
    x = torch.rand(2, 4, 9)
    dnc.cell.use_reference_equations()
    dnc(x)
    assert calls == []
    dnc.cell.use_reference_equations(False)
    dnc(x)
    assert len(calls) == 4


def test_the_ntm_has_no_hand_written_operators_to_switch():
    assert not NTM(9, 8).cell.has_fused_ops
