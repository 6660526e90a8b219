"""50 simultaneous chat sessions over real Socket.IO, batching on, some stopped mid-reply:
every finished reply exact, every stopped reply a prefix of the model's text."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

from smart_agent.agent.tools import builtin_tools
from smart_agent.config import Settings
from smart_agent.llm.context import input_limit
from tests.harness import clean_env
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens
from tests.sio_client import ChatClient

SESSIONS = 50
TOKENS = 400


async def test_fifty_sessions_when_some_stopped_then_all_exact_or_prefix(
    scripted_app: Callable[..., str],
) -> None:
    url = scripted_app("--segment-chars", "1000")
    expected = "".join(script_tokens(TOKENS, "markdown"))
    clients = [ChatClient(url) for _ in range(SESSIONS)]
    rng = random.Random(7)
    stop_after = {i: rng.randrange(20, 200) for i in range(0, SESSIONS, 2)}  # every other one

    async def session(i: int, client: ChatClient) -> None:
        await client.connect()
        # A stopped session's reply waits at token 200 (after every stop point) so a loaded machine
        # cannot finish it before the stop lands.
        stall = " stall_at=200 stall=30" if i in stop_after else ""
        await client.send(f"#script tokens={TOKENS} rate=200 kind=markdown{stall}")
        if i in stop_after:
            chars = len("".join(script_tokens(stop_after[i], "markdown")))
            await client.wait_text(lambda text: len(text) >= chars)
            await client.stop()
        await client.wait_task_ends(3, seconds=120)

    try:
        await asyncio.gather(*(session(i, c) for i, c in enumerate(clients)))
        await asyncio.gather(*(c.wait_text(lambda t: bool(t), seconds=10) for c in clients))
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    for i, client in enumerate(clients):
        text = client.reply()
        if i in stop_after:
            assert expected.startswith(text), f"session {i}: stopped reply is not a prefix"
            assert len(text) < len(expected), f"session {i}: stop had no effect"
        else:
            assert text == expected, f"session {i}: reply differs"
        assert client.stream_tokens < TOKENS / 4  # batched


@pytest.mark.parametrize("size", [100_001, 250_000])
async def test_oversized_message_when_sent_then_refused_and_session_still_works(
    scripted_app: Callable[..., str], size: int
) -> None:
    client = ChatClient(scripted_app())
    try:
        await client.connect()
        await client.send("x" * size)
        await client.wait_task_ends(3)
        # the default limit follows the context (8,192 tokens unless told otherwise)
        limit = input_limit(Settings(), builtin_tools().specs())
        assert f"limit is {limit:,} (about what fits the model's context of 8,192 tokens" in client.reply()
        await client.send("#script tokens=10")
        await client.wait_task_ends(4)
        assert client.reply().endswith("".join(script_tokens(10)))
    finally:
        await client.close()


@pytest.mark.parametrize(("show", "expected_stats"), [("1", True), ("0", False), (None, False)])
async def test_show_stats_setting_when_reply_streams_then_live_line_only_if_on(
    start_app: Callable[..., str], scripted: ScriptedServer, show: str | None, expected_stats: bool
) -> None:
    env = clean_env(OPENAI_API_KEY="k", **({"SMART_AGENT_SHOW_STATS": show} if show else {}))
    client = ChatClient(start_app("--base-url", scripted.url, "--model", MODEL_ID, env=env))
    try:
        await client.connect()
        await client.send("#script tokens=300 rate=300")
        await client.wait_task_ends(3)
        assert client.reply() == "".join(script_tokens(300))
        assert ("stats" in client.authors) is expected_stats
    finally:
        await client.close()
