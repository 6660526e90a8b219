"""End to end in headless Chromium: a page of the app reads a run with `EventSource`, the server side
closes the stream mid-run, and the browser reconnects by itself and ends with the exact text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser, Page, Route

from tests.api_client import get_run
from tests.dropping_proxy import DroppingProxy
from tests.harness import clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens

pytestmark = pytest.mark.e2e

TOKENS = 400
REPLY = "".join(script_tokens(TOKENS))
# What the snippet in docs/api.md does, plus counters the test reads.
READ_RUN = """
async (content) => {
  const answer = await fetch('/api/v1/runs', {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({messages: [{role: 'user', content}]}),
  });
  const run = await answer.json();
  const seen = {id: run.id, text: '', done: 0, errors: [], opens: 0, dropped: 0, ended: false};
  window.seen = seen;
  const source = new EventSource(run.events_url);
  const end = () => { source.close(); seen.ended = true; };
  source.addEventListener('open', () => { seen.opens += 1; });
  source.addEventListener('token', (e) => { seen.text += JSON.parse(e.data).text; });
  source.addEventListener('snapshot', (e) => { seen.text = JSON.parse(e.data).text; });
  source.addEventListener('done', () => { seen.done += 1; end(); });
  source.addEventListener('error', (e) => {
    if (e.data) { seen.errors.push(JSON.parse(e.data)); end(); }  // the run's `error` event
    else { seen.dropped += 1; }  // the connection's: EventSource reconnects by itself
  });
  return run.id;
}
"""


def _loopback_only(route: Route) -> None:
    # Chainlit's page links fonts on a CDN; without internet those requests would hang.
    if urlparse(route.request.url).hostname == "127.0.0.1":
        route.continue_()
    else:
        route.abort()


@pytest.fixture(scope="module")
def proxy() -> Iterator[DroppingProxy]:
    """The proxy the page is served through; it closes event streams on command."""
    with DroppingProxy().running() as proxy:
        yield proxy


@pytest.fixture(scope="module")
def base(
    scripted: ScriptedServer, proxy: DroppingProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The app, accepting the proxy's origin."""
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_ALLOWED_ORIGINS=proxy.url)
    log_dir: Path = tmp_path_factory.mktemp("eventsource")
    with running_app("--base-url", scripted.url, "--model", MODEL_ID, env=env, log_dir=log_dir) as (url, _):
        proxy.upstream_port = int(url.rsplit(":", 1)[1])
        yield url


@pytest.fixture
def page(browser: Browser, proxy: DroppingProxy, base: str) -> Iterator[Page]:
    """A page of the app, served through the proxy (so the API is on the page's own origin)."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.route("**/*", _loopback_only)
        sockets: list[object] = []
        page.on("websocket", lambda socket: sockets.append(socket))
        page.goto(proxy.url + "/", wait_until="domcontentloaded")
        # Signed in by header auth first (the page goes to /login and back, and may show the chat's
        # input before it goes): the session's socket opens once the page is back for good.
        page.wait_for_selector("#chat-input", timeout=60_000)
        if not sockets:
            page.wait_for_event("websocket", timeout=60_000)
        page.wait_for_selector("#chat-input", timeout=60_000)
        yield page
    finally:
        context.close()


def _seen(page: Page) -> dict[str, Any]:
    value: dict[str, Any] = page.evaluate("() => window.seen")
    return value


@pytest.mark.parametrize("cut_at", [(0.1,), (0.3, 0.6)], ids=["once", "twice"])
def test_eventsource_when_the_server_closes_mid_run_then_reconnects_and_ends_with_the_exact_text(
    page: Page, proxy: DroppingProxy, base: str, cut_at: tuple[float, ...]
) -> None:
    run_id = page.evaluate(READ_RUN, f"#script tokens={TOKENS} rate=80")
    for index, fraction in enumerate(cut_at):
        page.wait_for_function(
            "([opens, chars]) => window.seen.opens >= opens && window.seen.text.length >= chars",
            arg=[index + 1, int(fraction * len(REPLY))],
            timeout=30_000,
        )
        assert not _seen(page)["ended"]
        assert proxy.cut() == 1, "the page's event stream was open, mid-run, and was closed"
    page.wait_for_function("() => window.seen.ended", timeout=60_000)
    seen = _seen(page)
    assert seen["text"] == REPLY, "nothing missing, nothing repeated"
    assert seen["done"] == 1 and seen["errors"] == []
    assert seen["opens"] == len(cut_at) + 1 and seen["dropped"] >= len(cut_at)
    reads = proxy.seen(f"/api/v1/runs/{run_id}/events")
    assert len(reads) == len(cut_at) + 1, "the browser reconnected by itself after each cut"
    resumed = [request.header("last-event-id") for request in reads[1:]]
    assert all(value is not None and int(value) > 0 for value in resumed), resumed
    assert resumed == sorted(resumed, key=int)
    state = get_run(base, run_id).json()
    assert state["status"] == "done" and state["text"] == REPLY
