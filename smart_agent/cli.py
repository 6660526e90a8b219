"""The `smart-agent` command line: turns flags into settings and launches the Chainlit app."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from smart_agent import __version__
from smart_agent.agent.mcp import McpError, load_mcp_config
from smart_agent.api.keys import KEYS_FILE, ApiKeyError, KeyFileError, KeyStore
from smart_agent.config import (
    DEFAULT_APP_URL,
    DEFAULT_ASK_RETRIES,
    DEFAULT_BATCH_SIZE,
    DEFAULT_FLUSH_INTERVAL,
    DEFAULT_HOST,
    DEFAULT_MAX_EVENTS_PER_SECOND,
    DEFAULT_PORT,
    DEFAULT_SEGMENT_CHARS,
    ConfigError,
    ensure_data_dir,
    load_settings,
    parse_port,
    parse_retries,
    resolve_data_dir,
)
from smart_agent.errors import AccountError, HistoryError
from smart_agent.team.definition import load_team
from smart_agent.web.origins import check_exposure

if TYPE_CHECKING:
    from smart_agent.history.accounts import Accounts

T = TypeVar("T")

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


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"Error: {exc}", err=True)
    return typer.Exit(code=2)


# Numbers are taken as text and validated by config.py, so a flag and its environment variable
# share one parser and one error message (and a bad value never prints a traceback).
@app.command()
def chainlit(
    no_stream_batching: Annotated[
        bool,
        typer.Option(
            "--no-stream-batching",
            help="Send one UI event per token, like native Chainlit. [env SMART_AGENT_STREAM_BATCHING=0]",
        ),
    ] = False,
    batch_size: Annotated[
        str | None,
        typer.Option(
            metavar="N",
            help=f"Tokens per UI event. [default: {DEFAULT_BATCH_SIZE}; env SMART_AGENT_BATCH_SIZE]",
        ),
    ] = None,
    flush_interval: Annotated[
        str | None,
        typer.Option(
            metavar="SECONDS",
            help=f"Longest a token waits in the buffer. [default: {DEFAULT_FLUSH_INTERVAL}; "
            "env SMART_AGENT_FLUSH_INTERVAL]",
        ),
    ] = None,
    max_events_per_second: Annotated[
        str | None,
        typer.Option(
            metavar="RATE",
            help=f"Cap on UI events per second per reply. [default: {DEFAULT_MAX_EVENTS_PER_SECOND:g}; "
            "env SMART_AGENT_MAX_EVENTS_PER_SECOND]",
        ),
    ] = None,
    segment_chars: Annotated[
        str | None,
        typer.Option(
            metavar="CHARS",
            help=f"Continue a long reply in a new message after about this many characters; 0 turns "
            f"it off. [default: {DEFAULT_SEGMENT_CHARS}; env SMART_AGENT_SEGMENT_CHARS]",
        ),
    ] = None,
    adaptive_batching: Annotated[
        bool,
        typer.Option(
            "--adaptive-batching",
            help="Let the flush interval grow with the message's length (max 0.5 s). "
            "[env SMART_AGENT_ADAPTIVE_BATCHING]",
        ),
    ] = False,
    no_render_pacing: Annotated[
        bool,
        typer.Option(
            "--no-render-pacing",
            help="Ignore the page's render reports: every page gets the fixed cap and segment size. "
            "[env SMART_AGENT_RENDER_PACING=0]",
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Log batching statistics and pacing per reply; shows the stats line too. "
            "[env SMART_AGENT_DEBUG]",
        ),
    ] = False,
    show_stats: Annotated[
        bool,
        typer.Option(
            "--show-stats",
            help="Show tokens, tokens/s and time under each reply. [default: off, on with --debug; "
            "env SMART_AGENT_SHOW_STATS]",
        ),
    ] = False,
    model: Annotated[str | None, typer.Option(help="Model name. [env SMART_AGENT_MODEL]")] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            help="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1. [env OPENAI_BASE_URL]"
        ),
    ] = None,
    mcp_config: Annotated[
        str | None,
        typer.Option(metavar="FILE", help='MCP servers: {"mcpServers": {...}}. [env SMART_AGENT_MCP_CONFIG]'),
    ] = None,
    data_dir: Annotated[
        str | None,
        typer.Option(
            metavar="DIR",
            help="Where smart-agent writes its files. [default: $XDG_DATA_HOME/smart-agent or "
            "~/.local/share/smart-agent; env SMART_AGENT_DATA_DIR]",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to serve the chat UI on.")] = DEFAULT_HOST,
    port: Annotated[str, typer.Option(metavar="PORT", help="Port to serve the chat UI on.")] = str(
        DEFAULT_PORT
    ),
    headless: Annotated[bool, typer.Option("--headless", help="Do not open a browser window.")] = False,
    allowed_origins: Annotated[
        str | None,
        typer.Option(
            metavar="ORIGINS",
            help="Comma-separated origins a reverse proxy serves the app at, e.g. "
            "https://chat.example.com. [env SMART_AGENT_ALLOWED_ORIGINS]",
        ),
    ] = None,
    expose_without_login: Annotated[
        bool,
        typer.Option(
            "--expose-without-login",
            help="Allow a non-loopback --host although there is no login: anyone who reaches the "
            "port can chat on your key. [env SMART_AGENT_EXPOSE_WITHOUT_LOGIN]",
        ),
    ] = False,
    mcp_user_servers: Annotated[
        bool,
        typer.Option(
            "--mcp-user-servers",
            help="Let chat users add HTTP MCP servers from the browser, on the URLs the Chainlit "
            "config's allow-list admits. [env SMART_AGENT_MCP_USER_SERVERS]",
        ),
    ] = False,
    redis_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Keep the API's runs in Redis Streams there, shared by every instance using it, e.g. "
            "redis://127.0.0.1:6379/0. [default: in memory; env SMART_AGENT_REDIS_URL]",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Keep chat history (and accounts) in this database: postgresql://USER:PASSWORD@HOST/DB "
            "or sqlite:////ABSOLUTE/PATH. [default: history.db in the data folder; env "
            "SMART_AGENT_DATABASE_URL, else DATABASE_URL]",
        ),
    ] = None,
    no_history: Annotated[
        bool,
        typer.Option(
            "--no-history",
            help="Keep no chat history: no sidebar, nothing stored, no login. [env SMART_AGENT_HISTORY=0]",
        ),
    ] = False,
    profile: Annotated[
        str | None,
        typer.Option(
            metavar="PROFILE",
            help="Chat profile a new chat starts with: assistant or team. [default: assistant; "
            "env SMART_AGENT_PROFILE]",
        ),
    ] = None,
    team_config: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="TOML file defining the Team profile's members and synthesiser. [default: the built-in "
            "researcher, critic and planner; env SMART_AGENT_TEAM_CONFIG]",
        ),
    ] = None,
    team_concurrency: Annotated[
        str | None,
        typer.Option(
            metavar="N",
            help="Team members working at once. [default: all, or 1 for the embedded model; "
            "env SMART_AGENT_TEAM_CONCURRENCY]",
        ),
    ] = None,
    think_tags: Annotated[
        str | None,
        typer.Option(
            metavar="MODE",
            help="How <think> tags in a reply's text are read: auto (a leading <think> block, or a lone "
            "</think>), prefilled (the model's template opens <think> in the prompt, as DeepSeek-R1's "
            "distills do: the reply starts thinking) or none. [default: auto; env SMART_AGENT_THINK_TAGS]",
        ),
    ] = None,
    hide_thinking: Annotated[
        bool,
        typer.Option(
            "--hide-thinking",
            help='Show only "Thinking… N s" while the model thinks, not its thoughts. '
            "[env SMART_AGENT_SHOW_THINKING=0]",
        ),
    ] = False,
    reasoning_effort: Annotated[
        str | None,
        typer.Option(
            metavar="EFFORT",
            help="Ask reasoning models for low, medium or high effort (sent as reasoning_effort). "
            "[default: none sent; env SMART_AGENT_REASONING_EFFORT]",
        ),
    ] = None,
) -> None:
    """Launch the Chainlit chat app.

    Exit codes: 0 stopped (Ctrl-C), 1 the machine stands in the way (the port in use, the model
    server or the history database failing), 2 a bad value.
    """
    try:
        settings = load_settings(
            {
                "stream_batching": False if no_stream_batching else None,
                "batch_size": batch_size,
                "flush_interval": flush_interval,
                "max_events_per_second": max_events_per_second,
                "segment_chars": segment_chars,
                "adaptive_batching": True if adaptive_batching else None,
                "render_pacing": False if no_render_pacing else None,
                "debug": True if debug else None,
                "show_stats": True if show_stats else None,
                "model": model,
                "base_url": base_url,
                "mcp_config": mcp_config,
                "allowed_origins": allowed_origins,
                "expose_without_login": True if expose_without_login else None,
                "mcp_user_servers": True if mcp_user_servers else None,
                "redis_url": redis_url,
                "data_dir": data_dir,
                "database_url": database_url,
                "history": False if no_history else None,
                "profile": profile,
                "team_config": team_config,
                "team_concurrency": team_concurrency,
                "think_tags": think_tags,
                "show_thinking": False if hide_thinking else None,
                "reasoning_effort": reasoning_effort,
            }
        )
        port_number = parse_port(port)
        ensure_data_dir(settings)
        # With history on, the launcher checks for accounts once the database is open (web/launch.py).
        warning = check_exposure(host, settings, login=settings.history)
        if settings.mcp_config:
            load_mcp_config(settings.mcp_config)
        if settings.team_config:
            load_team(settings.team_config)
    except (ConfigError, McpError) as exc:
        raise _fail(exc) from None
    if warning:
        typer.echo(warning, err=True)
    from smart_agent.web.launch import launch

    launch(settings, host=host, port=port_number, headless=headless)


@app.command()
def models(
    base_url: Annotated[
        str | None,
        typer.Option(
            help="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1. [env OPENAI_BASE_URL]"
        ),
    ] = None,
) -> None:
    """List the models the backend offers: what the chat's Model setting and the API's `model` accept.

    Exit codes: 0 listed; 1 the server could not be reached or does not list its models; 2 a bad value.
    """
    import asyncio

    from smart_agent.llm.client import EMBEDDED_MODEL_ALIAS
    from smart_agent.llm.models import fetch_models

    try:
        settings = load_settings({"base_url": base_url})
    except ConfigError as exc:
        raise _fail(exc) from None
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


api_keys = typer.Typer(
    help="Manage the keys of the HTTP API (stored as hashes in the data folder).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(api_keys, name="api-keys")

DataDir = Annotated[
    str | None,
    typer.Option(
        metavar="DIR",
        help="The data folder holding api-keys.json. [default: $XDG_DATA_HOME/smart-agent or "
        "~/.local/share/smart-agent; env SMART_AGENT_DATA_DIR]",
    ),
]


def _key_store(data_dir: str | None, *, create: bool = False) -> KeyStore:
    """The key store of the data folder these flags and the environment name."""
    settings = load_settings({"data_dir": data_dir})
    folder = ensure_data_dir(settings) if create else resolve_data_dir(settings)
    return KeyStore(folder / KEYS_FILE)


@api_keys.command("add")
def api_keys_add(
    name: Annotated[str, typer.Argument(help="A name for the key: letters, digits, '.', '_', '-'.")],
    data_dir: DataDir = None,
) -> None:
    """Make a key and print it, this once. Only its hash is stored."""
    try:
        key = _key_store(data_dir, create=True).add(name)
    except (ConfigError, ApiKeyError, KeyFileError) as exc:
        raise _fail(exc) from None
    typer.echo(key)
    typer.echo(
        f"API key {name!r} created. It is shown only this once: store it now. "
        "Clients send it as `Authorization: Bearer KEY`.",
        err=True,
    )


@api_keys.command("list")
def api_keys_list(data_dir: DataDir = None) -> None:
    """List the keys' names and when they were made (never the keys)."""
    try:
        names = _key_store(data_dir).names()
    except (ConfigError, KeyFileError) as exc:
        raise _fail(exc) from None
    if not names:
        typer.echo("No API keys. Make one with `smart-agent api-keys add NAME`.", err=True)
    for name, created in names:
        typer.echo(f"{name}\t{created.isoformat()}")


@api_keys.command("remove")
def api_keys_remove(
    name: Annotated[str, typer.Argument(help="The name of the key to remove.")],
    data_dir: DataDir = None,
) -> None:
    """Remove a key. A running app refuses it at once."""
    try:
        _key_store(data_dir).remove(name)
    except (ConfigError, ApiKeyError, KeyFileError) as exc:
        raise _fail(exc) from None
    typer.echo(f"API key {name!r} removed.", err=True)


users = typer.Typer(
    help="Manage the accounts that may sign in to the chat (argon2id hashes in the history database).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(users, name="users")

UsersDataDir = Annotated[
    str | None,
    typer.Option(
        metavar="DIR",
        help="The data folder holding history.db. [default: $XDG_DATA_HOME/smart-agent or "
        "~/.local/share/smart-agent; env SMART_AGENT_DATA_DIR]",
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        metavar="URL",
        help="The history database, e.g. postgresql://USER:PASSWORD@HOST:5432/DATABASE. "
        "[default: history.db in the data folder; env SMART_AGENT_DATABASE_URL, else DATABASE_URL]",
    ),
]


@users.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The sign-in name: 1-64 letters, digits, '.', '_', '-', '@'.")],
    data_dir: UsersDataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add an account. The password is read from stdin when it is not a terminal, else prompted."""
    from smart_agent.history.accounts import check_name, check_password

    try:
        target = _accounts_target(data_dir, database_url)
        check_name(name)
        password = check_password(_read_password())
    except (ConfigError, AccountError) as exc:
        raise _fail(exc) from None
    _run_accounts(target, lambda accounts: accounts.add(name, password))
    typer.echo(f"Account {name!r} added.", err=True)


@users.command("list")
def users_list(data_dir: UsersDataDir = None, database_url: DatabaseUrl = None) -> None:
    """List the accounts' names and when they were made."""
    try:
        target = _accounts_target(data_dir, database_url)
    except ConfigError as exc:
        raise _fail(exc) from None
    names = _run_accounts(target, lambda accounts: accounts.names())
    if not names:
        typer.echo("No accounts. Add one with `smart-agent users add NAME`.", err=True)
    for name, created in names:
        typer.echo(f"{name}\t{created}")


@users.command("remove")
def users_remove(
    name: Annotated[str, typer.Argument(help="The name of the account to remove.")],
    data_dir: UsersDataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Remove an account (its chat history stays)."""
    try:
        target = _accounts_target(data_dir, database_url)
    except ConfigError as exc:
        raise _fail(exc) from None
    _run_accounts(target, lambda accounts: accounts.remove(name))
    typer.echo(f"Account {name!r} removed.", err=True)


def _accounts_target(data_dir: str | None, database_url: str | None) -> str | Path:
    """The history database these flags and the environment name: a URL, else the data folder's file."""
    settings = load_settings({"data_dir": data_dir, "database_url": database_url})
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
        raise _fail(exc) from None
    except HistoryError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=1) from None


@app.command()
def ask(
    question: Annotated[
        str, typer.Argument(metavar="QUESTION", help="The question; the reply streams to stdout.")
    ],
    url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help=f"The running app (`smart-agent chainlit`). "
            f"[default: {DEFAULT_APP_URL}; env SMART_AGENT_URL]",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(metavar="KEY", help="The app's API key. [env SMART_AGENT_API_KEY]"),
    ] = None,
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
        settings = load_settings({"app_url": url, "app_api_key": api_key})
        tries = parse_retries(retries)
        if not question.strip():
            raise ConfigError("the question must not be empty")
    except ConfigError as exc:
        raise _fail(exc) from None
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
