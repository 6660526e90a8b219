"""`smart-agent chainlit` (serve the chat app) and `smart-agent models` (what the backend offers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer

from smart_agent.agent.mcp import McpError, load_mcp_config
from smart_agent.cli.options import fail, parse_port, settings_flags
from smart_agent.config import DEFAULT_HOST, DEFAULT_PORT, ConfigError, load_settings
from smart_agent.data_dir import ensure_data_dir
from smart_agent.team.definition import load_team
from smart_agent.web.origins import check_exposure

CHAINLIT_SETTINGS = (
    "stream_batching", "batch_size", "flush_interval", "max_events_per_second", "segment_chars",
    "adaptive_batching", "render_pacing", "debug", "show_stats", "model", "base_url", "mcp_config",
    "data_dir", "allowed_origins", "expose_without_login", "mcp_user_servers", "redis_url",
    "database_url", "history", "profile", "team_config", "team_concurrency", "think_tags",
    "show_thinking", "reasoning_effort",
)  # fmt: skip
"""The settings `smart-agent chainlit` has flags for; every other one is read from the environment."""


@settings_flags(*CHAINLIT_SETTINGS)
def chainlit(
    flags: Mapping[str, Any],
    host: Annotated[
        str, typer.Option(metavar="HOST", help="Interface to serve the chat UI on.")
    ] = DEFAULT_HOST,
    port: Annotated[str, typer.Option(metavar="PORT", help="Port to serve the chat UI on.")] = str(
        DEFAULT_PORT
    ),
    headless: Annotated[bool, typer.Option("--headless", help="Do not open a browser window.")] = False,
) -> None:
    """Launch the Chainlit chat app.

    Exit codes: 0 stopped (Ctrl-C), 1 the machine stands in the way (the port in use, the model
    server or the history database failing), 2 a bad value.
    """
    try:
        settings = load_settings(flags)
        port_number = parse_port(port)
        ensure_data_dir(settings)
        # With history on, the launcher checks for accounts once the database is open (web/launch.py).
        warning = check_exposure(host, settings, login=settings.history)
        if settings.mcp_config:
            load_mcp_config(settings.mcp_config)
        if settings.team_config:
            load_team(settings.team_config)
    except (ConfigError, McpError) as exc:
        raise fail(exc) from None
    if warning:
        typer.echo(warning, err=True)
    from smart_agent.web.launch import launch

    launch(settings, host=host, port=port_number, headless=headless)


@settings_flags("base_url")
def models(flags: Mapping[str, Any]) -> None:
    """List the models the backend offers: what the chat's Model setting and the API's `model` accept.

    Exit codes: 0 listed; 1 the server could not be reached or does not list its models; 2 a bad value.
    """
    import asyncio

    from smart_agent.llm.client import EMBEDDED_MODEL_ALIAS
    from smart_agent.llm.models import fetch_models

    try:
        settings = load_settings(flags)
    except ConfigError as exc:
        raise fail(exc) from None
    if settings.uses_embedded_model:
        typer.echo(
            f"{EMBEDDED_MODEL_ALIAS}\t(the built-in SmolLM2-135M, served while `smart-agent chainlit` runs)"
        )
        return
    found = asyncio.run(fetch_models(settings))
    if found.error is not None:
        typer.echo(f"Error: {found.error}", err=True)
        raise typer.Exit(code=1)
    for model in found.ids:
        typer.echo(model)
