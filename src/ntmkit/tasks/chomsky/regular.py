"""The regular tasks (a finite-state machine solves each): even pairs, modular arithmetic without
brackets, parity check, cycle navigation. Each answers with one token after the input."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import ClassVar

from .base import Sample, TokenTask, uniform

MODULUS = 5
OPERATORS = ("+", "-", "*")


def even_pairs(s: str) -> bool:
    """Whether the number of ``ab`` and ``ba`` pairs in ``s`` (over {a, b}) is even: each pair is a
    change of letter, so it is even exactly when ``s`` ends with the letter it starts with."""
    changes = sum(x != y for x, y in itertools.pairwise(s))
    return changes % 2 == 0


def parity_check(s: str) -> bool:
    """Whether ``s`` (over {a, b}) holds an even number of ``b``."""
    return s.count("b") % 2 == 0


def cycle_navigation(moves: list[int], size: int = MODULUS) -> int:
    """Where an agent ends on a cycle of ``size`` places, starting at 0: move 0 stays, 1 steps
    forward, 2 steps back."""
    return sum({0: 0, 1: 1, 2: -1}[m] for m in moves) % size


def evaluate_flat(tokens: list[str], modulus: int = MODULUS) -> int:
    """The value modulo ``modulus`` of ``d op d op ... d`` with the usual precedence (``*`` before
    ``+`` and ``-``), e.g. ``["1", "+", "2", "*", "3"]`` -> 7 mod 5 = 2."""
    total, term, sign = 0, int(tokens[0]), 1
    for op, d in zip(tokens[1::2], tokens[2::2]):
        if op == "*":
            term = term * int(d)
        else:
            total += sign * term
            term, sign = int(d), 1 if op == "+" else -1
    return (total + sign * term) % modulus


@dataclass
class _StringDecision(TokenTask):
    """Input: a string over {a, b}. Output: whether ``rule`` holds for it (1: it does)."""

    chomsky_level = "R"
    vocabulary: ClassVar[tuple[str, ...]] = ("a", "b")
    classes: ClassVar[tuple[str, ...]] = ("odd", "even")
    rule: ClassVar = staticmethod(even_pairs)

    def sample(self, n, generator) -> Sample:
        s = uniform(2, n, generator)
        return s, [int(self.rule("".join("ab"[c] for c in s)))]


@dataclass
class EvenPairsTask(_StringDecision):
    """Input: a string over {a, b}. Output: 1 if its number of ``ab`` and ``ba`` pairs is even."""

    name = "even_pairs"
    rule = staticmethod(even_pairs)


@dataclass
class ModularArithmeticTask(TokenTask):
    """Input: ``d op d op ... d`` with digits 0-4 and + - *, as long as the length allows (an even
    length drops its last token). Output: its value modulo 5 (``*`` binds first)."""

    name = "modular_arithmetic"
    chomsky_level = "R"
    vocabulary: ClassVar[tuple[str, ...]] = (*map(str, range(MODULUS)), *OPERATORS)
    classes: ClassVar[tuple[str, ...]] = tuple(map(str, range(MODULUS)))

    def sample(self, n, generator) -> Sample:
        k = (n + 1) // 2  # numbers; the expression has 2k - 1 tokens
        digits = uniform(MODULUS, k, generator)
        ops = uniform(len(OPERATORS), k - 1, generator)
        tokens = [str(digits[0])]
        for op, d in zip(ops, digits[1:]):
            tokens += [OPERATORS[op], str(d)]
        ids = [self.vocabulary.index(t) for t in tokens]
        return ids, [evaluate_flat(tokens)]


@dataclass
class ParityCheckTask(_StringDecision):
    """Input: a string over {a, b}. Output: 1 if it holds an even number of ``b``."""

    name = "parity_check"
    rule = staticmethod(parity_check)


@dataclass
class CycleNavigationTask(TokenTask):
    """Input: moves on a cycle of 5 places (stay, +1, -1), from place 0. Output: the place reached."""

    name = "cycle_navigation"
    chomsky_level = "R"
    vocabulary: ClassVar[tuple[str, ...]] = ("stay", "+1", "-1")
    classes: ClassVar[tuple[str, ...]] = tuple(map(str, range(MODULUS)))

    def sample(self, n, generator) -> Sample:
        moves = uniform(3, n, generator)
        return moves, [cycle_navigation(moves)]
