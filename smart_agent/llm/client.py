"""The OpenAI-compatible client: construction, model choice, and readable errors."""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import urlsplit, urlunsplit

import httpx2
import openai
from openai._base_client import AsyncHttpxClientWrapper

from smart_agent.config import Settings
from smart_agent.errors import ModelError
from smart_agent.llm.transport import ModelTransport

log = logging.getLogger("smart_agent.llm")

EMBEDDED_MODEL_ALIAS = "smollm2"
OPENAI_DEFAULT_MODEL = "gpt-4o-mini"


# llama.cpp's server closes the connection after each streamed reply while announcing keep-alive
# (cpp-httplib ends it when the stream's content provider returns false, as llama.cpp's does at the
# end). A client that reuses it before the close arrives fails with "Server disconnected without
# sending a response": 12 requests of 50 in a row did on xllamacpp 2026.10.11549. On loopback a new
# connection per request costs nothing.
def _default_http_client(
    timeout: httpx2.Timeout, *, keepalive: bool = True, ticks: bool = True
) -> httpx2.AsyncClient:
    """The HTTP client openai would build itself (its limits, redirects, closing when dropped: openai
    3.51 `AsyncAPIClient.__init__`) over the aiohttp transport; openai sends absolute URLs."""
    return AsyncHttpxClientWrapper(
        timeout=timeout, transport=ModelTransport(keepalive=keepalive, ticks=ticks)
    )


def make_client(settings: Settings, http_client: httpx2.AsyncClient | None = None) -> openai.AsyncOpenAI:
    """An AsyncOpenAI client for the configured backend; `http_client` is swappable in tests."""
    timeout = httpx2.Timeout(settings.stream_timeout, connect=10.0)
    return openai.AsyncOpenAI(
        # Local servers (llama.cpp, Ollama, LM Studio, vLLM) accept any key.
        api_key=settings.api_key or "not-needed",
        base_url=settings.base_url,
        timeout=timeout,
        # A chat UI should say at once that the backend failed rather than retry silently.
        max_retries=0,
        http_client=http_client
        or _default_http_client(timeout, keepalive=not settings.embedded, ticks=settings.stream_batching),
    )


def redact_url(url: str) -> str:
    """The URL without its user-info, query and fragment, which may hold credentials:
    `http://user:pw@host:9/v1?api-key=x` becomes `http://***@host:9/v1?***`."""
    try:
        scheme, netloc, path, query, fragment = urlsplit(url)
    except ValueError:  # unparseable: show nothing of it rather than risk a secret
        return "(the configured URL)"
    _, at, host = netloc.rpartition("@")
    return urlunsplit(
        (scheme, f"***@{host}" if at else host, path, "***" if query else "", "***" if fragment else "")
    )


def _scrub(text: str, url: str | None) -> str:
    """`text` without the backend URL's secrets, should a library have echoed them."""
    if not url:
        return text
    text = text.replace(url, redact_url(url))
    try:
        parts = urlsplit(url)
    except ValueError:
        return text
    userinfo = parts.netloc.rpartition("@")[0]
    for secret in (userinfo, parts.query, parts.fragment):
        if secret:
            text = text.replace(secret, "***")
    return text


def describe_error(
    exc: BaseException, settings: Settings, model: str | None = None, *, mid_stream: bool = False
) -> ModelError:
    """Turn an SDK or transport error into a short message a user can act on; the log keeps the detail.

    The message says what happened and what to do, in the user's words: no exception class, module
    or environment variable (tests/test_user_messages.py).
    """
    if isinstance(exc, ModelError):
        return exc
    log.warning("model request failed: %s", _scrub(f"{type(exc).__name__}: {exc}", settings.base_url))
    error = _describe(exc, settings, model, mid_stream=mid_stream)
    return ModelError(_scrub(str(error), settings.base_url))


def _where(settings: Settings) -> str:
    """The backend as error messages name it: its URL without secrets."""
    return redact_url(settings.base_url) if settings.base_url else "the OpenAI API"


def _describe(exc: BaseException, settings: Settings, model: str | None, *, mid_stream: bool) -> ModelError:
    where = _where(settings)
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return ModelError(
            f"The model server at {where} stopped responding: nothing came for "
            f"{settings.stream_timeout:g} s. Try again; a server that is only slow needs smart-agent "
            "started with a longer stream timeout."
        )
    if not mid_stream and isinstance(exc, openai.APIConnectionError | httpx2.ConnectError):
        return ModelError(
            f"Could not connect to the model server at {where}. Check that it is running, then send "
            "your message again."
        )
    if isinstance(exc, openai.AuthenticationError):
        return ModelError(
            f"The model server at {where} refused the API key (HTTP 401). Start smart-agent with a key "
            "this server accepts."
        )
    if isinstance(exc, openai.NotFoundError):
        return ModelError(
            f"Model {model or settings.model or '?'!r} was not found at {where} (HTTP 404). Start "
            "smart-agent with a model the server offers."
        )
    if isinstance(exc, openai.RateLimitError):
        return ModelError(
            f"The model server at {where} is rate-limiting requests (HTTP 429). Wait a moment and try again."
        )
    if isinstance(exc, openai.BadRequestError) and "image" in _server_says(exc).lower():
        return ModelError(
            f"The model at {where} does not take images (HTTP 400: {_server_says(exc)}). The message was "
            "not kept: send it without images, or use a model that reads them."
        )
    if isinstance(exc, openai.APIStatusError):
        detail = _server_says(exc)
        return ModelError(
            f"The model server at {where} failed (HTTP {exc.status_code}{': ' + detail if detail else ''}). "
            "Try again in a moment."
        )
    if isinstance(exc, openai.APIConnectionError | httpx2.HTTPError):
        return ModelError(
            "The connection to the model server broke off mid-reply; what arrived is kept. Send your "
            "message again to retry."
        )
    if isinstance(exc, openai.APIError):
        return ModelError(f"The model server reported an error mid-reply: {_words(exc.message)}")
    if isinstance(exc, json.JSONDecodeError):
        return ModelError(
            "The model server sent a malformed event mid-reply (not JSON); what arrived is kept. Send "
            "your message again to retry."
        )
    return ModelError("The model failed unexpectedly. Send your message again to retry.")


def _server_says(exc: openai.APIStatusError) -> str:
    """The server's own words about a failed request: its error body's message, without openai's
    `Error code: 500 - ` prefix."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        said = error.get("message") if isinstance(error, dict) else error
        if isinstance(said, str) and said.strip():
            return _words(said).rstrip(".")
    text = exc.message.removeprefix(f"Error code: {exc.status_code}").lstrip(" -")
    return _words(text).rstrip(".")


_CLASS_PREFIX = re.compile(r"^(?:[\w.]+\.)?[A-Z]\w*(?:Error|Exception): ")


def _words(text: str) -> str:
    """A server's message as shown: short, without the exception class a Python server may lead with."""
    return _short(_CLASS_PREFIX.sub("", text.strip()))


def ended_early(settings: Settings) -> ModelError:
    """The error for a stream that stopped without a finish reason: the reply is incomplete."""
    return ModelError(
        f"The model server at {_where(settings)} ended the reply early (its stream stopped without a finish "
        "reason); what arrived is kept."
    )


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
