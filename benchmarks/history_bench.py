"""Chat history costs: the sidebar's thread-list request and the writes of one reply, SQLite and PostgreSQL.

python -m benchmarks.history_bench [--threads 1000] [--steps 50] [--calls 300] [--replies 200]
    [--backends sqlite,postgresql] [--chainlit] [--out bench-results]

One user owns `threads` threads of `steps` steps each (a second user owns as many more). Figures:
- list: one sidebar page (Chainlit's browser asks for first=20), p50/p99 over `calls` calls,
  for the first page, a later page (by cursor), and a search (which scans the user's messages);
- reply: the writes of one reply as Chainlit makes them (user message created; reply step
  created then updated; a tool step created then updated), p50/p99 per reply;
- with --chainlit, Chainlit 2.12's own SQLAlchemyDataLayer.list_threads on the same rows, for comparison.
PostgreSQL runs with its durable defaults (fsync on); SQLite in WAL mode with synchronous=NORMAL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from chainlit.types import Pagination, ThreadFilter
from chainlit.user import User

from smart_agent.history.actor import acting_user
from smart_agent.history.data_layer import HistoryDataLayer
from smart_agent.history.schema import feedbacks, steps, threads
from smart_agent.history.urls import database_url
from tests.postgres_server import postgres_server

PAGE = 20
BATCH = 5_000
_T0 = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)


def _at(seconds: float) -> str:
    return (_T0 + timedelta(seconds=seconds)).isoformat(timespec="microseconds") + "Z"


async def populate(layer: HistoryDataLayer, identifier: str, n_threads: int, n_steps: int) -> str:
    """Bulk-insert one user's threads and steps (every 5th thread rated); returns the user's id."""
    user = await layer.create_user(User(identifier=identifier))
    assert user is not None
    thread_rows, step_rows, feedback_rows = [], [], []
    for t in range(n_threads):
        thread_id = str(uuid.uuid4())
        thread_rows.append(
            {
                "id": thread_id,
                "createdAt": _at(t * 3600),
                "name": f"{identifier} chat {t}",
                "userId": user.id,
                "userIdentifier": identifier,
                "tags": ["bench"],
                "metadata": {"chat_profile": "default"},
            }
        )
        for s in range(n_steps):
            step_id = str(uuid.uuid4())
            step_rows.append(
                {
                    "id": step_id,
                    "threadId": thread_id,
                    "name": "Assistant" if s % 2 else identifier,
                    "type": "assistant_message" if s % 2 else "user_message",
                    "streaming": False,
                    "output": f"message {s} of chat {t}: " + "lorem ipsum dolor sit amet " * 20,
                    "metadata": {},
                    "tags": None,
                    "createdAt": _at(t * 3600 + s),
                    "start": _at(t * 3600 + s),
                    "end": _at(t * 3600 + s),
                }
            )
            if t % 5 == 0 and s == n_steps - 1:
                feedback_rows.append(
                    {"id": str(uuid.uuid4()), "forId": step_id, "threadId": thread_id, "value": 1}
                )
    async with layer.engine.begin() as connection:
        await connection.execute(threads.insert(), thread_rows)
        for start in range(0, len(step_rows), BATCH):
            await connection.execute(steps.insert(), step_rows[start : start + BATCH])
        await connection.execute(feedbacks.insert(), feedback_rows)
    return user.id


async def timings(call: Callable[[], Awaitable[Any]], n: int) -> dict[str, float]:
    """p50/p99/mean in milliseconds over n sequential calls (after 3 warm-up calls)."""
    for _ in range(3):
        await call()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p99_ms": round(samples[min(n - 1, int(n * 0.99))], 2),
        "mean_ms": round(statistics.fmean(samples), 2),
    }


async def reply_writes(layer: HistoryDataLayer, thread_id: str, n: int) -> dict[str, float]:
    """The writes of one reply, as Chainlit issues them, timed per reply."""
    counter = iter(range(10**9))

    async def one_reply() -> None:
        k = next(counter)
        base = {"threadId": thread_id, "streaming": False, "metadata": {}, "tags": None}
        user_message = {**base, "id": str(uuid.uuid4()), "name": "alice", "type": "user_message"}
        await layer.create_step({**user_message, "output": f"question {k}", "createdAt": _at(10**8 + 3 * k)})  # type: ignore[typeddict-item]
        tool = {
            **base,
            "id": str(uuid.uuid4()),
            "name": "calculator",
            "type": "tool",
            "createdAt": _at(10**8 + 3 * k + 1),
        }
        await layer.create_step({**tool, "input": "1+1", "output": "", "streaming": True})  # type: ignore[typeddict-item]
        await layer.update_step({**tool, "input": "1+1", "output": "2", "end": _at(10**8 + 3 * k + 1)})  # type: ignore[typeddict-item]
        reply = {
            **base,
            "id": str(uuid.uuid4()),
            "name": "Assistant",
            "type": "assistant_message",
            "createdAt": _at(10**8 + 3 * k + 2),
        }
        await layer.create_step({**reply, "output": "", "streaming": True})  # type: ignore[typeddict-item]
        await layer.update_step({**reply, "output": "the answer is 2 " * 100})  # type: ignore[typeddict-item]

    return await timings(one_reply, n)


async def bench_backend(name: str, target: str | Path, args: argparse.Namespace) -> dict[str, Any]:
    """All figures for one backend."""
    layer = await HistoryDataLayer.open(target)
    try:
        start = time.perf_counter()
        user_id = await populate(layer, "alice", args.threads, args.steps)
        await populate(layer, "bob", args.threads, args.steps)
        if name == "postgresql":
            async with layer.engine.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(sa.text("ANALYZE"))
        populated_s = time.perf_counter() - start
        result: dict[str, Any] = {"populate_s": round(populated_s, 1)}
        with acting_user("alice"):
            first = await layer.list_threads(Pagination(first=PAGE), ThreadFilter(userId=user_id))
            cursor = first.pageInfo.endCursor
            result["list_first_page"] = await timings(
                lambda: layer.list_threads(Pagination(first=PAGE), ThreadFilter(userId=user_id)), args.calls
            )
            result["list_later_page"] = await timings(
                lambda: layer.list_threads(
                    Pagination(first=PAGE, cursor=cursor), ThreadFilter(userId=user_id)
                ),
                args.calls,
            )
            result["list_rated_only"] = await timings(
                lambda: layer.list_threads(Pagination(first=PAGE), ThreadFilter(userId=user_id, feedback=1)),
                args.calls,
            )
            result["list_search"] = await timings(
                lambda: layer.list_threads(
                    Pagination(first=PAGE), ThreadFilter(userId=user_id, search="chat 999: lorem")
                ),
                max(10, args.calls // 10),
            )
            result["reply_writes"] = await reply_writes(layer, first.data[0]["id"], args.replies)
        if args.chainlit:
            result["chainlit_list_first_page"] = await chainlit_list(target, user_id)
        return result
    finally:
        await layer.close()


async def chainlit_list(target: str | Path, user_id: str) -> dict[str, float]:
    """Chainlit 2.12's SQLAlchemyDataLayer.list_threads on the same tables (it reads the same names)."""
    from chainlit.data.sql_alchemy import SQLAlchemyDataLayer

    logging.getLogger("chainlit").setLevel(logging.ERROR)
    chainlit_layer = SQLAlchemyDataLayer(database_url(target).render_as_string(hide_password=False))
    try:
        return await timings(
            lambda: chainlit_layer.list_threads(Pagination(first=PAGE), ThreadFilter(userId=user_id)), 5
        )
    finally:
        await chainlit_layer.close()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Run every requested backend and print its figures."""
    results: dict[str, Any] = {"threads": args.threads, "steps": args.steps, "page": PAGE}
    with ExitStack() as stack:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                target: str | Path = folder / "history.db"
            else:
                server = stack.enter_context(postgres_server(durable=True))
                target = server.url()
            results[backend] = await bench_backend(backend, target, args)
            print(backend, json.dumps(results[backend], indent=2), flush=True)
    return results


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--chainlit", action="store_true", help="also time Chainlit's own list_threads")
    parser.add_argument("--out", type=Path, default=None, help="write history.json into this folder")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    figures = asyncio.run(main(arguments))
    if arguments.out:
        arguments.out.mkdir(parents=True, exist_ok=True)
        (arguments.out / "history.json").write_text(json.dumps(figures, indent=2))
