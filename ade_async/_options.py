"""Small argument checks shared by the public calls: clear errors before anything starts."""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["DEFAULT", "Default", "check_count", "check_timeout"]


class Default(enum.Enum):
    """The type of :data:`DEFAULT`."""

    TOKEN = "DEFAULT"


#: "Use the client's default" (the poll policy's ``job_timeout``), where ``None`` means "none".
DEFAULT: Final = Default.TOKEN


def check_timeout(timeout: float | Default | None, default: float | None) -> float | None:
    """A handle's timeout in seconds: ``DEFAULT`` becomes ``default``; ``None`` stays none.

    Raises:
        ValueError: not positive.
        TypeError: not a number.
    """
    if timeout is DEFAULT:
        return default
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds or None, got {timeout!r}")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive or None, got {timeout}")
    return float(timeout)


def check_count(
    name: str, value: int | None, *, allow_none: bool = False, maximum: int | None = None
) -> None:
    """A whole number of at least 1 (and at most ``maximum``).

    Raises:
        TypeError: not a whole number.
        ValueError: out of range.
    """
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    if value < 1 or (maximum is not None and value > maximum):
        bound = f"between 1 and {maximum}" if maximum is not None else "at least 1"
        raise ValueError(f"{name} must be {bound}, got {value}")
