"""The batcher on a fake clock: when it flushes, what it keeps, and what it refuses."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from smart_agent.streaming import BatchPolicy, TokenBatcher
from tests.fakes import EmitError, FakeClock, settle


class Sink:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.events: list[tuple[float, str, bool]] = []
        self.fail_next = 0

    async def __call__(self, text: str, is_sequence: bool) -> None:
        await asyncio.sleep(0)
        if self.fail_next:
            self.fail_next -= 1
            raise EmitError("boom")
        self.events.append((self.clock.now(), text, is_sequence))

    @property
    def texts(self) -> list[str]:
        return [text for _, text, _ in self.events]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sink(clock: FakeClock) -> Sink:
    return Sink(clock)


def make(sink: Sink, clock: FakeClock, **policy: float | int | bool) -> TokenBatcher:
    return TokenBatcher(sink, BatchPolicy(**policy), clock)  # type: ignore[arg-type]


async def test_first_token_when_pushed_then_emitted_at_once(sink: Sink, clock: FakeClock) -> None:
    batcher = make(sink, clock)
    await batcher.push("Hello")
    assert sink.events == [(0.0, "Hello", False)]


async def test_tokens_below_batch_size_when_interval_passes_then_flushed_by_timer(
    sink: Sink, clock: FakeClock
) -> None:
    batcher = make(sink, clock, batch_size=20, flush_interval=0.1)
    await batcher.push("a")
    await clock.advance(0.01)
    await batcher.push("b")
    await batcher.push("c")
    await clock.advance(0.05)
    assert sink.texts == ["a"]
    await clock.advance(0.06)  # the oldest buffered token is now 0.1 s old
    assert sink.texts == ["a", "bc"]
    assert sink.events[1][0] == pytest.approx(0.11)


async def test_batch_size_reached_when_spacing_allows_then_flushed_inline(
    sink: Sink, clock: FakeClock
) -> None:
    batcher = make(sink, clock, batch_size=3, flush_interval=10, max_events_per_second=10)
    await batcher.push("a")
    await clock.advance(0.2)
    for token in "bcd":
        await batcher.push(token)
    assert sink.texts == ["a", "bcd"]


async def test_batch_size_reached_when_too_soon_then_waits_for_min_spacing(
    sink: Sink, clock: FakeClock
) -> None:
    batcher = make(sink, clock, batch_size=2, flush_interval=10, max_events_per_second=10)
    await batcher.push("a")
    await batcher.push("b")
    await batcher.push("c")
    assert sink.texts == ["a"]
    await clock.advance(0.099)
    assert sink.texts == ["a"]
    await clock.advance(0.002)
    assert sink.texts == ["a", "bc"]


async def test_fast_stream_when_batched_then_event_rate_is_capped(sink: Sink, clock: FakeClock) -> None:
    batcher = make(sink, clock, batch_size=20, flush_interval=0.1, max_events_per_second=20)
    for i in range(2000):  # 2,000 tokens at 2,000 tok/s
        await batcher.push(f"t{i} ")
        await clock.advance(0.0005)
    await batcher.aclose()
    assert "".join(sink.texts) == "".join(f"t{i} " for i in range(2000))
    times = [t for t, _, _ in sink.events]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.05 - 1e-9
    assert len(sink.events) <= 1 + 1.0 * 20 + 2


async def test_batching_disabled_when_tokens_pushed_then_one_event_each(sink: Sink, clock: FakeClock) -> None:
    batcher = make(sink, clock, enabled=False)
    for token in ["a", "b", "c"]:
        await batcher.push(token)
    assert sink.texts == ["a", "b", "c"]


async def test_sequence_token_when_buffered_then_replaces_pending(sink: Sink, clock: FakeClock) -> None:
    batcher = make(sink, clock)
    await batcher.push("a")
    await batcher.push("b")
    await batcher.push("XY", is_sequence=True)
    await batcher.push("z")
    await batcher.flush()
    assert sink.events[-1][1:] == ("XYz", True)


async def test_empty_token_when_pushed_then_ignored(sink: Sink, clock: FakeClock) -> None:
    batcher = make(sink, clock)
    await batcher.push("")
    assert batcher.stats.tokens_in == 0
    assert sink.events == []


async def test_emit_fails_when_flushing_then_error_raised_and_text_kept(sink: Sink, clock: FakeClock) -> None:
    batcher = make(sink, clock)
    sink.fail_next = 1
    with pytest.raises(EmitError):
        await batcher.push("a")
    assert batcher.pending == "a"
    await batcher.push("b")
    assert sink.texts == ["ab"]
    assert batcher.stats.emit_errors == 1


async def test_background_flush_fails_when_next_token_pushed_then_error_surfaces(
    sink: Sink, clock: FakeClock
) -> None:
    batcher = make(sink, clock, batch_size=50, flush_interval=0.1)
    await batcher.push("a")
    await batcher.push("b")
    sink.fail_next = 1
    await clock.advance(0.2)
    assert batcher.pending == "b"
    with pytest.raises(EmitError):
        await batcher.push("c")
    await batcher.aclose()
    assert "".join(sink.texts) == "abc"


async def test_cancel_when_tokens_pending_then_nothing_more_is_emitted(sink: Sink, clock: FakeClock) -> None:
    batcher = make(sink, clock, batch_size=50, flush_interval=0.1)
    await batcher.push("a")
    await batcher.push("b")
    batcher.cancel()
    await clock.advance(1.0)
    assert sink.texts == ["a"]
    assert batcher.pending == "b"
    with pytest.raises(RuntimeError):
        await batcher.push("c")


async def test_cancelled_while_emitting_then_text_stays_pending(clock: FakeClock) -> None:
    gate = asyncio.Event()
    sent: list[str] = []

    async def slow_emit(text: str, is_sequence: bool) -> None:
        await gate.wait()
        sent.append(text)

    batcher = TokenBatcher(slow_emit, BatchPolicy(), clock)
    task = asyncio.create_task(batcher.push("a"))
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert batcher.pending == "a"
    gate.set()
    await batcher.flush()
    assert sent == ["a"]


async def test_stats_when_reply_streamed_then_counted(sink: Sink, clock: FakeClock) -> None:
    batcher = make(sink, clock, batch_size=2, flush_interval=0.1, max_events_per_second=1000)
    await batcher.push("ab")
    await clock.advance(0.03)
    await batcher.push("c")
    await clock.advance(0.02)
    await batcher.push("d")
    await batcher.aclose()
    stats = batcher.stats
    assert (stats.tokens_in, stats.events_out, stats.bytes_out) == (3, 2, 4)
    assert stats.max_delay == pytest.approx(0.02)
    assert stats.duration == pytest.approx(0.05)
    assert "tokens_in=3 events_out=2" in stats.summary()


def test_policy_when_invalid_then_refused() -> None:
    with pytest.raises(ValueError):
        BatchPolicy(batch_size=0)
    with pytest.raises(ValueError):
        BatchPolicy(flush_interval=0)


async def test_timer_set_for_text_already_sent_when_it_fires_then_newer_text_keeps_the_spacing(
    sink: Sink, clock: FakeClock
) -> None:
    batcher = make(sink, clock, batch_size=5, flush_interval=0.375, max_events_per_second=4)
    await batcher.push("a")
    await batcher.push("b")  # timer for 0.375
    await clock.advance(0.3125)
    for token in "cdef":  # the batch is full: flushed at once, the timer is now stale
        await batcher.push(token)
    await batcher.push("g")
    await clock.advance(0.1)  # past the stale timer's 0.375
    assert sink.texts == ["a", "bcdef"]
    await clock.advance(0.3)
    assert sink.texts == ["a", "bcdef", "g"]
    assert sink.events[2][0] == pytest.approx(0.6875)  # g's own flush interval
