"""Deliver one streamed reply into a message: stream, finalise, and keep the partial text on failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from smart_agent.errors import ModelError
from smart_agent.streaming import SmoothStreamWrapper


@dataclass(frozen=True)
class ReplyOutcome:
    """What a reply ended with."""

    text: str
    error: ModelError | None = None
    stopped: bool = False


async def deliver(deltas: AsyncIterator[str], reply: SmoothStreamWrapper) -> ReplyOutcome:
    """Stream `deltas` into `reply` and finalise it, on success, model error and stop alike."""
    error: ModelError | None = None
    try:
        async for delta in deltas:
            await reply.stream_token(delta)
    except ModelError as exc:
        error = exc
    except asyncio.CancelledError:
        # The stop button cancels this task: emit nothing more, then finalise what was produced.
        reply.stop()
        await _finalise(reply)
        raise
    finally:
        aclose = getattr(deltas, "aclose", None)
        if aclose is not None:
            await aclose()
    await _finalise(reply)
    return ReplyOutcome(text=reply.content, error=error)


async def _finalise(reply: SmoothStreamWrapper) -> None:
    await reply.close()
    # A message that never received a token was never shown; an empty bubble helps nobody.
    if reply.content:
        await reply.send()
