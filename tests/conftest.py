"""Shared fixtures: the scripted model server, a running smart-agent app, and headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from smart_agent.config import ENV_VARS
from smart_agent.llm.local_server import free_port
from tests.scripted_server import MODEL_ID, ScriptedServer, serve

ROOT = Path(__file__).resolve().parent.parent
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


@pytest.fixture(scope="session")
def scripted() -> Iterator[ScriptedServer]:
    """One scripted OpenAI-compatible server for the whole run."""
    with serve() as server:
        yield server


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
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
        time.sleep(0.2)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without smart-agent's variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(extra)
    return env


AppFactory = Callable[..., str]


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[AppFactory]:
    """Start `smart-agent chainlit --headless` as a subprocess; returns its URL; stops it after."""
    processes: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(*flags: str, env: dict[str, str] | None = None, timeout: float = 60.0) -> str:
        port = free_port()
        log = tmp_path / f"app-{port}.log"
        command = [
            sys.executable,
            "-m",
            "smart_agent",
            "chainlit",
            "--headless",
            "--port",
            str(port),
            *flags,
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env if env is not None else clean_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        processes.append((process, log))
        url = f"http://127.0.0.1:{port}"
        _wait_http(url, process, log, timeout)
        return url

    yield start
    for process, _ in processes:
        process.terminate()
    for process, _ in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def scripted_app(start_app: AppFactory, scripted: ScriptedServer) -> Callable[..., str]:
    """Start the app against the scripted server with the given extra flags."""

    def start(*flags: str) -> str:
        env = clean_env(OPENAI_API_KEY="test-key")
        return start_app("--base-url", scripted.url, "--model", MODEL_ID, *flags, env=env)

    return start


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright; a missing browser is an error, not a skip."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
