"""A setting's text (a flag, a variable, a `.env` line) made its value; ValueError says what is allowed."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(text: str) -> bool:
    """1/0, true/false, yes/no, on/off (any case); empty is false."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("must be one of 1/0, true/false, yes/no, on/off")


def int_parser(low: int, high: int | None = None) -> Callable[[str], int]:
    """A parser of integers from `low` to `high` (no upper bound when None)."""
    allowed = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"must be {allowed}") from None
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be {allowed}")
        return value

    return parse


def float_parser(low: float, *, inclusive: bool) -> Callable[[str], float]:
    """A parser of finite numbers above `low` (or from it, when `inclusive`)."""
    allowed = f"a number {'>=' if inclusive else '>'} {low:g}"

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError(f"must be {allowed}") from None
        if not math.isfinite(value) or value < low or (value == low and not inclusive):
            raise ValueError(f"must be {allowed}")
        return value

    return parse


def choice_parser(choices: tuple[str, ...], *, optional: bool = False) -> Callable[[str], str | None]:
    """A parser of one of `choices` (any case); empty is None when `optional`."""
    allowed = f"must be one of {', '.join(choices)}" + (
        " (or empty for the server's default)" if optional else ""
    )

    def parse(text: str) -> str | None:
        value = text.strip().lower()
        if optional and not value:
            return None
        if value not in choices:
            raise ValueError(allowed)
        return value

    return parse


def parse_text(text: str) -> str | None:
    """The text without surrounding blanks; empty is None."""
    return text.strip() or None


def parse_extensions(text: str) -> tuple[str, ...]:
    """Comma-separated file name extensions, lower case, without dots or repeats."""
    names = tuple(dict.fromkeys(part.strip().lower().lstrip(".") for part in text.split(",") if part.strip()))
    if not names or not all(re.fullmatch(r"[a-z0-9]{1,10}", name) for name in names):
        raise ValueError("must be file name extensions separated by commas, like txt,md,png")
    return names


def parse_folder(text: str) -> Path | None:
    """An absolute folder (`~` expanded); empty is None."""
    value = text.strip()
    if not value:
        return None
    path = Path(value).expanduser()
    # A relative folder would depend on where the command is started, the very thing the data
    # folder exists to avoid.
    if not path.is_absolute():
        raise ValueError("must be an absolute path (or start with ~)")
    return path


MIN_SECRET_CHARS = 32


def parse_secret(text: str) -> str | None:
    """A signing secret of at least MIN_SECRET_CHARS characters; empty is None."""
    value = text.strip()
    if not value:
        return None
    if len(value) < MIN_SECRET_CHARS:
        raise ValueError(f"must be at least {MIN_SECRET_CHARS} characters (e.g. `openssl rand -base64 48`)")
    return value
