"""Starts runs as background tasks of this process and cancels them, whichever instance asks."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
from collections.abc import AsyncGenerator, Callable
from typing import Any

from smart_agent.agent.events import AgentEvent
from smart_agent.runs.events import CANCELLED, ERROR, PRODUCER_LOST, error_data
from smart_agent.runs.log import RunLog, RunRecord
from smart_agent.runs.producer import produce
from smart_agent.streaming.batcher import BatchPolicy
from smart_agent.streaming.estimate import ReplyLengths

RunObserver = Callable[[str, dict[str, Any]], None]
"""Hears each run of this process end: its final status and usage (for the metrics)."""


def new_run_id() -> str:
    """An id nobody can guess: knowing it is not enough to read a run, but it must not leak others."""
    return "run_" + secrets.token_urlsafe(18)


class RunManager:
    """The runs this process produces: each one a task that outlives the request that started it."""

    def __init__(
        self,
        runs: RunLog,
        policy: BatchPolicy,
        on_end: RunObserver | None = None,
        on_start: Callable[[], None] | None = None,
        lengths: ReplyLengths | None = None,
    ) -> None:
        self.log = runs
        self.lengths = lengths or ReplyLengths()  # this process's recent reply lengths, per model
        self._policy = policy
        self._on_end = on_end
        self._on_start = on_start
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False
        self._cancelling: set[asyncio.Task[Any]] = set()  # cancels and ends under way, held (weak refs)
        self._cancel_asked: set[str] = set()  # runs of this process asked to stop (produce checks too)
        runs.on_cancel_request(self._on_cancel_request)

    @property
    def active(self) -> int:
        """Runs this process is producing now."""
        return len(self._tasks)

    async def start(
        self,
        owner: str,
        events: AsyncGenerator[AgentEvent, None],
        max_running: int,
        *,
        model: str | None = None,
        run_id: str | None = None,
    ) -> RunRecord:
        """Register a run (RunLimitError beyond `max_running`) and produce it in the background;
        `model` (None: the default) keys its progress estimate, `run_id` is one reserved beforehand."""
        record = await self.log.create(run_id or new_run_id(), owner, max_running)
        if self._on_start is not None:
            self._on_start()
        task = asyncio.get_running_loop().create_task(
            self._produce(record.id, events, model or ""), name=f"run {record.id}"
        )
        self._tasks[record.id] = task
        task.add_done_callback(functools.partial(self._ended, record.id))
        return record

    async def cancel(self, run_id: str) -> None:
        """Cancel the run here if this process produces it, else ask the instance that does."""
        if not self._cancel_local(run_id):
            await self.log.request_cancel(run_id)

    def cancel_soon(self, run_id: str) -> None:
        """`cancel` from where waiting is not allowed (a stream generator being closed because its
        client left); the manager holds the task, and `aclose` waits for it."""
        task = asyncio.get_running_loop().create_task(self.cancel(run_id))
        self._cancelling.add(task)
        task.add_done_callback(self._cancelling.discard)

    async def wait(self, run_id: str) -> None:
        """Wait for this process's task of the run to end (tests, shutdown)."""
        task = self._tasks.get(run_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    async def aclose(self) -> None:
        """Stop every run of this process (each ends with `error` `producer_lost`: nobody cancelled
        it, the instance producing it went away), then close the log."""
        self._closing = True
        await asyncio.gather(*self._cancelling, return_exceptions=True)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.log.aclose()

    def _on_cancel_request(self, run_id: str) -> None:
        self._cancel_local(run_id)

    def _cancel_local(self, run_id: str) -> bool:
        task = self._tasks.get(run_id)
        if task is None:
            return False
        self._cancel_asked.add(run_id)
        task.cancel()
        return True

    def _ended(self, run_id: str, task: asyncio.Task[None]) -> None:
        self._cancel_asked.discard(run_id)
        # A task cancelled before its first step never runs `_produce`, nor its `finally`: the run
        # would stay running with readers waiting for ever. End it here (`finish` writes once).
        if task.cancelled() and self._tasks.get(run_id) is task:
            del self._tasks[run_id]
            ending = asyncio.get_running_loop().create_task(
                self.log.finish(run_id, ERROR, self._stopped()), name=f"run {run_id} ended unstarted"
            )
            self._cancelling.add(ending)
            ending.add_done_callback(self._cancelling.discard)
            if self._on_end is not None:
                self._on_end("cancelled", {})

    def _stopped(self) -> dict[str, Any]:
        if self._closing:
            return error_data(PRODUCER_LOST, "The app instance producing this run shut down.")
        return error_data(CANCELLED, "The run was cancelled.")

    async def _produce(self, run_id: str, events: AsyncGenerator[AgentEvent, None], model: str) -> None:
        usage: dict[str, Any] = {}
        try:
            usage = await produce(
                self.log,
                run_id,
                events,
                self._policy,
                stopped=self._stopped,
                cancel_asked=functools.partial(self._cancel_asked.__contains__, run_id),
                lengths=self.lengths,
                model=model,
            )
        finally:
            self._tasks.pop(run_id, None)
            if self._on_end is not None:
                status = "error"
                with contextlib.suppress(Exception):  # the log is gone (shutdown): count it as failed
                    status = (await self.log.get(run_id)).status
                self._on_end(status, usage)
