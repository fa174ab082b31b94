"""The DNC module: one step in the order of the Methods section, the nn.LSTM-like interface shared
with the NTM, the three Csordás & Schmidhuber options, the compiled step and gradients."""

import pytest
import torch

from ntmkit import DNC, ConfigError, DNCConfig
from ntmkit.engine import compiler_available
from test_dnc_addressing import (
    ref_allocation,
    ref_content,
    ref_directional,
    ref_link,
    ref_precedence,
    ref_read,
    ref_read_weighting,
    ref_retention,
    ref_sharpen,
    ref_usage,
    ref_write,
    ref_write_weighting,
)


def small(**kw):
    options = dict(controller_size=16, memory_locations=6, memory_vector_size=4, read_heads=2)
    options.update(kw)
    return DNC(5, 3, **options).double()


def reference_step(cell, x, state):
    """One DNC step from the reference equations (one sample at a time), using the cell's own
    controller and interface layer for the learned parts."""
    c = cell.config
    b = x.shape[0]
    h, _ = cell.controller(torch.cat([x, state.read_vectors.reshape(b, -1)], -1), state.controller)
    xi = cell._interface(h)
    out = {"memory": [], "usage": [], "link": [], "precedence": [], "read_weights": [], "reads": []}
    for s in range(b):
        psi = ref_retention(xi["free_gates"][s].tolist(), state.read_weights[s].tolist())
        u = ref_usage(state.usage[s].tolist(), state.write_weights[s, 0].tolist(), psi)
        a = ref_allocation(u)
        wmask = xi["write_mask"][s, 0].tolist() if c.masked_lookup else None
        cw = ref_content(state.memory[s].tolist(), xi["write_key"][s, 0].tolist(), float(xi["write_strength"][s, 0]),
                         wmask)  # fmt: skip
        ww = ref_write_weighting(a, cw, float(xi["allocation_gate"][s]), float(xi["write_gate"][s]))
        m = ref_write(state.memory[s].tolist(), ww, xi["erase"][s].tolist(), xi["write_vector"][s].tolist(),
                      psi if c.deallocation else None)  # fmt: skip
        link = ref_link(state.link[s].tolist(), ww, state.precedence[s].tolist())
        prec = ref_precedence(state.precedence[s].tolist(), ww)
        rws, reads = [], []
        for r in range(c.read_heads):
            f, bw = ref_directional(link, state.read_weights[s, r].tolist())
            if c.link_sharpness:
                f = ref_sharpen(f, float(xi["forward_sharpness"][s, r]))
                bw = ref_sharpen(bw, float(xi["backward_sharpness"][s, r]))
            rmask = xi["read_masks"][s, r].tolist() if c.masked_lookup else None
            cr = ref_content(m, xi["read_keys"][s, r].tolist(), float(xi["read_strengths"][s, r]), rmask)
            rw = ref_read_weighting(bw, cr, f, xi["read_modes"][s, r].tolist())
            rws.append(rw)
            reads.append(ref_read(m, rw))
        for k, v in (("memory", m), ("usage", u), ("link", link), ("precedence", prec), ("read_weights", rws),
                     ("reads", reads)):  # fmt: skip
            out[k].append(v)
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in out.items()}


@pytest.mark.parametrize(
    "options",
    [{}, {"masked_lookup": True}, {"deallocation": True}, {"link_sharpness": True}, {"controller": "feedforward"}],
)
def test_three_steps_equal_the_methods_section(options):
    torch.manual_seed(0)
    dnc = small(**options)
    cell = dnc.cell
    state = cell.initial_state(2)
    x = torch.randn(3, 2, 5, dtype=torch.float64)
    for t in range(3):
        ref = reference_step(cell, x[t], state)
        _, state, _ = cell.step(x[t], state)
        for k in ("memory", "usage", "link", "precedence", "read_weights"):
            assert torch.allclose(getattr(state, k), ref[k], atol=1e-6), (t, k)
        assert torch.allclose(state.read_vectors, ref["reads"], atol=1e-6)
        assert torch.allclose(state.write_weights.sum(-1), state.write_weights.sum(-1).clamp(0, 1))


def test_interface_matches_nn_lstm_and_the_ntm():
    dnc = DNC(9, 8)
    x = torch.rand(4, 12, 9)
    y, state = dnc(x)
    assert y.shape == (4, 12, 8) and state.memory.shape == (4, 128, 20) and state.link.shape == (4, 128, 128)
    y2, _ = dnc(x[:, 6:], state=dnc(x[:, :6])[1])  # continuing from a state = running on
    assert torch.allclose(y2, y[:, 6:], atol=1e-5)
    lengths = torch.tensor([12, 5, 0, 7])
    yl, sl = dnc(x, lengths=lengths)
    assert yl[1, 5:].abs().max() == 0 and torch.allclose(yl[1, :5], dnc(x[1:2, :5])[0][0], atol=1e-5)
    assert torch.equal(sl.memory[2], torch.zeros(128, 20))  # length 0: the initial state
    _, _, trace = dnc(x[:1], return_trace=True)
    assert trace["link"].shape == (1, 12, 128, 128) and trace["read_modes"].shape == (1, 12, 1, 3)
    assert torch.allclose(trace["read_modes"].sum(-1), torch.ones(1, 12, 1))
    y_small, s_small = dnc(x, memory_locations=32)
    assert s_small.memory.shape == (4, 32, 20) and torch.isfinite(y_small).all()


def test_gradients_are_finite_and_reach_every_parameter():
    torch.manual_seed(1)
    dnc = DNC(9, 8, masked_lookup=True, deallocation=True, link_sharpness=True, read_heads=2)
    y, _ = dnc(torch.rand(3, 30, 9))
    y.pow(2).mean().backward()
    for name, p in dnc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_gradcheck_of_a_tiny_dnc_in_float64():
    torch.manual_seed(2)
    dnc = DNC(3, 2, controller_size=4, memory_locations=4, memory_vector_size=3, read_heads=2,
              masked_lookup=True, deallocation=True, link_sharpness=True).double()  # fmt: skip
    x = torch.randn(1, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: dnc(inp)[0], (x,), eps=1e-6, atol=1e-5)


@pytest.mark.skipif(not compiler_available(), reason="torch.compile needs a C++ compiler")
def test_compiled_step_equals_eager_in_outputs_and_gradients():
    torch.manual_seed(3)
    eager = DNC(9, 8, read_heads=2, deallocation=True)
    compiled = DNC(9, 8, read_heads=2, deallocation=True)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile_step(vary_memory=True)
    x = torch.rand(4, 10, 9)
    for rows in (32, 64):
        ye, _ = eager(x, memory_locations=rows)
        yc, _ = compiled(x, memory_locations=rows)
        assert torch.allclose(ye, yc, atol=1e-5)
        ye.sum().backward()
        yc.sum().backward()
        for (name, pe), pc in zip(eager.named_parameters(), compiled.parameters()):
            assert torch.allclose(pe.grad, pc.grad, atol=1e-4, rtol=1e-3), name
        eager.zero_grad()
        compiled.zero_grad()


def test_bad_settings_get_one_line_errors():
    with pytest.raises(ConfigError, match="one write head"):
        DNCConfig(9, 8, write_heads=2)
    with pytest.raises(ConfigError, match="controller"):
        DNCConfig(9, 8, controller="gru")
    with pytest.raises(ValueError, match="memory can only grow"):
        DNC(9, 8).resize_memory(64)
    with pytest.raises(ValueError, match=r"shape \[batch, time, 9\]"):
        DNC(9, 8)(torch.rand(2, 9))
    assert DNC(9, 8).resize_memory(256).initial_state(1).link.shape == (1, 256, 256)
