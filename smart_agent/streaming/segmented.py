"""A reply streamed as successive messages of about `segment_chars` characters, each batched.

Chainlit re-renders a message's whole markdown on every update, so one growing message costs
more per event the longer it gets; finished segments cost nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from smart_agent.streaming.batcher import BatchPolicy, BatchStats
from smart_agent.streaming.clock import Clock
from smart_agent.streaming.pacer import Pacer
from smart_agent.streaming.segments import CutFinder
from smart_agent.streaming.wrapper import SmoothStreamWrapper, StreamTarget

log = logging.getLogger("smart_agent.streaming")


class SegmentedReply:
    """Streams one reply into as many messages as its length needs; `content` is the whole."""

    def __init__(
        self,
        new_message: Callable[[], StreamTarget],
        policy: BatchPolicy | None = None,
        segment_chars: int | Callable[[], int] = 0,
        clock: Clock | None = None,
        on_segment: Callable[[SmoothStreamWrapper], None] | None = None,
        pacer: Pacer | None = None,
        on_removed: Callable[[SmoothStreamWrapper], None] | None = None,
    ) -> None:
        self._pacer = pacer
        self._on_removed = on_removed
        self._new_message = new_message
        self._on_segment = on_segment
        self._policy = policy
        self._clock = clock
        # A callable is asked again for each new segment (a page's render-aware pacing, say).
        self._segment_chars = segment_chars if callable(segment_chars) else (lambda: segment_chars)
        self._finder = CutFinder(self._segment_chars())
        self.segments: list[SmoothStreamWrapper] = []
        self._unfinished: SmoothStreamWrapper | None = None  # the segment not yet finalised
        self.tokens_in = 0

    @property
    def content(self) -> str:
        """The reply's text so far, across all segments."""
        return "".join(segment.content for segment in self.segments)

    @property
    def stats(self) -> BatchStats:
        """Counters summed over the segments."""
        total = BatchStats(tokens_in=self.tokens_in)
        for segment in self.segments:
            s = segment.stats
            total.events_out += s.events_out
            total.bytes_out += s.bytes_out
            total.emit_errors += s.emit_errors
            total.max_delay = max(total.max_delay, s.max_delay)
            if s.started_at is not None and (total.started_at is None or s.started_at < total.started_at):
                total.started_at = s.started_at
            if s.finished_at is not None and (total.finished_at is None or s.finished_at > total.finished_at):
                total.finished_at = s.finished_at
        return total

    async def stream_token(self, token: str) -> None:
        """Add text; when the current segment may end, finish it and go on in a new message."""
        if not token:
            return
        self.tokens_in += 1
        if self._finder.threshold <= 0:  # segmenting off: no need to keep a copy of the text
            await self._current().stream_token(token)
            return
        base = self._finder.length
        cut = self._finder.add(token)
        while cut is not None:
            split = max(cut, base) - base
            if token[:split]:
                await self._current().stream_token(token[:split])
            await self._finish_current()
            token = token[split:]
            self._finder.threshold = self._segment_chars()
            cut = self._finder.restart(base + split)
            base = 0
        if token:
            await self._current().stream_token(token)

    async def retract(self, chars: int) -> str:
        """Take the last `chars` characters off the reply and return them (text that turned out
        to be the model's thinking): segments they cover whole are removed from the page, the one
        they end in is cut and updated; the next text continues the reply from there."""
        taken: list[str] = []
        while chars > 0 and self.segments:
            segment = self.segments[-1]
            content = segment.content
            if len(content) > chars:
                taken.append(content[len(content) - chars :])
                segment.set_content(content[: len(content) - chars])  # drops what it still buffers
                await segment.wrapped.update()
                break
            taken.append(content)
            chars -= len(content)
            self.segments.pop()
            if segment is self._unfinished:
                self._unfinished = None
            segment.stop()
            if content:
                await segment.wrapped.remove()
            if self._on_removed is not None:
                self._on_removed(segment)
        self._finder = CutFinder(self._segment_chars())
        if self._unfinished is not None:
            self._finder.add(self._unfinished.content)
        return "".join(reversed(taken))

    def stop(self) -> None:
        """Stop at once: nothing more is emitted until `finish` finalises what was produced."""
        if self._unfinished is not None:
            self._unfinished.stop()

    async def finish(self) -> None:
        """Flush and finalise the last segment; log the reply's stats once when debugging."""
        await self._finish_current()
        log.debug("reply segments=%d %s", len(self.segments), self.stats.summary())

    def _current(self) -> SmoothStreamWrapper:
        if self._unfinished is None:
            # A continuation's first words wait for the page's next slot: the page has just
            # rendered the previous segment whole, and creating a message costs it as much again.
            self._unfinished = SmoothStreamWrapper(
                self._new_message(),
                self._policy,
                self._clock,
                pacer=self._pacer,
                first_at_once=not self.segments,
            )
            self.segments.append(self._unfinished)
            if self._on_segment is not None:
                self._on_segment(self._unfinished)
        return self._unfinished

    async def _finish_current(self) -> None:
        # The segment counts as finished only once its final message went out: a stop that
        # interrupts this leaves it unfinished, so finish() finalises it again.
        segment = self._unfinished
        if segment is None:
            return
        await segment.finish(log_stats=False)
        self._unfinished = None
