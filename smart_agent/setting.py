"""One setting's definition: a pydantic Field (type, bounds, default, help) plus where it is read from."""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le
from pydantic import Field
from pydantic.fields import FieldInfo

from smart_agent.values import choice_parser, float_parser, int_parser, parse_bool, parse_text


@dataclass(frozen=True)
class Source:
    """Where a setting comes from, beside the type, bounds, default and help its Field holds."""

    env: str | None
    """Its environment variable; None for what only the launcher knows (never read from outside)."""
    section: str
    flag: str | None = None
    """The `smart-agent` flag; for a switch, the one that sets the value other than the default."""
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None
    """Text to value when the type and bounds alone do not say how."""
    allowed: str | None = None
    """What `parse` accepts, for the reference (the type and bounds say it otherwise)."""
    fallback_env: str | None = None
    """A standard variable read when `env` is not set (DATABASE_URL, as hosting platforms set it)."""
    shown: Callable[[str], str] = str
    """How a refused value is quoted in the error (without the secrets it may hold)."""
    default_text: str | None = None
    """The default in words, when the value alone does not say what it means."""


def setting(
    default: Any,
    env: str | None,
    help: str,
    *,
    section: str,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    **where: Any,
) -> Any:
    """A field of Settings: its default, bounds and help, and where it is read from (Source)."""
    info: FieldInfo = Field(default, ge=ge, gt=gt, le=le, description=help)
    info.metadata.append(Source(env, section, **where))
    return info


def source(info: FieldInfo) -> Source:
    """Where the setting of this field comes from."""
    return next(item for item in info.metadata if isinstance(item, Source))


def bounds(info: FieldInfo) -> tuple[Any, Any, bool]:
    """The field's lowest and highest values (None: unbounded), and whether the lowest is allowed."""
    low: Any = None
    high: Any = None
    inclusive = True
    for item in info.metadata:
        if isinstance(item, Ge):
            low = item.ge
        elif isinstance(item, Gt):
            low, inclusive = item.gt, False
        elif isinstance(item, Le):
            high = item.le
    return low, high, inclusive


def value_type(info: FieldInfo) -> tuple[Any, bool]:
    """The field's type without None, and whether None (empty text) is allowed."""
    annotation = info.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        return args[0], True
    return annotation, False


def field_parser(info: FieldInfo) -> Callable[[str], Any]:
    """How the text of this setting (a flag, a variable, a panel's value) becomes its value."""
    if (custom := source(info).parse) is not None:
        return custom
    kind, optional = value_type(info)
    if kind is bool:
        return parse_bool
    if get_origin(kind) is Literal:
        return choice_parser(get_args(kind), optional=optional)
    if kind is str:
        return parse_text
    low, high, inclusive = bounds(info)
    if kind is int:
        parse: Callable[[str], Any] = int_parser(low or 0, high)
    else:
        parse = float_parser(low or 0.0, inclusive=inclusive)
    return (lambda text: parse(text) if text.strip() else None) if optional else parse


def allowed(info: FieldInfo) -> str:
    """What the setting accepts, in words, for the help and the reference."""
    spec = source(info)
    if spec.allowed is not None:
        return spec.allowed
    kind, optional = value_type(info)
    low, high, inclusive = bounds(info)
    if kind is bool:
        text = "1/0, true/false, yes/no, on/off"
    elif get_origin(kind) is Literal:
        text = ", ".join(get_args(kind))
    elif kind is str:
        text = "text"
    elif kind is int:
        text = f"integer >= {low}" if high is None else f"integer from {low} to {high}"
    else:
        text = f"number {'>=' if inclusive else '>'} {low:g}"
    return f"{text}, or empty" if optional and kind is not str else text


def default_text(info: FieldInfo) -> str | None:
    """The default as the help and the reference show it; None when it goes without saying."""
    spec = source(info)
    if spec.default_text is not None:
        return spec.default_text
    value = info.default
    if value is None or value == () or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return f"{value:g}"
    return ",".join(value) if isinstance(value, tuple) else str(value)


def variables(info: FieldInfo) -> str:
    """The variable(s) a setting is read from, as the help names them."""
    spec = source(info)
    return f"{spec.env}, else {spec.fallback_env}" if spec.fallback_env else str(spec.env)
