"""The run log in Redis Streams: every instance sharing the Redis serves, resumes and cancels any run.

Why it is built this way:
- Every write is one Lua script (redis_scripts.py): append = APPEND text (or reasoning) + XADD + trim
  in one atomic round trip, so a snapshot is always exact and two instances racing to end a run write
  one end. Text moved to the reasoning stays in the text key, recorded as a span (redis_scripts.py).
- Ids are the stream's ids; each entry also carries its number in the run, so a reader that fell
  behind the trimming notices the gap (ReaderTooSlowError) instead of silently skipping events.
- One reader task per process (redis_dispatch.py), not one blocking read per reader.
- Leases, not heartbeats through the stream: the producer refreshes a PX key per run every third of
  the lease; the running count per owner is a sorted set scored by lease expiry, so a dead
  producer's runs stop counting by themselves, and any instance with readers of a run whose lease is
  gone ends it `producer_lost` (within lease + a third of it: about 4 s by default).
- Cancel requests go over PUBLISH; only the instance producing the run acts on them.
- Not for Redis Cluster: a create touches the run's keys and its owner's set in one script.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncGenerator, Iterator
from typing import TYPE_CHECKING, Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from smart_agent.llm.client import redact_url
from smart_agent.runs import redis_scripts
from smart_agent.runs.events import CANCELLED as CANCELLED_CODE
from smart_agent.runs.events import (
    ERROR,
    PRODUCER_LOST,
    REASONING,
    REASONING_MOVED,
    SNAPSHOT,
    TERMINAL,
    TOKEN,
    RunEvent,
    error_data,
    status_of,
)
from smart_agent.runs.log import (
    MAX_RETAINED_EVENTS,
    TOMBSTONE_SECONDS,
    CancelHandler,
    ReaderTooSlowError,
    RunExpiredError,
    RunLimitError,
    RunLogUnavailableError,
    RunRecord,
    UnknownRunError,
)
from smart_agent.runs.redis_cancels import CancelRequests
from smart_agent.runs.redis_dispatch import READER_BUFFER, Dispatcher
from smart_agent.runs.redis_keys import RunKeys, as_str, decode, encode, parse_id, visible_text
from smart_agent.runs.redis_names import RedisNames
from smart_agent.runs.redis_pages import PAGE_SIZE, page_at, raise_missing

if TYPE_CHECKING:
    from smart_agent.config import Settings

log = logging.getLogger("smart_agent.runs")

DEFAULT_PREFIX = "smart-agent:"
LEASE_SECONDS = 3.0
"""A producer unheard of for this long is lost; it refreshes its leases every third of it."""
POOL_SIZE = 64
"""Connections for commands; callers beyond wait for one (rather than fail) for up to POOL_WAIT."""
POOL_WAIT = 20.0
TOMBSTONE_MS = round(TOMBSTONE_SECONDS * 1000)


class RedisRunLog(RedisNames):
    """Runs in Redis: ids are the stream's ids; one reader task and one lease task per process."""

    def __init__(
        self,
        url: str,
        retention: float,
        *,
        max_events: int = MAX_RETAINED_EVENTS,
        lease_seconds: float = LEASE_SECONDS,
        reader_buffer: int = READER_BUFFER,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self._url = url
        self._retention_ms = max(1, round(retention * 1000))
        self._max_events = max_events
        self._lease = lease_seconds
        self._lease_ms = max(1, round(lease_seconds * 1000))
        # While running every key has a TTL, refreshed with the lease, so a crashed cluster leaves
        # nothing behind; it is the retention plus a margin so that a run whose producer died stays
        # readable (ended `producer_lost`) about as long as any ended run.
        self._running_ttl_ms = self._retention_ms + 3 * self._lease_ms
        self._prefix = prefix
        self._instance = secrets.token_hex(8)
        self._redis: Redis = Redis(
            connection_pool=BlockingConnectionPool.from_url(
                url, max_connections=POOL_SIZE, timeout=POOL_WAIT, socket_connect_timeout=5.0
            )
        )
        self._blocking: Redis = Redis.from_url(url, socket_connect_timeout=5.0)
        self._create = self._redis.register_script(redis_scripts.CREATE)
        self._append = self._redis.register_script(redis_scripts.APPEND)
        self._finish = self._redis.register_script(redis_scripts.FINISH)
        self._refresh = self._redis.register_script(redis_scripts.REFRESH)
        self._running = self._redis.register_script(redis_scripts.RUNNING)
        self._page = self._redis.register_script(redis_scripts.PAGE)
        self._dispatcher = Dispatcher(
            self._blocking, self._redis, f"{prefix}wake:{self._instance}", buffer=reader_buffer
        )
        self._producing: dict[str, str] = {}  # run id -> owner, for the runs this process produces
        self._cancels = CancelRequests(
            self._blocking, f"{prefix}cancel", self.description, lambda run_id: run_id in self._producing
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._start_lock = asyncio.Lock()
        self._monitor_started = False

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisRunLog:
        """The log at `settings.redis_url` keeping ended runs `settings.run_retention` seconds."""
        if settings.redis_url is None:
            raise ValueError("SMART_AGENT_REDIS_URL is not set")
        return cls(settings.redis_url, settings.run_retention)

    @property
    def description(self) -> str:
        """Where the runs are, without credentials (for logs)."""
        return f"Redis at {redact_url(self._url)}"

    @contextlib.contextmanager
    def _reaching(self) -> Iterator[None]:
        """Redis's own errors become the log's, at its edge."""
        try:
            yield
        except (RedisError, OSError) as exc:
            raise RunLogUnavailableError(f"{self.description} cannot be reached: {exc}") from exc

    def _keys(self, run_id: str) -> RunKeys:
        return RunKeys.of(self._prefix, run_id)

    def _running_key(self, owner: str) -> str:
        return f"{self._prefix}running:{owner}"

    async def create(self, run_id: str, owner: str, max_running: int) -> RunRecord:
        """Register a new running run; RunLimitError when `owner` has `max_running` running."""
        with self._reaching():
            await self._start_producing()
            keys = self._keys(run_id)
            created = time.time()
            ttls = (self._lease_ms, self._running_ttl_ms, self._running_ttl_ms + TOMBSTONE_MS)
            answer, running = await self._create(
                keys=[keys.meta, keys.known, keys.lease, self._running_key(owner)],
                args=[run_id, owner, max_running, *ttls, created, self._instance],
            )
            if answer == b"limit":
                raise RunLimitError(int(running), max_running)
            if answer == b"taken":
                raise ValueError(f"run id {run_id!r} is taken")
            self._producing[run_id] = owner
            return RunRecord(id=run_id, owner=owner, created=created)

    async def append(self, run_id: str, kind: str, data: dict[str, Any]) -> str:
        """Add one non-terminal event; returns its id (UnknownRunError once the run has ended)."""
        with self._reaching():
            keys = self._keys(run_id)
            token = encode(data["text"]) if kind == TOKEN else b""
            thought = encode(data["text"]) if kind == REASONING else b""
            moved = int(data["chars"]) if kind == REASONING_MOVED else 0
            event_id = await self._append(
                keys=[keys.meta, keys.events, keys.text, keys.reasoning],
                args=[kind, json.dumps(data), token, thought, moved, self._max_events, self._running_ttl_ms],
            )
            if event_id is None:
                self._producing.pop(run_id, None)
                raise UnknownRunError(f"no running run {run_id!r}")
            return as_str(event_id)

    async def finish(
        self, run_id: str, kind: str, data: dict[str, Any], usage: dict[str, Any] | None = None
    ) -> str | None:
        """End the run with its terminal event, once (the first of all instances wins)."""
        with self._reaching():
            owner = self._producing.pop(run_id, None)
            keys = self._keys(run_id)
            if owner is None:
                raw = await self._redis.hget(keys.meta, "owner")
                if raw is None:
                    return None
                owner = as_str(raw)
            event_id = await self._finish(
                keys=keys.all_with(self._running_key(owner)),
                args=[
                    run_id,
                    kind,
                    json.dumps(data),
                    status_of(kind, data),
                    json.dumps(usage or {}),
                    time.time(),
                    self._retention_ms,
                    self._retention_ms + TOMBSTONE_MS,
                    self._max_events,
                ],
            )
            return None if event_id is None else as_str(event_id)

    async def get(self, run_id: str) -> RunRecord:
        """The run's record; a running run whose producer's lease lapsed is ended `producer_lost` first."""
        with self._reaching():
            for _ in range(2):
                keys = self._keys(run_id)
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.hgetall(keys.meta)
                    pipe.get(keys.text)
                    pipe.get(keys.reasoning)
                    pipe.exists(keys.lease)
                    pipe.exists(keys.known)
                    meta, text, reasoning, leased, known = await pipe.execute()
                if not meta:
                    raise_missing(run_id, bool(known))
                moved = meta.get(b"moved")
                fields = {as_str(k): as_str(v) for k, v in meta.items()}
                if fields["status"] == "running" and not leased and run_id not in self._producing:
                    await self._declare_lost(run_id)
                    continue
                break
            ended = fields.get("ended")
            return RunRecord(
                id=run_id,
                owner=fields["owner"],
                status=fields["status"],  # type: ignore[arg-type]  # written only by status_of
                text=visible_text(text, moved),
                reasoning=decode(reasoning),
                usage=json.loads(fields.get("usage", "{}")),
                created=float(fields["created"]),
                ended=float(ended) if ended else None,
            )

    async def check_id(self, run_id: str, event_id: str) -> None:
        """InvalidEventIdError unless `event_id` is a stream id at or before the run's newest."""
        with self._reaching():
            await page_at(self._page, self._keys(run_id), run_id, parse_id(event_id), "open", count=1)

    async def read(self, run_id: str, after: str | None = None) -> AsyncGenerator[RunEvent, None]:
        """Events strictly after `after` (replayed with XRANGE), then live ones from the reader task."""
        with self._reaching():
            cursor = parse_id(after)
            keys = self._keys(run_id)
            await self._start_monitor()
            answer = await page_at(self._page, keys, run_id, cursor, "open")
            status, cursor, snapshot, number, entries = answer
            if snapshot is not None:
                yield RunEvent(SNAPSHOT, snapshot, cursor)
            number = entries[0].number - 1 if entries else number
            while True:
                for entry in entries:
                    if entry.number != number + 1:
                        raise ReaderTooSlowError("the reader fell behind the events kept")
                    number, cursor = entry.number, entry.id
                    yield RunEvent(entry.kind, entry.data, entry.id)
                    if entry.kind in TERMINAL:
                        return
                if len(entries) < PAGE_SIZE:
                    break
                status, cursor, _, _, entries = await page_at(self._page, keys, run_id, cursor, "next")
            if status != b"running":
                return  # its terminal event came at or before `after`
            # Registered at the last replayed id before anything else runs: the reader task's next XREAD
            # starts there, so nothing is missed and nothing comes twice.
            reader = await self._dispatcher.add(keys.events, cursor)
            try:
                while True:
                    entry = await reader.next()
                    if entry.number != number + 1:
                        raise ReaderTooSlowError("the reader fell behind the events kept")
                    number = entry.number
                    yield RunEvent(entry.kind, entry.data, entry.id)
                    if entry.kind in TERMINAL:
                        return
            finally:
                self._dispatcher.remove(reader)

    async def request_cancel(self, run_id: str) -> None:
        """Tell every instance; the one producing the run cancels it."""
        with self._reaching():
            keys = self._keys(run_id)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hget(keys.meta, "status")
                pipe.exists(keys.lease)
                pipe.exists(keys.known)
                status, leased, known = await pipe.execute()
            if status is None:
                raise_missing(run_id, bool(known))
            if status != b"running":
                return
            if not leased:  # nobody produces it any more: end it as asked
                await self.finish(run_id, ERROR, error_data(CANCELLED_CODE, "The run was cancelled."))
                return
            await self._redis.publish(self._cancels.channel, run_id)

    def on_cancel_request(self, handler: CancelHandler) -> None:
        """Call `handler` with the id of each run of this process that some instance asked to cancel."""
        self._cancels.on_request(handler)

    async def running(self, owner: str) -> int:
        """How many of `owner`'s runs are running (their producer's lease is alive)."""
        with self._reaching():
            return int(await self._running(keys=[self._running_key(owner)]))

    async def aclose(self) -> None:
        """Stop this process's tasks and close its connections; runs are not ended here (a crash
        must look like a crash; cancelling runs is the manager's job)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self._dispatcher.aclose()
        try:
            await self._cancels.aclose()
        finally:
            await self._blocking.aclose()
            await self._redis.aclose()

    async def _declare_lost(self, run_id: str) -> None:
        message = "The instance producing this run stopped; the text so far is kept."
        if await self.finish(run_id, ERROR, error_data(PRODUCER_LOST, message)) is not None:
            log.warning("run %s lost its producer", run_id)

    async def _start_producing(self) -> None:
        """Subscribe to cancel requests (confirmed before the first run exists) and keep leases."""
        async with self._start_lock:
            if self._cancels.started:
                return
            self._tasks.append(await self._cancels.start())
            task = asyncio.get_running_loop().create_task(self._keep_leases(), name="run leases")
            self._tasks.append(task)

    async def _start_monitor(self) -> None:
        if not self._monitor_started:
            self._monitor_started = True
            task = asyncio.get_running_loop().create_task(self._watch_producers(), name="run producers")
            self._tasks.append(task)

    async def _keep_leases(self) -> None:
        known_ms = self._running_ttl_ms + TOMBSTONE_MS
        while True:
            await asyncio.sleep(self._lease / 3)  # a timer, not synchronisation
            runs = list(self._producing.items())
            if not runs:
                continue
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for run_id, owner in runs:
                        await self._refresh(
                            keys=self._keys(run_id).all_with(self._running_key(owner)),
                            args=[run_id, self._instance, self._lease_ms, self._running_ttl_ms, known_ms],
                            client=pipe,
                        )
                    alive = await pipe.execute()
            except (RedisError, OSError) as exc:
                log.warning("refreshing run leases in %s: %s", self.description, exc)
                continue
            for (run_id, _), still in zip(runs, alive, strict=True):
                if not still:
                    self._producing.pop(run_id, None)

    async def _watch_producers(self) -> None:
        """End `producer_lost` the running runs read here whose producer's lease lapsed."""
        suffix = ":events"
        while True:
            await asyncio.sleep(self._lease / 3)  # a timer, not synchronisation
            run_ids = [
                key[len(self._prefix) + len("run:") : -len(suffix)] for key in self._dispatcher.watched()
            ]
            run_ids = [run_id for run_id in run_ids if run_id not in self._producing]
            if not run_ids:
                continue
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for run_id in run_ids:
                        keys = self._keys(run_id)
                        pipe.exists(keys.lease)
                        pipe.exists(keys.meta)
                    found = await pipe.execute()
                for run_id, leased, exists in zip(run_ids, found[::2], found[1::2], strict=True):
                    if not exists:  # gone under its readers (Redis emptied, keys expired)
                        error = RunExpiredError(f"run {run_id!r} is no longer in {self.description}")
                        self._dispatcher.fail(self._keys(run_id).events, error)
                    elif not leased:
                        await self._declare_lost(run_id)
            except (RedisError, OSError) as exc:
                log.warning("checking run leases in %s: %s", self.description, exc)
