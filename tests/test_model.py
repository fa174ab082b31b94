"""The machine: gradients, per-sample lengths, traces, initial state and input checks."""

import pytest
import torch

from ntmkit import NTM, ConfigError, LSTMBaseline, NTMCell, NTMConfig
from ntmkit.models import ntm_addressing as addressing
from ntmkit.models.ntm_heads import head_activations, head_param_sizes


def small(**kw):
    opts = dict(controller_size=6, controller_layers=1, memory_locations=5, memory_vector_size=3)
    opts.update(kw)
    return NTM(4, 3, **opts)


@pytest.mark.parametrize("controller", ["feedforward", "lstm"])
def test_gradcheck_cell_float64(controller):
    torch.manual_seed(0)
    cell = NTMCell(
        NTMConfig(
            3,
            2,
            controller=controller,
            controller_size=4,
            controller_layers=1,
            memory_locations=4,
            memory_vector_size=3,
            read_heads=2,
            write_heads=1,
            memory_init="random",
            learn_r_bias=True,
            learn_w_bias=True,
            learn_m_bias=True,
        )
    ).double()
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    state = cell.initial_state(2)
    memory = state.memory.clone().requires_grad_(True)

    def run(x, memory):
        _y, s = cell(x, state._replace(memory=memory))
        y2, s2 = cell(x * 0.5, s)  # two steps: gradients flow through the recurrent state
        return y2, s2.memory, s2.read_weights, s2.write_weights

    assert torch.autograd.gradcheck(run, (x, memory), eps=1e-6, atol=1e-5)


def test_output_shapes_and_state():
    model = NTM(9, 8, read_heads=2, write_heads=3)
    y, state = model(torch.rand(4, 7, 9))
    assert y.shape == (4, 7, 8)
    assert state.memory.shape == (4, 128, 20)
    assert state.read_weights.shape == (4, 2, 128) and state.write_weights.shape == (4, 3, 128)
    assert state.read_vectors.shape == (4, 2, 20)


def test_forward_equals_looping_the_cell():
    torch.manual_seed(1)
    model = small(controller="lstm", controller_layers=2)
    x = torch.rand(3, 6, 4)
    y, state = model(x)
    s, ys = None, []
    for i in range(6):
        yi, s = model.cell(x[:, i], s)
        ys.append(yi)
    assert torch.allclose(torch.stack(ys, 1), y)
    assert torch.allclose(s.memory, state.memory)


def test_continuing_from_a_state_equals_one_long_run():
    torch.manual_seed(2)
    model = small()
    x = torch.rand(2, 8, 4)
    y, _ = model(x)
    y1, s = model(x[:, :5])
    y2, _ = model(x[:, 5:], s)
    assert torch.allclose(torch.cat([y1, y2], 1), y, atol=1e-6)


def test_lengths_freeze_state_and_zero_outputs_past_the_end():
    torch.manual_seed(3)
    model = small(controller="lstm")
    x = torch.rand(3, 6, 4)
    lengths = torch.tensor([2, 6, 0])
    y, state = model(x, lengths=lengths)
    y_short, state_short = model(x[:1, :2])
    assert torch.allclose(y[0, :2], y_short[0])
    assert torch.all(y[0, 2:] == 0) and torch.all(y[2] == 0)
    assert torch.allclose(state.memory[0], state_short.memory[0])
    assert torch.allclose(state.controller[0][0], state_short.controller[0][0])
    init = model.initial_state(3)
    assert torch.allclose(state.memory[2], init.memory[2])


def test_trace_matches_state_and_is_one_implementation():
    torch.manual_seed(4)
    model = small(read_heads=2)
    x = torch.rand(2, 5, 4)
    y, state, trace = model(x, return_trace=True)
    y_plain, _ = model(x)
    assert torch.equal(y, y_plain)
    assert trace["read_weights"].shape == (2, 5, 2, 5)
    assert trace["memory"].shape == (2, 5, 5, 3)
    assert torch.equal(trace["memory"][:, -1], state.memory)
    assert torch.allclose(trace["read_weights"].sum(-1), torch.ones(2, 5, 2), atol=1e-5)


def test_read_and_write_heads_keep_their_own_weighting():
    torch.manual_seed(5)
    model = small()
    _, state = model(torch.rand(1, 4, 4))
    assert not torch.allclose(state.read_weights, state.write_weights)


def test_initial_state_default_constant_memory_and_focused_or_random_weightings():
    for learned in (True, False):
        model = NTM(9, 8, learn_r_bias=learned, learn_w_bias=learned, learn_m_bias=learned)
        s = model.initial_state(2)
        assert torch.all(s.memory == 1e-6)
        assert torch.allclose(s.read_weights.sum(-1), torch.ones(2, 1))
        # non-uniform: breaks the symmetry of constant memory (focused on row 0 by default)
        assert int(s.write_weights[0, 0].argmax()) == 0 and s.read_weights.std() > 0
        rand = NTM(9, 8, init_weighting="random").initial_state(1).read_weights
        assert rand.std() > 0 and float(rand.max()) < 0.5
        assert any(n.startswith("cell.init_") for n, _ in model.named_parameters()) == learned
        assert any(n.startswith("cell.init_") for n, _ in model.named_buffers()) != learned


def test_learned_biases_are_parameters_and_weightings_stay_distributions():
    model = NTM(9, 8, learn_r_bias=True, learn_w_bias=True, learn_m_bias=True)
    names = {n for n, _ in model.named_parameters()}
    assert {"cell.init_memory", "cell.init_read_logits", "cell.init_write_logits", "cell.init_reads"} <= names
    with torch.no_grad():
        model.cell.init_write_logits.mul_(100).add_(-50)
    w = model.initial_state(1).write_weights
    assert (w >= 0).all() and torch.allclose(w.sum(-1), torch.ones(1, 1))


def test_head_activations_ranges():
    m, r = 4, 1
    raw = torch.randn(3, 2, sum(head_param_sizes(m, r, True))) * 50
    key, beta, gate, shift, gamma, erase, add = head_activations(raw, m, r, True)
    assert key.abs().max() <= 1 and (beta >= 0).all() and ((gate >= 0) & (gate <= 1)).all()
    assert torch.allclose(shift.sum(-1), torch.ones(3, 2)) and (gamma >= 1).all()
    assert ((erase >= 0) & (erase <= 1)).all() and add.abs().max() <= 1


def test_linear_head_vectors_pass_key_and_add_through_unbounded():
    m, r = 4, 1
    raw = torch.randn(3, 2, sum(head_param_sizes(m, r, True))) * 50
    parts = torch.split(raw, head_param_sizes(m, r, True), dim=-1)
    key, *middle, erase, add = head_activations(raw, m, r, True, vectors="linear")
    assert torch.equal(key, parts[0]) and torch.equal(add, parts[6]) and key.abs().max() > 1
    bounded = head_activations(raw, m, r, True)  # the other parameters do not depend on it
    for a, b in zip([*middle, erase], [*bounded[1:5], bounded[5]], strict=True):
        assert torch.equal(a, b)


def test_linear_head_vectors_reach_the_heads_and_are_checked():
    torch.manual_seed(0)
    model = NTM(5, 4, controller_size=8, memory_locations=6, memory_vector_size=3, head_vectors="linear")
    with torch.no_grad():
        model.cell.heads.projection.bias.fill_(5.0)  # raw add = 5 + noise: tanh would cap it near 1
        model.cell.heads.projection.weight.zero_()
    *_, trace = model(torch.zeros(1, 2, 5), return_trace=True)
    assert trace["add"].min().item() == pytest.approx(5.0)
    with pytest.raises(ConfigError, match="head_vectors must be one of tanh, linear"):
        NTM(5, 4, head_vectors="relu")


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.rand(2, 9), "rank 2"),
        (torch.rand(2, 3, 7), "last dimension 7 != input_size 9"),
        (torch.ones(2, 3, 9, dtype=torch.long), "floating-point"),
    ],
)
def test_bad_input_names_the_expected_shape(bad, message):
    model = NTM(9, 8)
    with pytest.raises((ValueError, TypeError), match=message) as e:
        model(bad)
    assert "[batch, time, 9]" in str(e.value) or "floating" in str(e.value)


def test_bad_lengths():
    model = small()
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, 3\]"):
        model(torch.rand(2, 3, 4), lengths=torch.tensor([1, 4]))
    with pytest.raises(ValueError, match="one length per sample"):
        model(torch.rand(2, 3, 4), lengths=torch.tensor([1]))


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(controller_size=0), "controller_size must be a positive integer"),
        (dict(memory_locations=-3), "memory_locations must be a positive integer"),
        (dict(controller="gru"), "controller must be one of"),
        (dict(shift_range=-1), "shift_range"),
        (dict(memory_locations=2, shift_range=1), "wider than the memory"),
    ],
)
def test_bad_config(kw, message):
    with pytest.raises(ConfigError, match=message):
        NTM(9, 8, **kw)


def test_lstm_baseline_interface():
    model = LSTMBaseline(9, 8, hidden_size=16, num_layers=2)
    y, _ = model(torch.rand(3, 5, 9), lengths=torch.tensor([5, 2, 1]))
    assert y.shape == (3, 5, 8) and torch.all(y[1, 2:] == 0)


def test_input_on_another_device_is_named():
    model = small()
    x = torch.rand(1, 2, 4, device="meta")
    with pytest.raises(ValueError, match="input is on meta but the model is on cpu"):
        model(x)


def test_resize_memory_keeps_the_old_rows_and_the_initial_weighting():
    torch.manual_seed(6)
    model = small(learn_m_bias=False)
    before = model.initial_state(2)
    model.resize_memory(9)
    after = model.initial_state(2)
    assert model.config.memory_locations == 9 and after.memory.shape == (2, 9, 3)
    assert torch.equal(after.memory[:, :5], before.memory) and torch.all(after.memory[:, 5:] == 1e-6)
    assert torch.allclose(after.write_weights[..., :5], before.write_weights, atol=1e-12)
    assert after.write_weights[..., 5:].max() < 1e-20
    y, _ = model(torch.rand(2, 4, 4))
    assert torch.isfinite(y).all()
    with pytest.raises(ValueError, match="memory can only grow"):
        model.resize_memory(3)


def test_a_smaller_initial_state_cuts_the_memory_and_renormalises_the_weightings():
    torch.manual_seed(0)
    ntm = small(memory_locations=8)
    cell = ntm.cell
    state = ntm.initial_state(2, locations=5)
    assert state.memory.shape == (2, 5, 3) and state.read_weights.shape == (2, 1, 5)
    assert torch.equal(state.memory[0], cell.init_memory[:5])
    expected = torch.softmax(cell.init_write_logits[:, :5], dim=-1)
    assert torch.allclose(state.write_weights[1], expected)
    assert torch.allclose(state.read_weights.sum(-1), torch.ones(2, 1))
    # the full size is the ordinary initial state; a run can start from either
    assert torch.equal(ntm.initial_state(2, locations=8).memory, ntm.initial_state(2).memory)
    x = torch.rand(2, 4, 4)
    y, s = ntm(x, memory_locations=5)
    y_ref, _ = ntm(x, state=ntm.initial_state(2, locations=5))
    assert torch.equal(y, y_ref) and s.memory.shape == (2, 5, 3)


@pytest.mark.parametrize("locations, message", [(9, r"in \[1, 8\]"), (0, r"in \[1, 8\]"), (2, "shift window")])
def test_a_bad_initial_memory_size_is_named(locations, message):
    with pytest.raises(ValueError, match=message):
        small(memory_locations=8).initial_state(1, locations=locations)


def test_state_and_memory_locations_together_are_refused():
    ntm = small()
    with pytest.raises(ValueError, match="either state or memory_locations"):
        ntm(torch.rand(1, 2, 4), state=ntm.initial_state(1), memory_locations=3)


def test_focused_initial_weighting_and_gate_bias():
    ntm = small(
        memory_locations=6, init_weighting="focused", init_focus=5.0, gate_bias=-2.0, read_heads=2, write_heads=2
    )
    w = ntm.initial_state(1).write_weights[0]
    e5 = torch.exp(torch.tensor(5.0))
    assert torch.allclose(w[:, 0], (e5 / (e5 + 5)).expand(2)) and torch.allclose(w[:, 1], (1 / (e5 + 5)).expand(2))
    # in any memory size the heads start on the first row
    assert int(ntm.initial_state(1, locations=4).read_weights[0, 0].argmax()) == 0
    heads = ntm.cell.heads
    # zero controller output: each head's gate (eq. 7) is sigmoid(bias) = sigmoid(-2)
    raw = heads.projection(torch.zeros(1, 6))
    raw_w, raw_r = raw.split([2 * heads.write_size, 2 * heads.read_size], dim=-1)
    gate_w = head_activations(raw_w.view(1, 2, heads.write_size), 3, 1, write=True)[2]
    gate_r = head_activations(raw_r.view(1, 2, heads.read_size), 3, 1, write=False)[2]
    expected = torch.sigmoid(torch.tensor(-2.0))
    assert torch.allclose(gate_w, expected.expand(1, 2)) and torch.allclose(gate_r, expected.expand(1, 2))
    with pytest.raises(ConfigError, match="init_weighting"):
        small(init_weighting="peaked")


def test_shift_bias_starts_every_head_as_a_tape_moving_one_row_forward():
    ntm = small(memory_locations=6, read_heads=2, write_heads=1, shift_bias=3.0, gate_bias=-20.0)
    heads = ntm.cell.heads
    raw = heads.projection(torch.zeros(1, 6))  # zero controller output: the biases alone
    raw_w, raw_r = raw.split([heads.write_size, 2 * heads.read_size], dim=-1)
    shift_w = head_activations(raw_w.view(1, 1, heads.write_size), 3, 1, write=True)[3]
    shift_r = head_activations(raw_r.view(1, 2, heads.read_size), 3, 1, write=False)[3]
    e3 = torch.exp(torch.tensor(3.0))
    expected = torch.stack([1 / (e3 + 2), 1 / (e3 + 2), e3 / (e3 + 2)])  # shifts -1, 0, +1
    assert torch.allclose(shift_w, expected.expand(1, 1, 3)) and torch.allclose(shift_r, expected.expand(1, 2, 3))
    # the gate biases are where they were: a bias on the shift columns does not move them
    assert torch.allclose(raw_w[0, heads.gate_columns()[0]], torch.tensor(-20.0))
    wide = small(memory_locations=6, shift_range=2, shift_bias=3.0).cell.heads  # shifts -2 .. +2
    raw = wide.projection(torch.zeros(1, 6))[:, : wide.write_size]
    shift = head_activations(raw.view(1, 1, wide.write_size), 3, 2, write=True)[3]
    assert torch.allclose(shift[0, 0], torch.softmax(torch.tensor([0.0, 0.0, 0.0, 3.0, 0.0]), dim=0))
    with pytest.raises(ConfigError, match="shift_bias"):
        small(shift_bias=float("nan"))


def test_read_before_write_reads_the_memory_as_it_was_before_the_step():
    torch.manual_seed(0)
    paper = small(read_heads=2).cell.heads
    early = small(read_heads=2, read_before_write=True).cell.heads
    early.load_state_dict(paper.state_dict())
    h, memory = torch.randn(2, 6), torch.randn(2, 5, 3)
    read_w = torch.softmax(torch.randn(2, 2, 5), -1)
    write_w = torch.softmax(torch.randn(2, 1, 5), -1)
    after = paper(h, memory, read_w, write_w)
    before = early(h, memory, read_w, write_w)
    assert torch.allclose(after[0], before[0]) and torch.allclose(after[2], before[2])  # the same write
    assert not torch.allclose(after[0], memory)
    raw_r = paper.projection(h)[:, paper.write_size :].view(2, 2, paper.read_size)
    key, beta, gate, shift, gamma = head_activations(raw_r, 3, 1, write=False)
    # eq. 2 on the memory each read: M_t after the write (the paper's order), M_{t-1} before it
    for mem, (_, w, _, reads, _) in ((after[0], after), (memory, before)):
        expected_w = addressing.address(mem, read_w, key, beta, gate, shift, gamma)
        assert torch.allclose(w, expected_w)
        assert torch.allclose(reads, torch.einsum("brn,bnm->brm", expected_w, mem), atol=1e-6)
    assert not torch.allclose(after[3], before[3])


def test_lstm_baseline_state_is_taken_at_each_samples_length():
    torch.manual_seed(0)
    lstm = LSTMBaseline(4, 3, hidden_size=5, num_layers=2)
    x = torch.rand(3, 6, 4)
    lengths = torch.tensor([6, 2, 0])
    y, (h, c) = lstm(x, lengths=lengths)
    for i, n in enumerate(lengths.tolist()):
        if n == 0:
            assert torch.equal(h[:, i], torch.zeros(2, 5)) and torch.equal(y[i], torch.zeros(6, 3))
            continue
        y_i, (h_i, c_i) = lstm(x[i : i + 1, :n])  # the sample alone, cut at its length
        assert torch.allclose(h[:, i], h_i[:, 0], atol=1e-6) and torch.allclose(c[:, i], c_i[:, 0], atol=1e-6)
        assert torch.allclose(y[i, :n], y_i[0], atol=1e-6) and torch.equal(y[i, n:], torch.zeros(6 - n, 3))


def test_bound_gradients_scales_each_samples_gradient_to_the_bound_and_keeps_its_direction():
    from ntmkit.models.sequence import bound_gradients

    x = torch.zeros(3, 2, 2, requires_grad=True)
    upstream = torch.zeros(3, 2, 2)
    upstream[0, 0, 0], upstream[1, 0, 1], upstream[2, 1, 0] = 0.5, 2.0, -10.0  # per-sample norms 0.5, 2, 10
    (bound_gradients(x, 1.0) * upstream).sum().backward()
    assert torch.allclose(x.grad.flatten(1).norm(dim=1), torch.tensor([0.5, 1.0, 1.0]))
    assert x.grad[2, 1, 0] == -1.0 and x.grad[1, 0, 1] == 1.0 and x.grad[0, 0, 0] == 0.5


@pytest.mark.parametrize("model", ["ntm", "dnc", "ntm-compiled"])
def test_state_gradient_bound_changes_nothing_until_reached_and_cuts_the_flow_through_time_below_it(model):
    from ntmkit import DNC
    from ntmkit.engine import compiler_available

    if model == "ntm-compiled" and not compiler_available():
        pytest.skip("torch.compile needs a C++ compiler")
    torch.manual_seed(0)
    net = DNC(9, 8) if model == "dnc" else NTM(9, 8)
    if model == "ntm-compiled":
        net.compile_step()

    def grads(bound):
        """Parameter gradients, and the gradient reaching the first input, of a cost on the last output
        (the first input reaches it only through the state)."""
        net.zero_grad()
        net.bound_state_gradients(bound)
        x = torch.rand(4, 15, 9, generator=torch.Generator().manual_seed(1)).requires_grad_()
        (net(x)[0][:, -1].pow(2).sum() * 100).backward()
        return torch.cat([p.grad.flatten() for p in net.parameters()]), x.grad[:, 0]

    (free, free_x), (loose, loose_x), (_, tight_x) = grads(None), grads(1e6), grads(1e-9)
    assert torch.equal(free, loose) and torch.equal(free_x, loose_x)
    assert free_x.norm() > 1e-4 and tight_x.norm() < 1e-6 * free_x.norm()
    with pytest.raises(ValueError, match="bound must be > 0"):
        net.bound_state_gradients(0.0)


@pytest.mark.parametrize("kind", ["ntm", "dnc", "lstm"])
def test_an_empty_batch_gives_an_empty_output(kind):
    from ntmkit import DNC

    model = {
        "ntm": lambda: NTM(5, 3, controller_size=8, controller_layers=1, memory_locations=6, memory_vector_size=4),
        "dnc": lambda: DNC(5, 3),
        "lstm": lambda: LSTMBaseline(5, 3),
    }[kind]()
    for time in (0, 1, 3):
        y, _state = model(torch.zeros(0, time, 5))
        assert y.shape == (0, time, 3)


def test_an_lstm_controller_gets_the_same_layers_from_python_and_from_the_command_line():
    """One derived default: 3 feed-forward layers or 1 LSTM layer, whether the model is built in
    Python or from the command line's flags."""
    from ntmkit import DNC, NTM
    from ntmkit.options import build_parser, model_options
    from ntmkit.registry import model_kind

    for cls, kind in ((NTM, "ntm"), (DNC, "dnc")):
        for controller, layers in (("feedforward", 3), ("lstm", 1)):
            assert cls(9, 8, controller=controller).config.controller_layers == layers
            args = build_parser().parse_args(["train", "--model", kind, "--controller", controller])
            assert model_kind(kind).config(9, 8, model_options(args, kind))["controller_layers"] == layers
