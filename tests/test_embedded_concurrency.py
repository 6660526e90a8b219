"""Several chats at once on the real embedded model: a second request streams in the server's other
slot, a third waits for a free one; none cuts off a reply in progress."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from smart_agent.agent.events import AgentEvent, ReplyDone, TextDelta
from smart_agent.agent.loop import Agent
from smart_agent.agent.tools import builtin_tools
from smart_agent.config import Settings
from smart_agent.llm.client import EMBEDDED_MODEL_ALIAS, make_client
from smart_agent.llm.local_server import EmbeddedServer, local_model_server
from tests.harness import clean_env, llama_servers, running_app
from tests.sio_client import ChatClient

pytestmark = pytest.mark.slow  # starts processes: not in `make test-fast`

Result = TypeVar("Result")
# Each reply takes about 2.8 s; a third reply started without waiting would start with the others.
READ_ORDER_SLACK = 0.1


def models_status(url: str, key: str) -> int:
    """The HTTP status of GET {url}/models with `key`."""
    request = urllib.request.Request(f"{url}/models", headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def test_two_chat_sessions_when_the_second_asks_mid_reply_then_both_replies_complete(
    tmp_path: Path,
) -> None:
    # no OPENAI_API_KEY / OPENAI_BASE_URL: the app starts the embedded model, whatever the
    # environment tells llama.cpp
    env = clean_env(HOST="0.0.0.0", PORT="1", LLAMA_ARG_HOST="0.0.0.0", API_KEY="x", LLAMA_API_KEY="x")
    with running_app(env=env, log_dir=tmp_path, timeout=180) as (url, _):
        (llama,) = llama_servers()
        assert not {"HOST", "PORT", "LLAMA_ARG_HOST", "API_KEY", "LLAMA_API_KEY"} & set(llama.environ())
        (port,) = [c.laddr.port for c in llama.net_connections("inet") if c.status == psutil.CONN_LISTEN]
        assert models_status(f"http://127.0.0.1:{port}/v1", "x") == 401
        first, second = ChatClient(url), ChatClient(url)
        try:
            await asyncio.gather(first.connect(), second.connect())
            await first.send("Name five colours, one per line.")
            await first.wait_text(bool, seconds=60)
            await second.send("Name five animals, one per line.")
            try:
                await asyncio.gather(*(c.wait_task_ends(3, seconds=180) for c in (first, second)))
            except TimeoutError:  # seen twice under the full suite's load: say how far each got
                pytest.fail(_how_far((first, second), tmp_path))
        finally:
            await asyncio.gather(first.close(), second.close(), return_exceptions=True)
    for client in (first, second):
        texts = [client.messages[i] for i in client.order]
        assert client.reply().strip(), texts
        assert not any("ended the reply early" in text or "failed" in text for text in texts), texts


def _how_far(clients: tuple[ChatClient, ...], logs: Path) -> str:
    """Each client's progress and the tail of every log the app wrote, for a reply that never ended."""
    now = time.monotonic()
    lines = [
        f"client {i}: {c.task_ends} task ends, reply {len(c.reply())} chars, "
        f"last text {now - c.arrivals[-1]:.1f} s ago"
        if c.arrivals
        else f"client {i}: {c.task_ends} task ends, no text"
        for i, c in enumerate(clients)
    ]
    for log in sorted(logs.glob("*.log")):
        lines += [f"--- {log.name}", *log.read_text(errors="replace").splitlines()[-40:]]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedServer]:
    with local_model_server() as server:
        yield server


def settings_for(server: EmbeddedServer) -> Settings:
    """What the launcher hands the app for the embedded model."""
    return Settings(api_key=server.api_key, base_url=server.url, model=EMBEDDED_MODEL_ALIAS, embedded=True)


async def second_mid_reply(
    chat: Callable[[str, asyncio.Event], Awaitable[Result]], first: str, second: str, seconds: float
) -> list[Result]:
    """Run `chat(first, arrived)`; once it sets `arrived` (its first text), run `chat(second, ...)`
    alongside; both results."""
    arrived = asyncio.Event()
    started = asyncio.create_task(chat(first, arrived))
    await asyncio.wait_for(arrived.wait(), timeout=60)
    joining = asyncio.create_task(chat(second, asyncio.Event()))
    return await asyncio.wait_for(asyncio.gather(started, joining), timeout=seconds)


async def test_two_streams_when_the_second_starts_mid_reply_then_both_end_with_a_finish_reason(
    embedded: EmbeddedServer,
) -> None:
    client = make_client(settings_for(embedded))

    async def chat(prompt: str, arrived: asyncio.Event) -> tuple[int, str | None]:
        stream = await client.chat.completions.create(
            model=EMBEDDED_MODEL_ALIAS,
            messages=[{"role": "user", "content": prompt}],
            stream=True,
            max_tokens=60,
        )
        tokens, finish = 0, None
        async for chunk in stream:
            for choice in chunk.choices:
                tokens += bool(choice.delta.content)
                finish = choice.finish_reason or finish
            if tokens:
                arrived.set()
        return tokens, finish

    try:
        results = await second_mid_reply(
            chat, "Write a long story about a cat.", "Write a long story about a dog.", seconds=120
        )
    finally:
        await client.close()
    # interrupted, the first reply ended after a token or two with no finish_reason
    for tokens, finish in results:
        assert finish in {"stop", "length"}, results
        assert tokens >= 1, results


async def test_three_streams_when_two_slots_then_the_third_waits_for_one_and_all_end_complete(
    embedded: EmbeddedServer,
) -> None:
    client = make_client(settings_for(embedded))
    loop = asyncio.get_running_loop()

    async def chat(prompt: str) -> tuple[float, float, str | None]:
        stream = await client.chat.completions.create(
            model=EMBEDDED_MODEL_ALIAS,
            messages=[{"role": "user", "content": prompt}],
            stream=True,
            max_tokens=80,
            extra_body={"ignore_eos": True},  # each reply takes a while: 80 tokens
        )
        first = last = None
        finish = None
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    last = loop.time()
                    first = first or last
                finish = choice.finish_reason or finish
        assert first is not None and last is not None
        return first, last, finish

    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(chat(f"Write a long story about a {pet}.") for pet in ("cat", "dog", "fox"))),
            timeout=180,
        )
    finally:
        await client.close()
    assert [finish for _, _, finish in results] == ["length"] * 3, results
    # two slots: two replies streamed at once, the third began only once one of them had ended. The
    # client reads the three streams on separate connections, so on a busy machine the third's first
    # token can be read a few ms before the last token the server sent ahead of it (seen: 2 ms).
    starts = sorted(results)
    assert starts[1][0] < starts[0][1], results
    assert starts[2][0] >= min(starts[0][1], starts[1][1]) - READ_ORDER_SLACK, results


async def test_two_chats_when_the_second_starts_mid_reply_then_both_replies_done(
    embedded: EmbeddedServer,
) -> None:
    settings = settings_for(embedded)
    client = make_client(settings)

    async def chat(prompt: str, arrived: asyncio.Event) -> list[AgentEvent]:
        agent = Agent(client, EMBEDDED_MODEL_ALIAS, settings, builtin_tools())
        history: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        events: list[AgentEvent] = []
        stream: AsyncIterator[AgentEvent] = agent.stream(history)
        async for event in stream:
            events.append(event)
            if isinstance(event, TextDelta):
                arrived.set()
        return events

    try:
        results = await second_mid_reply(
            chat, "Name five colours, one per line.", "Name five animals, one per line.", seconds=180
        )
    finally:
        await client.close()
    for events in results:
        assert isinstance(events[-1], ReplyDone), events[-1]
        assert events[-1].text.strip()
