"""What breaks when HAProxy balances two instances round-robin instead of by the sticky cookie.

python -m benchmarks.balancer_bench [--attempts 20]

Two `smart-agent chainlit --headless` instances as deploy/start.py runs them (history on, one
PostgreSQL, one JWT secret) behind deploy/haproxy.cfg, rendered once with the `SA_INSTANCE` cookie
and once without it. Each attempt is a new browser-like client (its own cookie jar) that:
1. opens a Socket.IO session over the polling transport, as Chainlit's page does first
   (handshake GET, CONNECT POST, then the GET that must carry the CONNECT answer);
2. opens a session over a websocket (one TCP connection, so it stays on one instance) and then
   uploads a file to it with `POST /project/file?session_id=...`, a session-bound HTTP call;
3. in headless Chromium: opens the chat page, waits until it is ready (30 s at most) and sends a
   prompt, answered within 20 s or counted as failed (`--browser-attempts` pages).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from deploy.start import HAPROXY, TEMPLATE, haproxy_env, render
from smart_agent.llm.local_server import free_port
from tests.chat_page import ChatPage
from tests.harness import CHROMIUM, CHROMIUM_ARGS, clean_env, running_app
from tests.postgres_server import postgres_server
from tests.scripted_server import MODEL_ID, serve
from tests.sio_client import ChatClient

SOCKET = "/ws/socket.io/"


@contextmanager
def balancer(ports: list[int], bind: str, *, sticky: bool, folder: Path) -> Iterator[str]:
    """HAProxy from the recipe's template on `bind`; its URL."""
    config = folder / f"haproxy-{'sticky' if sticky else 'roundrobin'}.cfg"
    config.write_text(render(TEMPLATE.read_text(), ports, sticky=sticky))
    env = {**clean_env(), **haproxy_env(bind, f"http://{bind}")}
    with (folder / f"{config.stem}.log").open("wb") as log:
        process = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://{bind}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not answer; see {folder}")
            time.sleep(0.2)  # waiting for a child process to listen
        yield f"http://{bind}"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def polling_session(url: str) -> bool:
    """A Socket.IO session over long polling, as the page opens it; True when it is established."""
    async with httpx.AsyncClient(base_url=url, headers={"Origin": url}, timeout=10) as http:
        (await http.post("/auth/header")).raise_for_status()
        query = {"EIO": "4", "transport": "polling"}
        opened = await http.get(SOCKET, params=query)
        if opened.status_code != 200:
            return False
        sid = json.loads(opened.text[1:])["sid"]
        auth = {"clientType": "webapp", "sessionId": str(uuid.uuid4()), "threadId": "", "userEnv": "{}"}
        sent = await http.post(SOCKET, params={**query, "sid": sid}, content="40" + json.dumps(auth))
        if sent.status_code != 200:
            return False
        answer = await http.get(SOCKET, params={**query, "sid": sid})
        return answer.status_code == 200 and answer.text.startswith("40")


async def upload_to_session(url: str) -> tuple[bool, int]:
    """A websocket session, then one upload to it; (session opened, upload status)."""
    async with httpx.AsyncClient(base_url=url, headers={"Origin": url}, timeout=10) as http:
        signed = await http.post("/auth/header")
        signed.raise_for_status()
        cookie = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
        client = ChatClient(url)
        try:
            await client.connect(headers={"Cookie": cookie, "Origin": url})
        except Exception:  # a refused session is a measured outcome here
            return False, 0
        try:
            files = {"file": ("note.txt", b"hello", "text/plain")}
            uploaded = await http.post("/project/file", params={"session_id": client.session_id}, files=files)
            return True, uploaded.status_code
        finally:
            await client.close()


async def measure(url: str, attempts: int) -> dict[str, int]:
    """Counts of good outcomes over `attempts` new clients, one after the other."""
    polling = sum([await polling_session(url) for _ in range(attempts)])
    uploads = [await upload_to_session(url) for _ in range(attempts)]
    return {
        "attempts": attempts,
        "polling sessions established": polling,
        "websocket sessions established": sum(opened for opened, _ in uploads),
        # Uploads are off in our config: an upload that reaches its session gets 400 "not enabled".
        "uploads that reached their session": sum(status not in (0, 404) for _, status in uploads),
        "uploads answered 404 Session not found": sum(status == 404 for _, status in uploads),
    }


def browser_chats(url: str, attempts: int) -> tuple[int, int]:
    """Of fresh browser pages, how many got ready and how many got a prompt answered."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    ready = answered = 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for attempt in range(attempts):
                try:
                    chat = ChatPage.open(browser, url)  # ready within 30 s, or it raises
                except (PlaywrightError, TimeoutError):
                    continue
                ready += 1
                try:
                    chat.send(f"#script text=answer-{attempt}")
                    chat.wait_text(f"answer-{attempt}", timeout=20)
                    answered += 1
                except (PlaywrightError, TimeoutError):
                    pass
                finally:
                    chat.close()
        finally:
            browser.close()
    return ready, answered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=20)
    parser.add_argument("--browser-attempts", type=int, default=5)
    args = parser.parse_args()
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="balancer-bench-")))
        database = stack.enter_context(postgres_server()).url()
        scripted = stack.enter_context(serve())
        binds = {sticky: f"127.0.0.1:{free_port()}" for sticky in (True, False)}
        env = clean_env(
            SMART_AGENT_ALLOWED_ORIGINS=",".join(f"http://{bind}" for bind in binds.values()),
            OPENAI_API_KEY="bench-key",
            SMART_AGENT_DATABASE_URL=database,
            CHAINLIT_AUTH_SECRET="balancer-bench-" + "s" * 32,
            SMART_AGENT_HISTORY="1",
            SMART_AGENT_DATA_DIR=str(folder / "data"),
        )
        ports = []
        for name in ("a", "b"):
            (folder / name).mkdir()
            url, _ = stack.enter_context(
                running_app("--base-url", scripted.url, "--model", MODEL_ID, env=env, log_dir=folder / name)
            )
            ports.append(int(url.rsplit(":", 1)[1]))
        for sticky in (True, False):
            with balancer(ports, binds[sticky], sticky=sticky, folder=folder) as url:
                counts = asyncio.run(measure(url, args.attempts))
                ready, answered = browser_chats(url, args.browser_attempts)
                counts.update({"browser pages ready": ready, "browser prompts answered": answered})
            label = "cookie SA_INSTANCE (sticky)" if sticky else "round-robin, no cookie"
            print(f"{label}: " + ", ".join(f"{name} {value}" for name, value in counts.items()), flush=True)


if __name__ == "__main__":
    main()
