"""One task per process reads every run stream that has live readers and hands entries to them.

One blocking XREAD over all watched streams instead of one per reader: a process serving thousands
of readers holds one connection for them, and a reader that does not keep up only overflows its own
bounded buffer (it is dropped and resumes by id), never slowing the producer or the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from smart_agent.runs.events import TERMINAL
from smart_agent.runs.log import ReaderTooSlowError, RunLogError, RunLogUnavailableError

log = logging.getLogger("smart_agent.runs")

READER_BUFFER = 1_000
"""Entries a live reader may have waiting; one more and it is dropped (ReaderTooSlowError)."""
XREAD_COUNT = 500
"""Entries fetched per stream per XREAD."""
XREAD_BLOCK_MS = 2_000
"""How long one XREAD waits; new readers do not wait for it (they wake the task)."""
RETRY_SECONDS = 0.5


def id_key(event_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq)


def id_before(a: str, b: str) -> bool:
    """Whether stream id `a` comes before `b`."""
    return id_key(a) < id_key(b)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Entry:
    """One event of a run's stream: its id, kind, data and number within the run (1, 2, ...)."""

    id: str
    kind: str
    data: dict[str, Any]
    number: int


def parse_entry(raw_id: Any, fields: Mapping[Any, Any] | Sequence[Any]) -> Entry:
    """An entry from XREAD (fields as a dict) or from a script's XRANGE (a flat list)."""
    if not isinstance(fields, Mapping):
        fields = dict(zip(fields[::2], fields[1::2], strict=True))
    values = {_text(key): value for key, value in fields.items()}
    number, _, kind = _text(values["h"]).split(" ", 2)
    return Entry(_text(raw_id), kind, json.loads(values["d"]), int(number))


def _oldest(readers: set[Reader]) -> str:
    if len(readers) == 1:  # the usual case, and this runs for every stream on every XREAD
        return next(iter(readers)).last
    return min((reader.last for reader in readers), key=id_key)


class Reader:
    """A live reader's bounded buffer; overflowing it ends the reader with ReaderTooSlowError."""

    def __init__(self, key: str, last: str, limit: int) -> None:
        self.key = key
        self.last = last  # the newest id handed to this reader
        self._limit = limit
        self._items: deque[Entry] = deque()
        self._ready = asyncio.Event()
        self._failure: RunLogError | None = None

    def offer(self, entry: Entry) -> bool:
        """Buffer `entry`; False (and the reader ends) when the buffer is full."""
        if self._failure is not None:
            return False
        if len(self._items) >= self._limit:
            self.fail(ReaderTooSlowError(f"the reader fell {self._limit} events behind"))
            return False
        self._items.append(entry)
        self.last = entry.id
        self._ready.set()
        return True

    def fail(self, error: RunLogError) -> None:
        """End the reader with `error` once it has taken what is buffered."""
        if self._failure is None:
            self._failure = error
            self._ready.set()

    async def next(self) -> Entry:
        """The next entry; raises the reader's failure once the buffer is empty."""
        while not self._items:
            if self._failure is not None:
                raise self._failure
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()


class Dispatcher:
    """Reads the watched streams with one XREAD loop and fills each reader's buffer."""

    def __init__(
        self,
        blocking: Redis,
        commands: Redis,
        wake_key: str,
        *,
        buffer: int = READER_BUFFER,
        count: int = XREAD_COUNT,
        block_ms: int = XREAD_BLOCK_MS,
    ) -> None:
        self._blocking = blocking  # its own connection: it spends its life inside XREAD BLOCK
        self._commands = commands
        self._wake_key = wake_key
        self._wake_last = "0-0"
        self._buffer = buffer
        self._count = count
        self._block_ms = block_ms
        self._readers: dict[str, set[Reader]] = {}
        self._inflight: dict[str, str] | None = None  # the ids of the XREAD under way
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def watched(self) -> list[str]:
        """The stream keys that have live readers."""
        return list(self._readers)

    async def add(self, key: str, last: str) -> Reader:
        """A reader of stream `key` that gets every entry after id `last`, in order, none twice."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="run log reader")
        reader = Reader(key, last, self._buffer)
        self._readers.setdefault(key, set()).add(reader)
        inflight = self._inflight
        if inflight is None:
            self._idle.set()  # the loop is between reads, or idle: its next XREAD includes this reader
        elif key not in inflight or id_before(last, inflight[key]):
            try:
                await self._wake()  # the XREAD under way does not cover this reader: end it now
            except BaseException:
                self.remove(reader)
                raise
        return reader

    def remove(self, reader: Reader) -> None:
        """Stop feeding `reader` (it ended or its client left)."""
        readers = self._readers.get(reader.key)
        if readers is not None:
            readers.discard(reader)
            if not readers:
                del self._readers[reader.key]

    def fail(self, key: str, error: RunLogError) -> None:
        """End every reader of stream `key` with `error`."""
        for reader in self._readers.pop(key, set()):
            reader.fail(error)

    async def aclose(self) -> None:
        """Stop the loop; readers still waiting end with RunLogError."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_all(RunLogError("the run log was closed"))

    async def _wake(self) -> None:
        # XREAD only returns early for data, so the task also watches a stream of its own.
        async with self._commands.pipeline(transaction=False) as pipe:
            pipe.xadd(self._wake_key, {"w": "1"}, maxlen=16)
            pipe.pexpire(self._wake_key, 60_000)
            await pipe.execute()

    def _fail_all(self, error: RunLogError) -> None:
        for readers in self._readers.values():
            for reader in readers:
                reader.fail(error)
        self._readers.clear()

    async def _run(self) -> None:
        while True:
            if not self._readers:
                self._idle.clear()
                await self._idle.wait()
                continue
            streams = {key: _oldest(readers) for key, readers in self._readers.items()}
            streams[self._wake_key] = self._wake_last
            self._inflight = streams
            try:
                reply: Any = await self._blocking.xread(
                    streams,  # type: ignore[arg-type]  # redis-py's stub wants a dict of bytes|str
                    count=self._count,
                    block=self._block_ms,
                )
            except (RedisError, OSError) as exc:
                log.warning("reading the run streams failed: %s", exc)
                self._fail_all(RunLogUnavailableError(f"reading the run log failed: {exc}"))
                await asyncio.sleep(RETRY_SECONDS)  # a back-off before the next attempt
                continue
            finally:
                self._inflight = None
            for raw_key, entries in reply or []:
                key = _text(raw_key)
                if key == self._wake_key:
                    self._wake_last = _text(entries[-1][0])
                elif entries:
                    self._deliver(key, streams[key], [parse_entry(i, f) for i, f in entries])

    def _deliver(self, key: str, start: str, entries: list[Entry]) -> None:
        readers = self._readers.get(key)
        if not readers:
            return
        for reader in list(readers):
            if id_before(reader.last, start):
                continue  # joined behind this XREAD's start: the next one starts at it
            for entry in entries:
                if not id_before(reader.last, entry.id):
                    continue
                if not reader.offer(entry) or entry.kind in TERMINAL:
                    readers.discard(reader)
                    break
        if not readers:
            del self._readers[key]
