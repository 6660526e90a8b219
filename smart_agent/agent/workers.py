"""CPU-bound tools run in worker processes, off the event loop, where a time limit can kill them.

Workers are started with the 'spawn' method (never fork a process that runs an asyncio loop and
threads), reused between calls, and killed when a call is cancelled — which is what the tool
registry's time limit does — so a runaway computation frees its CPU at once.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

DEFAULT_MAX_WORKERS = 2
WORKER_MEMORY_BYTES = 1 << 30  # a worker's address-space limit: MemoryError beyond it


class WorkerError(RuntimeError):
    """The function failed in its worker, or the worker died."""


def _serve(conn: Connection) -> None:
    """The worker's loop: run each `(function, argument)` received and send back the outcome."""
    try:
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
    except (ValueError, OSError):  # a lower hard limit is already in force: keep it
        pass
    while True:
        try:
            function, argument = conn.recv()
        except (EOFError, OSError):  # the parent closed its end or died
            return
        try:
            conn.send((True, function(argument)))
        except Exception as exc:  # the caller gets the failure as text, never a traceback
            conn.send((False, str(exc) or type(exc).__name__))


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection

    async def receive(self) -> Any:
        """Wait (without blocking the loop) until the worker answers, then read the answer."""
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()
        fd = self.conn.fileno()
        loop.add_reader(fd, _settle, readable)
        try:
            await readable
        finally:
            loop.remove_reader(fd)
        return self.conn.recv()

    def kill(self) -> None:
        """Stop the process at once (SIGKILL) and close the pipe; reaping happens in close()."""
        if self.process.is_alive():
            self.process.kill()
        self.conn.close()


@dataclass
class ToolWorkers:
    """A small pool of worker processes; `run` is cancellable and a cancelled worker is killed."""

    max_workers: int = DEFAULT_MAX_WORKERS
    _idle: list[_Worker] = field(default_factory=list)
    _all: list[_Worker] = field(default_factory=list)
    _slots: asyncio.Semaphore | None = None
    _closed: bool = False

    async def run(self, function: Callable[[Any], Any], argument: Any) -> Any:
        """`function(argument)` in a worker; its exception comes back as WorkerError."""
        if self._closed:
            raise WorkerError("the tool workers are closed")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_workers)
        async with self._slots:
            worker = self._idle.pop() if self._idle else await self._start()
            try:
                worker.conn.send((function, argument))
                ok, value = await worker.receive()
            except (EOFError, OSError):
                self._discard(worker)
                raise WorkerError("its worker process died (out of memory?)") from None
            except BaseException:  # cancelled, typically by the time limit: kill the computation
                self._discard(worker)
                raise
            self._idle.append(worker)
        if not ok:
            raise WorkerError(value)
        return value

    async def warm(self) -> None:
        """Start one idle worker ahead of the first call."""
        if not self._idle and not self._closed:
            self._idle.append(await self._start())

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [w.process.pid for w in self._all if w.process.pid is not None and w.process.is_alive()]

    def close(self) -> None:
        """Kill every worker and reap it; later calls fail with WorkerError."""
        self._closed = True
        for worker in self._all:
            worker.kill()
            worker.process.join(5)
        self._all.clear()
        self._idle.clear()

    async def _start(self) -> _Worker:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child,), name="smart-agent-tool", daemon=True)
        try:
            await asyncio.get_running_loop().run_in_executor(None, process.start)
        finally:
            child.close()
        worker = _Worker(process, parent)
        self._all.append(worker)
        if self._closed:  # closed while this one was starting
            self.close()
            raise WorkerError("the tool workers are closed")
        return worker

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        self._all.remove(worker)
        # Reap the killed process off the loop so no zombie stays behind.
        asyncio.get_running_loop().run_in_executor(None, worker.process.join, 5)


_shared: ToolWorkers | None = None


def shared_workers() -> ToolWorkers:
    """The process-wide pool the built-in tools use."""
    global _shared
    if _shared is None:
        _shared = ToolWorkers()
    return _shared


def close_shared_workers() -> None:
    """Kill the process-wide pool's workers (the app calls this on shutdown)."""
    global _shared
    if _shared is not None:
        _shared.close()
        _shared = None
