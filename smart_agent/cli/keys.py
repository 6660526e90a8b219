"""`smart-agent api-keys`: make, list and remove the HTTP API's keys (hashes in the data folder)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer

from smart_agent.api.keys import KEYS_FILE, ApiKeyError, KeyFileError, KeyStore
from smart_agent.cli.options import fail, settings_flags
from smart_agent.config import ConfigError, load_settings
from smart_agent.data_dir import ensure_data_dir, resolve_data_dir

api_keys = typer.Typer(
    help="Manage the keys of the HTTP API (stored as hashes in the data folder).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _key_store(flags: Mapping[str, Any], *, create: bool = False) -> KeyStore:
    """The key store of the data folder these flags and the environment name."""
    settings = load_settings(flags)
    folder = ensure_data_dir(settings) if create else resolve_data_dir(settings)
    return KeyStore(folder / KEYS_FILE)


@api_keys.command("add")
@settings_flags("data_dir")
def api_keys_add(
    flags: Mapping[str, Any],
    name: Annotated[str, typer.Argument(help="A name for the key: letters, digits, '.', '_', '-'.")],
) -> None:
    """Make a key and print it, this once. Only its hash is stored."""
    try:
        key = _key_store(flags, create=True).add(name)
    except (ConfigError, ApiKeyError, KeyFileError) as exc:
        raise fail(exc) from None
    typer.echo(key)
    typer.echo(
        f"API key {name!r} created. It is shown only this once: store it now. "
        "Clients send it as `Authorization: Bearer KEY`.",
        err=True,
    )


@api_keys.command("list")
@settings_flags("data_dir")
def api_keys_list(flags: Mapping[str, Any]) -> None:
    """List the keys' names and when they were made (never the keys)."""
    try:
        names = _key_store(flags).names()
    except (ConfigError, KeyFileError) as exc:
        raise fail(exc) from None
    if not names:
        typer.echo("No API keys. Make one with `smart-agent api-keys add NAME`.", err=True)
    for name, created in names:
        typer.echo(f"{name}\t{created.isoformat()}")


@api_keys.command("remove")
@settings_flags("data_dir")
def api_keys_remove(
    flags: Mapping[str, Any],
    name: Annotated[str, typer.Argument(help="The name of the key to remove.")],
) -> None:
    """Remove a key. A running app refuses it at once."""
    try:
        _key_store(flags).remove(name)
    except (ConfigError, ApiKeyError, KeyFileError) as exc:
        raise fail(exc) from None
    typer.echo(f"API key {name!r} removed.", err=True)
