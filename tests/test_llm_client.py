"""Model clients: one TLS context per process, openai's own HTTP defaults otherwise (issue 14)."""

from __future__ import annotations

from typing import Any

import openai

from smart_agent.config import Settings
from smart_agent.llm.client import make_client


def _pool(client: openai.AsyncOpenAI) -> Any:
    return client._client._transport._pool  # type: ignore[attr-defined]


def test_make_client_when_called_per_session_then_tls_context_built_once() -> None:
    first, second = make_client(Settings()), make_client(Settings())
    assert _pool(first)._ssl_context is _pool(second)._ssl_context


def test_make_client_when_no_http_client_given_then_openai_defaults_kept() -> None:
    ours, theirs = make_client(Settings()), openai.AsyncOpenAI(api_key="x")
    for name in ("_max_connections", "_max_keepalive_connections", "_keepalive_expiry"):
        assert getattr(_pool(ours), name) == getattr(_pool(theirs), name)
    assert ours._client.follow_redirects is theirs._client.follow_redirects
    assert type(ours._client) is type(theirs._client)  # closes itself when dropped, as openai's does
