"""Issue 28's second scenario: a user with a full sidebar, back in a long chat.

`seed()` gives a data folder one account with 500 threads; the newest holds 100 earlier turns of
mixed prose, lists, code and tables (200 messages). The browser benchmark signs in, opens that
thread (Chainlit resumes it) and streams the same reply as into a fresh chat.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.history_bench import _at, populate
from smart_agent.history.data_layer import HistoryDataLayer
from smart_agent.history.engine import create_engine
from smart_agent.history.schema import steps, threads
from smart_agent.history.urls import history_path
from tests.chat_page import ChatPage
from tests.login_helpers import add_account

USER, PASSWORD = "bench", "bench-password-1"
THREADS = 500
TURNS = 100


def _reply(turn: int) -> str:
    """An earlier reply: prose, a list, a code block or a table, in turn."""
    prose = f"Turn {turn}: " + "the quick brown fox jumps over the lazy dog. " * 12
    kind = turn % 4
    if kind == 0:
        return prose
    if kind == 1:
        return prose + "\n\n" + "\n".join(f"- item {i} of turn {turn}, with **bold** words" for i in range(8))
    if kind == 2:
        code = "\n".join(f"    total += values[{i}] * {turn}  # step {i}" for i in range(12))
        return f"{prose}\n\n```python\ndef f(values):\n    total = 0\n{code}\n    return total\n```"
    rows = "\n".join(f"| {i} | {turn * i} | cell {i} |" for i in range(8))
    return f"{prose}\n\n| n | product | note |\n|---|---|---|\n{rows}"


async def _long_thread(layer: HistoryDataLayer, user_id: str) -> str:
    thread_id = str(uuid.uuid4())
    start = 10**7  # after every other thread: the sidebar's first
    rows = []
    for turn in range(TURNS):
        for index, (kind, name, text) in enumerate(
            (
                ("user_message", USER, f"question {turn}: tell me more"),
                ("assistant_message", "Assistant", _reply(turn)),
            )
        ):
            at = _at(start + turn * 2 + index)
            rows.append(
                {
                    "id": str(uuid.uuid4()),
                    "threadId": thread_id,
                    "name": name,
                    "type": kind,
                    "streaming": False,
                    "output": text,
                    "metadata": {},
                    "tags": None,
                    "createdAt": at,
                    "start": at,
                    "end": at,
                }
            )
    async with layer.engine.begin() as connection:
        await connection.execute(
            threads.insert(),
            [
                {
                    "id": thread_id,
                    "createdAt": _at(start),
                    "name": "A long chat",
                    "userId": user_id,
                    "userIdentifier": USER,
                    "tags": None,
                    "metadata": {},
                }
            ],
        )
        await connection.execute(steps.insert(), rows)
    return thread_id


async def _seed(database: Path) -> str:
    layer = HistoryDataLayer(create_engine(database))
    try:
        user_id = await populate(layer, USER, THREADS - 1, 2)
        return await _long_thread(layer, user_id)
    finally:
        await layer.close()


def seed(data_dir: Path) -> str:
    """Give `data_dir` the account and its 500 threads; return the long thread's id."""
    add_account(data_dir, USER, PASSWORD)  # also creates and migrates the history database
    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _seed(history_path(data_dir))).result()


def resume(chat: ChatPage, url: str, thread: str) -> None:
    """Open the long thread as its user would (from the sidebar's link) and wait until Chainlit has
    resumed it: every earlier message shown and the composer taking messages."""
    ended = chat.count("task_end")
    chat.page.locator(f'a[href$="/thread/{thread}"]').click(timeout=30_000)
    chat.page.wait_for_function(
        "n => document.querySelectorAll('[data-step-type=\"user_message\"]').length >= n",
        arg=TURNS,
        timeout=60_000,
    )
    chat.wait_event("task_end", ended + 1, timeout=60)  # on_chat_resume's
