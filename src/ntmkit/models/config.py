"""What every model's config dataclass shares: its checks and its dict form (as a checkpoint stores it)."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from ..errors import ConfigError

C = TypeVar("C", bound="ModelConfig")


def check_positive_ints(config: Any, names: tuple[str, ...]) -> None:
    """A one-line ConfigError for the first of ``names`` that is not a positive integer."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")


class ModelConfig:
    """Mixin for a config dataclass: ``to_dict`` and ``from_dict`` (unknown keys refused, naming
    ``settings_name``)."""

    settings_name = "model settings"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], d: dict) -> C:
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        if unknown:
            raise ConfigError(f"unknown {cls.settings_name} {sorted(unknown)}")
        return cls(**d)
