"""Shared fixtures: the scripted model server, a running smart-agent app, and headless Chromium."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from smart_agent.agent.workers import close_shared_workers
from tests.harness import CHROMIUM, CHROMIUM_ARGS, clean_env, running_app
from tests.postgres_server import PostgresServer, postgres_server
from tests.redis_server import RedisServer, running_redis
from tests.scripted_server import MODEL_ID, ScriptedServer, serve

# Tests that import Chainlit in-process (session hooks, the security middleware) would make it
# write its default config and translations into the current folder, the checkout: give it a
# throw-away app root instead. The app under test sets its own (smart_agent/web/chainlit_root.py).
_CHAINLIT_ROOT = tempfile.mkdtemp(prefix="smart-agent-tests-chainlit-")
os.environ.setdefault("CHAINLIT_APP_ROOT", _CHAINLIT_ROOT)
atexit.register(shutil.rmtree, _CHAINLIT_ROOT, True)

# Properties are about values, not speed: on two busy cores (the suite runs on both) a slow example
# is no failure. Tests that measure time say so with @pytest.mark.timing and run alone.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")


# Fixtures that start a server, a browser or a process: their tests are `slow`, left out of
# `make test-fast` (the edit loop's unit and property tests).
SLOW_FIXTURES = frozenset(
    {"start_app", "scripted_app", "browser", "postgres", "redis_server", "scripted", "page"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that use a slow fixture, or are e2e or timing ones, `slow`."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SLOW_FIXTURES or item.get_closest_marker("e2e") or item.get_closest_marker("timing"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def tool_workers_closed() -> Iterator[None]:
    """No tool worker process outlives the test run."""
    yield
    close_shared_workers()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole run; missing binaries fail the test."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One Debian redis-server for the whole run; a missing redis-server fails, never skips.
    Tests keep apart by key prefix."""
    with running_redis() as server:
        yield server


@pytest.fixture(scope="session")
def scripted() -> Iterator[ScriptedServer]:
    """One scripted OpenAI-compatible server for the whole run."""
    with serve() as server:
        yield server


AppFactory = Callable[..., str]


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[AppFactory]:
    """Start `smart-agent chainlit --headless` as a subprocess; returns its URL; stops it after."""
    with ExitStack() as stack:

        def start(*flags: str, env: dict[str, str] | None = None, timeout: float = 60.0) -> str:
            url, _ = stack.enter_context(running_app(*flags, env=env, log_dir=tmp_path, timeout=timeout))
            return url

        yield start


@pytest.fixture
def scripted_app(start_app: AppFactory, scripted: ScriptedServer) -> Callable[..., str]:
    """Start the app against the scripted server with the given extra flags."""

    def start(*flags: str) -> str:
        env = clean_env(OPENAI_API_KEY="test-key")
        return start_app("--base-url", scripted.url, "--model", MODEL_ID, *flags, env=env)

    return start


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright; a missing browser is an error, not a skip.

    Module-scoped: Playwright's sync API keeps an event loop running in this thread, which
    would stop the async tests of other modules from running their own.
    """
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
