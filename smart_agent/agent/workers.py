"""CPU-bound tools run in worker processes, off the event loop, where a time limit can kill them.

A worker is a fresh interpreter (never a fork of the process running the asyncio loop and its
threads, and unlike multiprocessing's spawn it never re-imports the main script) that answers
one JSON request per line. Workers are reused between calls and killed when a call is cancelled —
which is what the tool registry's time limit does — so a runaway computation frees its CPU at once.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smart_agent.child_env import child_environment

DEFAULT_MAX_WORKERS = 2
WORKER_MEMORY_BYTES = 1 << 30  # a worker's address-space limit: MemoryError beyond it
WORKER_NICENESS = 10
ANSWER_LIMIT = 1 << 20  # bytes of one answer line
REQUEST_LIMIT = 1 << 15  # characters of one request line
# SIGINT ignored from the first instruction: a Ctrl-C in the terminal reaches the whole process
# group, and the app stops its workers itself (no KeyboardInterrupt traceback from a worker).
_BOOT = (
    "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from smart_agent.agent.workers import serve; serve()"
)


class WorkerError(RuntimeError):
    """The function failed in its worker, or the worker died."""


def serve() -> None:
    """The worker's loop: `{"function": "module:name", "argument": ...}` in, `{"ok", "value"}` out."""
    try:
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
    except (ValueError, OSError):  # a lower hard limit is already in force: keep it
        pass
    answers, sys.stdout = sys.stdout, sys.stderr  # a stray print() must not corrupt the answers
    for line in sys.stdin:
        try:
            request = json.loads(line)
            module, _, name = request["function"].partition(":")
            function = getattr(importlib.import_module(module), name)
            answer = json.dumps({"ok": True, "value": function(request["argument"])})
        except Exception as exc:  # the caller gets the failure as text, never a traceback
            answer = json.dumps({"ok": False, "value": str(exc) or type(exc).__name__})
        answers.write(answer + "\n")
        answers.flush()


@dataclass
class _Worker:
    """One worker process. A plain Popen, not an asyncio subprocess: it is bound to no event loop."""

    process: subprocess.Popen[bytes]

    async def ask(self, request: bytes) -> dict[str, Any]:
        """Send one request line and wait (without blocking the loop) for its answer line."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(request)  # a short line into an empty pipe: never blocks
        self.process.stdin.flush()
        fd = self.process.stdout.fileno()
        answer = b""
        while not answer.endswith(b"\n"):
            await _readable(fd)
            chunk = os.read(fd, ANSWER_LIMIT)
            if not chunk or len(answer) > ANSWER_LIMIT:
                raise WorkerError("its worker process died (out of memory?)")
            answer += chunk
        decoded: dict[str, Any] = json.loads(answer)
        return decoded

    def kill(self) -> None:
        """Stop the process at once (SIGKILL) and close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


def _spawn() -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", _BOOT, json.dumps(sys.path)]
    # A clean environment: a worker needs no secret (the API key stays in the app).
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=child_environment()
    )
    # Niced from its first instruction: neither its start-up nor a busy calculation may take the
    # CPU from the chat's event loop.
    os.setpriority(os.PRIO_PROCESS, process.pid, WORKER_NICENESS)
    return process


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()
    loop.add_reader(fd, _settle, readable)
    try:
        await readable
    finally:
        loop.remove_reader(fd)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass
class ToolWorkers:
    """A small pool of worker processes; `run` is cancellable and a cancelled worker is killed."""

    max_workers: int = DEFAULT_MAX_WORKERS
    _idle: list[_Worker] = field(default_factory=list)
    _all: list[_Worker] = field(default_factory=list)
    _slots: asyncio.Semaphore | None = None
    _loop: asyncio.AbstractEventLoop | None = None  # the semaphore's loop
    _closed: bool = False

    async def run(self, function: Callable[[Any], Any], argument: Any) -> Any:
        """`function(argument)` in a worker (a module-level function; JSON in and out); its
        exception comes back as WorkerError."""
        request = json.dumps(
            {"function": f"{function.__module__}:{function.__qualname__}", "argument": argument}
        )
        if len(request) > REQUEST_LIMIT:  # a pipe takes this much without blocking the loop
            raise WorkerError(f"arguments longer than {REQUEST_LIMIT:,} characters")
        async with self._slot():
            worker = self._idle.pop() if self._idle else await self._start()
            try:
                answer = await worker.ask(request.encode() + b"\n")
            except (OSError, ValueError, WorkerError):  # a broken pipe or a garbled answer
                self._discard(worker)
                raise WorkerError("its worker process died (out of memory?)") from None
            except BaseException:  # cancelled, typically by the time limit: kill the computation
                self._discard(worker)
                raise
            self._idle.append(worker)
        if not answer.get("ok"):
            raise WorkerError(str(answer.get("value")))
        return answer.get("value")

    async def warm(self) -> None:
        """Start one idle worker ahead of the first call."""
        async with self._slot():
            if not self._idle:
                self._idle.append(await self._start())

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [w.process.pid for w in self._all if w.process.poll() is None]

    def close(self) -> None:
        """Kill every worker (reaped by aclose, a later Popen, or the exit); later calls fail."""
        self._closed = True
        self._kill_all()

    async def aclose(self) -> None:
        """Kill every worker and wait (off the loop) until each is reaped."""
        workers = list(self._all)
        self.close()
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, w.process.wait) for w in workers))

    def _slot(self) -> asyncio.Semaphore:
        if self._closed:
            raise WorkerError("the tool workers are closed")
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # an asyncio.Semaphore belongs to one loop
            self._loop, self._slots = loop, asyncio.Semaphore(self.max_workers)
        assert self._slots is not None
        return self._slots

    async def _start(self) -> _Worker:
        worker = _Worker(await asyncio.get_running_loop().run_in_executor(None, _spawn))
        self._all.append(worker)
        return worker

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        self._all.remove(worker)
        asyncio.get_running_loop().run_in_executor(None, worker.process.wait)  # reap, off the loop

    def _kill_all(self) -> None:
        for worker in self._all:
            worker.kill()
        self._all.clear()
        self._idle.clear()


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
