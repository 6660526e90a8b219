"""A pure-asyncio token batcher: buffers tokens and emits them as few, well-spaced events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from smart_agent.streaming.clock import Clock, MonotonicClock
from smart_agent.streaming.pacer import Pacer

if TYPE_CHECKING:  # the library's `from smart_agent import SmoothStreamWrapper` loads no settings
    from smart_agent.config import Settings

Emit = Callable[[str, bool], Awaitable[None]]
"""Sends one event: the text, and whether it replaces everything sent before (is_sequence)."""


@dataclass(frozen=True)
class BatchPolicy:
    """When buffered tokens are flushed.

    A flush happens when `batch_size` tokens are buffered or the oldest buffered token is
    `flush_interval` seconds old, but never sooner than `1 / max_events_per_second` after the
    previous flush, so the browser's event rate stays bounded however fast the model is.
    The first token of a reply is always sent at once.

    With `adaptive`, both the interval and the spacing grow with the text already sent, as
    `sent_chars / adaptive_chars_per_second`, capped at `adaptive_max_delay`: the browser
    re-renders the whole message on every event, so this keeps its work per second bounded.
    """

    enabled: bool = True
    batch_size: int = 20
    flush_interval: float = 0.1
    max_events_per_second: float = 20.0
    adaptive: bool = False
    adaptive_chars_per_second: float = 60_000.0
    adaptive_max_delay: float = 0.5

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.flush_interval <= 0:
            raise ValueError("flush_interval must be > 0")
        if self.max_events_per_second <= 0:
            raise ValueError("max_events_per_second must be > 0")

    @property
    def min_spacing(self) -> float:
        """Shortest time between two flushes, in seconds."""
        return 1.0 / self.max_events_per_second

    def delays(self, sent_chars: int) -> tuple[float, float]:
        """(flush interval, minimum spacing) for a message that already shows `sent_chars`."""
        if not self.adaptive:
            return self.flush_interval, self.min_spacing
        grown = min(sent_chars / self.adaptive_chars_per_second, self.adaptive_max_delay)
        return max(self.flush_interval, grown), max(self.min_spacing, grown)


def policy_for(settings: Settings) -> BatchPolicy:
    """The batching policy these settings ask for."""
    return BatchPolicy(
        enabled=settings.stream_batching,
        batch_size=settings.batch_size,
        flush_interval=settings.flush_interval,
        max_events_per_second=settings.max_events_per_second,
        adaptive=settings.adaptive_batching,
    )


@dataclass
class BatchStats:
    """What one reply cost on the wire."""

    tokens_in: int = 0
    events_out: int = 0
    bytes_out: int = 0
    max_delay: float = 0.0
    emit_errors: int = 0
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def duration(self) -> float:
        """Seconds from the first token to the last flush."""
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return self.finished_at - self.started_at

    def summary(self) -> str:
        """One log line."""
        return (
            f"tokens_in={self.tokens_in} events_out={self.events_out} bytes={self.bytes_out} "
            f"max_delay_ms={self.max_delay * 1000:.1f} duration_s={self.duration:.3f} "
            f"emit_errors={self.emit_errors}"
        )


@dataclass
class _Buffer:
    parts: list[str] = field(default_factory=list)
    count: int = 0
    replace: bool = False
    oldest: float | None = None


class TokenBatcher:
    """Buffers tokens and hands them to `emit` in batches; one flush runs at a time.

    With a `pacer` (several streams on one page), the batcher asks it for a slot before each timed
    flush instead of keeping its own `max_events_per_second` spacing; a flush asked for explicitly
    (the first token, `flush()`, `aclose()`) goes at once and is counted against the shared budget.
    With `first_at_once=False` (a reply's continuation in a new message, which the page must
    create), the first token waits for a timed flush and its slot like any other.
    """

    def __init__(
        self,
        emit: Emit,
        policy: BatchPolicy | None = None,
        clock: Clock | None = None,
        pacer: Pacer | None = None,
        *,
        first_at_once: bool = True,
    ) -> None:
        self._emit = emit
        self.policy = policy or BatchPolicy()
        self._clock = clock or MonotonicClock()
        self._pacer = pacer
        self._first_at_once = first_at_once or pacer is None
        self._queued = False  # the timer waits for the pacer's slot
        self._buf = _Buffer()
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._timer_due = 0.0
        self._last_flush: float | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._sent_chars = 0
        self.stats = BatchStats()

    @property
    def pending(self) -> str:
        """Text accepted but not yet emitted."""
        return "".join(self._buf.parts)

    @property
    def pending_replaces(self) -> bool:
        """Whether the pending text replaces what was emitted before."""
        return self._buf.replace

    def apply_pending(self, emitted: str) -> str:
        """The full text once the pending text is applied on top of `emitted`."""
        return self.pending if self._buf.replace else emitted + self.pending

    def discard_pending(self) -> None:
        """Forget buffered text (its content was overwritten by the caller)."""
        self._buf = _Buffer()

    def take_pending(self) -> None:
        """Forget the buffered text, which the caller sends itself; counted in the pacer's budget."""
        self._count_at_once()
        self.discard_pending()

    async def push(self, token: str, is_sequence: bool = False) -> None:
        """Accept one token; emits at once for the first token or when the policy says so."""
        if self._closed:
            raise RuntimeError("the batcher is closed")
        if not token:
            return
        now = self._clock.now()
        if self.stats.started_at is None:
            self.stats.started_at = now
        self.stats.tokens_in += 1
        buf = self._buf
        if is_sequence:
            buf.parts, buf.count, buf.replace = [token], 1, True
        else:
            buf.parts.append(token)
            buf.count += 1
        if buf.oldest is None:
            buf.oldest = now
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if not self.policy.enabled or (self._last_flush is None and self._first_at_once):
            await self.flush()
        elif self._pacer is None and self._due() <= now:
            await self.flush()
        elif (
            self._pacer is not None and not self._queued and self._due() <= now and self._pacer.try_acquire()
        ):
            await self._flush()
        else:
            self._schedule()

    async def flush(self) -> None:
        """Emit everything buffered now, as one event (counted against the pacer's budget, if any)."""
        self._count_at_once()
        await self._flush()

    def _count_at_once(self) -> None:
        # Buffered text sent without waiting for a slot still takes one from the page's budget.
        if self._pacer is not None and self.policy.enabled and self._buf.parts:
            self._pacer.grant_now()

    async def _flush(self) -> None:
        async with self._lock:
            buf = self._buf
            if not buf.parts:
                return
            text = "".join(buf.parts)
            self._buf = _Buffer()
            now = self._clock.now()
            previous, self._last_flush = self._last_flush, now
            try:
                await self._emit(text, buf.replace)
            except BaseException:
                self._last_flush = previous  # nothing reached the UI: the next token goes at once
                self.stats.emit_errors += 1
                self._restore(text, buf)
                raise
            self._error = None  # the text behind an earlier failure is delivered now
            self._sent_chars = len(text) if buf.replace else self._sent_chars + len(text)
            stats = self.stats
            stats.events_out += 1
            stats.bytes_out += len(text.encode())
            if buf.oldest is not None:
                stats.max_delay = max(stats.max_delay, now - buf.oldest)
            stats.finished_at = now
        if self._buf.parts and self.policy.enabled:
            self._schedule()

    async def aclose(self) -> None:
        """Flush what is left, stop the timer and refuse further tokens."""
        try:
            await self.flush()
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Stop the timer without emitting; buffered text stays readable in `pending`."""
        self._closed = True
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    def _restore(self, text: str, failed: _Buffer) -> None:
        # Tokens pushed while the emit was in flight follow the failed text, unless one of them
        # replaced everything (is_sequence), in which case the failed text is obsolete.
        current = self._buf
        if current.replace:
            return
        current.parts.insert(0, text)
        current.count += failed.count
        current.replace = failed.replace
        current.oldest = failed.oldest

    def _due(self) -> float:
        buf = self._buf
        assert buf.oldest is not None
        now = self._clock.now()
        interval, spacing = self.policy.delays(self._sent_chars)
        if self._pacer is not None and not self.policy.adaptive:
            spacing = 0.0  # the pacer spaces the flushes of every stream on the page
        trigger = now if buf.count >= self.policy.batch_size else buf.oldest + interval
        if self._last_flush is None:
            return trigger
        return max(trigger, self._last_flush + spacing)

    def _schedule(self) -> None:
        due = self._due()
        timer = self._timer
        if timer is not None and not timer.done():
            if self._queued or self._timer_due <= due:  # queued: keep its place in the pacer's line
                return
            timer.cancel()
        self._timer_due = due
        self._timer = asyncio.get_running_loop().create_task(self._fire(due))

    async def _fire(self, due: float) -> None:
        delay = due - self._clock.now()
        if delay > 0:
            await self._clock.sleep(delay)
        if not self._buf.parts or self._due() > self._clock.now():
            # The timer was set for text an earlier flush sent: there is nothing left, or the newer
            # text is not due yet (flushing it now would break the spacing from that flush).
            if self._timer is asyncio.current_task():
                self._timer = None
            if self._buf.parts:
                self._schedule()
            return
        if self._pacer is not None:
            self._queued = True  # the timer stays set, so a new token does not queue twice
            try:
                await self._pacer.acquire()
            finally:
                self._queued = False
        if self._timer is asyncio.current_task():
            self._timer = None
        try:
            await self._flush()
        except Exception as exc:  # a background flush has no caller: keep the error for push()
            self._error = exc
