"""Adaptive batching, progress reports bounded per reply, and per-session settings validation."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest

from smart_agent.agent.events import AgentEvent, ReplyDone, TextDelta
from smart_agent.config import ConfigError, Settings
from smart_agent.streaming import BatchPolicy, SegmentedReply, TokenBatcher
from smart_agent.streaming.progress import ReplyMeter, ReplyProgress
from smart_agent.web.chat_settings import apply_session_settings, smoothness
from smart_agent.web.reply import deliver
from tests.fakes import FakeClock, RecordingMessage


def test_adaptive_policy_when_message_grows_then_delays_grow_up_to_the_cap() -> None:
    policy = BatchPolicy(adaptive=True, flush_interval=0.1, max_events_per_second=20)
    assert policy.delays(0) == (0.1, 0.05)
    assert policy.delays(12_000) == pytest.approx((0.2, 0.2))
    assert policy.delays(10_000_000) == (0.5, 0.5)
    assert BatchPolicy(adaptive=False).delays(10_000_000) == (0.1, 0.05)


async def test_adaptive_batcher_when_long_message_then_events_spaced_by_length() -> None:
    clock = FakeClock()
    times: list[float] = []

    async def emit(text: str, is_sequence: bool) -> None:
        times.append(clock.now())

    batcher = TokenBatcher(emit, BatchPolicy(adaptive=True), clock)
    await batcher.push("x" * 30_000)  # the first token goes at once, whatever its size
    for _ in range(400):
        await batcher.push("y")
        await clock.advance(0.01)
    await batcher.aclose()
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert times[0] == 0.0
    assert min(gaps[:-1]) >= 0.5 - 1e-9  # 30,000 chars / 60,000 chars/s = 0.5 s (the cap)
    assert max(gaps[:-1]) <= 0.5 + 0.01 + 1e-9


def test_meter_when_tokens_stream_fast_then_reports_bounded() -> None:
    clock = FakeClock()
    meter = ReplyMeter(clock)
    due = 0
    for _ in range(50_000):  # 50,000 tokens over 10 s
        clock.t += 0.0002
        due += meter.on_token()
    assert due <= 10 / 0.25 + 1
    snapshot = meter.snapshot(ui_events=200, done=True)
    assert snapshot.tokens == 50_000
    assert snapshot.tokens_per_second == pytest.approx(5000, rel=0.01)
    assert snapshot.events_saved == 49_800
    assert snapshot.text() == "50,000 tokens · 5,000 tok/s · 10.0 s"
    assert snapshot.details().startswith(snapshot.text()) and "200 UI events (49,800 saved by batching)" in (
        snapshot.details()
    )


def test_meter_when_one_token_arrived_then_reports_no_rate() -> None:
    clock = FakeClock()
    meter = ReplyMeter(clock)
    clock.t += 0.3
    meter.on_token()
    clock.t += 0.00001
    assert meter.snapshot(ui_events=1).tokens_per_second == 0.0


def test_progress_text_when_streaming_or_stopped_then_says_so() -> None:
    live = ReplyProgress(tokens=10, elapsed=1, first_token=0.2, tokens_per_second=12.5, ui_events=3)
    assert live.text() == "Streaming · 10 tokens · 12 tok/s"
    stopped = ReplyProgress(10, 1, 0.2, 12.5, 3, stopped=True)
    assert stopped.text() == "Stopped · 10 tokens · 12 tok/s · 1.0 s"


def test_progress_text_when_done_then_readable_figures_only_and_the_rest_in_the_details() -> None:
    done = ReplyProgress(
        tokens=412, elapsed=2.14, first_token=0.31, tokens_per_second=38.2, ui_events=9, done=True
    )
    assert done.text() == "412 tokens · 38 tok/s · 2.1 s"
    assert (
        done.details()
        == "412 tokens · 38 tok/s · 2.1 s · first token 0.31 s · 9 UI events (403 saved by batching)"
    )
    assert ReplyProgress(1, 0.5, 0.5, 0.0, 1, done=True).text() == "1 token · 0 tok/s · 0.5 s"


async def test_deliver_when_many_tokens_then_progress_reports_bounded_and_summary_last() -> None:
    clock = FakeClock()
    reports: list[ReplyProgress] = []

    async def events() -> AsyncIterator[AgentEvent]:
        for i in range(10_000):
            clock.t += 0.001  # 10,000 tokens over 10 s
            yield TextDelta(f" t{i}")
        yield ReplyDone("", 0)

    async def on_progress(progress: ReplyProgress) -> None:
        reports.append(progress)

    messages: list[RecordingMessage] = []

    def new_reply() -> SegmentedReply:
        return SegmentedReply(
            lambda: messages.append(RecordingMessage()) or messages[-1], BatchPolicy(), 0, clock
        )

    await deliver(events(), new_reply, meter=ReplyMeter(clock), on_progress=on_progress)
    assert 2 <= len(reports) <= 10 / 0.25 + 2
    assert reports[-1].done and reports[-1].tokens == 10_000
    assert not any(r.done for r in reports[:-1])


def test_session_settings_when_valid_then_applied() -> None:
    base = Settings()
    changed = apply_session_settings(
        base,
        {
            "stream_batching": False,
            "batch_size": 5.0,
            "flush_interval": 0.3,
            "adaptive_batching": True,
            "segment_chars": 0,
        },
    )
    assert (changed.stream_batching, changed.batch_size, changed.flush_interval) == (False, 5, 0.3)
    assert changed.adaptive_batching and changed.segment_chars == 0
    assert base == Settings()  # the defaults for other sessions are untouched


@pytest.mark.parametrize(
    ("values", "phrase"),
    [
        ({"batch_size": 0}, "Batch size: 0 is not allowed, it must be an integer >= 1"),
        ({"batch_size": 2.5}, "Batch size"),
        ({"flush_interval": -1}, "Flush interval (s): -1 is not allowed, it must be a number > 0"),
        ({"segment_chars": -5}, "Segment size"),
    ],
)
def test_session_settings_when_out_of_range_then_refused_with_label(
    values: dict[str, object], phrase: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        apply_session_settings(Settings(), values)
    assert phrase in str(caught.value)


@pytest.mark.parametrize(
    ("choice", "batching", "adaptive"),
    [("instant", False, False), ("calm", True, True), ("smooth", True, False)],
)
def test_smoothness_when_chosen_then_sets_batching_over_the_advanced_switches(
    choice: str, batching: bool, adaptive: bool
) -> None:
    base = Settings(adaptive_batching=choice == "smooth")  # "calm" to start with when smooth is chosen
    panel = {"smoothness": choice, "stream_batching": True, "adaptive_batching": False}
    chosen = apply_session_settings(base, panel)
    assert (chosen.stream_batching, chosen.adaptive_batching) == (batching, adaptive)
    assert smoothness(chosen) == choice


def test_smoothness_when_unchanged_then_the_advanced_switches_apply() -> None:
    chosen = apply_session_settings(Settings(), {"smoothness": "smooth", "stream_batching": False})
    assert not chosen.stream_batching and smoothness(chosen) == "instant"


def test_smoothness_when_unknown_then_refused_naming_the_choices() -> None:
    with pytest.raises(ConfigError, match="Smoothness: 'warp' is not allowed, it must be one of smooth"):
        apply_session_settings(Settings(), {"smoothness": "warp"})
