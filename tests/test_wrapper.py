"""SmoothStreamWrapper against a recording message: same API as cl.Message, fewer events."""

from __future__ import annotations

import pytest

from smart_agent.streaming import BatchPolicy, Pacer, SmoothStreamWrapper
from tests.fakes import EmitError, FakeClock, RecordingMessage


def wrap(
    message: RecordingMessage | None = None, clock: FakeClock | None = None, **policy: float | bool
) -> tuple[SmoothStreamWrapper, RecordingMessage]:
    message = message or RecordingMessage()
    return SmoothStreamWrapper(message, BatchPolicy(**policy), clock or FakeClock()), message  # type: ignore[arg-type]


async def test_tokens_when_sent_then_browser_shows_all_text_in_few_events() -> None:
    reply, message = wrap()
    for i in range(100):
        await reply.stream_token(f"w{i} ")
    await reply.send()
    expected = "".join(f"w{i} " for i in range(100))
    assert message.browser_text() == expected
    assert message.content == expected
    assert message.stream_events() <= 2


async def test_update_when_tokens_buffered_then_flushed_first() -> None:
    reply, message = wrap()
    await reply.stream_token("a")
    await reply.stream_token("b")
    await reply.update()
    assert [kind for kind, _, _ in message.events] == ["stream_start", "stream_token", "update"]
    assert message.events[-1][1] == "ab"


async def test_finish_when_tokens_buffered_then_they_go_out_in_the_final_message_not_before_it() -> None:
    reply, message = wrap()
    for token in ("a", "b", "c"):  # the first goes at once, the others wait
        await reply.stream_token(token)
    await reply.finish()
    assert [kind for kind, _, _ in message.events] == ["stream_start", "send"]  # one render saved
    assert message.events[-1][1] == "abc" == message.browser_text() == reply.content


async def test_finish_when_tokens_buffered_then_the_final_message_counts_against_the_pacer() -> None:
    clock = FakeClock()
    pacer = Pacer(4, clock)
    message = RecordingMessage()
    reply = SmoothStreamWrapper(message, BatchPolicy(), clock, pacer=pacer)  # type: ignore[arg-type]
    await reply.stream_token("a")
    await reply.stream_token("b")
    await reply.finish()
    assert pacer.granted == 2 and not pacer.try_acquire()  # the next event waits a full spacing


async def test_remove_when_tokens_buffered_then_flushed_and_removed() -> None:
    reply, message = wrap()
    await reply.stream_token("a")
    await reply.stream_token("b")
    await reply.remove()
    assert message.events[-1][0] == "remove"
    assert message.content == "ab"


async def test_content_read_when_tokens_buffered_then_includes_them() -> None:
    reply, message = wrap()
    await reply.stream_token("a")
    await reply.stream_token("b")
    assert message.content == "a"
    assert reply.content == "ab"


async def test_attribute_write_when_set_on_wrapper_then_reaches_message() -> None:
    reply, message = wrap()
    reply.author = "Bot"
    assert message.author == "Bot"
    assert reply.author == "Bot"


async def test_content_write_when_tokens_buffered_then_replaces_everything() -> None:
    reply, message = wrap()
    await reply.stream_token("a")
    await reply.stream_token("b")
    reply.content = "fresh"
    await reply.update()
    assert message.content == "fresh"
    assert message.browser_text() == "fresh"


async def test_batching_off_when_streaming_then_one_event_per_token_like_native() -> None:
    reply, message = wrap(enabled=False)
    native = RecordingMessage()
    for token in ["a", "b", "c", "", "d"]:
        await reply.stream_token(token)
        await native.stream_token(token)
    await reply.send()
    await native.send()
    assert message.events == native.events


async def test_is_sequence_when_streamed_then_matches_native() -> None:
    reply, message = wrap()
    native = RecordingMessage()
    for token, seq in [("a", False), ("b", False), ("XY", True), ("z", False)]:
        await reply.stream_token(token, is_sequence=seq)
        await native.stream_token(token, is_sequence=seq)
    await reply.send()
    await native.send()
    assert message.browser_text() == native.browser_text() == "XYz"


async def test_emit_fails_when_retried_then_no_text_duplicated() -> None:
    reply, message = wrap()
    message.fail_next = 1
    with pytest.raises(EmitError):
        await reply.stream_token("a")
    assert message.content == ""
    await reply.stream_token("b")
    await reply.send()
    assert message.content == "ab"
    assert message.browser_text() == "ab"


async def test_stop_when_tokens_buffered_then_no_more_stream_events_and_content_complete() -> None:
    clock = FakeClock()
    reply, message = wrap(clock=clock)
    await reply.stream_token("a")
    await reply.stream_token("b")
    reply.stop()
    await clock.advance(1)
    assert message.stream_events() == 1
    assert message.content == "ab"
    await reply.send()
    assert message.browser_text() == "ab"


async def test_close_when_debugging_then_logs_one_stats_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG", logger="smart_agent")
    reply, _ = wrap()
    async with reply:
        await reply.stream_token("a")
        await reply.stream_token("b")
    await reply.close()
    lines = [r.getMessage() for r in caplog.records if "tokens_in=" in r.getMessage()]
    assert len(lines) == 1
    assert "tokens_in=2 events_out=2" in lines[0]
