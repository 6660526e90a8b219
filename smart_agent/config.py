"""The settings: one typed model read once from flags, the environment and `.env`, validated."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict

from smart_agent.oauth import OAUTH_PROVIDER_VARS
from smart_agent.setting import field_parser, setting, source
from smart_agent.urls import (
    parse_app_url,
    parse_base_url,
    parse_database_url,
    parse_origins,
    parse_redis_url,
    redact_url_password,
    redact_url_secrets,
)
from smart_agent.values import MIN_SECRET_CHARS, parse_extensions, parse_folder, parse_secret

DEFAULT_BATCH_SIZE = 20
DEFAULT_FLUSH_INTERVAL = 0.1
DEFAULT_MAX_EVENTS_PER_SECOND = 20.0
DEFAULT_SEGMENT_CHARS = 6000
DEFAULT_PAGE_HOLD = 0.75  # a page reports every 250 ms while a reply streams: three missed reports
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

ThinkTags = Literal["auto", "prefilled", "none"]
THINK_TAGS: tuple[str, ...] = get_args(ThinkTags)
"""How `<think>` tags in a reply's text are read (smart_agent/llm/think.py)."""
ReasoningEffort = Literal["low", "medium", "high"]
REASONING_EFFORTS: tuple[str, ...] = get_args(ReasoningEffort)
"""The `reasoning_effort` values sent to the model (OpenAI, gpt-oss and vLLM accept them)."""
Profile = Literal["assistant", "team"]
PROFILES: tuple[str, ...] = get_args(Profile)
"""The chat profiles: one agent, or a team of agents whose notes a synthesiser turns into the answer."""


class ConfigError(ValueError):
    """A setting has a value that is not allowed; the message names it and what is allowed."""


class Settings(BaseModel):
    """Everything smart-agent can be told, after validation; `load_settings` reads it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # fmt: off
    # The model backend
    api_key: str | None = setting(
        None, "OPENAI_API_KEY", "API key of the OpenAI-compatible backend (any value works for local "
        "servers such as Ollama, LM Studio, vLLM, llama.cpp).", section="Model",
        default_text="none: with no URL either, the embedded SmolLM2-135M answers")
    base_url: str | None = setting(
        None, "OPENAI_BASE_URL", "OpenAI-compatible endpoint, e.g. http://localhost:11434/v1.",
        section="Model", flag="--base-url", metavar="URL", parse=parse_base_url,
        allowed="an http:// or https:// URL with a host", shown=redact_url_secrets,
        default_text="api.openai.com with a key, else the embedded model")
    model: str | None = setting(
        None, "SMART_AGENT_MODEL", "Model name.", section="Model", flag="--model", metavar="NAME",
        default_text="the server's first model (gpt-4o-mini on api.openai.com)")
    system_prompt: str | None = setting(
        None, "SMART_AGENT_SYSTEM_PROMPT", "System prompt prepended to every conversation.",
        section="Model")
    stream_timeout: float = setting(
        DEFAULT_STREAM_TIMEOUT, "SMART_AGENT_STREAM_TIMEOUT",
        "Seconds without data from the model before the reply fails with a timeout.", section="Model", gt=0)
    context_tokens: int | None = setting(
        None, "SMART_AGENT_CONTEXT_TOKENS", "The model's context in tokens.", section="Model",
        ge=MIN_CONTEXT_TOKENS, le=MAX_CONTEXT_TOKENS,
        default_text="4096 for the embedded model (its n_ctx), else 8192")
    max_input_chars: int | None = setting(
        None, "SMART_AGENT_MAX_INPUT_CHARS", "Longest user message accepted, in characters.",
        section="Model", ge=1, default_text="what fits the context (8,310 for the embedded model)")
    think_tags: ThinkTags = setting(
        "auto", "SMART_AGENT_THINK_TAGS", "How <think> tags in a reply's text are read: auto (a leading "
        "<think> block, or a lone </think>), prefilled (the model's template opens <think> in the prompt, "
        "as DeepSeek-R1's distills do: the reply starts thinking) or none.",
        section="Model", flag="--think-tags", metavar="MODE")
    show_thinking: bool = setting(
        True, "SMART_AGENT_SHOW_THINKING", "Stream the model's thinking into a step above the answer; off "
        '(--hide-thinking), show only "Thinking… N s" while the model thinks.',
        section="Model", flag="--hide-thinking")
    reasoning_effort: ReasoningEffort | None = setting(
        None, "SMART_AGENT_REASONING_EFFORT",
        "Ask reasoning models for low, medium or high effort (sent as reasoning_effort).",
        section="Model", flag="--reasoning-effort", metavar="EFFORT", default_text="none sent")

    # Streaming into the page
    stream_batching: bool = setting(
        True, "SMART_AGENT_STREAM_BATCHING", "Batch tokens into fewer UI events; off "
        "(--no-stream-batching), send one UI event per token, like native Chainlit.",
        section="Streaming", flag="--no-stream-batching")
    batch_size: int = setting(
        DEFAULT_BATCH_SIZE, "SMART_AGENT_BATCH_SIZE", "Tokens per UI event.",
        section="Streaming", ge=1, flag="--batch-size", metavar="N")
    flush_interval: float = setting(
        DEFAULT_FLUSH_INTERVAL, "SMART_AGENT_FLUSH_INTERVAL", "Longest a token waits in the buffer, in "
        "seconds.", section="Streaming", gt=0, flag="--flush-interval", metavar="SECONDS")
    max_events_per_second: float = setting(
        DEFAULT_MAX_EVENTS_PER_SECOND, "SMART_AGENT_MAX_EVENTS_PER_SECOND", "Cap on UI events per second "
        "per reply; keeps the browser from saturating.",
        section="Streaming", gt=0, flag="--max-events-per-second", metavar="RATE")
    segment_chars: int = setting(
        DEFAULT_SEGMENT_CHARS, "SMART_AGENT_SEGMENT_CHARS", "Continue a long reply in a new message "
        "after about this many characters; 0 turns it off.",
        section="Streaming", ge=0, flag="--segment-chars", metavar="CHARS")
    adaptive_batching: bool = setting(
        False, "SMART_AGENT_ADAPTIVE_BATCHING", "Let the flush interval grow with the message's length "
        "(max 0.5 s).", section="Streaming", flag="--adaptive-batching")
    render_pacing: bool = setting(
        True, "SMART_AGENT_RENDER_PACING", "Let each page's render reports slow its stream down within "
        "the caps above; off (--no-render-pacing), every page gets the fixed cap and segment size.",
        section="Streaming", flag="--no-render-pacing")
    page_hold: float = setting(
        DEFAULT_PAGE_HOLD, "SMART_AGENT_PAGE_HOLD", "Seconds a page may fall silent mid-reply (a hidden, "
        "frozen or cut-off tab) before its updates wait for it, to go out as one when it is back; 0 keeps "
        "sending at its pace.", section="Streaming", ge=0)
    show_stats: bool = setting(
        False, "SMART_AGENT_SHOW_STATS", "Show tokens, tokens/s and time under each reply.",
        section="Streaming", flag="--show-stats", default_text="off, on with --debug")
    debug: bool = setting(
        False, "SMART_AGENT_DEBUG", "Log batching statistics and pacing per reply; shows the stats "
        "line too.", section="Streaming", flag="--debug")

    # Tools
    max_tool_rounds: int = setting(
        DEFAULT_MAX_TOOL_ROUNDS, "SMART_AGENT_MAX_TOOL_ROUNDS", "Most tool rounds per user message.",
        section="Tools", ge=1, le=100)
    tool_timeout: float = setting(
        DEFAULT_TOOL_TIMEOUT, "SMART_AGENT_TOOL_TIMEOUT", "Seconds a tool may run before it fails with "
        "a timeout.", section="Tools", gt=0)
    mcp_config: str | None = setting(
        None, "SMART_AGENT_MCP_CONFIG", 'JSON file listing MCP servers: {"mcpServers": {name: '
        "{command, args, env} | {url}}}.", section="Tools", flag="--mcp-config", metavar="FILE")
    mcp_user_servers: bool = setting(
        False, "SMART_AGENT_MCP_USER_SERVERS", "Let chat users add HTTP MCP servers from the browser, "
        "on the URLs the Chainlit config's allow-list admits.", section="Tools", flag="--mcp-user-servers")

    # The Team profile
    profile: Profile = setting(
        "assistant", "SMART_AGENT_PROFILE", "Chat profile a new chat starts with: assistant (one agent) "
        "or team (several agents, then a synthesis).", section="Team", flag="--profile", metavar="PROFILE")
    team_config: str | None = setting(
        None, "SMART_AGENT_TEAM_CONFIG", "TOML file defining the Team profile's members and synthesiser.",
        section="Team", flag="--team-config", metavar="FILE",
        default_text="the built-in researcher, critic and planner")
    team_concurrency: int | None = setting(
        None, "SMART_AGENT_TEAM_CONCURRENCY", "Team members working at once.", section="Team",
        ge=1, le=1000, flag="--team-concurrency", metavar="N",
        default_text="all, or 1 for the embedded model")
    team_stream_live: bool = setting(
        True, "SMART_AGENT_TEAM_STREAM_LIVE", "Stream each team member's notes live into its step; off, "
        "show each member's notes when complete.", section="Team")
    team_shared_budget: bool = setting(
        True, "SMART_AGENT_TEAM_SHARED_BUDGET", "Benchmarks only: off caps each team member's stream on "
        "its own instead of one page-wide budget.", section="Team")

    # Attachments
    attachment_max_mb: int = setting(
        DEFAULT_ATTACHMENT_MAX_MB, "SMART_AGENT_ATTACHMENT_MAX_MB", "Largest file a chat message may "
        "carry, in MB (1,000,000 bytes, as Chainlit's page counts them).",
        section="Attachments", ge=1, le=100)
    attachment_max_files: int = setting(
        DEFAULT_ATTACHMENT_MAX_FILES, "SMART_AGENT_ATTACHMENT_MAX_FILES", "Most files one chat message "
        "may carry.", section="Attachments", ge=1, le=50)
    attachment_types: tuple[str, ...] = setting(
        DEFAULT_ATTACHMENT_TYPES, "SMART_AGENT_ATTACHMENT_TYPES", "Accepted file name extensions, "
        "comma-separated; a file's content must be what its name says.", section="Attachments",
        parse=parse_extensions, allowed="extensions separated by commas, like txt,md,png")

    # Data and history
    data_dir: Path | None = setting(
        None, "SMART_AGENT_DATA_DIR", "Where smart-agent writes its files.", section="Data and history",
        flag="--data-dir", metavar="DIR", parse=parse_folder, allowed="an absolute path (or starting with ~)",
        default_text="$XDG_DATA_HOME/smart-agent or ~/.local/share/smart-agent")
    history: bool = setting(
        True, "SMART_AGENT_HISTORY", "Chat history (threads in the sidebar, signed-in users); off "
        "(--no-history), no sidebar, nothing stored, no login.", section="Data and history",
        flag="--no-history")
    database_url: str | None = setting(
        None, "SMART_AGENT_DATABASE_URL", "Keep chat history (and accounts) in this database: "
        "postgresql://USER:PASSWORD@HOST:PORT/DB or sqlite:////ABSOLUTE/PATH.", section="Data and history",
        flag="--database-url", metavar="URL", parse=parse_database_url, fallback_env="DATABASE_URL",
        allowed="postgresql:// (or postgres://) URL, or sqlite://// and an absolute path",
        shown=redact_url_password, default_text="history.db in the data folder")
    auth_secret: str | None = setting(
        None, "CHAINLIT_AUTH_SECRET", "Signs login cookies; instances behind one balancer must share it "
        "(Chainlit's own variable; no flag: it would show in ps).", section="Data and history",
        parse=parse_secret, allowed=f"at least {MIN_SECRET_CHARS} characters", shown=lambda _: "***",
        default_text="one made once in the data folder")

    # Security
    allowed_origins: tuple[str, ...] = setting(
        (), "SMART_AGENT_ALLOWED_ORIGINS", "Comma-separated origins a reverse proxy serves the app at, "
        "e.g. https://chat.example.com.", section="Security", flag="--allowed-origins", metavar="ORIGINS",
        parse=parse_origins, allowed="origins separated by commas")
    expose_without_login: bool = setting(
        False, "SMART_AGENT_EXPOSE_WITHOUT_LOGIN", "Allow a non-loopback --host although there is no "
        "login: anyone who reaches the port can chat on your key.", section="Security",
        flag="--expose-without-login")

    # The HTTP API
    sse_heartbeat: float = setting(
        DEFAULT_SSE_HEARTBEAT, "SMART_AGENT_SSE_HEARTBEAT", "Seconds between `heartbeat` events on an "
        "event stream while nothing else is sent.", section="API", gt=0)
    sse_send_timeout: float = setting(
        DEFAULT_SSE_SEND_TIMEOUT, "SMART_AGENT_SSE_SEND_TIMEOUT", "Seconds one send to an event stream "
        "may take before the connection is closed (a frozen client).", section="API", gt=0)
    api_max_runs: int = setting(
        DEFAULT_API_MAX_RUNS, "SMART_AGENT_API_MAX_RUNS", "Running runs allowed per API key at once; "
        "beyond, 429.", section="API", ge=1, le=100_000)
    api_max_streams: int = setting(
        DEFAULT_API_MAX_STREAMS, "SMART_AGENT_API_MAX_STREAMS", "Open event streams allowed per API key "
        "at once (per instance); beyond, 429.", section="API", ge=1, le=100_000)
    run_retention: float = setting(
        DEFAULT_RUN_RETENTION, "SMART_AGENT_RUN_RETENTION", "Seconds a run's events stay readable after "
        "it ends.", section="API", gt=0)
    redis_url: str | None = setting(
        None, "SMART_AGENT_REDIS_URL", "Keep the API's runs in Redis Streams there, shared by every "
        "instance using it, e.g. redis://127.0.0.1:6379/0.", section="API", flag="--redis-url",
        metavar="URL", parse=parse_redis_url, allowed="a redis://, rediss:// or unix:// URL",
        shown=redact_url_secrets, default_text="in memory")
    lag_probe: str | None = setting(
        None, "SMART_AGENT_LAG_PROBE", "Benchmarks only: append event-loop lag samples (ms) to this "
        "file.", section="API")

    # `smart-agent ask`
    app_url: str | None = setting(
        None, "SMART_AGENT_URL", "The running app (`smart-agent chainlit`) that `smart-agent ask` calls.",
        section="ask", flag="--url", metavar="URL", parse=parse_app_url, default_text=DEFAULT_APP_URL,
        allowed="the app's http(s) URL: a host, optional port and path")
    app_api_key: str | None = setting(
        None, "SMART_AGENT_API_KEY", 'The app\'s API key, sent as "Authorization: Bearer KEY".',
        section="ask", flag="--api-key", metavar="KEY", default_text="none sent (the open loopback mode)")

    # Only the launcher knows it: handed to the app in this process (web/handoff.py), never read.
    embedded: bool = setting(
        False, None, "The backend is the embedded model the launcher started (its URL and key are in "
        "base_url and api_key).", section="Model")
    # fmt: on

    @property
    def uses_embedded_model(self) -> bool:
        """True on the bundled SmolLM2: the launcher started it, or no backend is configured so it will."""
        return self.embedded or (self.api_key is None and self.base_url is None)

    def to_env(self) -> dict[str, str]:
        """The environment variables that hand these settings to another process."""
        env: dict[str, str] = {}
        for name, info in Settings.model_fields.items():
            value, variable = getattr(self, name), source(info).env
            if value is None or variable is None:
                continue
            if isinstance(value, bool):
                value = "1" if value else "0"
            elif isinstance(value, tuple):
                value = ",".join(value)
            env[variable] = str(value)
        return env


def text_parser(name: str) -> Callable[[str], Any]:
    """How the text of setting `name` (a flag, a variable, a panel's value) becomes its value."""
    return field_parser(Settings.model_fields[name])


ENV_VARS: tuple[str, ...] = (
    tuple(env for info in Settings.model_fields.values() if (env := source(info).env))
    + tuple(env for info in Settings.model_fields.values() if (env := source(info).fallback_env))
    + tuple(name for names in OAUTH_PROVIDER_VARS.values() for name in names)
)
"""Every environment variable users may set for smart-agent."""


def _lookup(names: tuple[str, ...], values: Mapping[str, str | None]) -> tuple[str, str] | None:
    """The first of `names` set in `values`, with its value."""
    for name in names:
        value = values.get(name)
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
    for name, info in Settings.model_fields.items():
        spec = source(info)
        if spec.env is None:
            continue  # the launcher's own facts: never read from outside
        names = (spec.env, spec.fallback_env) if spec.fallback_env else (spec.env,)
        flag_value = (overrides or {}).get(name)
        if flag_value is not None:
            raw, where, origin = flag_value, spec.flag or spec.env, "flag"
        elif found := _lookup(names, env):
            (where, raw), origin = found, "environment"
        elif found := _lookup(names, dotenv):
            (where, raw), origin = found, ".env"
        else:
            continue
        raw = raw if isinstance(raw, str) else str(raw)
        try:
            values[name] = text_parser(name)(raw)
        except ValueError as exc:
            if where == spec.fallback_env:
                # A conventional variable may belong to another program (a MySQL DATABASE_URL):
                # one smart-agent cannot use is not smart-agent's, so it is ignored, not an error.
                continue
            shown = "" if origin == "flag" else f" (from the {origin})"
            raise ConfigError(f"invalid value {spec.shown(raw)!r} for {where}{shown}: {exc}") from None
    if values.get("debug") and "show_stats" not in values:
        values["show_stats"] = True  # --debug shows the figures under each reply unless told not to
    return Settings(**values)


def export(settings: Settings, extra: Mapping[str, str] | None = None) -> None:
    """Publish settings to this process's environment, the public contract for tools and children."""
    os.environ.update(settings.to_env())
    if extra:
        os.environ.update(extra)
