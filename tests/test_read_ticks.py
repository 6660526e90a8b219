"""A flowing model stream is read once per tick, all paused sockets together, and nothing is lost."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx2

from smart_agent.config import Settings
from smart_agent.llm.client import make_client
from smart_agent.llm.read_ticks import BUSY_STREAMS, READ_TICK, ReadTicker, in_ticks, ticker
from smart_agent.llm.transport import ModelTransport
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens


class FakeTransport:
    """A read transport that records its pauses and resumes."""

    def __init__(self, closing: bool = False) -> None:
        self.reading = True
        self.closing = closing
        self.pauses = 0
        self.resumed: list[float] = []
        self.resumed_event = asyncio.Event()

    def is_closing(self) -> bool:
        return self.closing

    def is_reading(self) -> bool:
        return self.reading

    def pause_reading(self) -> None:
        self.reading = False
        self.pauses += 1

    def resume_reading(self) -> None:
        self.reading = True
        self.resumed.append(asyncio.get_running_loop().time())
        self.resumed_event.set()


async def _reads(count: int) -> AsyncIterator[bytes]:
    for n in range(count):
        yield f"{n};".encode()


async def _taken(transport: FakeTransport, flowing: float) -> tuple[bytes, list[int]]:
    """What `in_ticks` gives of five reads, and the pauses counted as each was given."""
    given, pauses = b"", []
    async for data in in_ticks(_reads(5), transport.pause_reading, flowing):
        given += data
        pauses.append(transport.pauses)
        transport.reading = True  # as if the tick had come
    return given, pauses


async def test_in_ticks_when_reads_follow_closely_then_paused_after_each_but_the_first() -> None:
    transport = FakeTransport()
    given, pauses = await _taken(transport, flowing=3600)
    assert given == b"0;1;2;3;4;" and pauses == [0, 1, 2, 3, 4]


async def test_in_ticks_when_reads_are_far_apart_then_never_paused() -> None:
    transport = FakeTransport()
    given, pauses = await _taken(transport, flowing=0)
    assert given == b"0;1;2;3;4;" and pauses == [0, 0, 0, 0, 0]


async def test_ticker_when_sockets_paused_in_one_tick_then_all_resumed_at_once() -> None:
    ticks = ReadTicker(asyncio.get_running_loop(), tick=0.05)
    first, second = FakeTransport(), FakeTransport()
    start = asyncio.get_running_loop().time()
    ticks.pause(first)
    ticks.pause(second)
    assert not first.reading and not second.reading
    await asyncio.wait_for(second.resumed_event.wait(), 5)
    # Both in the tick's one callback: microseconds apart, a tick after the pause.
    assert len(first.resumed) == len(second.resumed) == 1
    assert abs(first.resumed[0] - second.resumed[0]) < 0.005 and first.resumed[0] - start >= 0.05


async def test_ticker_when_socket_closing_or_already_paused_then_left_alone() -> None:
    ticks = ReadTicker(asyncio.get_running_loop(), tick=0.01)
    closing, paused_by_aiohttp, witness = FakeTransport(closing=True), FakeTransport(), FakeTransport()
    paused_by_aiohttp.reading = False
    ticks.pause(closing)
    ticks.pause(paused_by_aiohttp)
    ticks.pause(witness)
    await asyncio.wait_for(witness.resumed_event.wait(), 5)
    assert closing.pauses == paused_by_aiohttp.pauses == 0
    assert not paused_by_aiohttp.reading and not paused_by_aiohttp.resumed  # aiohttp resumes it


async def test_ticker_when_socket_closes_while_paused_then_not_resumed() -> None:
    ticks = ReadTicker(asyncio.get_running_loop(), tick=0.01)
    closed, witness = FakeTransport(), FakeTransport()
    ticks.pause(closed)
    ticks.pause(witness)
    closed.closing = True
    await asyncio.wait_for(witness.resumed_event.wait(), 5)
    assert not closed.resumed


async def _body_reads(client: httpx2.AsyncClient, url: str, tokens: int) -> tuple[int, list[str], float]:
    """The number of reads of one streamed reply's body, its text pieces, and the seconds it took."""
    request = {
        "model": MODEL_ID,
        "stream": True,
        "messages": [{"role": "user", "content": f"#script tokens={tokens} rate=200"}],
    }
    reads, body = 0, b""
    start = time.monotonic()
    async with client.stream("POST", f"{url}/chat/completions", json=request) as response:
        async for data in response.aiter_raw():
            reads += 1
            body += data
    seconds = time.monotonic() - start
    events = [line[len(b"data: ") :] for line in body.split(b"\n") if line.startswith(b"data: ")]
    assert events[-1] == b"[DONE]"
    pieces = [json.loads(event)["choices"][0]["delta"].get("content") for event in events[:-1]]
    return reads, [piece for piece in pieces if piece], seconds


@contextlib.contextmanager
def _others_streaming() -> Iterator[None]:
    """As if enough other streams were open for the loop's ticker to pause sockets."""
    with contextlib.ExitStack() as others:
        for _ in range(BUSY_STREAMS - 1):
            others.enter_context(ticker().streaming())
        yield


async def test_stream_when_many_flow_then_each_read_once_per_tick_and_whole(scripted: ScriptedServer) -> None:
    async with (
        httpx2.AsyncClient(transport=ModelTransport()) as ticked,
        httpx2.AsyncClient(transport=ModelTransport(ticks=False)) as each,
    ):
        streams = await asyncio.gather(*(_body_reads(ticked, scripted.url, 200) for _ in range(BUSY_STREAMS)))
        _, plain, _ = await _body_reads(each, scripted.url, 200)
    for reads, pieces, seconds in streams:
        # 200 chunks over about a second; every read after the first two waited for a tick.
        assert reads <= seconds / READ_TICK + 4, (reads, seconds)
        assert pieces == plain == script_tokens(200)


async def test_stream_when_alone_then_each_chunk_read_as_it_comes(scripted: ScriptedServer) -> None:
    pauses = ticker().pauses
    async with httpx2.AsyncClient(transport=ModelTransport()) as client:
        _, pieces, _ = await _body_reads(client, scripted.url, 100)
    assert pieces == script_tokens(100) and ticker().pauses == pauses and ticker().streams == 0


def test_ticker_when_streams_open_then_busy_from_the_threshold_on() -> None:
    loop = asyncio.new_event_loop()
    try:
        ticks = ReadTicker(loop, busy_at=2)
        with ticks.streaming():
            assert not ticks.busy
            with ticks.streaming():
                assert ticks.busy and ticks.streams == 2
        assert not ticks.busy and ticks.streams == 0
    finally:
        loop.close()


async def test_stream_when_closed_while_paused_then_closes_at_once(scripted: ScriptedServer) -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    client = make_client(Settings(base_url=scripted.url, api_key="k", model=MODEL_ID))
    pauses = ticker().pauses
    try:
        with _others_streaming():
            stream = await client.chat.completions.create(
                model=MODEL_ID,
                stream=True,
                messages=[{"role": "user", "content": "#script tokens=2000 rate=200"}],
            )
            chunks = 0
            async for _ in stream:
                chunks += 1
                if chunks == 20:
                    break
            paused = ticker().pauses - pauses
            await asyncio.wait_for(stream.close(), 5)
        # A socket paused with the closed one resumes at the tick, which leaves the closed one be.
        witness = FakeTransport()
        ticker().pause(witness)
        await asyncio.wait_for(witness.resumed_event.wait(), 5)
    finally:
        await client.close()
        loop.set_exception_handler(None)
    assert chunks == 20 and paused > 0 and not errors


async def test_stream_when_read_to_its_end_then_its_kept_connection_is_left_reading(
    scripted: ScriptedServer,
) -> None:
    transport = ModelTransport()
    with _others_streaming():
        async with httpx2.AsyncClient(transport=transport) as client:
            for _ in range(3):
                _, pieces, _ = await _body_reads(client, scripted.url, 100)
                assert pieces == script_tokens(100)
                # aiohttp's pool (its `_conns`: key -> (protocol, time) pairs) keeps the connection for
                # the next request, which must not wait for a tick to read its answer.
                session = transport.client
                assert isinstance(session, aiohttp.ClientSession) and session.connector is not None
                kept = [protocol for pairs in session.connector._conns.values() for protocol, _ in pairs]  # type: ignore[attr-defined]
                assert kept and all(p.transport is not None and p.transport.is_reading() for p in kept)


def test_make_client_when_batching_off_then_each_chunk_read_as_it_comes() -> None:
    on = make_client(Settings(base_url="http://127.0.0.1:9/v1"))
    off = make_client(Settings(base_url="http://127.0.0.1:9/v1", stream_batching=False))
    assert on._client._transport._ticks and not off._client._transport._ticks  # type: ignore[attr-defined]
