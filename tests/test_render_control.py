"""The render-aware pacing controller on a fake clock, with a simulated page whose render cost per
event grows with the message length times a device factor (1x fast, 4x throttled)."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smart_agent.config import Settings
from smart_agent.streaming import BatchPolicy, Pacer, TokenBatcher
from smart_agent.streaming.batcher import Emit, policy_for
from smart_agent.streaming.pacer import HOLD_POLL
from smart_agent.streaming.render_control import RenderControl, RenderReport
from tests.fakes import FakeClock

COST_PER_CHAR = 1e-6  # seconds a 1x page spends re-rendering one character of the message
REPORT_EVERY = 0.25
BUDGET = 0.25  # the simulated page reports its render time, not lost frames: its own budget


@dataclass
class SimPage:
    """A page whose main thread re-renders a stream's whole message on each of its events."""

    clock: FakeClock
    device: float
    texts: dict[int, str] = field(default_factory=dict)
    events: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # characters each event added
    renders: list[tuple[float, float]] = field(default_factory=list)  # (start, end) of each render
    shares: list[tuple[float, float]] = field(default_factory=list)  # (time, busy share) per report
    base: float | None = None  # main-thread share spent on other work; None: the page reports no idle time

    @property
    def text(self) -> str:
        return self.texts.get(0, "")

    def sink(self, stream: int) -> Emit:
        async def emit(text: str, is_sequence: bool) -> None:
            await asyncio.sleep(0)
            message = text if is_sequence else self.texts.get(stream, "") + text
            self.texts[stream] = message
            now = self.clock.now()
            self.events.append(now)
            self.sizes.append(len(text))
            start = max(now, self.renders[-1][1] if self.renders else now)
            self.renders.append((start, start + self.device * COST_PER_CHAR * len(message)))

        return emit

    def report(self) -> RenderReport:
        end = self.clock.now()
        begin = end - REPORT_EVERY
        spans = [(max(a, begin), min(b, end)) for a, b in self.renders if b > begin and a < end]
        busy = sum(b - a for a, b in spans)
        worst = max([b - a for a, b in spans] + [1 / 60])
        self.shares.append((end, busy / REPORT_EVERY))
        idle = None if self.base is None else max(0.0, REPORT_EVERY * (1 - self.base) - busy)
        return RenderReport(REPORT_EVERY, round((REPORT_EVERY - busy) * 60), busy, worst, idle)


def words(stream: int, count: int) -> list[str]:
    """Four-character tokens, distinct per stream."""
    return [f"{stream}{i % 100:02d} " for i in range(count)]


async def run_reply(
    device: float,
    tokens: int,
    rate: float,
    *,
    control: bool,
    streams: int = 1,
    base: float | None = None,
    cpu_budget: float | None = None,
    silent: tuple[float, float] | None = None,
    hold_after: float | None = None,
) -> tuple[SimPage, RenderControl | None, list[str]]:
    """One reply (or a turn of `streams` replies) streamed to a simulated page reporting every 250 ms,
    except while it is `silent` (from, until: hidden or frozen)."""
    clock = FakeClock()
    page = SimPage(clock, device, base=base)
    policy = BatchPolicy()
    controller = None
    if control:
        controller = RenderControl(
            policy, 0, clock, busy_budget=BUDGET, cpu_budget=cpu_budget, hold_after=hold_after
        )
        controller.turn_started()
    pacer = None
    if controller is not None or streams > 1:
        spacing = controller.spacing if controller is not None else None
        held = controller.held if controller is not None else None
        pacer = Pacer(policy.max_events_per_second, clock, spacing, held)

    async def model(stream: int) -> None:
        batcher = TokenBatcher(page.sink(stream), policy, clock, pacer)
        for word in words(stream, tokens):
            await batcher.push(word)
            await clock.sleep(1 / rate)
        await batcher.aclose()

    async def reporter() -> None:
        while True:
            await clock.sleep(REPORT_EVERY)
            report = page.report()
            quiet = silent is not None and silent[0] <= clock.now() < silent[1]
            if controller is not None and not quiet:
                controller.report(report)

    tasks = [asyncio.create_task(model(i)) for i in range(streams)]
    reports = asyncio.create_task(reporter())
    try:
        while not all(task.done() for task in tasks):
            await clock.advance(0.01)
        for task in tasks:
            task.result()
    finally:
        reports.cancel()
        if pacer is not None:
            pacer.close()
    return page, controller, words(0, tokens)


def mean_share(page: SimPage, after: float) -> float:
    late = [share for t, share in page.shares if t >= after]
    return sum(late) / len(late)


def late_rate(page: SimPage) -> float:
    """Events per second over the second half of the reply."""
    end = page.events[-1]
    return sum(1 for t in page.events if t >= end / 2) / (end / 2)


async def test_throttled_page_when_controlled_then_busy_share_settles_under_budget() -> None:
    uncontrolled, _, _ = await run_reply(4.0, 5000, 200.0, control=False)
    page, controller, words = await run_reply(4.0, 5000, 200.0, control=True)
    assert controller is not None
    end = page.events[-1]
    assert mean_share(uncontrolled, end / 2) > 2 * BUDGET  # what the controller prevents
    assert mean_share(page, end / 2) <= 1.1 * BUDGET  # at the edge of the dead band, on average
    late = [share for t, share in page.shares if end / 2 <= t <= end]
    per_second = [sum(late[i : i + 4]) / 4 for i in range(len(late) - 3)]  # the controller decides
    assert max(per_second) <= 1.5 * BUDGET  # on windows of 0.5 s or more, never on one report
    assert late_rate(page) < late_rate(uncontrolled) / 2  # fewer, larger updates
    assert page.text == "".join(words)


async def test_fast_page_when_controlled_then_exactly_todays_events() -> None:
    today, _, _ = await run_reply(1.0, 5000, 200.0, control=False)
    page, controller, words = await run_reply(1.0, 5000, 200.0, control=True)
    assert controller is not None and not controller.paced_down
    assert page.events == pytest.approx(today.events)
    assert page.text == "".join(words)


async def test_throttled_page_when_controlled_then_no_stream_starves() -> None:
    page, controller, words = await run_reply(4.0, 5000, 200.0, control=True)
    assert controller is not None
    gaps = [b - a for a, b in zip(page.events, page.events[1:], strict=False)]
    assert max(gaps) <= 1 / controller.floor + 1e-6
    assert page.text == "".join(words)


async def test_team_turn_when_throttled_then_one_budget_covers_every_stream() -> None:
    shared, _, _ = await run_reply(4.0, 2000, 100.0, control=False, streams=3)
    page, controller, _ = await run_reply(4.0, 2000, 100.0, control=True, streams=3)
    assert controller is not None
    end = page.events[-1]
    assert mean_share(shared, end / 2) > 1.5 * BUDGET  # the fixed shared budget alone is too much
    assert mean_share(page, end / 2) <= 1.1 * BUDGET
    assert all(page.texts[i] == "".join(words(i, 2000)) for i in range(3))


def busy(share: float, worst: float = 0.02, working: float | None = None) -> RenderReport:
    idle = None if working is None else (1 - working) * REPORT_EVERY
    return RenderReport(REPORT_EVERY, 10, share * REPORT_EVERY, worst, idle)


async def decide(
    controller: RenderControl,
    clock: FakeClock,
    share: float,
    worst: float = 0.02,
    working: float | None = None,
) -> float:
    """Report `share` every 250 ms until the controller decides (its window is full); the new rate."""
    decided = controller.decisions.reports
    while controller.decisions.reports == decided:
        await clock.advance(REPORT_EVERY)
        controller.report(busy(share, worst, working))
    return controller.events_per_second()


async def test_burst_when_over_then_backs_off_fast_and_recovers_gently() -> None:
    clock = FakeClock()
    controller = RenderControl(BatchPolicy(max_events_per_second=20), 6000, clock, min_segment_chars=1000)
    start = clock.now()
    rates = [await decide(controller, clock, 1.0) for _ in range(5)]  # a page at full load
    assert rates == [10.0, 5.0, 2.5, 1.25, 1.0]  # halved per decision, down to the floor
    assert clock.now() - start <= 4.5  # each window holds two event spacings: 0.5 s up to 2 s
    assert controller.paced_down and controller.segment_chars() == 1000
    recovery = [await decide(controller, clock, 0.0) for _ in range(19)]  # then an idle page
    assert recovery == [float(rate) for rate in range(2, 21)]  # one step per decision
    assert controller.segment_chars() == 6000 and not controller.paced_down
    kept = RenderControl(BatchPolicy(max_events_per_second=20), 6000, clock)
    await decide(kept, clock, 1.0)
    assert kept.paced_down and kept.segment_chars() == 6000  # by default the size holds


async def test_busy_main_thread_when_frames_keep_up_then_backs_off_to_the_cpu_floor_at_most() -> None:
    clock = FakeClock()
    controller = RenderControl(BatchPolicy(max_events_per_second=20), 0, clock)
    assert controller.cpu_floor == 4.0  # a fifth of the cap
    rates = [await decide(controller, clock, 0.0, working=0.2) for _ in range(4)]  # no frame lost
    assert rates == pytest.approx([10.0, 5.0, 4.0, 4.0])  # at most halved, then held at the floor
    assert controller.describe() == "Paced down to 4 of 20 updates/s: to save this page's CPU"
    assert await decide(controller, clock, 0.0, working=0.09) == 4.0  # under budget, not by enough
    assert await decide(controller, clock, 0.0, working=0.07) == 5.0  # well under: one step up
    assert await decide(controller, clock, 0.0, working=0.11) == pytest.approx(5 * 0.1 / 0.11)
    assert await decide(controller, clock, 0.3) == pytest.approx(5 * 0.1 / 0.11 * 0.5)  # frames lost
    assert controller.describe().endswith("this page renders slowly")
    below = controller.events_per_second()  # under the CPU floor frames alone decide, however
    rose = await decide(controller, clock, 0.0, working=0.5)  # busy the main thread (a slow page's is)
    assert rose == pytest.approx(below + 1)


async def test_cpu_budget_when_none_then_only_frames_decide() -> None:
    clock = FakeClock()
    controller = RenderControl(BatchPolicy(max_events_per_second=20), 0, clock, cpu_budget=None)
    assert await decide(controller, clock, 0.0, working=0.9) == 20.0
    with pytest.raises(ValueError, match="cpu_budget"):
        RenderControl(BatchPolicy(), 0, clock, cpu_budget=1.5)


async def test_fast_page_spending_cpu_when_controlled_then_fewer_events_and_text_exact() -> None:
    today, _, _ = await run_reply(1.0, 5000, 200.0, control=False)
    page, controller, words = await run_reply(1.0, 5000, 200.0, control=True, base=0.02, cpu_budget=0.05)
    assert controller is not None and controller.paced_down
    assert controller.events_per_second() >= controller.cpu_floor
    assert max(share for _, share in page.shares) <= BUDGET  # it never lost frames: CPU decided
    assert late_rate(page) < 0.8 * late_rate(today)
    assert late_rate(page) >= 0.9 * controller.cpu_floor
    assert page.text == "".join(words)
    lean, lean_controller, _ = await run_reply(1.0, 5000, 200.0, control=True, base=0.0, cpu_budget=0.5)
    assert lean_controller is not None and not lean_controller.paced_down  # under the budget: today's
    assert lean.events == pytest.approx(today.events)


async def test_report_windows_when_one_holds_an_update_and_the_next_not_then_judged_together() -> None:
    # At 2 events/s a 250 ms report either holds an update's long frames or none: judged one by
    # one the pace would swing between backing off and recovering.
    clock = FakeClock()
    controller = RenderControl(BatchPolicy(max_events_per_second=2), 0, clock)
    for share in (0.3, 0.0, 0.0, 0.0) * 4:  # 7.5 % over each second
        await clock.advance(REPORT_EVERY)
        controller.report(busy(share))
        assert controller.events_per_second() == 2.0
    assert controller.decisions.take().startswith("reports=4 backoffs=0 recoveries=0")


async def test_long_frame_when_share_is_low_then_backs_off() -> None:
    clock = FakeClock()
    controller = RenderControl(BatchPolicy(max_events_per_second=20), 0, clock)
    assert await decide(controller, clock, 0.05, worst=0.3) == 10.0  # a freeze of 300 ms
    assert controller.segment_chars() == 0  # segmenting off stays off


async def test_no_reports_when_asked_then_the_policy_unchanged() -> None:
    clock = FakeClock()
    policy = policy_for(Settings())
    controller = RenderControl(policy, Settings().segment_chars, clock)
    assert controller.spacing() == policy.min_spacing
    assert controller.segment_chars() == Settings().segment_chars


async def test_reports_when_they_stop_then_the_earned_pace_holds_for_memory_then_the_policy() -> None:
    clock = FakeClock()
    controller = RenderControl(BatchPolicy(max_events_per_second=20), 0, clock, memory=60.0)
    await decide(controller, clock, 1.0)
    await clock.advance(59.0)  # between two turns the page does not report: its pace holds
    assert controller.events_per_second() == 10.0 and controller.reporting
    assert await decide(controller, clock, 0.0) == 11.0  # the next turn starts from there
    await clock.advance(60.01)
    assert controller.events_per_second() == 20.0 and not controller.reporting
    assert await decide(controller, clock, 0.07) == 20.0  # back after so long: from the policy


async def test_new_page_when_its_script_answered_then_its_first_reply_starts_at_the_cpu_floor() -> None:
    clock = FakeClock()
    controller = RenderControl(BatchPolicy(max_events_per_second=20), 0, clock, memory=60.0)
    controller.turn_started()  # no hello: an old page or an API client gets the policy
    assert controller.events_per_second() == 20.0 and not controller.reporting
    controller.page_seen()
    controller.turn_started()
    assert controller.events_per_second() == 4.0 and controller.reporting
    said = controller.describe()
    assert said == "Paced down to 4 of 20 updates/s: a page starts gently, its reports raise the pace"
    assert controller.decisions.take().endswith("lowest_events_per_s=4.0 events_per_s=4.0")
    assert await decide(controller, clock, 0.0, working=0.02) == 5.0  # its reports raise the pace
    controller.turn_started()  # the next reply: the pace the page earned holds
    assert controller.events_per_second() == 5.0
    await clock.advance(60.01)
    controller.turn_started()  # long after its last report: gently again
    assert controller.events_per_second() == 4.0


async def test_decisions_when_taken_then_one_line_per_reply_and_counting_again() -> None:
    clock = FakeClock()
    controller = RenderControl(BatchPolicy(max_events_per_second=20), 0, clock)
    await decide(controller, clock, 1.0)
    await decide(controller, clock, 0.0)
    await decide(controller, clock, 0.07)  # in the dead band: held
    line = controller.decisions.take()
    assert line == "reports=3 backoffs=1 recoveries=1 lowest_events_per_s=10.0 events_per_s=11.0"
    assert controller.decisions.take().startswith("reports=0 backoffs=0 recoveries=0 lowest_events_per_s=-")
    assert controller.describe() == "Paced down to 11 of 20 updates/s: this page renders slowly"


async def test_page_silent_mid_reply_when_held_then_nothing_until_it_is_back_then_one_event() -> None:
    page, controller, expected = await run_reply(
        1.0, 4000, 200.0, control=True, silent=(5.0, 15.0), hold_after=0.75
    )
    assert controller is not None
    during = [t for t in page.events if 5.0 <= t < 15.0]
    assert during and max(during) <= 5.0 + 0.75 + 1 / 20  # what was granted before the hold
    back = next(t for t in page.events if t >= 15.0)
    assert back - 15.0 <= REPORT_EVERY + HOLD_POLL  # its next report releases the hold
    held = page.sizes[page.events.index(back)]
    assert held >= 9 * 200 * 4  # the ~9 s held (200 four-character tokens a second) as one event
    assert len([t for t in page.events if 15.0 <= t < back + 1 / 20]) == 1
    assert page.text == "".join(expected)


async def test_page_silent_mid_reply_when_not_holding_then_events_go_on_at_its_pace() -> None:
    page, _, expected = await run_reply(1.0, 4000, 200.0, control=True, silent=(5.0, 15.0))
    assert len([t for t in page.events if 5.0 <= t < 15.0]) >= 50  # the old way: at its pace, 10 a second
    assert page.text == "".join(expected)


async def test_page_silent_when_held_too_long_then_the_floor_rate_not_nothing() -> None:
    page, controller, expected = await run_reply(
        1.0, 10_000, 200.0, control=True, silent=(5.0, 45.0), hold_after=0.75
    )
    assert controller is not None
    last_report = 5.0 - REPORT_EVERY
    cap = last_report + 0.75 + controller.max_hold
    assert not [t for t in page.events if 5.0 + 0.75 < t < cap]
    trickle = [t for t in page.events if cap <= t < 45.0]
    assert len(trickle) == pytest.approx(45.0 - cap, abs=1)  # one a second: a page whose reports broke
    assert page.text == "".join(expected)


async def test_hold_when_the_page_was_not_heard_this_turn_or_the_turn_ended_then_none() -> None:
    clock = FakeClock()
    controller = RenderControl(BatchPolicy(max_events_per_second=20), 0, clock, hold_after=0.75)
    controller.page_seen()
    controller.heard()  # a report of the last turn
    await clock.advance(5.0)
    controller.turn_started()
    await clock.advance(2.0)
    assert not controller.held()  # never heard in this turn: a page that does not report is not starved
    controller.heard()
    await clock.advance(0.7)
    assert not controller.held()
    await clock.advance(0.1)
    assert controller.held()
    controller.heard()
    assert not controller.held()  # the page is back
    await clock.advance(1.0)
    assert controller.held()
    controller.turn_ended()
    assert not controller.held()
    await clock.advance(3.0)
    controller.heard()  # its "started" signal, just before the server starts the next turn
    await clock.advance(0.5)
    controller.turn_started()
    await clock.advance(0.3)
    assert controller.held()  # heard 0.8 s ago, for this turn


async def test_reports_when_too_frequent_then_ignored_until_min_gap() -> None:
    clock = FakeClock()
    controller = RenderControl(BatchPolicy(max_events_per_second=20), 0, clock)
    assert controller.report(busy(0.2))  # over budget, not overloaded: the window must fill
    assert not controller.report(busy(0.2))  # a flood of reports cannot fill it faster
    assert controller.events_per_second() == 20.0
    await clock.advance(REPORT_EVERY)
    assert controller.report(busy(0.2))  # 0.5 s of reports: one decision
    assert controller.events_per_second() == 10.0
    await clock.advance(REPORT_EVERY)
    assert controller.report(busy(1.0))  # a window far over budget is decided at once
    assert controller.events_per_second() == 5.0


async def test_paced_down_page_when_a_new_stream_starts_then_its_first_token_goes_at_once() -> None:
    clock = FakeClock()
    policy = BatchPolicy(max_events_per_second=20)
    controller = RenderControl(policy, 0, clock)
    while controller.events_per_second() > controller.floor:
        await decide(controller, clock, 1.0)
    sent: list[tuple[float, str]] = []

    async def emit(text: str, is_sequence: bool) -> None:
        sent.append((clock.now(), text))

    batcher = TokenBatcher(emit, policy, clock, Pacer(20, clock, controller.spacing))
    await batcher.push("Hello")
    assert sent == [(clock.now(), "Hello")]
    await batcher.aclose()


gaps = st.lists(st.floats(min_value=0.0, max_value=0.2), min_size=1, max_size=60)
single_policies = st.builds(
    BatchPolicy,
    batch_size=st.integers(min_value=1, max_value=8),
    flush_interval=st.floats(min_value=0.01, max_value=0.5),
    max_events_per_second=st.floats(min_value=2, max_value=100),
)


async def _single(policy: BatchPolicy, pauses: list[float], control: bool) -> list[tuple[float, str]]:
    clock = FakeClock()
    events: list[tuple[float, str]] = []

    async def emit(text: str, is_sequence: bool) -> None:
        await asyncio.sleep(0)
        events.append((clock.now(), text))

    pacer = None
    if control:
        pacer = Pacer(policy.max_events_per_second, clock, RenderControl(policy, 0, clock).spacing)
    batcher = TokenBatcher(emit, policy, clock, pacer)
    for i, pause in enumerate(pauses):
        await batcher.push(f"t{i} ")
        await clock.advance(pause)
    await batcher.aclose()
    return events


@settings(max_examples=100, deadline=None)
@given(policy=single_policies, pauses=gaps)
def test_controller_when_no_reports_arrive_then_exactly_the_events_of_the_batcher_alone(
    policy: BatchPolicy, pauses: list[float]
) -> None:
    alone = asyncio.run(_single(policy, pauses, control=False))
    controlled = asyncio.run(_single(policy, pauses, control=True))
    assert [text for _, text in controlled] == [text for _, text in alone]
    assert [t for t, _ in controlled] == pytest.approx([t for t, _ in alone])


any_float = st.floats(allow_nan=True, allow_infinity=True)
frame_counts = st.integers(min_value=-5, max_value=10_000)
reports = st.builds(RenderReport, any_float, frame_counts, any_float, any_float, st.none() | any_float)


@settings(max_examples=200, deadline=None)
@given(
    ceiling=st.floats(min_value=0.5, max_value=100),
    segment_chars=st.integers(min_value=0, max_value=20_000),
    sequence=st.lists(st.tuples(st.floats(min_value=0, max_value=3), reports), max_size=40),
)
def test_any_report_sequence_when_applied_then_pacing_within_the_flag_bounds(
    ceiling: float, segment_chars: int, sequence: list[tuple[float, RenderReport]]
) -> None:
    async def run() -> None:
        clock = FakeClock()
        controller = RenderControl(BatchPolicy(max_events_per_second=ceiling), segment_chars, clock)
        floor = min(1.0, ceiling)
        for gap, report in sequence:
            await clock.advance(gap)
            controller.report(report)
            rate = controller.events_per_second()
            assert floor <= rate <= ceiling and math.isfinite(rate)
            assert controller.spacing() == pytest.approx(1 / rate)
            size = controller.segment_chars()
            assert size == segment_chars  # by default the flag's size, whatever the pace
            assert size <= segment_chars

    asyncio.run(run())
