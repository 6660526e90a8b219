"""Command-line flags made from the settings model: one definition gives the flag, its help and variable."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from smart_agent.config import MAX_ASK_RETRIES, ConfigError, Settings
from smart_agent.setting import default_text, source, value_type, variables
from smart_agent.values import int_parser

Command = Callable[..., None]


def fail(exc: Exception) -> typer.Exit:
    """Print `exc` as one line and give the exit for a bad value (2)."""
    typer.echo(f"Error: {exc}", err=True)
    return typer.Exit(code=2)


def help_text(name: str) -> str:
    """A flag's help: the setting's, then its default and variable (the value it sets, for a switch)."""
    info = Settings.model_fields[name]
    notes = []
    if (default := default_text(info)) is not None:
        notes.append(f"default: {default}")
    if value_type(info)[0] is bool:
        notes.append(f"env {variables(info)}={0 if info.default else 1}")
    else:
        notes.append(f"env {variables(info)}")
    return f"{info.description} [{'; '.join(notes)}]"


def _parameter(name: str) -> inspect.Parameter:
    """The Typer parameter of setting `name`: a switch for a bool, else text validated by config.py."""
    info = Settings.model_fields[name]
    spec = source(info)
    assert spec.flag is not None, f"{name} has no flag"
    if value_type(info)[0] is bool:
        option = typer.Option(spec.flag, help=help_text(name), show_default=False)
        return inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[bool, option], default=False
        )
    # Text, validated by config.py: a flag and its variable share one parser and one error message
    # (and a bad value exits 2 with one line, not Click's usage text).
    option = typer.Option(spec.flag, metavar=spec.metavar, help=help_text(name), show_default=False)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[str | None, option], default=None
    )


def settings_flags(*names: str) -> Callable[[Command], Command]:
    """Give a command the flags of these settings; it gets them as `flags`, load_settings' overrides."""

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        own = [parameter for parameter in signature.parameters.values() if parameter.name != "flags"]

        @functools.wraps(command)
        def run(**values: Any) -> None:
            flags: dict[str, Any] = {}
            for name in names:
                value = values.pop(name)
                if isinstance(value, bool):  # a switch: given, it sets the value other than the default
                    value = (not Settings.model_fields[name].default) if value else None
                flags[name] = value
            command(**values, flags=flags)

        run.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*own, *(_parameter(name) for name in names)]
        )
        return run

    return decorate


def parse_retries(text: str) -> int:
    """Parse `smart-agent ask --retries`: reconnects in a row without progress."""
    try:
        return int_parser(0, MAX_ASK_RETRIES)(text)
    except ValueError as exc:
        raise ConfigError(f"invalid value {text!r} for --retries: {exc}") from None


def parse_port(text: str) -> int:
    """Parse the web server's TCP port."""
    try:
        return int_parser(1, 65535)(text)
    except ValueError as exc:
        raise ConfigError(f"invalid value {text!r} for --port: {exc}") from None
