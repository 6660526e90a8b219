"""SmoothStreamWrapper: a drop-in proxy for `cl.Message` that batches `stream_token` calls."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from smart_agent.streaming.batcher import BatchPolicy, BatchStats, TokenBatcher
from smart_agent.streaming.clock import Clock
from smart_agent.streaming.pacer import Pacer

log = logging.getLogger("smart_agent.streaming")

_OWN = frozenset({"_message", "_batcher", "_label", "_finished"})


class StreamTarget(Protocol):
    """The part of `cl.Message` the wrapper relies on."""

    content: str

    async def stream_token(self, token: str, is_sequence: bool = False) -> None:
        """Append (or with is_sequence, replace) content and send it to the UI."""
        ...

    async def send(self) -> Any:
        """Create the message in the UI."""
        ...

    async def update(self) -> Any:
        """Replace the message in the UI."""
        ...

    async def remove(self) -> Any:
        """Delete the message from the UI."""
        ...


class SmoothStreamWrapper:
    """Buffers tokens for a message and flushes them as one event per batch.

    Reads and writes of any other attribute reach the wrapped message; `content` reads include
    text still buffered.
    """

    _message: StreamTarget
    _batcher: TokenBatcher
    _label: str
    _finished: bool

    def __init__(
        self,
        message: StreamTarget,
        policy: BatchPolicy | None = None,
        clock: Clock | None = None,
        label: str = "reply",
        pacer: Pacer | None = None,
        *,
        first_at_once: bool = True,
    ) -> None:
        object.__setattr__(self, "_message", message)
        batcher = TokenBatcher(self._emit, policy, clock, pacer, first_at_once=first_at_once)
        object.__setattr__(self, "_batcher", batcher)
        object.__setattr__(self, "_label", label)
        object.__setattr__(self, "_finished", False)

    @property
    def wrapped(self) -> StreamTarget:
        """The message behind the proxy."""
        return self._message

    @property
    def stats(self) -> BatchStats:
        """Counters for this reply."""
        return self._batcher.stats

    @property
    def content(self) -> str:
        """The full text so far, including tokens not yet flushed."""
        return self._batcher.apply_pending(self._message.content)

    def set_content(self, text: str) -> None:
        """Replace the text, dropping what is still buffered (the next update shows it)."""
        self._batcher.discard_pending()
        self._message.content = text

    async def stream_token(self, token: str, is_sequence: bool = False) -> None:
        """Same contract as `cl.Message.stream_token`, batched."""
        await self._batcher.push(token, is_sequence)

    async def flush(self) -> None:
        """Emit buffered tokens now."""
        await self._batcher.flush()

    async def send(self) -> Any:
        """Flush, then send the message."""
        await self._batcher.flush()
        return await self._message.send()

    async def update(self) -> Any:
        """Flush, then update the message."""
        await self._batcher.flush()
        return await self._message.update()

    async def remove(self) -> Any:
        """Flush, stop the timer, then remove the message."""
        try:
            await self._batcher.flush()
        finally:
            self._batcher.cancel()
        return await self._message.remove()

    @property
    def finished(self) -> bool:
        """Whether the stream has ended."""
        return self._finished

    def stop(self) -> None:
        """Stop streaming at once: no further event; buffered text moves into `content`."""
        self._batcher.cancel()
        self._message.content = self.content
        self._batcher.discard_pending()

    async def close(self, log_stats: bool = True) -> None:
        """End the stream: flush what is left, stop the timer, log stats once if debugging."""
        try:
            await self._batcher.aclose()
        finally:
            if not self._finished:
                object.__setattr__(self, "_finished", True)
                if log_stats:
                    log.debug("%s %s", self._label, self.stats.summary())

    async def finish(self, log_stats: bool = True) -> None:
        """End the stream and finalise the message, unless it never received any text."""
        # Text still buffered goes out in the final message, not in a stream event just before
        # it: the page renders the whole message for each, so that saves it one render.
        content = self.content
        self._message.content = content
        self._batcher.take_pending()
        await self.close(log_stats)
        if content:
            await self._message.send()

    async def __aenter__(self) -> SmoothStreamWrapper:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _emit(self, text: str, is_sequence: bool) -> None:
        # cl.Message.stream_token changes `content` before it emits; undo that when the emit
        # fails so the retry does not duplicate text.
        before = self._message.content
        try:
            await self._message.stream_token(text, is_sequence=is_sequence)
        except BaseException:
            self._message.content = before
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._message, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN:
            object.__setattr__(self, name, value)
        elif name == "content":
            self.set_content(value)
        else:
            setattr(self._message, name, value)


def smooth(message: StreamTarget, policy: BatchPolicy | None = None) -> SmoothStreamWrapper:
    """Wrap a `cl.Message` (or any `StreamTarget`) so its `stream_token` calls go out batched and capped."""
    return SmoothStreamWrapper(message, policy)
