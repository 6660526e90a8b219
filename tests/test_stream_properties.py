"""Property test: whatever happens, the browser ends with exactly the unbatched text."""

from __future__ import annotations

import asyncio
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from smart_agent.streaming import BatchPolicy, SmoothStreamWrapper
from tests.fakes import EmitError, FakeClock, RecordingMessage

text = st.text(alphabet="ab é\n`*", min_size=0, max_size=4)
operation = st.one_of(
    st.tuples(st.just("token"), text),
    st.tuples(st.just("sequence"), text),
    st.tuples(st.just("advance"), st.floats(min_value=0.0, max_value=0.3)),
    st.tuples(st.just("update"), st.none()),
    st.tuples(st.just("send"), st.none()),
    st.tuples(st.just("fail"), st.none()),
)
policies = st.builds(
    BatchPolicy,
    enabled=st.booleans(),
    batch_size=st.integers(min_value=1, max_value=8),
    flush_interval=st.floats(min_value=0.01, max_value=0.5),
    max_events_per_second=st.floats(min_value=2, max_value=100),
)


async def _run(policy: BatchPolicy, ops: list[tuple[str, object]], stop: bool) -> None:
    clock = FakeClock()
    message = RecordingMessage(clock=clock)
    reply = SmoothStreamWrapper(message, policy, clock)
    native = ""
    explicit_flushes = failures = 0
    for kind, arg in ops:
        try:
            if kind == "token":
                assert isinstance(arg, str)
                native += arg
                await reply.stream_token(arg)
            elif kind == "sequence":
                assert isinstance(arg, str)
                native = arg if arg else native
                await reply.stream_token(arg, is_sequence=True)
            elif kind == "advance":
                assert isinstance(arg, float)
                await clock.advance(arg)
            elif kind in {"update", "send"}:
                explicit_flushes += 1
                await getattr(reply, kind)()
            else:
                failures += 1
                message.fail_next += 1
        except EmitError:
            pass
        assert reply.content == native
    elapsed = clock.now()
    if stop:
        reply.stop()
        before = message.stream_events()
        await clock.advance(1.0)
        assert message.stream_events() == before
    message.fail_next = 0
    await reply.close()
    await reply.update()
    assert message.content == native
    assert message.browser_text() == native
    tokens = reply.stats.tokens_in
    events = message.stream_events()
    if policy.enabled:
        bound = 1 + explicit_flushes + failures + math.floor(elapsed / policy.min_spacing) + 2
        assert events <= min(tokens + failures, bound)
    else:
        assert events <= tokens


@settings(max_examples=300, deadline=None)
@given(policy=policies, ops=st.lists(operation, max_size=40), stop=st.booleans())
def test_any_sequence_of_operations_then_final_text_exact_and_events_bounded(
    policy: BatchPolicy, ops: list[tuple[str, object]], stop: bool
) -> None:
    asyncio.run(_run(policy, ops, stop))
