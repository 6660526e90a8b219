"""`smart-agent users`: the accounts that may sign in to the chat (argon2id hashes in the database)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from smart_agent.cli.options import fail, settings_flags
from smart_agent.config import ConfigError, load_settings
from smart_agent.data_dir import ensure_data_dir
from smart_agent.errors import AccountError, HistoryError

if TYPE_CHECKING:
    from smart_agent.history.accounts import Accounts

T = TypeVar("T")

users = typer.Typer(
    help="Manage the accounts that may sign in to the chat (argon2id hashes in the history database).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@users.command("add")
@settings_flags("data_dir", "database_url")
def users_add(
    flags: Mapping[str, Any],
    name: Annotated[str, typer.Argument(help="The sign-in name: 1-64 letters, digits, '.', '_', '-', '@'.")],
) -> None:
    """Add an account. The password is read from stdin when it is not a terminal, else prompted."""
    from smart_agent.history.accounts import check_name, check_password

    try:
        target = _accounts_target(flags)
        check_name(name)
        password = check_password(_read_password())
    except (ConfigError, AccountError) as exc:
        raise fail(exc) from None
    _run_accounts(target, lambda accounts: accounts.add(name, password))
    typer.echo(f"Account {name!r} added.", err=True)


@users.command("list")
@settings_flags("data_dir", "database_url")
def users_list(flags: Mapping[str, Any]) -> None:
    """List the accounts' names and when they were made."""
    try:
        target = _accounts_target(flags)
    except ConfigError as exc:
        raise fail(exc) from None
    names = _run_accounts(target, lambda accounts: accounts.names())
    if not names:
        typer.echo("No accounts. Add one with `smart-agent users add NAME`.", err=True)
    for name, created in names:
        typer.echo(f"{name}\t{created}")


@users.command("remove")
@settings_flags("data_dir", "database_url")
def users_remove(
    flags: Mapping[str, Any],
    name: Annotated[str, typer.Argument(help="The name of the account to remove.")],
) -> None:
    """Remove an account (its chat history stays)."""
    try:
        target = _accounts_target(flags)
    except ConfigError as exc:
        raise fail(exc) from None
    _run_accounts(target, lambda accounts: accounts.remove(name))
    typer.echo(f"Account {name!r} removed.", err=True)


def _accounts_target(flags: Mapping[str, Any]) -> str | Path:
    """The history database these flags and the environment name: a URL, else the data folder's file."""
    settings = load_settings(flags)
    if settings.database_url:
        return settings.database_url
    from smart_agent.history.urls import history_path

    return history_path(ensure_data_dir(settings))


def _read_password() -> str:
    """One line from stdin when it is piped (newline stripped), else asked twice without echo."""
    if sys.stdin is None:  # started with stdin closed
        return ""
    if sys.stdin.isatty():
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True))
    try:
        line = sys.stdin.buffer.readline().decode()
    except UnicodeDecodeError:
        raise AccountError("the password read from stdin is not UTF-8 text") from None
    return line.removesuffix("\n").removesuffix("\r")


def _run_accounts(target: str | Path, action: Callable[[Accounts], Awaitable[T]]) -> T:
    """Run `action` on the accounts of `target`; exit 2 on a refused name, 1 if the database fails."""
    import asyncio

    from smart_agent.history.accounts import Accounts

    async def run() -> T:
        accounts = await Accounts.open(target)
        try:
            return await action(accounts)
        finally:
            await accounts.close()

    try:
        return asyncio.run(run())
    except AccountError as exc:
        raise fail(exc) from None
    except HistoryError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=1) from None
