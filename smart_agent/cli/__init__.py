"""The `smart-agent` command line: turns flags into settings and launches; no logic of its own."""

from __future__ import annotations

from typing import Annotated

import typer

from smart_agent import __version__
from smart_agent.cli.ask import ask
from smart_agent.cli.keys import api_keys
from smart_agent.cli.serve import chainlit, models
from smart_agent.cli.users import users

app = typer.Typer(
    help="Stream LLM replies smoothly into a Chainlit chat UI, or ask a running app from the terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help text: Rich markup would swallow the "[env ...]" and "[default: ...]" notes.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"smart-agent {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """smart-agent command line."""


app.command()(chainlit)
app.command()(models)
app.add_typer(api_keys, name="api-keys")
app.add_typer(users, name="users")
app.command()(ask)
