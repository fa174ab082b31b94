"""The context-sensitive tasks (a linear-bounded automaton solves each): duplicate string, missing
duplicate, odds first, binary addition, binary multiplication, compute square root, bucket sort."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from .base import BinaryStringTask, Sample, TokenTask, randint, uniform

SORT_ALPHABET = 5


def odds_first(s: str) -> str:
    """The letters at odd positions (1st, 3rd, ...), then those at even ones: ``"abcde"`` -> ``"acebd"``."""
    return s[0::2] + s[1::2]


def bits_lsb_first(value: int, width: int) -> list[int]:
    """``value`` in binary, least significant bit first, padded with zeros to ``width`` bits."""
    return [(value >> i) & 1 for i in range(width)]


def value_lsb_first(bits: list[int]) -> int:
    """The number whose binary digits, least significant first, are ``bits``."""
    return sum(b << i for i, b in enumerate(bits))


def binary_addition(x: list[int], y: list[int]) -> list[int]:
    """x + y, all least significant bit first; the sum has ``max(len) + 1`` bits:
    ``binary_addition([1, 1], [1])`` (3 + 1) is ``[0, 0, 1]`` (4)."""
    return bits_lsb_first(value_lsb_first(x) + value_lsb_first(y), max(len(x), len(y)) + 1)


def binary_multiplication(x: list[int], y: list[int]) -> list[int]:
    """x * y, all least significant bit first; the product has ``len(x) + len(y)`` bits."""
    return bits_lsb_first(value_lsb_first(x) * value_lsb_first(y), len(x) + len(y))


def compute_sqrt(bits: list[int]) -> list[int]:
    """floor(sqrt(x)) for x given most significant bit first, in ``ceil(len / 2)`` bits, most
    significant first: ``compute_sqrt([1, 0, 0, 0, 1])`` (17) is ``[1, 0, 0]`` (4)."""
    x = int("".join(map(str, bits)), 2)
    width = math.ceil(len(bits) / 2)
    root = math.isqrt(x)
    return [(root >> i) & 1 for i in reversed(range(width))]


def _split(n: int, generator) -> tuple[int, int]:
    """Lengths of the two numbers of a binary operation whose input ``x op y`` has ``n`` tokens."""
    lx = randint(1, n - 2, generator)
    return lx, n - 1 - lx


@dataclass
class DuplicateStringTask(BinaryStringTask):
    """Input: a string w over {0, 1}. Output: ww."""

    name = "duplicate_string"
    chomsky_level = "CS"
    output_factor = 2

    @staticmethod
    def transform(s: list[int]) -> list[int]:
        return s + s


@dataclass
class MissingDuplicateTask(TokenTask):
    """Input: ww over {0, 1} with one letter replaced by ``_``, of ``2 * max(1, n // 2)`` tokens for
    level n. Output: the letter replaced."""

    name = "missing_duplicate"
    chomsky_level = "CS"
    vocabulary: ClassVar[tuple[str, ...]] = ("0", "1", "_")
    classes: ClassVar[tuple[str, ...]] = ("0", "1")

    def steps(self, n: int) -> int:
        return 2 * max(1, n // 2) + 1

    def sample(self, n, generator) -> Sample:
        w = uniform(2, max(1, n // 2), generator)
        ww = w + w
        at = randint(0, len(ww) - 1, generator)
        missing = ww[at]
        ww[at] = 2
        return ww, [missing]


@dataclass
class OddsFirstTask(BinaryStringTask):
    """Input: a string over {0, 1}. Output: its letters at odd positions, then those at even ones."""

    name = "odds_first"
    chomsky_level = "CS"

    @staticmethod
    def transform(s: list[int]) -> list[int]:
        return s[0::2] + s[1::2]


@dataclass
class BinaryAdditionTask(TokenTask):
    """Input: ``x + y``, two binary numbers least significant bit first (lengths drawn per sample,
    n tokens in all). Output: x + y in ``max(len) + 1`` bits, least significant first. Shortest: 3."""

    name = "binary_addition"
    chomsky_level = "CS"
    vocabulary: ClassVar[tuple[str, ...]] = ("0", "1", "+")
    classes: ClassVar[tuple[str, ...]] = ("0", "1")
    shortest = 3

    def output_length(self, n: int) -> int:
        return n - 1  # the most it can be: max(len) + 1 <= len(x) + len(y)

    def sample(self, n, generator) -> Sample:
        lx, ly = _split(n, generator)
        x, y = uniform(2, lx, generator), uniform(2, ly, generator)
        return [*x, 2, *y], binary_addition(x, y)


@dataclass
class BinaryMultiplicationTask(TokenTask):
    """Input: ``x * y``, two binary numbers least significant bit first (n tokens in all). Output:
    x * y in ``len(x) + len(y)`` bits, least significant first. Shortest: 3."""

    name = "binary_multiplication"
    chomsky_level = "CS"
    vocabulary: ClassVar[tuple[str, ...]] = ("0", "1", "*")
    classes: ClassVar[tuple[str, ...]] = ("0", "1")
    shortest = 3

    def output_length(self, n: int) -> int:
        return n - 1

    def sample(self, n, generator) -> Sample:
        lx, ly = _split(n, generator)
        x, y = uniform(2, lx, generator), uniform(2, ly, generator)
        return [*x, 2, *y], binary_multiplication(x, y)


@dataclass
class ComputeSqrtTask(TokenTask):
    """Input: a binary number x of n bits, most significant first. Output: floor(sqrt(x)) in
    ``ceil(n / 2)`` bits, most significant first."""

    name = "compute_sqrt"
    chomsky_level = "CS"
    vocabulary: ClassVar[tuple[str, ...]] = ("0", "1")
    classes: ClassVar[tuple[str, ...]] = ("0", "1")

    def output_length(self, n: int) -> int:
        return math.ceil(n / 2)

    def sample(self, n, generator) -> Sample:
        bits = uniform(2, n, generator)
        return bits, compute_sqrt(bits)


@dataclass
class BucketSortTask(TokenTask):
    """Input: a string over 5 letters. Output: its letters sorted."""

    name = "bucket_sort"
    chomsky_level = "CS"
    vocabulary: ClassVar[tuple[str, ...]] = tuple("abcde")
    classes: ClassVar[tuple[str, ...]] = tuple("abcde")

    def output_length(self, n: int) -> int:
        return n

    def sample(self, n, generator) -> Sample:
        s = uniform(SORT_ALPHABET, n, generator)
        return s, sorted(s)
