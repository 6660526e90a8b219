"""normalize_chunk on every chunk shape servers send, and the tool-call accumulator."""

from __future__ import annotations

from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk

from smart_agent.llm.chunks import (
    ChunkDelta,
    ToolCallAccumulator,
    ToolCallFragment,
    Usage,
    normalize_chunk,
)


def _openai_chunk(choices: list[dict[str, Any]], **extra: Any) -> ChatCompletionChunk:
    """An openai ChatCompletionChunk with these choices, as the client parses it off the wire."""
    envelope = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    return ChatCompletionChunk.model_validate({**envelope, "choices": choices, **extra})


def test_openai_chunk_object_when_text_then_text() -> None:
    chunk = _openai_chunk([{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}])
    assert normalize_chunk(chunk) == ChunkDelta(text="Hi")


def test_openai_chunk_object_when_tool_call_then_fragment() -> None:
    fragment = {"index": 1, "id": "call_9", "type": "function", "function": {"name": "calc", "arguments": ""}}
    chunk = _openai_chunk([{"index": 0, "finish_reason": None, "delta": {"tool_calls": [fragment]}}])
    assert normalize_chunk(chunk).tool_calls == (ToolCallFragment(1, "call_9", "calc", ""),)


def test_usage_only_chunk_when_choices_empty_then_usage_only() -> None:
    chunk = _openai_chunk([], usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})
    assert normalize_chunk(chunk) == ChunkDelta(usage=Usage(1, 1, 0))


def test_whole_message_chunk_when_message_instead_of_delta_then_read() -> None:
    chunk = {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "All at once"}, "finish_reason": "stop"}
        ]
    }
    assert normalize_chunk(chunk) == ChunkDelta(text="All at once", finish_reason="stop")


def test_non_streaming_completion_when_tool_calls_then_fragments() -> None:
    completion = ChatCompletion.model_validate(
        {
            "id": "c",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {"id": "a", "type": "function", "function": {"name": "x", "arguments": "{}"}},
                            {
                                "id": "b",
                                "type": "function",
                                "function": {"name": "y", "arguments": '{"q": 1}'},
                            },
                        ],
                    },
                }
            ],
        }
    )
    delta = normalize_chunk(completion)
    assert [(f.index, f.id, f.name, f.arguments) for f in delta.tool_calls] == [
        (0, "a", "x", "{}"),
        (1, "b", "y", '{"q": 1}'),
    ]


def test_plain_dict_when_arguments_are_an_object_then_json_text() -> None:
    chunk = {
        "choices": [
            {"delta": {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": {"a": 1}}}]}}
        ]
    }
    assert normalize_chunk(chunk).tool_calls[0].arguments == '{"a": 1}'


def test_plain_string_when_given_then_text() -> None:
    assert normalize_chunk("token") == ChunkDelta(text="token")


def test_none_and_content_parts_when_given_then_understood() -> None:
    assert normalize_chunk(None) == ChunkDelta()
    parts = {
        "choices": [{"delta": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}}]
    }
    assert normalize_chunk(parts).text == "ab"
    legacy = {"choices": [{"text": "old style", "finish_reason": None}]}
    assert normalize_chunk(legacy).text == "old style"


def test_accumulator_when_fragments_interleave_then_joined_per_index() -> None:
    acc = ToolCallAccumulator()
    for fragment in [
        ToolCallFragment(0, "call_a", "calc", ""),
        ToolCallFragment(1, "call_b", "time", None),
        ToolCallFragment(0, arguments='{"expr'),
        ToolCallFragment(0, arguments='ession": "1"}'),
    ]:
        acc.add(fragment)
    calls = acc.calls()
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("call_a", "calc", '{"expression": "1"}'),
        ("call_b", "time", ""),
    ]
    assert calls[1].message()["function"]["arguments"] == "{}"


def test_accumulator_when_id_missing_then_generated() -> None:
    acc = ToolCallAccumulator()
    acc.add(ToolCallFragment(3, None, "f", "{}"))
    assert acc.calls()[0].id == "call_3"


def test_reasoning_content_when_deepseek_or_vllm_then_reasoning() -> None:
    chunk = _openai_chunk([{"index": 0, "delta": {"reasoning_content": "Hmm, "}, "finish_reason": None}])
    assert normalize_chunk(chunk) == ChunkDelta(reasoning="Hmm, ")


def test_reasoning_when_ollama_or_openrouter_then_reasoning() -> None:
    chunk = {"choices": [{"index": 0, "delta": {"content": "", "reasoning": "let me see"}}]}
    assert normalize_chunk(chunk) == ChunkDelta(reasoning="let me see")


def test_usage_when_reasoning_tokens_in_details_then_counted() -> None:
    usage = {
        "prompt_tokens": 12,
        "completion_tokens": 40,
        "total_tokens": 52,
        "completion_tokens_details": {"reasoning_tokens": 30},
    }
    assert normalize_chunk(_openai_chunk([], usage=usage)).usage == Usage(12, 40, 30)


def test_non_streaming_message_when_reasoning_content_then_both_read() -> None:
    completion = ChatCompletion.model_validate(
        {
            "id": "c",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "4", "reasoning_content": "2+2 is 4"},
                }
            ],
        }
    )
    delta = normalize_chunk(completion)
    assert (delta.text, delta.reasoning) == ("4", "2+2 is 4")


class _LangChainLike:
    """An object with a `.content` attribute, as LangChain's AIMessageChunk has."""

    def __init__(self, content: str) -> None:
        self.content = content


def test_bare_content_dict_and_content_object_when_no_choices_then_text() -> None:
    assert normalize_chunk({"content": "bare"}) == ChunkDelta(text="bare")
    assert normalize_chunk(_LangChainLike("object")) == ChunkDelta(text="object")


def test_unknown_shape_when_seen_twice_then_logged_once(caplog: Any) -> None:
    class Strange:
        pass

    with caplog.at_level("DEBUG", logger="smart_agent.llm"):
        assert normalize_chunk(Strange()) == ChunkDelta()
        assert normalize_chunk(Strange()) == ChunkDelta()
    assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
    assert "Strange" in caplog.records[0].getMessage()
