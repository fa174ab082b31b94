"""The Stack-RNN's and Tape-RNN's memory updates and the Transformer's position schemes, each against
values worked by hand from its equation; then the models' interface (lengths, causality, gradients)."""

import math

import pytest
import torch

from ntmkit.models import StackRNN, StructuredRNNConfig, TapeRNN, Transformer, TransformerConfig
from ntmkit.models.stack_tape import roll_tape, stack_update, tape_update
from ntmkit.models.transformer import rotate, sincos_encoding
from ntmkit.registry import build_model, model_kind


def column(values):
    """A ``[1, D, 1]`` stack or tape holding ``values``."""
    return torch.tensor(values, dtype=torch.float64).view(1, -1, 1)


def test_stack_update_pushes_pops_and_mixes():
    s, v = column([1.0, 2.0, 0.0]), torch.tensor([[5.0]], dtype=torch.float64)
    one = {name: torch.eye(3, dtype=torch.float64)[k : k + 1] for k, name in enumerate(("push", "pop", "no-op"))}
    assert stack_update(s, one["push"], v).flatten().tolist() == [5.0, 1.0, 2.0]
    assert stack_update(s, one["pop"], v).flatten().tolist() == [2.0, 0.0, 0.0]  # zero enters at the bottom
    assert stack_update(s, one["no-op"], v).flatten().tolist() == [1.0, 2.0, 0.0]
    half = torch.tensor([[0.5, 0.5, 0.0]], dtype=torch.float64)
    assert stack_update(s, half, v).flatten().tolist() == [3.5, 0.5, 1.0]  # 0.5 [5, 1, 2] + 0.5 [2, 0, 0]


def test_roll_and_tape_update_move_the_head_and_write():
    t = column([0.0, 1.0, 2.0, 3.0, 4.0])
    assert roll_tape(t, torch.tensor([1])).flatten().tolist() == [1.0, 2.0, 3.0, 4.0, 0.0]  # head one right
    assert roll_tape(t, torch.tensor([-1])).flatten().tolist() == [4.0, 0.0, 1.0, 2.0, 3.0]  # one left
    v, jump = torch.tensor([[9.0]], dtype=torch.float64), torch.tensor([2])
    eye = torch.eye(5, dtype=torch.float64)
    expect = {
        0: [9.0, 1.0, 2.0, 3.0, 4.0],  # write, stay
        1: [4.0, 9.0, 1.0, 2.0, 3.0],  # write, then left
        2: [1.0, 2.0, 3.0, 4.0, 9.0],  # write, then right
        3: [3.0, 4.0, 0.0, 1.0, 2.0],  # jump 2 left, no write
        4: [2.0, 3.0, 4.0, 0.0, 1.0],  # jump 2 right
    }
    for k, values in expect.items():
        assert tape_update(t, eye[k : k + 1], v, jump).flatten().tolist() == values
    mix = torch.tensor([[0.25, 0.0, 0.75, 0.0, 0.0]], dtype=torch.float64)
    want = [0.25 * a + 0.75 * b for a, b in zip(expect[0], expect[2])]
    assert tape_update(t, mix, v, jump).flatten().tolist() == pytest.approx(want)


def test_the_tape_rnn_jumps_by_the_input_length():
    model = TapeRNN(StructuredRNNConfig(4, 2, hidden_size=8, cell_size=3))
    x = torch.zeros(2, 7, 4)
    x[0, 3:, 3] = 1.0  # sample 0 answers from step 3: its input is 3 long
    assert model._context(x).tolist() == [3, 7]  # sample 1 never answers: the whole sequence
    assert model.cells(7) == 15 and StackRNN(model.config).cells(7) == 8


def test_sincos_encoding_and_rotary_embedding_by_hand():
    pe = sincos_encoding(2, 4, dtype=torch.float64)
    assert pe[0].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert pe[1].tolist() == pytest.approx([math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)])  # 10000^(2/4)
    r = rotate(torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([1]))
    assert r.flatten().tolist() == pytest.approx([math.cos(1), math.sin(1)])
    q, k = torch.randn(1, 8, dtype=torch.float64), torch.randn(1, 8, dtype=torch.float64)

    def score(s, t):
        return float((rotate(q, torch.tensor([s])) * rotate(k, torch.tensor([t]))).sum())

    assert score(3, 1) == pytest.approx(score(7, 5)) and score(3, 1) != pytest.approx(score(3, 2))  # relative


MODELS = {
    "stack_rnn": {"hidden_size": 12, "cell_size": 3},
    "tape_rnn": {"hidden_size": 12, "cell_size": 3},
    "transformer": {"d_model": 16, "num_layers": 2, "num_heads": 2, "ff_size": 32, "position": "rope"},
}


@pytest.mark.parametrize("name", list(MODELS))
def test_lengths_mask_the_output_and_a_shorter_input_gives_the_same_outputs(name):
    torch.manual_seed(0)
    model = build_model(name, model_kind(name).config(5, 3, MODELS[name])).double()
    x = torch.randn(2, 9, 5, dtype=torch.float64)
    y, _ = model(x, lengths=torch.tensor([9, 4]))
    assert y.shape == (2, 9, 3) and torch.all(y[1, 4:] == 0)
    short, _ = model(x[1:, :4])
    assert torch.allclose(y[1, :4], short[0])  # steps past a sample's length change nothing before them
    if name == "transformer":
        return
    _, state = model(x, lengths=torch.tensor([9, 4]))
    _, alone = model(x[1:, :4])
    cells = alone.memory.shape[1]
    assert torch.allclose(state.memory[1, :cells], alone.memory[0]) or name == "tape_rnn"


@pytest.mark.parametrize("name", list(MODELS))
def test_causal_and_the_gradients_match_finite_differences(name):
    torch.manual_seed(1)
    model = build_model(name, model_kind(name).config(4, 2, MODELS[name])).double()
    x = torch.randn(1, 6, 4, dtype=torch.float64)
    y, _ = model(x)
    x2 = x.clone()
    x2[0, 4] += 1.0
    y2, _ = model(x2)
    assert torch.allclose(y[0, :4], y2[0, :4]) and not torch.allclose(y[0, 4:], y2[0, 4:])
    xg = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: model(t)[0].sum(), (xg,), eps=1e-6, atol=1e-5)


def test_bad_settings_are_one_clear_error():
    from ntmkit.errors import ConfigError

    with pytest.raises(ConfigError, match="controller must be"):
        StructuredRNNConfig(3, 2, controller="gru")
    with pytest.raises(ConfigError, match="heads of an even width"):
        TransformerConfig(3, 2, d_model=10, num_heads=4)
    with pytest.raises(ValueError, match="keeps no state"):
        Transformer(TransformerConfig(3, 2, d_model=8, num_layers=1, num_heads=2))(torch.zeros(1, 2, 3), state=1)
