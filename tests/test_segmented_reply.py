"""SegmentedReply: a long reply becomes several finalised messages whose texts join exactly."""

from __future__ import annotations

import asyncio
import itertools
import tracemalloc

import pytest

from smart_agent.streaming import BatchPolicy, Pacer, SegmentedReply
from tests.fakes import FakeClock, NoOpMessage, RecordingMessage, settle
from tests.scripted_server import script_tokens


def make(segment_chars: int) -> tuple[SegmentedReply, list[RecordingMessage], FakeClock]:
    messages: list[RecordingMessage] = []
    clock = FakeClock()

    def new_message() -> RecordingMessage:
        messages.append(RecordingMessage(clock=clock))
        return messages[-1]

    return SegmentedReply(new_message, BatchPolicy(), segment_chars, clock), messages, clock


async def test_long_markdown_reply_when_streamed_then_segments_join_exactly_and_all_final() -> None:
    tokens = script_tokens(20_000, "markdown")
    reply, messages, clock = make(6000)
    for i, token in enumerate(tokens):
        await reply.stream_token(token)
        if i % 50 == 0:
            await clock.advance(0.1)
    await reply.finish()
    expected = "".join(tokens)
    assert len(messages) > 5
    assert "".join(m.browser_text() for m in messages) == expected == reply.content
    for message in messages:
        assert message.events[-1][0] == "send"  # every segment finalised: no blinking cursor
        assert len(message.content) < 6000 + 1000  # cut at the first safe blank line after 6,000
    assert reply.stats.tokens_in >= len(tokens)


async def test_continuation_when_a_segment_ends_then_its_first_words_wait_for_the_pages_next_slot() -> None:
    clock = FakeClock()
    pacer = Pacer(4, clock)  # a page paced to 4 events/s: 250 ms apart
    messages: list[RecordingMessage] = []

    def new_message() -> RecordingMessage:
        messages.append(RecordingMessage(clock=clock))
        return messages[-1]

    reply = SegmentedReply(new_message, BatchPolicy(), 2000, clock, pacer=pacer)
    tokens = script_tokens(2000, "markdown")
    for token in tokens:
        await reply.stream_token(token)
        await clock.advance(0.002)
    await reply.finish()
    await settle()
    assert len(messages) >= 3
    assert messages[0].event_times[0] == 0.0  # the reply's first words go at once
    continued = [(before, after) for before, after in itertools.pairwise(messages) if after.event_times]
    assert len(continued) >= 2  # (a short last segment may go whole in the reply's final message)
    for before, after in continued:
        assert before.sent_at is not None and after.event_times[0] >= before.sent_at + 0.25 - 1e-9
    assert "".join(m.browser_text() for m in messages) == "".join(tokens) == reply.content


async def test_segmenting_off_when_long_then_one_message() -> None:
    tokens = script_tokens(3000, "markdown")
    reply, messages, _ = make(0)
    for token in tokens:
        await reply.stream_token(token)
    await reply.finish()
    assert len(messages) == 1
    assert messages[0].browser_text() == "".join(tokens)


async def test_stop_when_in_second_segment_then_prefix_kept_and_nothing_more_emitted() -> None:
    tokens = script_tokens(4000, "markdown")
    reply, messages, clock = make(2000)
    for token in tokens[:1500]:
        await reply.stream_token(token)
    reply.stop()
    before = [len(m.events) for m in messages]
    await clock.advance(1.0)
    assert [len(m.events) for m in messages] == before
    await reply.finish()
    shown = "".join(m.browser_text() for m in messages)
    assert shown == "".join(tokens[:1500]) == reply.content
    assert all(m.events[-1][0] == "send" for m in messages)


async def test_empty_reply_when_finished_then_no_message() -> None:
    reply, messages, _ = make(100)
    await reply.finish()
    assert messages == []
    assert reply.content == ""


async def test_stop_when_it_interrupts_a_segment_finalising_then_finish_finalises_it_again() -> None:
    gate = asyncio.Event()
    messages: list[RecordingMessage] = []

    class SlowSend(RecordingMessage):
        async def send(self) -> RecordingMessage:
            await gate.wait()  # the stop lands while the final message is being sent
            return await super().send()

    def new_message() -> RecordingMessage:
        messages.append(SlowSend())
        return messages[-1]

    reply = SegmentedReply(new_message, BatchPolicy(), 10, FakeClock())
    task = asyncio.create_task(reply.stream_token("0123456789ab\n\ncd"))
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    reply.stop()
    gate.set()
    await reply.finish()
    assert messages[0].events[-1] == ("send", "0123456789ab\n\n", True)
    assert reply.content == "0123456789ab\n\n"


@pytest.mark.parametrize("piece", ["x = 1 + 2  # w\n", "word "], ids=["one code fence", "no newline at all"])
async def test_huge_reply_when_one_more_token_arrives_then_it_allocates_per_token_only(piece: str) -> None:
    reply = SegmentedReply(NoOpMessage, BatchPolicy(), 6000, FakeClock())
    if piece.endswith("\n"):
        await reply.stream_token("```python\n")
    block = piece * (1000 // len(piece))
    for _ in range(1000):  # 1,000,000 characters that offer no cut
        await reply.stream_token(block)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for token in (" w", "ord", "s"):
            await reply.stream_token(token)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < 20_000  # a copy of the reply or of its line would be ~1 MB
    assert len(reply.segments) == 1
