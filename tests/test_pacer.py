"""The page-wide pacer on a fake clock: exact text per stream, a shared budget, fairness, and
with one stream the very events the batcher sends on its own."""

from __future__ import annotations

import asyncio
import itertools
import math
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smart_agent.streaming import BatchPolicy, Pacer, TokenBatcher
from smart_agent.streaming.batcher import Emit
from smart_agent.streaming.pacer import HOLD_POLL
from tests.fakes import FakeClock, settle

BUDGET = 20.0


@dataclass
class Page:
    """Every stream event the page receives: (time, stream, text, exempt from the budget)."""

    clock: FakeClock
    events: list[tuple[float, int, str, bool]] = field(default_factory=list)
    closing: set[int] = field(default_factory=set)

    def sink(self, stream: int) -> Emit:
        async def emit(text: str, is_sequence: bool) -> None:
            await asyncio.sleep(0)
            first = not any(s == stream for _, s, _, _ in self.events)
            self.events.append((self.clock.now(), stream, text, first or stream in self.closing))

        return emit

    def text(self, stream: int) -> str:
        return "".join(text for _, s, text, _ in self.events if s == stream)

    def worst_window(self, seconds: float = 1.0) -> tuple[int, int]:
        """The most events in any window of `seconds`, and how many of them were exempt."""
        times = [(t, exempt) for t, _, _, exempt in self.events]
        worst = (0, 0)
        for i, (start, _) in enumerate(times):
            inside = [exempt for t, exempt in times[i:] if t < start + seconds - 1e-9]
            paced = sum(1 for exempt in inside if not exempt)
            worst = max(worst, (paced, len(inside) - paced))
        return worst


def words(stream: int, count: int) -> list[str]:
    return [f" s{stream}t{i}" for i in range(count)]


async def stream_into(
    page: Page, batcher: TokenBatcher, stream: int, tokens: list[str], rate: float, start: float = 0.0
) -> None:
    if start:
        await page.clock.sleep(start)
    for token in tokens:
        await batcher.push(token)
        await page.clock.sleep(1 / rate)
    page.closing.add(stream)
    await batcher.aclose()


async def run_page(
    rates: list[float],
    tokens: int,
    policy: BatchPolicy,
    starts: list[float] | None = None,
    holds: list[tuple[float, float]] | None = None,
) -> tuple[Page, Pacer]:
    clock = FakeClock()
    page = Page(clock)
    pacer = Pacer(policy.max_events_per_second, clock, held=lambda: held_at(holds or [], clock.now()))
    batchers = [TokenBatcher(page.sink(i), policy, clock, pacer) for i in range(len(rates))]
    tasks = [
        asyncio.create_task(
            stream_into(page, b, i, words(i, tokens), rate, (starts or [0.0] * len(rates))[i])
        )
        for i, (b, rate) in enumerate(zip(batchers, rates, strict=True))
    ]
    for _ in range(100_000):
        if all(task.done() for task in tasks):
            break
        await clock.advance(0.005)
    for task in tasks:
        task.result()
    pacer.close()
    return page, pacer


def held_at(holds: list[tuple[float, float]], now: float) -> bool:
    """Whether `now` falls in one of the (start, end) periods the page is held for."""
    return any(start <= now < end for start, end in holds)


@pytest.mark.parametrize("streams", [2, 4, 8])
async def test_streams_when_sharing_the_pacer_then_text_exact_and_rate_within_budget(streams: int) -> None:
    page, _ = await run_page([200.0] * streams, 400, BatchPolicy(max_events_per_second=BUDGET))
    for i in range(streams):
        assert page.text(i) == "".join(words(i, 400))
    paced, exempt = page.worst_window()
    assert paced <= BUDGET  # the first and last event of each stream go at once, counted
    assert paced + exempt <= BUDGET + 2 * streams
    duration = page.events[-1][0] - page.events[0][0]
    assert len(page.events) <= BUDGET * duration + 1 + streams  # the firsts' debt is repaid


async def test_streams_when_each_has_its_own_cap_then_page_rate_grows_with_streams() -> None:
    """What the pacer prevents: without it, 4 streams give the page 4 times the budget."""
    clock = FakeClock()
    page = Page(clock)
    policy = BatchPolicy(max_events_per_second=BUDGET)
    tasks = [
        asyncio.create_task(
            stream_into(page, TokenBatcher(page.sink(i), policy, clock), i, words(i, 2000), 1000.0)
        )
        for i in range(4)
    ]
    while not all(task.done() for task in tasks):
        await clock.advance(0.005)
    assert page.worst_window()[0] > 3 * BUDGET


async def test_busy_streams_when_paced_then_served_in_turn() -> None:
    page, _ = await run_page([500.0] * 3, 600, BatchPolicy(max_events_per_second=BUDGET))
    paced = [stream for _, stream, _, exempt in page.events if not exempt]
    # All three always have text waiting: the one that waited longest goes next, a strict rotation.
    for window in itertools.pairwise(paced[i : i + 3] for i in range(0, len(paced) - 3)):
        assert len(set(window[0])) == 3, paced
    counts = [paced.count(i) for i in range(3)]
    assert max(counts) - min(counts) <= 1


async def test_new_stream_when_budget_is_in_use_then_its_first_token_goes_at_once() -> None:
    page, _ = await run_page(
        [400.0, 400.0, 50.0], 300, BatchPolicy(max_events_per_second=BUDGET), starts=[0.0, 0.0, 0.333]
    )
    first_of_late = next(t for t, stream, _, _ in page.events if stream == 2)
    assert first_of_late == pytest.approx(0.333)


async def test_closed_pacer_when_streams_wait_then_nothing_more_is_sent() -> None:
    clock = FakeClock()
    page = Page(clock)
    pacer = Pacer(BUDGET, clock)
    batchers = [TokenBatcher(page.sink(i), BatchPolicy(batch_size=1), clock, pacer) for i in range(3)]
    for i, batcher in enumerate(batchers):
        await batcher.push("first")
        await batcher.push(f" more{i}")
    await settle()
    assert pacer.waiting == 3
    sent = len(page.events)
    pacer.close()
    for batcher in batchers:
        batcher.cancel()
    await clock.advance(2.0)
    assert len(page.events) == sent == 3
    assert [b.pending for b in batchers] == [" more0", " more1", " more2"]


gaps = st.lists(st.floats(min_value=0.0, max_value=0.2), min_size=1, max_size=60)
single_policies = st.builds(
    BatchPolicy,
    batch_size=st.integers(min_value=1, max_value=8),
    flush_interval=st.floats(min_value=0.01, max_value=0.5),
    max_events_per_second=st.floats(min_value=2, max_value=100),
)


async def _single(policy: BatchPolicy, pauses: list[float], pacer: bool) -> list[tuple[float, str]]:
    clock = FakeClock()
    events: list[tuple[float, str]] = []

    async def emit(text: str, is_sequence: bool) -> None:
        await asyncio.sleep(0)
        events.append((clock.now(), text))

    batcher = TokenBatcher(emit, policy, clock, Pacer(policy.max_events_per_second, clock) if pacer else None)
    for i, pause in enumerate(pauses):
        await batcher.push(f"t{i} ")
        await clock.advance(pause)
    await batcher.aclose()
    return events


@settings(max_examples=150, deadline=None)
@given(policy=single_policies, pauses=gaps)
def test_one_stream_when_paced_then_exactly_the_events_of_the_batcher_alone(
    policy: BatchPolicy, pauses: list[float]
) -> None:
    alone = asyncio.run(_single(policy, pauses, pacer=False))
    paced = asyncio.run(_single(policy, pauses, pacer=True))
    assert [text for _, text in paced] == [text for _, text in alone]
    assert [t for t, _ in paced] == pytest.approx([t for t, _ in alone])


@settings(max_examples=40, deadline=None)
@given(
    rates=st.lists(st.floats(min_value=5, max_value=400), min_size=2, max_size=8),
    budget=st.floats(min_value=5, max_value=40),
    batch_size=st.integers(min_value=1, max_value=30),
    tokens=st.integers(min_value=1, max_value=120),
)
def test_any_streams_when_paced_then_each_text_exact_and_budget_held(
    rates: list[float], budget: float, batch_size: int, tokens: int
) -> None:
    policy = BatchPolicy(batch_size=batch_size, max_events_per_second=budget)
    page, _ = asyncio.run(run_page(rates, tokens, policy))
    for i in range(len(rates)):
        assert page.text(i) == "".join(words(i, tokens))
    paced, _ = page.worst_window()
    assert paced <= math.ceil(budget)


async def test_held_page_when_streams_wait_then_nothing_paced_goes_until_released_then_one_event_each() -> (
    None
):
    page, _ = await run_page([200.0] * 3, 600, BatchPolicy(max_events_per_second=BUDGET), holds=[(0.5, 2.0)])
    inside = [(t, stream) for t, stream, _, exempt in page.events if 0.5 <= t < 2.0 and not exempt]
    assert inside == []
    released = [(t, stream, text) for t, stream, text, _ in page.events if t >= 2.0][:3]
    assert sorted(stream for _, stream, _ in released) == [0, 1, 2]  # each once, then the budget
    assert released[0][0] - 2.0 <= HOLD_POLL + 1e-9
    assert [t for t, _, _ in released] == pytest.approx([released[0][0] + i / BUDGET for i in range(3)])
    assert all(len(text.split()) >= 250 for _, _, text in released)  # about 1.5 s of 200 tok/s each
    for i in range(3):
        assert page.text(i) == "".join(words(i, 600))


async def test_held_page_when_a_stream_starts_or_ends_then_those_go_at_once() -> None:
    page, _ = await run_page(
        [200.0, 100.0], 100, BatchPolicy(max_events_per_second=BUDGET), starts=[0.0, 0.3], holds=[(0.2, 5.0)]
    )
    late = [t for t, stream, _, _ in page.events if stream == 1]
    assert late[0] == pytest.approx(0.3)  # a new stream's first words, held page or not
    assert late[-1] == pytest.approx(1.3, abs=0.02)  # its last, when it ends (100 tokens at 100/s)
    assert [exempt for t, _, _, exempt in page.events if 0.2 <= t < 5.0] == [
        True
    ] * 3  # 0 ends, 1 starts, ends
    assert page.text(0) == "".join(words(0, 100)) and page.text(1) == "".join(words(1, 100))


hold_periods = st.lists(
    st.tuples(st.floats(min_value=0, max_value=3), st.floats(min_value=0.01, max_value=2)), max_size=4
)


@settings(max_examples=40, deadline=None)
@given(
    rates=st.lists(st.floats(min_value=5, max_value=400), min_size=1, max_size=4),
    batch_size=st.integers(min_value=1, max_value=30),
    tokens=st.integers(min_value=1, max_value=300),
    periods=hold_periods,
)
def test_any_holds_when_paced_then_each_text_exact_and_nothing_paced_while_held(
    rates: list[float], batch_size: int, tokens: int, periods: list[tuple[float, float]]
) -> None:
    holds = [(start, start + length) for start, length in periods]
    policy = BatchPolicy(batch_size=batch_size, max_events_per_second=BUDGET)
    page, _ = asyncio.run(run_page(rates, tokens, policy, holds=holds))
    for i in range(len(rates)):
        assert page.text(i) == "".join(words(i, tokens))
    assert not [t for t, _, _, exempt in page.events if not exempt and held_at(holds, t)]
