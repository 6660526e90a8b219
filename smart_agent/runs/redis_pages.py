"""Replaying a run from Redis one page at a time, with the snapshot and the reader's checks."""

from __future__ import annotations

from typing import Any

from redis.commands.core import AsyncScript

from smart_agent.runs.log import InvalidEventIdError, ReaderTooSlowError, RunExpiredError, UnknownRunError
from smart_agent.runs.redis_dispatch import Entry, parse_entry
from smart_agent.runs.redis_keys import RunKeys, as_str, decode

PAGE_SIZE = 500
"""Events per XRANGE page when a reader replays."""


def raise_missing(run_id: str, known: bool) -> None:
    """The error for a run that is not in Redis: ended too long ago when `known`, else never was."""
    if known:
        raise RunExpiredError(f"run {run_id!r} ended longer ago than its retention")
    raise UnknownRunError(f"no run {run_id!r}")


async def page_at(
    script: AsyncScript, keys: RunKeys, run_id: str, after: str, mode: str, count: int = PAGE_SIZE
) -> tuple[bytes, str, dict[str, str] | None, int, list[Entry]]:
    """Status, cursor, snapshot (in "open" mode), number before the page, and the page's entries."""
    reply: Any = await script(
        keys=[keys.meta, keys.events, keys.text, keys.known, keys.reasoning], args=[after, count, mode]
    )
    answer = reply[0]
    if answer == b"ok":
        _, status, cursor, text, number, entries, thought = reply
        snapshot = None if text is None else {"text": decode(text), "reasoning": decode(thought)}
        return status, as_str(cursor), snapshot, int(number), [parse_entry(i, f) for i, f in entries]
    if answer == b"slow":
        raise ReaderTooSlowError("the reader fell behind the events kept")
    if answer == b"invalid":
        raise InvalidEventIdError(f"{after!r} is not an event id of run {run_id!r}")
    raise_missing(run_id, answer == b"expired")
    raise AssertionError("unreachable")
