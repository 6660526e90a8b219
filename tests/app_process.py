"""The app under test as a child of a fork server that has already imported its heavy libraries.

`python -m smart_agent chainlit` spends most of its 2.6-3 s start importing (openai's types,
SQLAlchemy, MCP, Starlette, Literal AI's tracing); the suite starts the app more than 150 times.
Each pytest worker keeps one multiprocessing fork server that imported those libraries once, and every
app is a fresh fork of it that then runs `smart_agent` as `python -m` would: 0.8 s a start.
Chainlit and smart_agent are not preloaded: they read the environment and the working folder as
they import, so each app imports them itself, after its own environment is set.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import runpy
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.context import ForkServerProcess
from pathlib import Path

# Third-party libraries only, none of which reads the environment or folder as it imports.
PRELOADED = [
    "aiosqlite",
    "ag_ui.core",
    "ag_ui.encoder",
    "alembic",
    "anyio",
    "engineio",
    "fastapi",
    "httpx",
    "literalai",
    "mcp",
    "openai",
    "prometheus_client",
    "pydantic",
    "pydantic_settings",
    "redis.asyncio",
    "rich",
    "socketio",
    "sqlalchemy",
    "sqlalchemy.dialects.sqlite",
    "sqlalchemy.ext.asyncio",
    "sse_starlette",
    "starlette",
    "typer",
    "uvicorn",
    __name__,
]

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(PRELOADED)


def _run(argv: Sequence[str], env: dict[str, str], cwd: str, log: str) -> None:
    """In the forked child: become `python -m smart_agent *argv` run from `cwd` with `env`."""
    out = os.open(log, os.O_WRONLY | os.O_APPEND)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.path.insert(0, cwd)
    sys.argv = ["smart_agent", *argv]
    try:
        runpy.run_module("smart_agent", run_name="__main__", alter_sys=True)
    finally:
        # An interpreter's own exit, which the fork server's os._exit skips: threads, then atexit.
        threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()


@contextmanager
def _main_unseen() -> Iterator[None]:
    """Hide the caller's main module from multiprocessing, which would run it again in the child
    (as spawn needs): the app needs none of a benchmark's or script's code."""
    main = sys.modules["__main__"]
    saved = {name: main.__dict__[name] for name in ("__spec__", "__file__") if name in main.__dict__}
    main.__dict__.update(__spec__=None)
    main.__dict__.pop("__file__", None)
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class AppProcess:
    """The forked app, with the part of subprocess.Popen's interface the tests use."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self._process: ForkServerProcess = _context.Process(  # type: ignore[attr-defined]
            target=_run, args=(list(argv), env, str(cwd), str(log)), name="smart-agent"
        )
        with _main_unseen():
            self._process.start()
        self.args = ["smart_agent", *argv]
        self.pid: int = self._process.pid or 0

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: the signal that ended it), or None while it runs."""
        return self._process.exitcode

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)
