"""The 15 Chomsky-hierarchy tasks: each generator pinned to hand-worked examples, every sample checked
against an independent computation from its decoded tokens, the batch layout and the accuracy."""

import math

import pytest
import torch

from ntmkit.tasks import TASKS
from ntmkit.tasks.chomsky import CHOMSKY_TASKS
from ntmkit.tasks.chomsky.context_free import (
    evaluate_brackets,
    manipulate_stack,
    random_expression,
    reverse_string,
)
from ntmkit.tasks.chomsky.context_sensitive import (
    binary_addition,
    binary_multiplication,
    compute_sqrt,
    odds_first,
)
from ntmkit.tasks.chomsky.regular import cycle_navigation, evaluate_flat, even_pairs, parity_check


def test_the_fifteen_tasks_are_registered_in_the_papers_order_and_levels():
    levels = [t.chomsky_level for t in CHOMSKY_TASKS.values()]
    assert len(CHOMSKY_TASKS) == 15 and levels == ["R"] * 4 + ["DCF"] * 4 + ["CS"] * 7
    assert all(TASKS[name] is cls for name, cls in CHOMSKY_TASKS.items())


def test_hand_worked_examples():
    assert even_pairs("abba") and not even_pairs("ab") and even_pairs("a") and even_pairs("abab"[:3])
    assert parity_check("abab") and not parity_check("b") and parity_check("")
    assert cycle_navigation([1, 1, 2, 0]) == 1 and cycle_navigation([2]) == 4 and cycle_navigation([1] * 5) == 0
    assert evaluate_flat(["1", "+", "2", "*", "3"]) == 2  # 1 + 6 = 7, * first
    assert evaluate_flat(["4", "-", "2", "-", "3"]) == 4  # -1 mod 5, left to right
    assert manipulate_stack("ab", ["pop", "push a", "push b"]) == "baa"  # top first
    assert manipulate_stack("a", ["pop", "pop"]) == ""  # a pop of an empty stack does nothing
    assert reverse_string("0110") == "0110" and reverse_string("0111") == "1110"
    assert evaluate_brackets(["(", "1", "+", "2", ")", "*", "3"]) == 4  # 9 mod 5
    assert evaluate_brackets(["1", "+", "2", "*", "3"]) == 2
    assert evaluate_brackets(["(", "x", "-", "3", ")"], x=1) == 3  # -2 mod 5
    assert odds_first("abcde") == "acebd"
    assert binary_addition([1, 1], [1]) == [0, 0, 1]  # 3 + 1 = 4, least significant bit first
    assert binary_addition([1, 1, 1], [1]) == [0, 0, 0, 1]  # the carry runs through: 7 + 1 = 8
    assert binary_addition([1, 0, 1], [1, 1, 1]) == [0, 0, 1, 1]  # 5 + 7 = 12
    assert binary_multiplication([1, 1], [1, 1]) == [1, 0, 0, 1]  # 3 * 3 = 9
    assert binary_multiplication([0, 1], [1, 0, 1]) == [0, 1, 0, 1, 0]  # 2 * 5 = 10
    assert compute_sqrt([1, 0, 0, 0, 1]) == [1, 0, 0]  # floor(sqrt(17)) = 4
    assert compute_sqrt([1, 1, 1, 1]) == [1, 1]  # floor(sqrt(15)) = 3


def _decode(task, ins):
    return [task.vocabulary[i] for i in ins]


def _reference(name: str, tokens: list[str]) -> list[str]:
    """The answer computed another way than the task computes it (Python's eval, int(..., 2), sorted)."""
    s = "".join(tokens)
    if name == "even_pairs":
        return ["even" if s[0] == s[-1] else "odd"]
    if name == "parity_check":
        return ["even" if s.count("b") % 2 == 0 else "odd"]
    if name == "cycle_navigation":
        return [str((tokens.count("+1") - tokens.count("-1")) % 5)]
    if name in ("modular_arithmetic", "modular_arithmetic_brackets"):
        return [str(eval(s) % 5)]
    if name == "solve_equation":
        left, right = s.split("=")
        solutions = [x for x in range(5) if eval(left.replace("x", str(x))) % 5 == int(right)]
        assert len(solutions) == 1  # + and - only: one solution modulo 5
        return [str(solutions[0])]
    if name == "stack_manipulation":
        stack: list[str] = []
        for t in tokens:
            if t in "ab":
                stack.append(t)
            elif t == "pop":
                stack = stack[:-1]
            else:
                stack.append(t[-1])
        return stack[::-1] + ["empty"] * (len(tokens) + 1 - len(stack))
    if name == "reverse_string":
        return tokens[::-1]
    if name == "duplicate_string":
        return tokens * 2
    if name == "missing_duplicate":
        half = len(tokens) // 2
        at = tokens.index("_")
        return [tokens[at + half] if at < half else tokens[at - half]]
    if name == "odds_first":
        return [tokens[i] for i in range(0, len(tokens), 2)] + [tokens[i] for i in range(1, len(tokens), 2)]
    if name in ("binary_addition", "binary_multiplication"):
        op = "+" if name == "binary_addition" else "*"
        x, y = s.split(op)
        value = int(x[::-1], 2) + int(y[::-1], 2) if op == "+" else int(x[::-1], 2) * int(y[::-1], 2)
        width = max(len(x), len(y)) + 1 if op == "+" else len(x) + len(y)
        return list(format(value, f"0{width}b")[::-1])
    if name == "compute_sqrt":
        return list(format(math.isqrt(int(s, 2)), f"0{math.ceil(len(s) / 2)}b"))
    if name == "bucket_sort":
        return sorted(tokens)
    raise AssertionError(name)


@pytest.mark.parametrize("name", list(CHOMSKY_TASKS))
def test_every_sample_is_right_by_an_independent_computation(name):
    task = CHOMSKY_TASKS[name]()
    g = torch.Generator().manual_seed(7)
    for n in [*range(1, 12), 40, 101]:
        for _ in range(20 if n < 40 else 3):
            ins, outs = task.sample(max(n, task.shortest), g)
            tokens = _decode(task, ins)
            assert [task.classes[o] for o in outs] == _reference(name, tokens), (n, tokens)
            assert len(outs) == task.output_length(max(n, task.shortest)) or name == "binary_addition"
            if name not in ("modular_arithmetic", "modular_arithmetic_brackets", "solve_equation", "missing_duplicate"):
                assert len(ins) == max(n, task.shortest)  # the level is the input length


def test_random_expressions_have_the_length_asked_for_and_balanced_brackets():
    g = torch.Generator().manual_seed(3)
    for n in range(1, 60, 2):
        tokens = random_expression(n, g, "+-*")
        assert len(tokens) == n
        depth = 0
        for t in tokens:
            depth += (t == "(") - (t == ")")
            assert depth >= 0
        assert depth == 0


@pytest.mark.parametrize("name", list(CHOMSKY_TASKS))
def test_the_batch_reads_the_input_then_answers_on_the_answer_channel(name):
    task = CHOMSKY_TASKS[name]()
    b = task.make_batch(16, torch.Generator().manual_seed(1), level=9)
    answer = task.input_size - 1
    assert b.inputs.shape[2] == len(task.vocabulary) + 1 and b.targets.shape[2] == len(task.classes)
    for k in range(16):
        steps = int(b.lengths[k])
        on = b.inputs[k, :steps].sum(-1)
        assert torch.equal(on, torch.ones(steps))  # one token or the answer channel at every step
        scored = b.mask[k].nonzero().flatten().tolist()
        asked = b.inputs[k, :, answer].nonzero().flatten().tolist()
        assert scored == asked == list(range(steps - len(scored), steps))  # the output comes last
        assert torch.equal(b.targets[k, scored].sum(-1), torch.ones(len(scored)))
        assert b.mask[k, steps:].sum() == 0 and b.inputs[k, steps:].sum() == 0
    assert task.memory_needed(9) >= int(b.lengths.max())


def test_accuracy_is_the_share_of_output_tokens_right_per_sequence():
    task = CHOMSKY_TASKS["reverse_string"]()
    b = task.make_batch(4, torch.Generator().manual_seed(0), level=5)
    logits = 10 * (2 * b.targets - 1)  # right everywhere
    m = task.score(logits, b)
    assert m["accuracy"] == 1.0 and m["cost"] == 0.0 and m["bit_errors"] == 0.0 and m["perfect"] == 1.0
    step = int(b.mask[0].nonzero()[0])
    logits[0, step] = -logits[0, step]  # one token of sample 0 wrong: its accuracy 4/5
    m = task.score(logits, b)
    assert m["accuracy"] == pytest.approx((4 / 5 + 3) / 4) and m["bit_errors"] == pytest.approx(1 / 4)
    assert m["perfect"] == pytest.approx(3 / 4) and m["target_bits"] == 5.0
    assert m["bits"] > 0 and task.loss(logits, b) > 0


def test_a_bad_range_is_one_clear_error():
    from ntmkit.errors import TaskError

    with pytest.raises(TaskError, match="--min_sequence"):
        CHOMSKY_TASKS["parity_check"](min_length=5, max_length=2)
