"""The deterministic context-free tasks (a stack machine solves each): stack manipulation, reverse
string, modular arithmetic with brackets, solve equation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from .base import BinaryStringTask, Sample, TokenTask, randint, uniform
from .regular import MODULUS

STACK_ACTIONS = ("pop", "push a", "push b")


def manipulate_stack(stack: str, actions: list[str]) -> str:
    """The stack ``stack`` (over {a, b}, its top the last letter) after ``actions`` ("pop", "push a",
    "push b"; a pop of an empty stack does nothing), read from the top down."""
    items = list(stack)
    for action in actions:
        if action == "pop":
            if items:
                items.pop()
        else:
            items.append(action[-1])
    return "".join(reversed(items))


def reverse_string(s: str) -> str:
    """``s`` backwards: ``reverse_string("0110")`` is ``"0110"``, of ``"0111"`` ``"1110"``."""
    return s[::-1]


def evaluate_brackets(tokens: list[str], x: int | None = None, modulus: int = MODULUS) -> int:
    """The value modulo ``modulus`` of an expression of digits, ``x`` (given as ``x``), ``+ - *``
    and brackets, ``*`` binding first: ``["(", "1", "+", "2", ")", "*", "3"]`` -> 9 mod 5 = 4."""
    pos = 0

    def expr() -> int:
        nonlocal pos
        total, sign, term = 0, 1, factor()
        while pos < len(tokens) and tokens[pos] in "+-*":
            op = tokens[pos]
            pos += 1
            if op == "*":
                term = term * factor()
            else:
                total, sign, term = total + sign * term, 1 if op == "+" else -1, factor()
        return total + sign * term

    def factor() -> int:
        nonlocal pos
        token = tokens[pos]
        pos += 1
        if token == "(":
            value = expr()
            pos += 1  # ")"
            return value
        if token == "x":
            if x is None:
                raise ValueError("the expression holds x: give its value")
            return x
        return int(token)

    value = expr()
    if pos != len(tokens):
        raise ValueError(f"not an expression: {' '.join(tokens)}")
    return value % modulus


def random_expression(n: int, generator: torch.Generator, operators: str) -> list[str]:
    """A random expression of exactly ``n`` tokens (``n`` odd): a digit, or ``E op E`` at the top
    and ``( E op E )`` or ``( E )`` below it, digits 0-4."""

    def bracketed(m: int) -> list[str]:
        if m == 1:
            return [str(randint(0, MODULUS - 1, generator))]
        if m == 3:
            return ["(", *bracketed(1), ")"]
        a = 2 * randint(0, (m - 5) // 2, generator) + 1  # a + b = m - 3, both odd
        op = operators[randint(0, len(operators) - 1, generator)]
        return ["(", *bracketed(a), op, *bracketed(m - 3 - a), ")"]

    if n == 1:
        return bracketed(1)
    a = 2 * randint(0, (n - 3) // 2, generator) + 1  # a + b = n - 1, both odd
    op = operators[randint(0, len(operators) - 1, generator)]
    return [*bracketed(a), op, *bracketed(n - 1 - a)]


@dataclass
class StackManipulationTask(TokenTask):
    """Input: a stack over {a, b} (its top last), then actions (pop, push a, push b); the split is
    drawn per sample, the stack at least one letter. Output: the final stack from the top down,
    then "empty" up to ``n + 1`` tokens (the most the stack could hold, and one more)."""

    name = "stack_manipulation"
    chomsky_level = "DCF"
    vocabulary: ClassVar[tuple[str, ...]] = ("a", "b", *STACK_ACTIONS)
    classes: ClassVar[tuple[str, ...]] = ("a", "b", "empty")

    def output_length(self, n: int) -> int:
        return n + 1

    def sample(self, n, generator) -> Sample:
        k = randint(1, n, generator)  # letters on the stack; n - k actions
        stack = uniform(2, k, generator)
        actions = uniform(3, n - k, generator)
        final = manipulate_stack("".join("ab"[c] for c in stack), [STACK_ACTIONS[a] for a in actions])
        out = ["ab".index(c) for c in final] + [2] * (n + 1 - len(final))
        return stack + [2 + a for a in actions], out


@dataclass
class ReverseStringTask(BinaryStringTask):
    """Input: a string over {0, 1}. Output: the string backwards."""

    name = "reverse_string"
    chomsky_level = "DCF"

    @staticmethod
    def transform(s: list[int]) -> list[int]:
        return s[::-1]


@dataclass
class ModularArithmeticBracketsTask(TokenTask):
    """Input: an expression with brackets over digits 0-4 and + - * (an even length drops a token).
    Output: its value modulo 5."""

    name = "modular_arithmetic_brackets"
    chomsky_level = "DCF"
    vocabulary: ClassVar[tuple[str, ...]] = (*map(str, range(MODULUS)), "+", "-", "*", "(", ")")
    classes: ClassVar[tuple[str, ...]] = tuple(map(str, range(MODULUS)))

    def sample(self, n, generator) -> Sample:
        tokens = random_expression(n if n % 2 else n - 1, generator, "+-*")
        return [self.vocabulary.index(t) for t in tokens], [evaluate_brackets(tokens)]


@dataclass
class SolveEquationTask(TokenTask):
    """Input: ``E = r`` where E is a bracketed expression over digits 0-4, + and - in which one digit
    is the unknown x, and r is E's value modulo 5 at the hidden x. Output: x. With + and - only
    (no *), every equation has exactly one solution modulo 5. The level counts every token; an even
    one drops one from E. Shortest: 3 (``x = r``)."""

    name = "solve_equation"
    chomsky_level = "DCF"
    vocabulary: ClassVar[tuple[str, ...]] = (*map(str, range(MODULUS)), "+", "-", "(", ")", "x", "=")
    classes: ClassVar[tuple[str, ...]] = tuple(map(str, range(MODULUS)))
    shortest = 3

    def sample(self, n, generator) -> Sample:
        m = n - 2 if n % 2 else n - 3  # E's length, odd
        tokens = random_expression(m, generator, "+-")
        digits = [i for i, t in enumerate(tokens) if t.isdigit()]
        at = digits[randint(0, len(digits) - 1, generator)]
        x = int(tokens[at])
        tokens[at] = "x"
        r = evaluate_brackets(tokens, x)
        tokens += ["=", str(r)]
        return [self.vocabulary.index(t) for t in tokens], [x]
