"""The multi-instance recipe (deploy/): two instances behind HAProxy on one PostgreSQL; the instance
serving a browser is killed and the page goes on, through the balancer, on the other one."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import psutil
import pytest
from playwright.sync_api import Browser

from deploy.start import HAPROXY, TEMPLATE, haproxy_env, render
from smart_agent.llm.local_server import free_port
from tests.chat_page import ChatPage
from tests.harness import ROOT, clean_env
from tests.history_fixtures import fresh_database
from tests.postgres_server import PostgresServer
from tests.redis_server import RedisServer
from tests.scripted_server import MODEL_ID, ScriptedServer

START_TIMEOUT_S = 180.0
SECRET = "deploy-test-secret-" + "x" * 32
_CHILD = re.compile(r"^deploy: (app\d+|haproxy) \(pid (\d+)\)")
T = TypeVar("T")
_MESSAGES = """
    SELECT t.id AS thread, s.type, s.name, s.output
    FROM threads t JOIN steps s ON s."threadId" = t.id
    WHERE s.type IN ('user_message', 'assistant_message') AND s.name <> 'stats'
    ORDER BY s."createdAt", s.id
"""


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    # Playwright's sync API keeps an event loop running in this thread: run asyncpg in another.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=60)


@dataclass
class Deployment:
    """`python -m deploy.start` running: the balancer's URL and each child's pid (app1, app2, haproxy)."""

    url: str
    pids: dict[str, int]
    process: subprocess.Popen[str]
    log_dir: Path


@contextmanager
def deployed(flags: list[str], env: dict[str, str], log_dir: Path) -> Iterator[Deployment]:
    """Run the recipe's start script on free loopback ports until it says it serves; stop it after."""
    bind = f"127.0.0.1:{free_port()}"
    ports = f"{free_port()},{free_port()}"
    command = [
        sys.executable,
        "-m",
        "deploy.start",
        "--bind",
        bind,
        "--ports",
        ports,
        "--log-dir",
        str(log_dir),
    ]
    process = subprocess.Popen(
        [*command, "--", *flags],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    pids: dict[str, int] = {}
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        said: list[str] = []
        while not said or not said[-1].startswith("deploy: serving"):
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if line is None:
                raise RuntimeError(f"deploy.start exited with {process.wait()}:\n{''.join(said)}")
            said.append(line)
            if match := _CHILD.match(line):
                pids[match.group(1)] = int(match.group(2))
        yield Deployment(f"http://{bind}", pids, process, log_dir)
    finally:
        process.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            for pid in pids.values():  # the script could not stop them: do not leak them
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


async def _thread_rows(url: str) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(_MESSAGES)
    finally:
        await connection.close()
    return [dict(row) for row in rows]


def stored_once(
    url: str, done: Callable[[list[dict[str, Any]]], bool], seconds: float = 30
) -> list[dict[str, Any]]:
    """The thread's messages in PostgreSQL once `done` holds for them.

    Chainlit persists in fire-and-forget tasks: nothing the page receives says a write has landed.
    """
    deadline = time.monotonic() + seconds
    while not done(rows := _run(_thread_rows(url))):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the database did not settle within {seconds} s: {rows}")
        time.sleep(0.2)  # another process writes: no event crosses to this one
    return rows


def _conversation(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(row["type"], row["output"]) for row in rows]


def _served_by(chat: ChatPage) -> str:
    """The instance HAProxy's stickiness cookie names for this browser."""
    cookies = {c["name"]: c["value"] for c in chat.page.context.cookies()}
    return cookies["SA_INSTANCE"]


def test_failover_when_serving_instance_killed_then_page_resumes_thread_on_the_other_and_chat_goes_on(
    browser: Browser,
    postgres: PostgresServer,
    redis_server: RedisServer,
    scripted: ScriptedServer,
    tmp_path: Path,
) -> None:
    database = _run(fresh_database(postgres))  # empty: both instances migrate it at once
    env = clean_env(
        OPENAI_API_KEY="test-key",
        SMART_AGENT_DATABASE_URL=database,
        CHAINLIT_AUTH_SECRET=SECRET,
        SMART_AGENT_REDIS_URL=redis_server.url,
        SMART_AGENT_DATA_DIR=str(tmp_path / "data"),
    )
    first, second = "#script text=before-the-failover", "#script text=after-the-failover"
    with deployed(["--base-url", scripted.url, "--model", MODEL_ID], env, tmp_path) as deployment:
        chat = ChatPage.open(browser, deployment.url)
        try:
            chat.send(first)
            chat.wait_turns(1)
            assert chat.wait_text("before-the") == "before-the-failover"
            serving = _served_by(chat)
            before = stored_once(
                database, lambda r: ("assistant_message", "before-the-failover") in _conversation(r)
            )
            sockets, resumed = len(chat.sockets), chat.count("resume_thread")

            os.kill(deployment.pids[serving], signal.SIGKILL)  # a crash: no shutdown hook runs
            killed = time.monotonic()
            chat.wait_event("resume_thread", resumed + 1, timeout=60)
            failover_s = (
                next(t for t, name, _ in chat.frames if name == "resume_thread" and t > killed) - killed
            )
            chat.wait_idle(timeout=30)
            chat.page.screenshot(path=str(tmp_path / "after-failover.png"))
            print(f"failover: {serving} killed, page resumed on {_served_by(chat)} in {failover_s:.2f} s")

            assert len(chat.sockets) > sockets and _served_by(chat) != serving
            assert chat.replies() == ["before-the-failover"]  # the thread as stored, on the page
            asked = chat.page.locator('[data-step-type="user_message"]').all_inner_texts()
            assert [text.strip() for text in asked] == [first]
            resumed_thread = chat.payloads("resume_thread")[-1]["id"]
            assert {row["thread"] for row in before} == {resumed_thread}

            chat.send(second)
            assert chat.wait_text("after-the", timeout=60) == "after-the-failover"
            chat.wait_idle(timeout=30)
            asked = chat.page.locator('[data-step-type="user_message"]').all_inner_texts()
            assert [text.strip() for text in asked] == [first, second]
            assert chat.replies() == ["before-the-failover", "after-the-failover"]
        finally:
            chat.close()
        after = stored_once(
            database, lambda r: ("assistant_message", "after-the-failover") in _conversation(r)
        )
        alive = [name for name, pid in deployment.pids.items() if psutil.pid_exists(pid)]
        assert alive == [name for name in ("app1", "app2", "haproxy") if name != serving]
    assert deployment.process.returncode == 0  # stopped by SIGINT, as Ctrl-C does
    assert not [pid for pid in deployment.pids.values() if psutil.pid_exists(pid)], (
        "a child outlived the script"
    )

    # The other instance answered with the whole conversation: the model saw the first turn.
    seen = [(m["role"], m["content"]) for m in scripted.requests[-1]["messages"] if m["role"] != "system"]
    assert seen == [("user", first), ("assistant", "before-the-failover"), ("user", second)]
    assert {row["thread"] for row in after} == {resumed_thread}  # one thread, before and after
    assert _conversation(after) == [
        ("user_message", first),
        ("assistant_message", "before-the-failover"),
        ("user_message", second),
        ("assistant_message", "after-the-failover"),
    ]
    assert failover_s < 15, failover_s


def test_config_when_rendered_for_three_instances_then_haproxy_accepts_it_with_one_cookie_each(
    tmp_path: Path,
) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(render(TEMPLATE.read_text(), [8001, 8002, 8003]))
    env = {**clean_env(), **haproxy_env("127.0.0.1:8080", "https://chat.example.com")}
    checked = subprocess.run(
        [HAPROXY, "-c", "-f", str(config)], env=env, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr
    servers = [line.split() for line in config.read_text().splitlines() if line.strip().startswith("server ")]
    assert servers == [["server", f"app{i}", f"127.0.0.1:800{i}", "cookie", f"app{i}"] for i in (1, 2, 3)]
    assert env["SA_PUBLIC_HOST"] == "chat.example.com"  # what the health checks send as Host


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--ports", "8001,x"], {}, "Error: --ports '8001,x' must be distinct TCP ports"),
        (["--bind", "0.0.0.0:8080"], {}, "Error: --bind 0.0.0.0:8080 listens on every address"),
        ([], {"CHAINLIT_AUTH_SECRET": SECRET}, "Error: SMART_AGENT_DATABASE_URL must be a postgresql:// URL"),
        (
            [],
            {"SMART_AGENT_DATABASE_URL": "postgresql://a@127.0.0.1/b"},
            "Error: CHAINLIT_AUTH_SECRET must be set",
        ),
    ],
)
def test_start_when_a_flag_or_setting_is_refused_then_exit_2_with_one_line(
    args: list[str], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deploy.start", "--log-dir", str(tmp_path), *args],
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1, result.stderr
    assert not list(tmp_path.iterdir())  # nothing started, nothing written


def test_start_when_bound_to_a_public_address_without_an_account_then_exit_2_naming_users_add(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    # The instances are on loopback, where the local user is signed in while no account exists.
    env = clean_env(
        SMART_AGENT_DATABASE_URL=_run(fresh_database(postgres)),
        CHAINLIT_AUTH_SECRET=SECRET,
        SMART_AGENT_DATA_DIR=str(tmp_path / "data"),
    )
    command = [sys.executable, "-m", "deploy.start", "--log-dir", str(tmp_path / "logs")]
    flags = ["--bind", "0.0.0.0:8080", "--public-origin", "https://chat.example.com"]
    result = subprocess.run([*command, *flags], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith(
        "Error: --bind 0.0.0.0:8080 would let anyone who reaches it chat as the local"
    )
    assert "smart-agent users add NAME" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "logs").exists()


class _Instance(BaseHTTPRequestHandler):
    """An app instance: healthy, or one that dies with each request it reads (its health check passes)."""

    dies = False
    seen: list[tuple[str, str]]

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append((self.command, self.path))
        if self.dies and self.path != "/health":
            self.close_connection = True  # read, then gone without a byte: what SIGKILL looks like
            return
        body = b"served"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextmanager
def _instance(dies: bool) -> Iterator[tuple[int, list[tuple[str, str]]]]:
    seen: list[tuple[str, str]] = []
    handler = type("Handler", (_Instance,), {"dies": dies, "seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("method", "path", "answered"),
    [("GET", "/public/elements/ReplyFooter.jsx", True), ("POST", "/project/action", False)],
)
def test_balancer_when_the_sticky_instance_dies_mid_request_then_a_get_is_replayed_elsewhere_a_post_never(
    method: str, path: str, answered: bool, tmp_path: Path
) -> None:
    # Found in CI: the instance was killed while the page loaded the reply footer's source, and the
    # footer showed HAProxy's "Bad Gateway" after the failover. A POST may have acted: never twice.
    with _instance(dies=True) as (dying, dying_seen), _instance(dies=False) as (healthy, healthy_seen):
        bind = f"127.0.0.1:{free_port()}"
        config = tmp_path / "haproxy.cfg"
        config.write_text(render(TEMPLATE.read_text(), [dying, healthy]))
        env = {**clean_env(), **haproxy_env(bind, f"http://{bind}")}
        with (tmp_path / "haproxy.log").open("w") as log:
            proxy = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], env=env, stdout=log, stderr=log)
        try:
            with httpx.Client(base_url=f"http://{bind}", timeout=10) as client:
                deadline = time.monotonic() + 30
                while True:  # up once it answers through the healthy instance
                    try:
                        if client.get("/ready", cookies={"SA_INSTANCE": "app2"}).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, (tmp_path / "haproxy.log").read_text()
                    time.sleep(0.1)  # HAProxy starting in another process: nothing to await
                body = b'{"id": "once"}' if method == "POST" else None
                response = client.request(method, path, cookies={"SA_INSTANCE": "app1"}, content=body)
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
    assert (method, path) in dying_seen  # it reached the instance that died with it
    if answered:
        assert (response.status_code, response.text) == (200, "served")  # ...and was replayed
        assert (method, path) in healthy_seen
    else:
        assert response.status_code == 502 and (method, path) not in healthy_seen
