"""Settings read once from flags, the environment and `.env`, validated; the only reader of os.environ."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values

DEFAULT_BATCH_SIZE = 20
DEFAULT_FLUSH_INTERVAL = 0.1
DEFAULT_MAX_EVENTS_PER_SECOND = 20.0
DEFAULT_SEGMENT_CHARS = 6000
DEFAULT_STREAM_TIMEOUT = 60.0
DEFAULT_MAX_TOOL_ROUNDS = 8
DEFAULT_TOOL_TIMEOUT = 30.0
# The context sizes a request may be fitted to: below 512 tokens nothing useful fits.
MIN_CONTEXT_TOKENS = 512
MAX_CONTEXT_TOKENS = 10_000_000
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_SSE_HEARTBEAT = 15.0
DEFAULT_SSE_SEND_TIMEOUT = 30.0
DEFAULT_API_MAX_RUNS = 4
DEFAULT_API_MAX_STREAMS = 8
DEFAULT_RUN_RETENTION = 600.0
DEFAULT_APP_URL = "http://127.0.0.1:8000"
DEFAULT_ASK_RETRIES = 5
MAX_ASK_RETRIES = 100
DEFAULT_ATTACHMENT_MAX_MB = 5
DEFAULT_ATTACHMENT_MAX_FILES = 5
DEFAULT_ATTACHMENT_TYPES = (
    "txt", "md", "csv", "json", "yaml", "yml", "toml", "xml", "html", "log",
    "py", "js", "ts", "java", "c", "h", "cpp", "go", "rs", "rb", "sh", "sql",
    "png", "jpg", "jpeg", "gif", "webp",
)  # fmt: skip

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A setting has a value that is not allowed; the message names it and what is allowed."""


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("must be one of 1/0, true/false, yes/no, on/off")


def _parse_int(low: int, high: int | None = None) -> Callable[[str], int]:
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


def _parse_optional_int(low: int, high: int | None = None) -> Callable[[str], int | None]:
    parse_int = _parse_int(low, high)

    def parse(text: str) -> int | None:
        return parse_int(text) if text.strip() else None

    return parse


def _parse_float(low: float, *, inclusive: bool) -> Callable[[str], float]:
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


def _parse_optional_str(text: str) -> str | None:
    return text.strip() or None


def _parse_extensions(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip().lower().lstrip(".") for part in text.split(",") if part.strip()))
    if not names or not all(re.fullmatch(r"[a-z0-9]{1,10}", name) for name in names):
        raise ValueError("must be file name extensions separated by commas, like txt,md,png")
    return names


THINK_TAGS = ("auto", "prefilled", "none")
"""How `<think>` tags in a reply's text are read (smart_agent/llm/think.py)."""
REASONING_EFFORTS = ("low", "medium", "high")
"""The `reasoning_effort` values sent to the model (OpenAI, gpt-oss and vLLM accept them)."""


def _parse_choice(choices: tuple[str, ...], *, optional: bool = False) -> Callable[[str], Any]:
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


PROFILES = ("assistant", "team")
"""The chat profiles: one agent, or a team of agents whose notes a synthesiser turns into the answer."""


def _parse_profile(text: str) -> str:
    value = text.strip().lower()
    if value not in PROFILES:
        raise ValueError(f"must be one of {', '.join(PROFILES)}")
    return value


DEFAULT_PORTS = {"http": 80, "https": 443}
"""The port a URL of each scheme the app serves means when it names none."""
_HOSTNAME = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]*:[0-9a-f:.]*")  # a name, an IPv4 or an IPv6 address


def parse_origin(text: str) -> str:
    """`text` as a browser writes an origin (`https://chat.example.com`); ValueError if it is not one."""
    value = text.strip()
    if value.endswith("/"):
        value = value[:-1]
    allowed = "must be an origin like https://chat.example.com (scheme, host and optional port only)"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError(allowed) from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in DEFAULT_PORTS or "@" in parts.netloc or parts.path or value.endswith(("?", "#")):
        raise ValueError(allowed)
    if parts.query or parts.fragment or not _HOSTNAME.fullmatch(host):
        raise ValueError(allowed)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}"


def _parse_origins(text: str) -> tuple[str, ...]:
    origins = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            origins.append(parse_origin(item))
        except ValueError as exc:
            raise ValueError(f"{item!r} {exc}") from None
    return tuple(dict.fromkeys(origins))


_BACKEND_HOST = re.compile(r"[a-z0-9_.-]*[a-z0-9][a-z0-9_.-]*|[0-9a-f:.]*:[0-9a-f:.]*")
"""A backend's host: a name (Docker's service names may hold `_`), an IPv4 or an IPv6 address."""


def parse_http_url(text: str, example: str) -> str:
    """`text` if it is an http(s) URL with a host (and a valid port); ValueError citing `example` if not."""
    value = text.strip()
    allowed = f"must be an http:// or https:// URL with a host, like {example}"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        raise ValueError(allowed) from None
    if parts.scheme.lower() not in DEFAULT_PORTS or not _BACKEND_HOST.fullmatch(parts.hostname or ""):
        raise ValueError(allowed)
    return value


def _parse_base_url(text: str) -> str | None:
    return parse_http_url(text, "http://localhost:11434/v1") if text.strip() else None


_REDIS_SCHEMES = ("redis", "rediss", "unix")


def _parse_redis_url(text: str) -> str | None:
    value = text.strip()
    if not value:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        raise ValueError("must be a URL like redis://127.0.0.1:6379/0") from None
    where = parts.path if parts.scheme == "unix" else parts.hostname
    if parts.scheme not in _REDIS_SCHEMES or not where or not value.startswith(f"{parts.scheme}://"):
        raise ValueError("must be a URL like redis://127.0.0.1:6379/0 (redis://, rediss:// or unix://)")
    return value


def _parse_app_url(text: str) -> str | None:
    value = text.strip().rstrip("/")
    if not value:
        return None
    allowed = (
        "must be the app's URL like http://127.0.0.1:8000 (http or https, a host, optional port and path)"
    )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        raise ValueError(allowed) from None
    host = parts.hostname or ""
    if parts.scheme.lower() not in DEFAULT_PORTS or "@" in parts.netloc or not _HOSTNAME.fullmatch(host):
        raise ValueError(allowed)
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise ValueError(allowed)
    return value


def _parse_optional_dir(text: str) -> Path | None:
    value = text.strip()
    if not value:
        return None
    path = Path(value).expanduser()
    # A relative folder would depend on where the command is started, the very thing the data
    # folder exists to avoid.
    if not path.is_absolute():
        raise ValueError("must be an absolute path (or start with ~)")
    return path


_DATABASE_SCHEMES = ("postgresql", "postgres", "sqlite")


def _parse_database_url(text: str) -> str | None:
    value = text.strip()
    if not value:
        return None
    allowed = (
        "must be postgresql://USER:PASSWORD@HOST:PORT/DATABASE or sqlite:////ABSOLUTE/PATH "
        "(postgres:// and libpq's ?sslmode= are accepted)"
    )
    scheme, _, rest = value.partition("://")
    if not rest or scheme.lower() not in _DATABASE_SCHEMES:
        raise ValueError(allowed)
    # Imported here: SQLAlchemy loads only when a database is named.
    from smart_agent.history.urls import database_url

    try:
        database_url(value)
    except ValueError:
        raise ValueError(allowed) from None
    # A relative SQLite path would depend on where the command is started.
    if scheme.lower() == "sqlite" and not rest.startswith("//"):
        raise ValueError(allowed)
    return value


_MIN_SECRET_CHARS = 32


def _parse_auth_secret(text: str) -> str | None:
    value = text.strip()
    if not value:
        return None
    if len(value) < _MIN_SECRET_CHARS:
        raise ValueError(f"must be at least {_MIN_SECRET_CHARS} characters (e.g. `openssl rand -base64 48`)")
    return value


def _redact_url(text: str) -> str:
    """`text` with the password of a `scheme://user:password@host` URL replaced by ***."""
    return re.sub(r"(://[^/@:]*:)[^/]*@", r"\1***@", text)  # up to the last @: passwords may hold one


def redact_url_secrets(text: str) -> str:
    """`text` without what may hide credentials in a URL: user-info (`***@`), query and fragment."""
    text = re.sub(r"://[^/?#]*@", "://***@", text)  # up to the last @ of the authority
    return re.sub(r"([?#]).*", r"\1***", text, count=1)


@dataclass(frozen=True)
class _Field:
    env: str
    flag: str
    parse: Callable[[str], Any]
    fallback_env: str | None = None
    """A standard variable read when `env` is not set (DATABASE_URL, as hosting platforms set it)."""
    shown: Callable[[str], str] = str
    """How a bad value is quoted in the error (without the secrets it may hold)."""
    internal: bool = False
    """Set by smart-agent for the app it starts, not by users: read from the environment only (no
    flag, no .env) and left out of ENV_VARS and .env.example."""


# One row per setting: its environment variable, its CLI flag, and its parser.
_FIELDS: dict[str, _Field] = {
    "stream_batching": _Field("SMART_AGENT_STREAM_BATCHING", "--no-stream-batching", _parse_bool),
    "batch_size": _Field("SMART_AGENT_BATCH_SIZE", "--batch-size", _parse_int(1)),
    "flush_interval": _Field(
        "SMART_AGENT_FLUSH_INTERVAL", "--flush-interval", _parse_float(0.0, inclusive=False)
    ),
    "max_events_per_second": _Field(
        "SMART_AGENT_MAX_EVENTS_PER_SECOND",
        "--max-events-per-second",
        _parse_float(0.0, inclusive=False),
    ),
    "segment_chars": _Field("SMART_AGENT_SEGMENT_CHARS", "--segment-chars", _parse_int(0)),
    "adaptive_batching": _Field("SMART_AGENT_ADAPTIVE_BATCHING", "--adaptive-batching", _parse_bool),
    "show_stats": _Field("SMART_AGENT_SHOW_STATS", "--show-stats", _parse_bool),
    "render_pacing": _Field("SMART_AGENT_RENDER_PACING", "--no-render-pacing", _parse_bool),
    "debug": _Field("SMART_AGENT_DEBUG", "--debug", _parse_bool),
    "stream_timeout": _Field(
        "SMART_AGENT_STREAM_TIMEOUT", "--stream-timeout", _parse_float(0.0, inclusive=False)
    ),
    "api_key": _Field("OPENAI_API_KEY", "--api-key", _parse_optional_str),
    "base_url": _Field("OPENAI_BASE_URL", "--base-url", _parse_base_url, shown=redact_url_secrets),
    "model": _Field("SMART_AGENT_MODEL", "--model", _parse_optional_str),
    "system_prompt": _Field("SMART_AGENT_SYSTEM_PROMPT", "--system-prompt", _parse_optional_str),
    "max_tool_rounds": _Field("SMART_AGENT_MAX_TOOL_ROUNDS", "--max-tool-rounds", _parse_int(1, 100)),
    "tool_timeout": _Field("SMART_AGENT_TOOL_TIMEOUT", "--tool-timeout", _parse_float(0.0, inclusive=False)),
    "mcp_config": _Field("SMART_AGENT_MCP_CONFIG", "--mcp-config", _parse_optional_str),
    "lag_probe": _Field("SMART_AGENT_LAG_PROBE", "--lag-probe", _parse_optional_str),
    "max_input_chars": _Field("SMART_AGENT_MAX_INPUT_CHARS", "--max-input-chars", _parse_optional_int(1)),
    "context_tokens": _Field(
        "SMART_AGENT_CONTEXT_TOKENS",
        "--context-tokens",
        _parse_optional_int(MIN_CONTEXT_TOKENS, MAX_CONTEXT_TOKENS),
    ),
    "allowed_origins": _Field("SMART_AGENT_ALLOWED_ORIGINS", "--allowed-origins", _parse_origins),
    "expose_without_login": _Field("SMART_AGENT_EXPOSE_WITHOUT_LOGIN", "--expose-without-login", _parse_bool),
    "mcp_user_servers": _Field("SMART_AGENT_MCP_USER_SERVERS", "--mcp-user-servers", _parse_bool),
    "data_dir": _Field("SMART_AGENT_DATA_DIR", "--data-dir", _parse_optional_dir),
    "history": _Field("SMART_AGENT_HISTORY", "--no-history", _parse_bool),
    "sse_heartbeat": _Field(
        "SMART_AGENT_SSE_HEARTBEAT", "--sse-heartbeat", _parse_float(0.0, inclusive=False)
    ),
    "sse_send_timeout": _Field(
        "SMART_AGENT_SSE_SEND_TIMEOUT", "--sse-send-timeout", _parse_float(0.0, inclusive=False)
    ),
    "api_max_runs": _Field("SMART_AGENT_API_MAX_RUNS", "--api-max-runs", _parse_int(1, 100_000)),
    "api_max_streams": _Field("SMART_AGENT_API_MAX_STREAMS", "--api-max-streams", _parse_int(1, 100_000)),
    "run_retention": _Field(
        "SMART_AGENT_RUN_RETENTION", "--run-retention", _parse_float(0.0, inclusive=False)
    ),
    "redis_url": _Field("SMART_AGENT_REDIS_URL", "--redis-url", _parse_redis_url, shown=redact_url_secrets),
    "database_url": _Field(
        "SMART_AGENT_DATABASE_URL",
        "--database-url",
        _parse_database_url,
        fallback_env="DATABASE_URL",
        shown=_redact_url,
    ),
    "profile": _Field("SMART_AGENT_PROFILE", "--profile", _parse_profile),
    "team_config": _Field("SMART_AGENT_TEAM_CONFIG", "--team-config", _parse_optional_str),
    "team_concurrency": _Field(
        "SMART_AGENT_TEAM_CONCURRENCY", "--team-concurrency", _parse_optional_int(1, 1000)
    ),
    "team_shared_budget": _Field(
        "SMART_AGENT_TEAM_SHARED_BUDGET", "SMART_AGENT_TEAM_SHARED_BUDGET", _parse_bool
    ),
    "team_stream_live": _Field("SMART_AGENT_TEAM_STREAM_LIVE", "SMART_AGENT_TEAM_STREAM_LIVE", _parse_bool),
    "think_tags": _Field("SMART_AGENT_THINK_TAGS", "--think-tags", _parse_choice(THINK_TAGS)),
    "show_thinking": _Field("SMART_AGENT_SHOW_THINKING", "--hide-thinking", _parse_bool),
    "reasoning_effort": _Field(
        "SMART_AGENT_REASONING_EFFORT", "--reasoning-effort", _parse_choice(REASONING_EFFORTS, optional=True)
    ),
    "attachment_max_mb": _Field(
        "SMART_AGENT_ATTACHMENT_MAX_MB", "SMART_AGENT_ATTACHMENT_MAX_MB", _parse_int(1, 100)
    ),
    "attachment_max_files": _Field(
        "SMART_AGENT_ATTACHMENT_MAX_FILES", "SMART_AGENT_ATTACHMENT_MAX_FILES", _parse_int(1, 50)
    ),
    "attachment_types": _Field(
        "SMART_AGENT_ATTACHMENT_TYPES", "SMART_AGENT_ATTACHMENT_TYPES", _parse_extensions
    ),
    # The launcher's hand-off to the app it starts: the backend URL and key are the embedded server's.
    "embedded": _Field("SMART_AGENT_EMBEDDED", "SMART_AGENT_EMBEDDED", _parse_bool, internal=True),
    # `smart-agent ask`: where the running app is, and the API key it is called with.
    "app_url": _Field("SMART_AGENT_URL", "--url", _parse_app_url),
    "app_api_key": _Field("SMART_AGENT_API_KEY", "--api-key", _parse_optional_str),
    # Chainlit's own variable: instances behind one balancer must share it (no flag: it would show in ps).
    "auth_secret": _Field(
        "CHAINLIT_AUTH_SECRET", "CHAINLIT_AUTH_SECRET", _parse_auth_secret, shown=lambda _: "***"
    ),
}


# Chainlit's OAuth providers and the variables that must all be set for each (chainlit/oauth_providers.py,
# 2.12). Chainlit reads them itself; smart-agent only asks whether any provider is set up (a login exists).
OAUTH_PROVIDER_VARS: dict[str, tuple[str, ...]] = {
    "github": ("OAUTH_GITHUB_CLIENT_ID", "OAUTH_GITHUB_CLIENT_SECRET"),
    "google": ("OAUTH_GOOGLE_CLIENT_ID", "OAUTH_GOOGLE_CLIENT_SECRET"),
    "azure-ad": ("OAUTH_AZURE_AD_CLIENT_ID", "OAUTH_AZURE_AD_CLIENT_SECRET", "OAUTH_AZURE_AD_TENANT_ID"),
    "azure-ad-hybrid": (
        "OAUTH_AZURE_AD_HYBRID_CLIENT_ID",
        "OAUTH_AZURE_AD_HYBRID_CLIENT_SECRET",
        "OAUTH_AZURE_AD_HYBRID_TENANT_ID",
    ),
    "okta": ("OAUTH_OKTA_CLIENT_ID", "OAUTH_OKTA_CLIENT_SECRET", "OAUTH_OKTA_DOMAIN"),
    "auth0": ("OAUTH_AUTH0_CLIENT_ID", "OAUTH_AUTH0_CLIENT_SECRET", "OAUTH_AUTH0_DOMAIN"),
    "descope": ("OAUTH_DESCOPE_CLIENT_ID", "OAUTH_DESCOPE_CLIENT_SECRET"),
    "aws-cognito": ("OAUTH_COGNITO_CLIENT_ID", "OAUTH_COGNITO_CLIENT_SECRET", "OAUTH_COGNITO_DOMAIN"),
    "gitlab": ("OAUTH_GITLAB_CLIENT_ID", "OAUTH_GITLAB_CLIENT_SECRET", "OAUTH_GITLAB_DOMAIN"),
    "keycloak": (
        "OAUTH_KEYCLOAK_CLIENT_ID",
        "OAUTH_KEYCLOAK_CLIENT_SECRET",
        "OAUTH_KEYCLOAK_REALM",
        "OAUTH_KEYCLOAK_BASE_URL",
    ),
    "generic": (
        "OAUTH_GENERIC_CLIENT_ID",
        "OAUTH_GENERIC_CLIENT_SECRET",
        "OAUTH_GENERIC_AUTH_URL",
        "OAUTH_GENERIC_TOKEN_URL",
        "OAUTH_GENERIC_USER_INFO_URL",
        "OAUTH_GENERIC_SCOPES",
    ),
}

ENV_VARS: tuple[str, ...] = (
    tuple(spec.env for spec in _FIELDS.values() if not spec.internal)
    + tuple(spec.fallback_env for spec in _FIELDS.values() if spec.fallback_env)
    + tuple(name for names in OAUTH_PROVIDER_VARS.values() for name in names)
)
"""Every environment variable users may set for smart-agent."""

INTERNAL_ENV_VARS: tuple[str, ...] = tuple(spec.env for spec in _FIELDS.values() if spec.internal)
"""The variables smart-agent sets for the app it starts (and reads there), never documented for users."""


def oauth_providers(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The OAuth providers whose variables are all set in the environment, as Chainlit sees them."""
    env = os.environ if environ is None else environ
    return tuple(name for name, names in OAUTH_PROVIDER_VARS.items() if all(env.get(var) for var in names))


@dataclass(frozen=True)
class Settings:
    """Everything smart-agent can be told, after validation."""

    stream_batching: bool = True
    batch_size: int = DEFAULT_BATCH_SIZE
    flush_interval: float = DEFAULT_FLUSH_INTERVAL
    max_events_per_second: float = DEFAULT_MAX_EVENTS_PER_SECOND
    segment_chars: int = DEFAULT_SEGMENT_CHARS
    adaptive_batching: bool = False
    render_pacing: bool = True
    """Each page's render reports set its pace within the flags' bounds (streaming/render_control.py)."""
    show_stats: bool = False
    """A line under each reply: tokens, tok/s and time; on with --debug unless set off."""
    debug: bool = False
    stream_timeout: float = DEFAULT_STREAM_TIMEOUT
    api_key: str | None = None
    base_url: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS
    tool_timeout: float = DEFAULT_TOOL_TIMEOUT
    mcp_config: str | None = None
    max_input_chars: int | None = None  # None: what fits in the context (smart_agent.llm.context)
    lag_probe: str | None = None
    context_tokens: int | None = None  # None: the embedded server's n_ctx, else DEFAULT_CONTEXT_TOKENS
    allowed_origins: tuple[str, ...] = ()
    expose_without_login: bool = False
    mcp_user_servers: bool = False
    data_dir: Path | None = None
    """Where smart-agent writes; None means the XDG default (see `resolve_data_dir`)."""
    history: bool = True
    """Chat history (threads in the sidebar) in the history database."""
    sse_heartbeat: float = DEFAULT_SSE_HEARTBEAT
    sse_send_timeout: float = DEFAULT_SSE_SEND_TIMEOUT
    api_max_runs: int = DEFAULT_API_MAX_RUNS
    api_max_streams: int = DEFAULT_API_MAX_STREAMS
    run_retention: float = DEFAULT_RUN_RETENTION
    redis_url: str | None = None
    """Runs go to Redis Streams there (shared by instances); None keeps them in memory."""
    database_url: str | None = None
    """The history database (postgresql:// or sqlite:///); None means history.db in the data folder."""
    app_url: str | None = None
    """The running app `smart-agent ask` calls; None means DEFAULT_APP_URL."""
    app_api_key: str | None = None
    """The API key `smart-agent ask` sends as `Authorization: Bearer`."""
    auth_secret: str | None = None
    """Signs login tokens; None means the one kept in the data folder (history/secret.py)."""
    profile: str = "assistant"
    """The chat profile a new chat starts with (PROFILES)."""
    team_config: str | None = None
    """A TOML file defining the Team profile's members; None means the built-in team (smart_agent.team)."""
    team_concurrency: int | None = None
    """Members working at once; None means all of them, or 1 for the embedded model."""
    team_shared_budget: bool = True
    """Members' streams share one page-wide budget; off (benchmarks only), each has its own cap."""
    team_stream_live: bool = True
    """Members' notes stream into their steps; off, each member's notes appear when complete."""
    think_tags: str = "auto"
    """How `<think>` tags in the reply's text are read (THINK_TAGS; smart_agent/llm/think.py)."""
    show_thinking: bool = True
    """The model's thinking streams into a step above the answer; off, a live "Thinking… N s" line."""
    reasoning_effort: str | None = None
    """Sent as `reasoning_effort` (REASONING_EFFORTS); None sends nothing (the server's default)."""
    attachment_max_mb: int = DEFAULT_ATTACHMENT_MAX_MB
    """Largest attached file in MB (1,000,000 bytes, as Chainlit's page counts them)."""
    attachment_max_files: int = DEFAULT_ATTACHMENT_MAX_FILES
    """Most files attached to one message."""
    attachment_types: tuple[str, ...] = DEFAULT_ATTACHMENT_TYPES
    """File name extensions accepted; the content must be what the name says (smart_agent/attachments)."""
    embedded: bool = False
    """The backend is the embedded model the launcher started (its URL and key are in base_url, api_key)."""

    @property
    def uses_embedded_model(self) -> bool:
        """True on the bundled SmolLM2: the launcher started it, or no backend is configured so it will."""
        return self.embedded or (self.api_key is None and self.base_url is None)

    def to_env(self) -> dict[str, str]:
        """The environment variables that hand these settings to another process."""
        env: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, bool):
                value = "1" if value else "0"
            elif isinstance(value, tuple):
                value = ",".join(value)
            env[_FIELDS[f.name].env] = str(value)
        return env


def _lookup(names: tuple[str, ...], source: Mapping[str, str | None]) -> tuple[str, str] | None:
    """The first of `names` set in `source`, with its value."""
    for name in names:
        value = source.get(name)
        if value is not None:
            return name, value
    return None


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    dotenv_path: str | Path | None = ".env",
) -> Settings:
    """Merge flags over the environment over `.env` over defaults, validating every value."""
    env = os.environ if environ is None else environ
    dotenv: dict[str, str | None] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        dotenv = dotenv_values(dotenv_path)
    values: dict[str, Any] = {}
    for name, spec in _FIELDS.items():
        names = (spec.env, spec.fallback_env) if spec.fallback_env else (spec.env,)
        flag_value = None if spec.internal else (overrides or {}).get(name)
        if flag_value is not None:
            raw, where, source = flag_value, spec.flag, "flag"
        elif found := _lookup(names, env):
            (where, raw), source = found, "environment"
        elif spec.internal:
            continue
        elif found := _lookup(names, dotenv):
            (where, raw), source = found, ".env"
        else:
            continue
        if not isinstance(raw, str):
            raw = str(raw)
        try:
            values[name] = spec.parse(raw)
        except ValueError as exc:
            if where == spec.fallback_env:
                # A conventional variable may belong to another program (a MySQL DATABASE_URL):
                # one smart-agent cannot use is not smart-agent's, so it is ignored, not an error.
                continue
            origin = "" if source == "flag" else f" (from the {source})"
            raise ConfigError(f"invalid value {spec.shown(raw)!r} for {where}{origin}: {exc}") from None
    if values.get("debug") and "show_stats" not in values:
        values["show_stats"] = True  # --debug shows the figures under each reply unless told not to
    return Settings(**values)


# What the per-session settings panel may change, with the label it shows.
SESSION_SETTINGS: dict[str, str] = {
    "stream_batching": "Batching",
    "batch_size": "Batch size",
    "flush_interval": "Flush interval (s)",
    "adaptive_batching": "Adaptive batching",
    "segment_chars": "Segment size (characters, 0 = off)",
    "team_stream_live": "Team: stream members live",
    "team_concurrency": "Team: members at once (empty = all, 1 for the embedded model)",
    "show_thinking": "Show thinking",
    "reasoning_effort": "Reasoning effort",
}


OPTIONAL_SESSION_SETTINGS = frozenset({"team_concurrency", "reasoning_effort"})
"""Panel settings whose empty value means the default."""

SMOOTHNESS: dict[str, tuple[str, dict[str, bool]]] = {
    "smooth": ("Smooth (recommended)", {"stream_batching": True, "adaptive_batching": False}),
    "instant": (
        "Instant: every word as it arrives (heavier on the browser)",
        {"stream_batching": False, "adaptive_batching": False},
    ),
    "calm": (
        "Calm: fewer, larger updates (lighter on a slow device)",
        {"stream_batching": True, "adaptive_batching": True},
    ),
}
"""The panel's one plain control for stream pacing: its choices, their labels and the settings they set."""


def smoothness(settings: Settings) -> str:
    """The SMOOTHNESS choice these settings amount to."""
    if not settings.stream_batching:
        return "instant"
    return "calm" if settings.adaptive_batching else "smooth"


def apply_session_settings(base: Settings, values: Mapping[str, Any]) -> Settings:
    """`base` with the panel's values applied; a bad value raises ConfigError naming its label.

    A changed Smoothness sets batching and adaptive batching itself, over the Advanced switches.
    """
    changes: dict[str, Any] = {}
    chosen = values.get("smoothness")
    if chosen is not None and chosen != smoothness(base):
        if chosen not in SMOOTHNESS:
            raise ConfigError(
                f"Smoothness: {chosen!r} is not allowed, it must be one of {', '.join(SMOOTHNESS)}"
            )
        changes.update(SMOOTHNESS[chosen][1])
    for name, label in SESSION_SETTINGS.items():
        if name in changes:
            continue
        if name in OPTIONAL_SESSION_SETTINGS and name in values and values[name] in (None, ""):
            changes[name] = None  # emptied: back to the default (for the team: all members)
            continue
        if name not in values or values[name] is None:
            continue
        raw = values[name]
        if isinstance(raw, bool):
            raw = "1" if raw else "0"
        elif (
            isinstance(raw, float)
            and raw.is_integer()
            and name in {"batch_size", "segment_chars", "team_concurrency"}
        ):
            raw = str(int(raw))
        try:
            changes[name] = _FIELDS[name].parse(str(raw))
        except ValueError as exc:
            raise ConfigError(f"{label}: {raw!r} is not allowed, it {exc}") from None
    return replace(base, **changes)


def parse_retries(text: str) -> int:
    """Parse `smart-agent ask --retries`: reconnects in a row without progress."""
    try:
        return _parse_int(0, MAX_ASK_RETRIES)(text)
    except ValueError as exc:
        raise ConfigError(f"invalid value {text!r} for --retries: {exc}") from None


def parse_port(text: str) -> int:
    """Parse the web server's TCP port."""
    try:
        return _parse_int(1, 65535)(text)
    except ValueError as exc:
        raise ConfigError(f"invalid value {text!r} for --port: {exc}") from None


# What a child process may inherit from this environment: what a program needs to run, nothing
# it could read as a setting of its own (llama.cpp's server reads LLAMA_ARG_HOST, LLAMA_API_KEY, ...).
CHILD_ENV_VARS = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "LD_LIBRARY_PATH", "SYSTEMROOT")


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for a child process: CHILD_ENV_VARS from this one, plus `extra`."""
    env = {name: os.environ[name] for name in CHILD_ENV_VARS if name in os.environ}
    env.update(extra or {})
    return env


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_DATA_HOME/smart-agent`, else `~/.local/share/smart-agent` (XDG Base Directory spec)."""
    env = os.environ if environ is None else environ
    xdg = Path(env.get("XDG_DATA_HOME") or ".")
    # The spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    if not xdg.is_absolute():
        xdg = Path(env.get("HOME") or Path.home()) / ".local" / "share"
    return xdg / "smart-agent"


def resolve_data_dir(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    """The per-user folder smart-agent writes to: SMART_AGENT_DATA_DIR, else the XDG default."""
    return settings.data_dir or default_data_dir(environ)


def ensure_data_dir(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    """Create the data folder if needed and return it; one that cannot be created is a ConfigError."""
    path = resolve_data_dir(settings, environ)
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise ConfigError(
            f"cannot use {str(path)!r} as the data folder (SMART_AGENT_DATA_DIR or --data-dir): "
            f"{exc.strerror or exc}; it must be a folder smart-agent can create and write to"
        ) from None
    return path


def export(settings: Settings, extra: Mapping[str, str] | None = None) -> None:
    """Publish settings to this process's environment so the Chainlit app reads the same values."""
    os.environ.update(settings.to_env())
    if extra:
        os.environ.update(extra)
