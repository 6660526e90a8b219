"""The stats line and footer of a reply: live figures and the slim progress bar while it streams,
then a summary and a copy button under it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, cast

import chainlit as cl

from smart_agent.streaming import SegmentedReply
from smart_agent.streaming.clock import Clock, MonotonicClock
from smart_agent.streaming.pacer import Pacer
from smart_agent.streaming.progress import ReplyProgress
from smart_agent.streaming.render_control import RenderControl
from smart_agent.web.progress_bar import WAITING_LINE, ReplyBar
from smart_agent.web.reply import ServerUsage
from smart_agent.web.resync import Turn

log = logging.getLogger("smart_agent.ui")

WAITING = "Waiting for the model…"
PACED_LIVE_EVERY = 2.0  # seconds between live-line updates on a page paced down
WAITING_AT_MOST = 0.5  # seconds the live line may still say it waits once the reply streams
STATS_AUTHOR = "stats"


class Footer:
    """Live progress while the reply streams, then a summary and a copy button under it.

    A long reply's progress bar (`bar`) rides on the live line's own updates; without the stats,
    a reply that history expects to be long gets a line of its own for the bar, changed only when
    a cell of the bar fills (at most CELLS updates), so the bar costs a bounded number of events.

    The live line is a small message of its own, updated in place: Chainlit re-renders only
    that message. (An element update re-renders every message of the chat — measured ~30 ms at
    5,000 tokens and ~170 ms at 20,000 in Chromium — so elements are used once, at the end.)
    """

    def __init__(
        self,
        replies: list[SegmentedReply],
        show_stats: bool,
        turn: Turn,
        pacer: Pacer | None = None,
        render: RenderControl | None = None,
        clock: Clock | None = None,
        usage: ServerUsage | None = None,
        bar: ReplyBar | None = None,
    ) -> None:
        self._usage = usage
        self._bar = bar
        self._bar_key: tuple[bool, int] | None = None  # what the bar-only line shows
        # The page's budget: the live line is updated when it has a slot no text waits for, on a
        # page paced down at most every PACED_LIVE_EVERY s (each update re-renders the chat: ~50 ms
        # on a 4x throttled page, as much as a stream event); when text waits for every slot, it
        # takes one anyway after PACED_LIVE_EVERY s (WAITING_AT_MOST while it says it waits).
        self._pacer = pacer
        self._render = render
        self._clock = clock or MonotonicClock()
        self._live_at: float | None = None  # when the live line last changed, once streaming
        self._streaming_at: float | None = None  # when the reply's first progress came
        self._replies = replies
        self._show_stats = show_stats
        self._turn = turn
        self._live: cl.Message | None = None
        self._props: dict[str, Any] = {}

    async def start(self) -> None:
        """Put the live line in place before anything else of the turn, so it sits above it."""
        if self._show_stats:
            await self._guarded(self._show_live(WAITING))
        elif self._bar is not None and self._bar.expected_long():
            # Created now so that it sits above the reply, as the stats line does.
            await self._guarded(self._show_live(WAITING_LINE))

    async def _guarded(self, action: Awaitable[object]) -> None:
        try:
            await action
        except Exception as exc:  # the stats are decoration: they must never cost the reply
            log.warning("could not show the reply stats: %s", exc)

    async def progress(self, progress: ReplyProgress) -> None:
        """Show live progress, or the summary once the reply is over."""
        over = progress.done or progress.stopped
        bar = self._bar.line(progress) if self._bar is not None and not over else None
        if not self._show_stats:
            if bar is not None and self._live is not None and bar.key != self._bar_key:
                await self._guarded(self._show_bar(bar.text, bar.key))
            return
        if over:
            self._props.update(text=progress.text() + self._server_counts(), done=True)
        else:
            text = progress.text() if bar is None else f"{progress.text()}\n\n{bar.text}"
            await self._guarded(self._show_live(text))

    async def _show_bar(self, text: str, key: tuple[bool, int]) -> None:
        if await self._show_live(text):
            self._bar_key = key

    def _server_counts(self) -> str:
        """The server's own token counts, when it reported them."""
        usage = self._usage
        if usage is None or not usage.reported:
            return ""
        reasoning = f", {usage.reasoning_tokens:,} of them thinking" if usage.reasoning_tokens else ""
        return (
            f" · server: {usage.prompt_tokens:,} prompt + {usage.completion_tokens:,} completion tokens"
            f"{reasoning}"
        )

    async def _show_live(self, text: str) -> bool:
        if self._live is None:
            self._live = cl.Message(content=text, author=STATS_AUTHOR)
            self._turn.add(self._live)
            await self._live.send()
            return True
        now = self._clock.now()
        if self._streaming_at is None:
            self._streaming_at = now
        if self._may_update(now):
            self._live_at = now
            self._live.content = text
            await self._live.update()
            return True
        return False

    def _may_update(self, now: float) -> bool:
        if self._pacer is None:
            return self._live_due(now)
        if self._pacer.held:  # a silent page: the live line waits with the text it counts
            return False
        if self._live_due(now) and self._pacer.try_acquire():
            return True
        if self._overdue(now):
            self._pacer.grant_now()  # text waits for every slot: take one, counted in the budget
            return True
        return False

    def _overdue(self, now: float) -> bool:
        if self._live_at is None:  # it still says it waits: show half a second of streaming
            return self._streaming_at is not None and now - self._streaming_at >= WAITING_AT_MOST
        return now - self._live_at >= PACED_LIVE_EVERY

    def _live_due(self, now: float) -> bool:
        if self._render is None or not self._render.paced_down:
            return True
        return self._overdue(now)

    async def finish(self) -> None:
        """Attach the summary (and, for a segmented reply, a copy-all button) to the reply."""
        if self._live is not None:
            self._turn.remove(self._live)
            await self._guarded(self._live.remove())
            self._live = None
        if len(self._replies[0].segments if self._replies else []) > 1:
            self._props["copyText"] = self._replies[0].content
        if not self._props or not self._replies or not self._replies[0].segments:
            return
        target = cast(cl.Message, self._replies[0].segments[-1].wrapped).id
        element = cl.CustomElement(name="ReplyFooter", props=self._props, display="inline")
        self._turn.add(element)
        await self._guarded(element.send(for_id=target))
