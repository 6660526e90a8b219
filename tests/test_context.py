"""The context budget: token estimate, trimming of the oldest turns, the input limit."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from smart_agent.config import ConfigError, Settings, load_settings
from smart_agent.llm.context import (
    DEFAULT_CONTEXT_TOKENS,
    TurnTooLongError,
    context_size,
    estimate_tokens,
    fit,
    input_limit,
    input_refusal,
    is_context_error,
    message_tokens,
    prompt_budget,
)

Message = dict[str, Any]
SYSTEM = {"role": "system", "content": "Be brief."}


def turn(number: int, chars: int = 300) -> list[Message]:
    return [
        {"role": "user", "content": f"question {number} " + "q" * chars},
        {"role": "assistant", "content": f"answer {number} " + "a" * chars},
    ]


def tool_turn(number: int, chars: int = 300) -> list[Message]:
    call = {"id": f"c{number}", "type": "function", "function": {"name": "calculator", "arguments": "{}"}}
    return [
        {"role": "user", "content": f"tools {number}"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": f"c{number}", "content": "r" * chars},
        {"role": "assistant", "content": f"done {number}"},
    ]


def size(messages: list[Message]) -> int:
    return sum(map(message_tokens, messages))


@pytest.mark.parametrize(
    ("text", "at_least"),
    [
        ("hello world, this is a normal English sentence about programming in Python.", 14),
        ("1234567890" * 10, 100),  # SmolLM2 splits digits: measured 100 tokens
        ('{"a":' * 50, 150),  # measured 150
        ("日本語のテキストです" * 5, 90),  # measured 90
    ],
)
def test_estimate_when_compared_with_smollm2_counts_then_never_lower(text: str, at_least: int) -> None:
    assert estimate_tokens(text) >= at_least


def test_fit_when_history_too_long_then_oldest_turns_dropped_first_and_system_kept() -> None:
    history = [SYSTEM, *turn(1), *turn(2), *turn(3), {"role": "user", "content": "now"}]
    budget = size([SYSTEM, *turn(3), {"role": "user", "content": "now"}]) + 10
    fitted = fit(history, budget)
    assert fitted.messages == [SYSTEM, *turn(3), {"role": "user", "content": "now"}]
    assert fitted.dropped == 4
    assert fitted.tokens <= budget


def test_fit_when_everything_fits_then_nothing_dropped() -> None:
    history = [SYSTEM, *turn(1), {"role": "user", "content": "now"}]
    fitted = fit(history, 10_000)
    assert (fitted.messages, fitted.dropped) == (history, 0)


def test_fit_when_a_middle_turn_is_too_big_then_nothing_older_than_it_is_sent() -> None:
    history = [*turn(1, 10), *turn(2, 30_000), *turn(3, 10), {"role": "user", "content": "now"}]
    fitted = fit(history, 1_000)
    assert fitted.messages == [*turn(3, 10), {"role": "user", "content": "now"}]


@pytest.mark.parametrize("budget", range(40, 1200, 7))
def test_fit_when_tool_turns_trimmed_then_every_call_travels_with_its_results(budget: int) -> None:
    history = [SYSTEM, *tool_turn(1), *turn(2, 50), *tool_turn(3, 100), {"role": "user", "content": "go"}]
    try:
        sent = fit(history, budget).messages
    except TurnTooLongError:
        return
    for position, message in enumerate(sent):
        for call in message.get("tool_calls") or ():
            results = [m for m in sent[position + 1 :] if m.get("tool_call_id") == call["id"]]
            assert len(results) == 1
        if message["role"] == "tool":
            callers = [m for m in sent[:position] if message["tool_call_id"] in str(m.get("tool_calls"))]
            assert callers
    assert sent[0] == SYSTEM and sent[-1] == {"role": "user", "content": "go"}
    assert sent[1]["role"] == "user"  # a request starts its history at a user turn


def test_fit_when_current_turn_alone_too_long_then_turn_too_long_error() -> None:
    history = [SYSTEM, *turn(1), {"role": "user", "content": "x" * 30_000}]
    with pytest.raises(TurnTooLongError, match="too long for the model's context"):
        fit(history, 2_000)


def test_fit_when_current_turn_has_tool_rounds_then_they_are_all_kept() -> None:
    current = tool_turn(2)[:3]  # user, assistant with tool_calls, tool result: the model answers next
    fitted = fit([*turn(1, 5_000), *current], size(current) + 5)
    assert fitted.messages == current


def test_context_size_when_unset_then_documented_default_else_setting() -> None:
    assert context_size(Settings()) == DEFAULT_CONTEXT_TOKENS == 8192
    assert context_size(Settings(context_tokens=4096)) == 4096
    assert prompt_budget(4096) == 3072  # a quarter kept for the reply


def test_input_limit_when_unset_then_follows_context_and_setting_wins() -> None:
    small, large = input_limit(Settings(context_tokens=4096)), input_limit(Settings(context_tokens=32768))
    assert 0 < small < large
    assert estimate_tokens("x" * small) + 8 <= prompt_budget(4096)
    assert input_limit(Settings(context_tokens=4096, system_prompt="s" * 3000)) < small
    assert input_limit(Settings(context_tokens=4096, max_input_chars=123)) == 123


@pytest.mark.parametrize("value", ["0", "511", "abc", "1.5", "10000001"])
def test_context_tokens_when_invalid_then_config_error_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match=r"SMART_AGENT_CONTEXT_TOKENS.*512 to 10000000"):
        load_settings(environ={"SMART_AGENT_CONTEXT_TOKENS": value}, dotenv_path=None)


def test_context_tokens_when_valid_then_read() -> None:
    settings = load_settings(environ={"SMART_AGENT_CONTEXT_TOKENS": "16384"}, dotenv_path=None)
    assert settings.context_tokens == 16384


def _bad_request(body: dict[str, Any]) -> openai.BadRequestError:
    import httpx2

    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(400, request=request, json=body)
    return openai.BadRequestError(str(body["error"]["message"]), response=response, body=body["error"])


def test_is_context_error_when_openai_or_llama_cpp_refusal_then_true_else_false() -> None:
    openai_style = {"error": {"message": "too long", "code": "context_length_exceeded"}}
    llama_style = {"error": {"message": "Requested tokens (5000) exceed context window of 4096"}}
    # llama.cpp's own server (the embedded model), as xllamacpp 2026.10.11549 answers
    server_style = {
        "error": {
            "code": 400,
            "message": "request (2832 tokens) exceeds the available context size (1024 tokens), "
            "try increasing it",
            "type": "exceed_context_size_error",
        }
    }
    other = {"error": {"message": "stream is not supported", "code": None}}
    assert is_context_error(_bad_request(openai_style))
    assert is_context_error(_bad_request(llama_style))
    assert is_context_error(_bad_request(server_style))
    assert not is_context_error(_bad_request(other))


def test_input_refusal_when_over_limit_then_names_the_limit_and_where_it_comes_from() -> None:
    assert input_refusal("x" * 10, Settings(max_input_chars=10)) is None
    assert input_refusal("x" * 11, Settings(max_input_chars=10)) == (
        "Your message has 11 characters; the limit is 10 (the limit this app was started with). "
        "It was not sent to the model: shorten it, or send it in parts."
    )
    message = input_refusal("x" * 20_000, Settings(context_tokens=4096))
    assert message is not None and "model's context of 4,096 tokens" in message
