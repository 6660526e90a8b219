"""Streaming a chat completion's text from an OpenAI-compatible server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import httpx2
import openai
from openai.types.chat import ChatCompletionMessageParam

from smart_agent.config import Settings
from smart_agent.llm.client import describe_error

Message = dict[str, Any]


async def stream_text(
    client: openai.AsyncOpenAI, settings: Settings, model: str, messages: Sequence[Message]
) -> AsyncIterator[str]:
    """Yield the reply's text deltas in order; failures surface as ModelError."""
    try:
        stream = await client.chat.completions.create(
            model=model,
            messages=cast("list[ChatCompletionMessageParam]", list(messages)),
            stream=True,
        )
    except (openai.OpenAIError, httpx2.HTTPError) as exc:
        raise describe_error(exc, settings, model) from exc
    try:
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.index == 0 and choice.delta.content:
                    yield choice.delta.content
    except (openai.OpenAIError, httpx2.HTTPError, json.JSONDecodeError) as exc:
        raise describe_error(exc, settings, model, mid_stream=True) from exc
    finally:
        await stream.close()
