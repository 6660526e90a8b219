"""The progress estimate: measured rate over the length of the model's recent replies (fake clock)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

from smart_agent.agent.events import AgentEvent, ReplyDone, TextDelta
from smart_agent.runs.memory import MemoryRunLog
from smart_agent.runs.producer import produce
from smart_agent.streaming.batcher import BatchPolicy
from smart_agent.streaming.estimate import (
    DEFAULT_REPLY_TOKENS,
    NO_HISTORY_CONFIDENCE,
    ReplyLengths,
)
from smart_agent.streaming.progress import ReplyMeter
from tests.fakes import FakeClock


def _meter_after(clock: FakeClock, tokens: int, interval: float) -> ReplyMeter:
    """A meter that counted `tokens` tokens arriving every `interval` s of the fake clock."""
    meter = ReplyMeter(clock)
    for _ in range(tokens):
        clock.t += interval
        meter.on_token()
    return meter


def test_estimate_when_no_history_then_default_length_and_low_confidence() -> None:
    estimate = ReplyLengths().estimate("m", 100, 50.0)
    assert estimate.expected_tokens == DEFAULT_REPLY_TOKENS
    assert estimate.confidence == NO_HISTORY_CONFIDENCE
    assert estimate.percent_complete == pytest.approx(100 * 100 / DEFAULT_REPLY_TOKENS)
    assert estimate.seconds_remaining == pytest.approx((DEFAULT_REPLY_TOKENS - 100) / 50.0)


def test_estimate_when_the_meter_measured_the_rate_then_remaining_time_is_rest_over_rate() -> None:
    lengths = ReplyLengths()
    for _ in range(5):
        lengths.record("m", 200)
    clock = FakeClock()
    progress = _meter_after(clock, 101, 0.02).snapshot(0)  # 100 intervals of 20 ms: 50 tokens/s
    estimate = lengths.estimate("m", progress.tokens, progress.tokens_per_second)
    assert estimate.tokens_per_second == pytest.approx(50.0)
    assert estimate.percent_complete == pytest.approx(50.5)
    assert estimate.seconds_remaining == pytest.approx(99 / 50.0, abs=0.05)
    assert estimate.confidence > 0.5, "five replies of one length: a confident estimate"


def test_estimate_when_lengths_vary_then_less_confident_than_when_they_agree() -> None:
    steady, scattered = ReplyLengths(), ReplyLengths()
    for length in (200, 200, 200, 200, 200):
        steady.record("m", length)
    for length in (50, 400, 120, 900, 200):
        scattered.record("m", length)
    assert scattered.expected("m")[0] == 200 == steady.expected("m")[0]
    assert scattered.expected("m")[1] < steady.expected("m")[1]


def test_estimate_when_the_reply_outgrows_the_history_then_below_100_and_half_as_sure() -> None:
    lengths = ReplyLengths()
    for _ in range(5):
        lengths.record("m", 100)
    _, confidence = lengths.expected("m")
    estimate = lengths.estimate("m", 150, 30.0)
    assert estimate.percent_complete < 100
    assert estimate.seconds_remaining is not None and estimate.seconds_remaining > 0
    assert estimate.confidence == pytest.approx(confidence / 2, abs=0.01)


def test_estimate_when_no_rate_yet_then_no_remaining_time() -> None:
    clock = FakeClock()
    progress = _meter_after(clock, 1, 0.5).snapshot(0)
    assert progress.tokens_per_second == 0.0
    assert ReplyLengths().estimate("m", progress.tokens, progress.tokens_per_second).seconds_remaining is None


def test_history_when_more_replies_than_kept_then_only_the_recent_ones_count() -> None:
    lengths = ReplyLengths(keep=3)
    for length in (10, 10, 10, 1000, 1000, 1000):
        lengths.record("m", length)
    lengths.record("m", 0)  # an empty reply teaches nothing
    assert lengths.expected("m")[0] == 1000


def test_history_when_two_models_then_each_has_its_own() -> None:
    lengths = ReplyLengths()
    lengths.record("small", 50)
    lengths.record("large", 800)
    assert lengths.expected("small")[0] == 50 and lengths.expected("large")[0] == 800
    assert lengths.expected("other") == (DEFAULT_REPLY_TOKENS, NO_HISTORY_CONFIDENCE)


def test_history_when_bad_bounds_then_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ReplyLengths(keep=0)


async def test_produce_when_a_reply_ends_then_progress_carries_the_estimate_and_the_length_is_learned() -> (
    None
):
    clock = FakeClock()
    lengths = ReplyLengths()
    for _ in range(3):
        lengths.record("m", 40)

    async def turn() -> AsyncGenerator[AgentEvent, None]:
        for _ in range(60):
            clock.t += 0.05  # 20 tokens/s
            yield TextDelta("x")
        yield ReplyDone("x" * 60, 0)

    log = MemoryRunLog(60)
    await log.create("r", "", 4)
    await produce(log, "r", turn(), BatchPolicy(enabled=False), clock, lengths=lengths, model="m")
    progress = [event.data async for event in log.read("r") if event.kind == "progress"]
    assert len(progress) >= 5
    middle = next(figures for figures in progress if figures["tokens"] >= 20)
    assert middle["percent_complete"] == pytest.approx(100 * middle["tokens"] / 40, abs=0.1)
    assert middle["estimated_seconds_remaining"] == pytest.approx((40 - middle["tokens"]) / 20, abs=0.1)
    assert all(figures["percent_complete"] < 100 for figures in progress)
    assert lengths.expected("m")[0] == 40, "median of 40, 40, 40, 60"
    lengths.record("m", 60)
    lengths.record("m", 60)
    assert lengths.expected("m")[0] == 50, "40, 40, 40 and three 60s: the run's own 60 was learned"
