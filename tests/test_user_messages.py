"""What the chat page says when something fails: what happened and what to do, in a user's words.

No environment variable, module or exception class: those are for whoever runs the app, and its
log keeps them.
"""

from __future__ import annotations

import json
import logging
import re

import httpx2
import openai
import pytest

from smart_agent.agent import mcp
from smart_agent.agent.loop import CONTEXT_REFUSED, TOO_MANY_TOOL_ROUNDS
from smart_agent.config import Settings
from smart_agent.llm.client import describe_error, ended_early, make_client
from smart_agent.llm.context import TurnTooLongError, input_refusal
from smart_agent.llm.models import resolve_model
from smart_agent.team.hub import MEMBER_FAILED, SYNTHESIS_FAILED
from smart_agent.web.follow import UNFOLLOWABLE

URL = "http://127.0.0.1:9/v1"
_INTERNALS = re.compile(
    r"SMART_AGENT_|OPENAI_|Traceback|Error code:|\b[A-Z][A-Za-z]*(Error|Exception|Group)\b|"
    r"\b(openai|httpx2?|httpcore|smart_agent|asyncio|json)\.",
)


def _failures() -> list[BaseException]:
    request = httpx2.Request("POST", URL + "/chat/completions")

    def response(status: int) -> httpx2.Response:
        return httpx2.Response(status, request=request)

    return [
        openai.APIConnectionError(request=request),
        openai.APITimeoutError(request=request),
        openai.AuthenticationError("Error code: 401", response=response(401), body=None),
        openai.NotFoundError("Error code: 404", response=response(404), body=None),
        openai.RateLimitError("Error code: 429", response=response(429), body=None),
        openai.InternalServerError(
            "Error code: 500 - {'error': {'message': 'out of memory'}}",
            response=response(500),
            body={"error": {"message": "out of memory"}},
        ),
        openai.InternalServerError("Error code: 502", response=response(502), body=None),
        openai.APIError("ValueError: bad chunk", request, body=None),
        httpx2.ConnectError("[Errno 111] Connection refused", request=request),
        httpx2.RemoteProtocolError("peer closed connection (httpcore.RemoteProtocolError)", request=request),
        httpx2.ReadTimeout("", request=request),
        json.JSONDecodeError("Expecting value", "data: {", 6),
        RuntimeError(""),
        KeyError("choices"),
    ]


def _messages() -> list[str]:
    settings = Settings(api_key="k", base_url=URL, model="m")
    shown = [
        str(describe_error(exc, settings, mid_stream=mid)) for exc in _failures() for mid in (False, True)
    ]
    return [
        *shown,
        str(ended_early(settings)),
        str(input_refusal("x" * 11, Settings(max_input_chars=10))),
        str(input_refusal("x" * 50_000, Settings(context_tokens=4096))),
        str(TurnTooLongError(9000, 3000, context_tokens=4096)),
        str(TurnTooLongError(9000, 3000, refused=True)),
        TOO_MANY_TOOL_ROUNDS.format(rounds=8),
        CONTEXT_REFUSED,
        SYNTHESIS_FAILED,
        MEMBER_FAILED,
        UNFOLLOWABLE,
        f"MCP server 'x' failed to start: {mcp._describe(RuntimeError())}",
        f"MCP server 'x' failed to start: {mcp._describe(ExceptionGroup('g', [ValueError()]))}",
    ]


@pytest.mark.parametrize("message", _messages())
def test_message_on_the_page_when_something_failed_then_no_variable_module_or_exception_class(
    message: str,
) -> None:
    assert message.strip() and not _INTERNALS.search(message), message


async def test_model_list_when_the_server_offers_none_then_says_what_to_do_in_words() -> None:
    settings = Settings(api_key="k", base_url=URL)
    empty = {"object": "list", "data": []}
    no_models = httpx2.MockTransport(lambda request: httpx2.Response(200, json=empty))
    client = make_client(settings, httpx2.AsyncClient(transport=no_models))
    try:
        with pytest.raises(Exception) as refused:
            await resolve_model(client, settings)
    finally:
        await client.close()
    assert "offers no model" in str(refused.value) and not _INTERNALS.search(str(refused.value))


def test_describe_error_when_a_request_failed_then_the_log_keeps_the_class_and_detail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="smart_agent.llm"):
        shown = str(describe_error(KeyError("choices"), Settings(base_url=URL)))
    assert shown == "The model failed unexpectedly. Send your message again to retry."
    assert "KeyError: 'choices'" in caplog.text


def test_http_error_when_the_server_explains_then_its_words_are_shown_without_the_sdks_prefix() -> None:
    (exc,) = [e for e in _failures() if isinstance(e, openai.InternalServerError) and e.status_code == 500]
    assert str(describe_error(exc, Settings(base_url=URL))) == (
        f"The model server at {URL} failed (HTTP 500: out of memory). Try again in a moment."
    )
