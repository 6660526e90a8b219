"""`smart-agent ask`: a question to a running app through its API, the reply streamed to stdout."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from smart_agent.cli.options import fail, parse_retries, settings_flags
from smart_agent.config import DEFAULT_APP_URL, DEFAULT_ASK_RETRIES, ConfigError, load_settings


@settings_flags("app_url", "app_api_key")
def ask(
    flags: Mapping[str, Any],
    question: Annotated[
        str, typer.Argument(metavar="QUESTION", help="The question; the reply streams to stdout.")
    ],
    model: Annotated[
        str | None, typer.Option(metavar="NAME", help="Model name for this run. [default: the app's model]")
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="No notes on stderr (time thought, tool calls and results, resumes); errors only.",
        ),
    ] = False,
    show_thinking: Annotated[
        bool,
        typer.Option(
            "--show-thinking",
            help="Print the model's thinking live on stderr (dimmed in a terminal); "
            "by default one line says how long it thought.",
        ),
    ] = False,
    retries: Annotated[
        str,
        typer.Option(metavar="N", help="Reconnects in a row without a new event before giving up (0-100)."),
    ] = str(DEFAULT_ASK_RETRIES),
) -> None:
    """Ask a running app through its API; resumes by itself when the connection drops.

    Exit codes: 0 the run is done, 1 it failed (error event, app unreachable or refusing),
    2 bad arguments (including a question or model the app refuses), 130 Ctrl-C (the run is cancelled).
    """
    try:
        settings = load_settings(flags)
        tries = parse_retries(retries)
        if not question.strip():
            raise ConfigError("the question must not be empty")
    except ConfigError as exc:
        raise fail(exc) from None
    from smart_agent.api.ask import ask as ask_app

    code = ask_app(
        settings.app_url or DEFAULT_APP_URL,
        question,
        out=sys.stdout,
        err=sys.stderr,
        api_key=settings.app_api_key,
        model=model,
        quiet=quiet,
        show_thinking=show_thinking,
        retries=tries,
    )
    if code:
        raise typer.Exit(code)
