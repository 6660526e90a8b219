"""Running the real app and the real browser: shared by the tests and the benchmarks."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil

from smart_agent.config import ENV_VARS
from smart_agent.llm.local_server import SERVER_MODULE, free_port
from tests.app_process import AppProcess

ROOT = Path(__file__).resolve().parent.parent
# The app's process: forked from the preloaded fork server, or an installed command's Popen.
Process = AppProcess | subprocess.Popen[bytes]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def descendants(marker: str, process: psutil.Process | None = None) -> list[psutil.Process]:
    """The live processes below `process` (default: this one), however deep, whose command line
    contains `marker`."""
    found = []
    for child in (process or psutil.Process()).children(recursive=True):
        try:
            command = " ".join(child.cmdline())
        except psutil.Error:  # gone, or a zombie (a killed tool worker not reaped yet)
            continue
        if marker in command:
            found.append(child)
    return found


def llama_servers() -> list[psutil.Process]:
    """The embedded model's llama.cpp servers below this process, however deep."""
    return descendants(SERVER_MODULE)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without smart-agent's variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(extra)
    return env


def wait_http(url: str, process: Process, log: Path, timeout: float) -> None:
    """Wait until `url` answers 200; fail with the log's tail when the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if process.poll() is not None:
            raise RuntimeError(f"app exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"app did not answer within {timeout} s:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)  # the app has no readiness signal but answering HTTP


@contextmanager
def running_app(
    *flags: str,
    env: dict[str, str] | None = None,
    log_dir: Path,
    timeout: float = 60.0,
    program: Sequence[str] | None = None,
    cwd: Path = ROOT,
) -> Iterator[tuple[str, Process]]:
    """Run `smart-agent chainlit --headless` on a free port; yield its URL and process; stop it.

    Without `program` (an installed command), this checkout's app runs as a fork of the worker's
    preloaded fork server (tests/app_process.py). Unless `env` names one, the app's data folder is
    `log_dir/data`, not the user's.
    """
    port = free_port()
    log = log_dir / f"app-{port}.log"
    args = ["chainlit", "--headless", "--port", str(port), *flags]
    app_env = dict(env if env is not None else clean_env())
    app_env.setdefault("SMART_AGENT_DATA_DIR", str(log_dir / "data"))
    process: Process
    with log.open("wb") as out:
        if program is None:
            process = AppProcess(args, app_env, cwd, log)
        else:
            process = subprocess.Popen(
                [*program, *args],
                cwd=cwd,
                env=app_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url, process, log, timeout)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
